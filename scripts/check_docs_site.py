"""Check the built documentation site (run by scripts/release_checks.sh after mkdocs).

    check_docs_site.py SITE_DIR [API_MD]

* No page shows a Sphinx role as literal text (":meth:doNormal", ":class:`X`"):
  scripts/griffe_sphinx_roles.py turns the docstrings' roles into links, and a
  role that slips through (a new syntax, a page written by hand) fails here.
* The API page lists each class's members in the order docs/api.md gives
  (``members:`` under each ``::: gearman.Class``), every one of them rendered.
* The site works as a browser shows it: every internal link reaches a page of the site,
  every ``#anchor`` is an id on its page, every image exists and is the format its name says
  (``check_links``; links leaving the site are not fetched).
* No development history on a user page: no commit id and no work-item name (issue "...")
  outside the changelog and the maintainer page, docs/development.md (``check_history``).

tests/test_docs_site_checker.py runs these checks on a tiny fake site.
"""
import html
import re
import struct
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Set, Tuple
from urllib.parse import unquote

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


# --- links, anchors and images, as a browser would follow them --------------------------------

#: URL schemes that leave the site (not checked: no network in CI)
EXTERNAL = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*:|//)")
#: the magic bytes of the image formats a page may show
IMAGE_MAGIC = {".png": (b"\x89PNG\r\n\x1a\n",), ".jpg": (b"\xff\xd8\xff",),
               ".jpeg": (b"\xff\xd8\xff",), ".gif": (b"GIF87a", b"GIF89a"),
               ".webp": (b"RIFF",), ".ico": (b"\x00\x00\x01\x00",)}


