"""A griffe extension for the documentation site: Sphinx roles in docstrings become links.

The docstrings use Sphinx's cross-reference roles (``:meth:`doNormal```,
``:class:`~gearman.errors.ServerUnavailable```), which mkdocstrings does not
interpret: the site showed them as literal text (":meth:doNormal").  mkdocs.yml
loads this file as an extension of the mkdocstrings Python handler; it rewrites
each role into an optional cross-reference to the object it names, resolved as
Sphinx resolves it (a member of the same class, then of the same module, then a
full path), shown as code (``doNormal()``; ``~`` keeps the last name only).  A
target the site does not document is shown as code without a link, and never
warns (mkdocs builds with --strict).  scripts/check_docs_site.py fails the
build's check if a literal role is left on any page.
"""
from __future__ import annotations

import html
import re
from typing import Any, List, Optional

from griffe import Extension, Object

ROLE = re.compile(r":(?:py:)?(meth|func|class|exc|attr|data|obj|mod|const)"
                  r":`(?P<text>[^`]+)`")

CALLABLE_ROLES = ("meth", "func")


class SphinxRoles(Extension):
    """Rewrite ``:role:`target``` in every docstring of the loaded packages."""

    def on_object(self, *, obj: Object, loader: Any, **kwargs: Any) -> None:
        if obj.docstring is None or ":`" not in obj.docstring.value:
            return

        def replace(m: "re.Match[str]") -> str:
            role, text = m.group(1), m.group("text").strip()
            short = text.startswith("~")
            target = text.lstrip("~.")
            if "<" in target and target.endswith(">"):           # :meth:`title <target>`
                shown, target = target[:-1].split("<", 1)
                shown, target = shown.strip(), target.strip()
            else:
                shown = target.rsplit(".", 1)[-1] if short else target
            if role in CALLABLE_ROLES and not shown.endswith(")"):
                shown += "()"
            code = f"<code>{html.escape(shown)}</code>"
            found = _resolve(obj, target, loader)
            if found is None:
                return code
            return f'<autoref identifier="{html.escape(found)}" optional>{code}</autoref>'

        obj.docstring.value = ROLE.sub(replace, obj.docstring.value)


def _resolve(obj: Object, target: str, loader: Any) -> Optional[str]:
    """The path of the object ``target`` names from within ``obj``, or None."""
    scopes: List[Object] = []
    here: Optional[Object] = obj
    while here is not None:                       # obj itself, its class, its module...
        scopes.append(here)
        here = here.parent
    candidates = [f"{scope.path}.{target}" for scope in scopes] + [target]
    for path in candidates:
        try:
            # (an alias to another package, e.g. ``ssl``, fails to resolve: not ours)
            found = loader.modules_collection[path]
            return str(found.path)
        except Exception:                          # noqa: BLE001 - not found, or not ours
            continue
    return None
