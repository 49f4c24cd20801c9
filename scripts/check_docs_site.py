"""Check the built documentation site (run by scripts/release_checks.sh after mkdocs).

    check_docs_site.py SITE_DIR [API_MD]

* No page shows a Sphinx role as literal text (":meth:doNormal", ":class:`X`"):
  scripts/griffe_sphinx_roles.py turns the docstrings' roles into links, and a
  role that slips through (a new syntax, a page written by hand) fails here.
* The API page lists each class's members in the order docs/api.md gives
  (``members:`` under each ``::: gearman.Class``), every one of them rendered.
"""
import html
import re
import sys
from pathlib import Path
from typing import Dict, List

LITERAL_ROLE = re.compile(r":(?:py:)?(?:meth|func|class|exc|attr|data|obj|mod|const|ref):`?\w")
TAG = re.compile(r"<[^>]+>")


def page_text(page: str) -> str:
    """The visible text of a page: no tags, no scripts, no code blocks' markup."""
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    return html.unescape(TAG.sub("", page))


def api_members(api_md: Path) -> Dict[str, List[str]]:
    """``{"gearman.GearmanClient": ["addServer", ...]}`` from docs/api.md."""
    out: Dict[str, List[str]] = {}
    current = None
    in_members = False
    for line in api_md.read_text().splitlines():
        m = re.match(r"^::: (\S+)", line)
        if m:
            current = m.group(1)
            out[current] = []
            in_members = False
            continue
        if current is None:
            continue
        stripped = line.strip()
        if re.match(r"^members:\s*$", stripped):
            in_members = True
            continue
        if in_members:
            m = re.match(r"^- (\w+)$", stripped)
            if m:
                out[current].append(m.group(1))
            elif stripped and not stripped.startswith("#"):
                in_members = False
    return out


def main(site: Path, api_md: Path) -> int:
    problems = []
    pages = sorted(site.rglob("*.html"))
    if not pages:
        print(f"no HTML pages under {site}")
        return 1
    for page in pages:
        text = page_text(page.read_text(errors="replace"))
        for m in LITERAL_ROLE.finditer(text):
            start = max(m.start() - 40, 0)
            problems.append(f"{page.relative_to(site)}: literal Sphinx role: "
                            f"...{' '.join(text[start:m.end() + 40].split())}...")
    api_page = site / "api" / "index.html"
    if not api_page.exists():
        api_page = site / "api.html"
    body = api_page.read_text()
    for cls, members in api_members(api_md).items():
        ids = re.findall(rf'id="{re.escape(cls)}\.(\w+)"', body)
        rendered = list(dict.fromkeys(ids))              # first appearance of each
        missing = [m for m in members if m not in rendered]
        if missing:
            problems.append(f"{cls}: listed in {api_md.name} but not rendered: {missing}")
        order = [m for m in rendered if m in members]
        if order != [m for m in members if m in rendered]:
            problems.append(f"{cls}: members rendered in the order {order}, "
                            f"not as {api_md.name} lists them: {members}")
    for p in problems:
        print("FAIL:", p)
    if not problems:
        counts = ", ".join(f"{c.rsplit('.', 1)[-1]} {len(m)}"
                           for c, m in api_members(api_md).items())
        print(f"ok: {len(pages)} pages without a literal Sphinx role; API members in "
              f"{api_md.name}'s order ({counts})")
    return 1 if problems else 0


if __name__ == "__main__":
    here = Path(__file__).resolve().parent.parent
    sys.exit(main(Path(sys.argv[1]),
                  Path(sys.argv[2]) if len(sys.argv) > 2 else here / "docs" / "api.md"))
