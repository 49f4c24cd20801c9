"""Check the built distributions: the wheel ships the package and the compiled
core, its stub and py.typed, the pytest plugin module (outside the package) and
its entry point, and no Cython sources or generated C; the sdist
ships src/ and no generated C.

    check_dist.py DIST_DIR            the one wheel and the one sdist in DIST_DIR
    check_dist.py DIST_DIR WHEEL      the sdist in DIST_DIR and WHEEL instead (the
                                      auditwheel-repaired one): also insists on a
                                      manylinux tag and no bundled shared libraries
                                      (the core links nothing but libc)
"""
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Optional


def main(dist: Path, repaired: Optional[Path] = None) -> int:
    problems = []
    wheels = [repaired] if repaired else sorted(dist.glob("cygearman-*.whl"))
    sdists = sorted(dist.glob("cygearman-*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        print(f"expected one wheel and one sdist in {dist}, found {wheels} {sdists}")
        return 1
    wheel = zipfile.ZipFile(wheels[0])
    names = wheel.namelist()
    if repaired:
        meta = next((n for n in names if n.endswith(".dist-info/WHEEL")), None)
        tags = ([line.split(":", 1)[1].strip() for line in wheel.read(meta).decode().splitlines()
                 if line.startswith("Tag:")] if meta else [])
        if not tags or not all("manylinux" in t for t in tags):
            problems.append(f"repaired wheel's tags are not all manylinux: {tags}")
        bundled = [n for n in names if n.startswith("cygearman.libs/")]
        if bundled:
            problems.append(f"auditwheel bundled shared libraries: {bundled}")
    for required in ("gearman/__init__.py", "gearman/py.typed", "gearman/_core.pyi",
                     "gearman/testing.py", "gearman/cli/__init__.py", "gearman/__main__.py",
                     "_cygearman_pytest.py"):
        if required not in names:
            problems.append(f"wheel lacks {required}")
    if not any(n.startswith("gearman/_core") and n.endswith((".so", ".pyd")) for n in names):
        problems.append("wheel lacks the compiled gearman/_core extension")
    for n in names:
        if n.endswith((".pyx", ".pxd", ".pxi", ".c", ".h")):
            problems.append(f"wheel ships a source file: {n}")
    entry_points = next((n for n in names if n.endswith(".dist-info/entry_points.txt")), None)
    if entry_points is None:
        problems.append("wheel lacks entry_points.txt (pytest plugin)")
    elif "gearman = _cygearman_pytest" not in wheel.read(entry_points).decode():
        # the plugin every pytest session loads must not be a module of the package
        problems.append("wheel's pytest11 entry point is not gearman = _cygearman_pytest")
    snames = tarfile.open(sdists[0]).getnames()
    if not any(n.endswith("src/gearman/_core.pyx") for n in snames):
        problems.append("sdist lacks src/gearman/_core.pyx")
    if not any(n.endswith("/_cygearman_pytest.py") for n in snames):
        problems.append("sdist lacks _cygearman_pytest.py (the pytest plugin)")
    for n in snames:
        if n.endswith(".c") or n.endswith(".so"):
            problems.append(f"sdist ships generated code: {n}")
    for p in problems:
        print("FAIL:", p)
    if not problems:
        print(f"ok: {wheels[0].name} ({len(names)} files), {sdists[0].name} ({len(snames)} files)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else None))
