"""Check that docs/api.md lists every public method of the four PECL classes.

docs/api.md renders GearmanClient, GearmanTask, GearmanWorker and GearmanJob with an
explicit ``members:`` list each (so the page keeps the PECL order); a method added to a
class without being added there would silently vanish from the reference.  This compares
the lists with the installed package.  Not counted: PEP 8 aliases (the same function as a
camelCase name, documented once) and the python-gearman methods of the legacy mixins
(documented in docs/migration.md).

    python scripts/check_api_docs.py [docs/api.md]
"""
from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path
from typing import Dict, List, Set

import gearman
from gearman import _legacy_client, _legacy_worker

CLASSES = {
    "gearman.GearmanClient": (gearman.GearmanClient, _legacy_client.LegacyClientMixin),
    "gearman.GearmanTask": (gearman.GearmanTask, None),
    "gearman.GearmanWorker": (gearman.GearmanWorker, _legacy_worker.LegacyWorkerMixin),
    "gearman.GearmanJob": (gearman.GearmanJob, None),
}


def documented(api_md: str) -> Dict[str, Set[str]]:
    """``{"gearman.GearmanClient": {"addServer", ...}, ...}`` from the ``members:`` lists."""
    out: Dict[str, Set[str]] = {}
    current = None
    in_members = False
    for line in api_md.splitlines():
        m = re.match(r"^::: (\S+)", line)
        if m:
            current, in_members = m.group(1), False
            out[current] = set()
            continue
        if current is None:
            continue
        if re.match(r"^\s+members:\s*$", line):
            in_members = True
            continue
        item = re.match(r"^\s+- (\w+)\s*$", line)
        if in_members and item:
            out[current].add(item.group(1))
        elif in_members and line.strip() and not item:
            in_members = False
    return out


#: Modules of the python-gearman surface (docs/migration.md documents them).
LEGACY_MODULES = {"gearman._legacy_client", "gearman._legacy_worker",
                  "gearman.connection_manager"}


def public_methods(cls: type, mixin: "type | None") -> Set[str]:
    """Public callables of ``cls`` and its bases, minus python-gearman's and PEP 8 aliases."""
    legacy = {n for k in cls.__mro__ if k.__module__ in LEGACY_MODULES for n in vars(k)}
    names: Set[str] = set()
    for klass in cls.__mro__:
        if klass is object or klass is mixin or klass.__module__ in LEGACY_MODULES:
            continue
        for name in vars(klass):
            if name.startswith("_") or name in legacy:
                continue
            if callable(inspect.getattr_static(cls, name)):
                names.add(name)
    camel = {n for n in names if any(c.isupper() for c in n)}
    aliases = {n for n in names - camel
               if any(inspect.getattr_static(cls, n) is inspect.getattr_static(cls, c)
                      for c in camel)}
    return names - aliases


def main(argv: List[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent.parent / "docs" / "api.md"
    docs = documented(path.read_text(encoding="utf-8"))
    problems = []
    for target, (cls, mixin) in CLASSES.items():
        if target not in docs:
            problems.append(f"{path} has no '::: {target}' block")
            continue
        missing = sorted(public_methods(cls, mixin) - docs[target])
        if missing:
            problems.append(f"{target}: not in the members list of {path.name}: {', '.join(missing)}")
        unknown = sorted(n for n in docs[target] if not hasattr(cls, n))
        if unknown:
            problems.append(f"{target}: {path.name} lists names the class lacks: {', '.join(unknown)}")
    for p in problems:
        print("FAIL:", p)
    if not problems:
        print(f"ok: {path.name} lists every public method of the four PECL classes")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
