"""Check the built distributions: the wheel ships the package and the compiled
core, its stub and py.typed, and no Cython sources or generated C; the sdist
ships src/ and no generated C."""
import sys
import tarfile
import zipfile
from pathlib import Path


def main(dist: Path) -> int:
    problems = []
    wheels = sorted(dist.glob("cygearman-*.whl"))
    sdists = sorted(dist.glob("cygearman-*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        print(f"expected one wheel and one sdist in {dist}, found {wheels} {sdists}")
        return 1
    names = zipfile.ZipFile(wheels[0]).namelist()
    for required in ("gearman/__init__.py", "gearman/py.typed", "gearman/_core.pyi",
                     "gearman/testing.py", "gearman/cli.py", "gearman/__main__.py"):
        if required not in names:
            problems.append(f"wheel lacks {required}")
    if not any(n.startswith("gearman/_core") and n.endswith((".so", ".pyd")) for n in names):
        problems.append("wheel lacks the compiled gearman/_core extension")
    for n in names:
        if n.endswith((".pyx", ".pxd", ".pxi", ".c", ".h")):
            problems.append(f"wheel ships a source file: {n}")
    if not any(n.endswith("entry_points.txt") for n in names):
        problems.append("wheel lacks entry_points.txt (pytest plugin)")
    snames = tarfile.open(sdists[0]).getnames()
    if not any(n.endswith("src/gearman/_core.pyx") for n in snames):
        problems.append("sdist lacks src/gearman/_core.pyx")
    for n in snames:
        if n.endswith(".c") or n.endswith(".so"):
            problems.append(f"sdist ships generated code: {n}")
    for p in problems:
        print("FAIL:", p)
    if not problems:
        print(f"ok: {wheels[0].name} ({len(names)} files), {sdists[0].name} ({len(snames)} files)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
