"""scripts/check_docs_site.py catches what a browser would show broken, on a tiny fake site.

Builds nothing: the checker's functions run on a few HTML files written into tmp_path (the
layout mkdocs makes: one directory per page, each with its index.html).
"""
import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "check_docs_site.py"
PNG = (b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + (10).to_bytes(4, "big")
       + (10).to_bytes(4, "big") + b"\x08\x02\x00\x00\x00" + b"\x00" * 16)


def load_checker():
    # --import-mode=importlib puts no folder on sys.path, and the suite runs outside the
    # tree's package: load the script by path.
    spec = importlib.util.spec_from_file_location("check_docs_site", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def make_site(root: Path, pages: dict, files: dict = ()) -> Path:
    for rel, body in pages.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f"<html><body>{body}</body></html>")
    for rel, data in dict(files).items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


GOOD = {
    "index.html": '<h1 id="top">Home</h1><a href="guide/">guide</a> <a href="guide/#setup">setup</a>'
                  ' <a href="#top">top</a> <a href="https://example.org/x#y">out</a>'
                  ' <img src="img/chart.png" alt="chart">',
    "guide/index.html": '<h2 id="setup">Setup</h2><a href="../">home</a>'
                        ' <a href="../index.html#top">top</a> <a name="old"></a>',
}


def test_a_sound_site_passes(tmp_path):
    c = load_checker()
    site = make_site(tmp_path, GOOD, {"img/chart.png": PNG})
    assert c.check_links(site) == []
    assert c.check_history(site) == []


def test_broken_link_anchor_and_image_are_each_reported(tmp_path):
    c = load_checker()
    pages = dict(GOOD)
    pages["guide/index.html"] += (' <a href="../missing/">gone</a> <a href="../#nowhere">x</a>'
                                  ' <a href="#old">ok</a> <img src="../img/none.png">'
                                  ' <img src="../img/fake.png">')
    site = make_site(tmp_path, pages, {"img/chart.png": PNG, "img/fake.png": b"<html>404</html>"})
    problems = c.check_links(site)
    text = "\n".join(problems)
    assert len(problems) == 4, text
    assert "broken link '../missing/'" in text
    assert "no id 'nowhere' on index.html" in text
    assert "'../img/none.png': missing" in text
    assert "'../img/fake.png': not a PNG file" in text


def test_history_on_user_pages_is_reported_but_not_in_code_or_the_changelog(tmp_path):
    c = load_checker()
    site = make_site(tmp_path, {
        "index.html": "<p>Measured at commit <code>30c30ab</code>.</p>"
                      "<h3>Event hooks (issue \"Observability\")</h3>"
                      "<pre><code>handle = 'H:host:1'; sha = 'deadbeef1234567'</code></pre>"
                      "<p>uuid 550e8400-e29b-41d4-a716-446655440000, 0x030b0000, 1234567 jobs</p>",
        "changelog/index.html": "<p>Fixed in 30c30ab (issue \"Observability\").</p>",
        "development/index.html": "<p>af1e9e8 -> 2fef50a</p>",
    })
    problems = c.check_history(site)
    text = "\n".join(problems)
    assert len(problems) == 2, text
    assert all(p.startswith("index.html:") for p in problems), text
    assert "commit id '30c30ab'" in text
    assert "work-item name 'issue \"'" in text