class _PageParser(HTMLParser):
    """Collects a page's ids (anchors), links, images and the text outside ``<pre>``."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: Set[str] = set()
        self.links: List[str] = []           # <a href>, <link href>
        self.images: List[str] = []          # <img src>, <source srcset>, <script src>
        self.prose: List[str] = []           # text outside <pre>, <script>, <style>
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: List[Tuple[str, Optional[str]]]) -> None:
        a = {k: v for k, v in attrs if v is not None}
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "a" and "name" in a:
            self.ids.add(a["name"])
        if tag in ("a", "link") and "href" in a:
            self.links.append(a["href"])
        if tag in ("img", "script", "iframe") and "src" in a:
            self.images.append(a["src"])
        if tag == "source" and "srcset" in a:
            self.images.append(a["srcset"].split()[0])
        if tag in ("pre", "script", "style"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("pre", "script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.prose.append(data)


def parse_page(path: Path) -> _PageParser:
    p = _PageParser()
    p.feed(path.read_text(errors="replace"))
    p.close()
    return p


def _target(site: Path, page: Path, url: str) -> Tuple[Optional[Path], str]:
    """The file a relative URL on ``page`` opens (None: outside the site) and its fragment."""
    path, _, frag = url.partition("#")
    path = unquote(path.partition("?")[0])
    if not path:
        return page, unquote(frag)
    if path.startswith("/"):
        target = (site / path.lstrip("/")).resolve()
    else:
        target = (page.parent / path).resolve()
    try:
        target.relative_to(site.resolve())
    except ValueError:
        return None, frag
    if target.is_dir() or path.endswith("/"):
        target = target / "index.html"
    return target, unquote(frag)


def image_problem(path: Path) -> Optional[str]:
    """Why a browser would not show this image file, or None."""
    if not path.is_file():
        return "missing"
    head = path.read_bytes()[:64]
    if not head:
        return "empty file"
    ext = path.suffix.lower()
    if ext == ".svg":
        return None if b"<svg" in path.read_bytes()[:4096] else "not an SVG document"
    magic = IMAGE_MAGIC.get(ext)
    if magic and not head.startswith(magic):
        return f"not a {ext[1:].upper()} file (starts {head[:8]!r})"
    if ext == ".png":
        width, height = struct.unpack(">II", head[16:24])
        if not width or not height:
            return f"PNG of {width}x{height} pixels"
    return None


def check_links(site: Path) -> List[str]:
    """Every internal link, anchor and image of the built site, followed as a browser would.

    A link to another page must reach a file of the site; its ``#fragment`` must be an id
    (or ``<a name>``) on that page; ``#`` alone is the top of the page. An image (and a
    script's ``src``) must exist and start like its format (PNG, JPEG, GIF, WebP, SVG).
    Links leaving the site (``https:``, ``mailto:``...) are not fetched.
    """
    site = site.resolve()
    pages = sorted(site.rglob("*.html"))
    parsed = {p: parse_page(p) for p in pages}
    problems = []
    for page, info in parsed.items():
        rel = page.relative_to(site)
        for url in info.links:
            if EXTERNAL.match(url):
                continue
            target, frag = _target(site, page, url)
            if target is None:
                problems.append(f"{rel}: link {url!r} leaves the site's directory")
            elif not target.exists():
                problems.append(f"{rel}: broken link {url!r} (no {target.relative_to(site)})")
            elif frag and target.suffix == ".html":
                ids = parsed[target].ids if target in parsed else parse_page(target).ids
                if frag not in ids:
                    problems.append(f"{rel}: link {url!r}: no id {frag!r} on "
                                    f"{target.relative_to(site)}")
        for url in info.images:
            if EXTERNAL.match(url) and not url.startswith("data:"):
                continue
            if url.startswith("data:"):
                continue
            target, _ = _target(site, page, url)
            why = "outside the site" if target is None else image_problem(target)
            if why:
                problems.append(f"{rel}: image/script {url!r}: {why}")
    return problems


# --- no development history on the user pages ------------------------------------------------

#: pages where commit ids and work-item names belong (site paths, as built)
HISTORY_PAGES = ("changelog/index.html", "development/index.html")
#: a commit id: 7-40 lowercase hex digits with at least one digit and one letter, standing
#: alone (not part of a handle, a path, a UUID, a 0x number or a longer word)
COMMIT_ID = re.compile(r"(?<![\w\-.:/#])(?=[0-9a-f]*[0-9])(?=[0-9a-f]*[a-f])[0-9a-f]{7,40}"
                       r"(?![\w\-.:/])")
#: how the repository's history names work items: issue "One engine base", work item 12, ...
WORK_ITEM = re.compile(r"\bissue\s+[\"“]|\bwork[- ]items?\b|\bthis commit\b",
                       re.I)
#: hex strings on user pages that are not commit ids (none so far)
HEX_ALLOWED: Set[str] = set()


def check_history(site: Path, exempt: Sequence[str] = HISTORY_PAGES) -> List[str]:
    """Commit ids and work-item names on user pages (all but the changelog and the
    maintainer page). Code blocks (``<pre>``) are not read: a job handle or a hash in a
    sample is not history; inline code is, as commit ids are usually written `abc1234`."""
    site = site.resolve()
    problems = []
    for page in sorted(site.rglob("*.html")):
        rel = page.relative_to(site).as_posix()
        if rel in exempt or rel.startswith(("search/", "assets/")):
            continue
        text = " ".join(" ".join(parse_page(page).prose).split())
        for rx, what in ((COMMIT_ID, "commit id"), (WORK_ITEM, "work-item name")):
            for m in rx.finditer(text):
                if what == "commit id" and m.group(0) in HEX_ALLOWED:
                    continue
                start = max(m.start() - 50, 0)
                problems.append(f"{rel}: {what} {m.group(0)!r} on a user page: "
                                f"...{text[start:m.end() + 30]}...")
    return problems


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
    problems += check_links(site)
    problems += check_history(site)
    for p in problems:
        print("FAIL:", p)
    if not problems:
        counts = ", ".join(f"{c.rsplit('.', 1)[-1]} {len(m)}"
                           for c, m in api_members(api_md).items())
        print(f"ok: {len(pages)} pages without a literal Sphinx role; API members in "
              f"{api_md.name}'s order ({counts}); every internal link, anchor and image "
              f"resolves; no commit id or work-item name outside {', '.join(HISTORY_PAGES)}")
    return 1 if problems else 0


if __name__ == "__main__":
    here = Path(__file__).resolve().parent.parent
    sys.exit(main(Path(sys.argv[1]),
                  Path(sys.argv[2]) if len(sys.argv) > 2 else here / "docs" / "api.md"))
