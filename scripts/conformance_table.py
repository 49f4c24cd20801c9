#!/usr/bin/env python3
"""Print the doors' conformance table (tests/conformance_table.py) as markdown, or with
``--write`` put it into docs/reliability.md between its conformance-table markers.

tests/test_conformance.py checks that the docs hold exactly this text, and runs every cell.
"""
import argparse
import importlib.util
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _table():
    spec = importlib.util.spec_from_file_location("conformance_table", ROOT / "tests" / "conformance_table.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="update docs/reliability.md in place")
    args = ap.parse_args()
    table = _table()
    text = table.render()
    if not args.write:
        sys.stdout.write(text)
        return 0
    doc = ROOT / "docs" / "reliability.md"
    old = doc.read_text(encoding="utf-8")
    new = table.splice(old, text)
    if new != old:
        doc.write_text(new, encoding="utf-8")
        print(f"updated {doc}")
    else:
        print(f"{doc} is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
