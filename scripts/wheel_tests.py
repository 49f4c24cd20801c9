"""Test one installed cygearman wheel: what cibuildwheel's test-command runs.

    python scripts/wheel_tests.py PROJECT_DIR [pytest args...]

CYGEARMAN_WHEEL_TESTS chooses the suite (set per platform in pyproject.toml):

  full   the whole suite against a real gearmand, except the interop tests
         (their PHP and libgearman peers are Debian packages); a missing or
         broken gearmand is an error
  codec  the codec and extension tests only (tests/test_codec.py,
         tests/test_core_loaded.py): for platforms without a gearmand package
  auto   full when a working gearmand is found, else codec, saying so loudly

The suite runs from outside the project with the project's pytest settings
(``--import-mode=importlib``), so it imports the installed wheel, never the
source tree; CYGEARMAN_REQUIRE_INSTALLED=1 makes test_core_loaded check that.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import List, Optional

CODEC_TESTS = ("tests/test_codec.py", "tests/test_core_loaded.py")
# Where Homebrew puts gearmand (Apple silicon, then Intel); Debian's and a source
# build's places are searched by gearman.testing itself.
EXTRA_GEARMAND = ("/opt/homebrew/sbin/gearmand", "/usr/local/sbin/gearmand", "/usr/sbin/gearmand")


def find_gearmand() -> Optional[str]:
    """A gearmand that runs (``--version`` exits 0), or None."""
    candidates = [os.environ.get("GEARMAND") or "", shutil.which("gearmand") or "", *EXTRA_GEARMAND]
    for path in candidates:
        if not path or not os.path.isfile(path):
            continue
        try:
            ok = subprocess.run([path, "--version"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, timeout=30).returncode == 0
        except (OSError, subprocess.SubprocessError):
            ok = False
        if ok:
            return path
    return None


def main(argv: List[str]) -> int:
    if len(argv) < 2:
        print(__doc__)
        return 2
    project = os.path.abspath(argv[1])
    extra = argv[2:]
    mode = os.environ.get("CYGEARMAN_WHEEL_TESTS", "auto")
    if mode not in ("full", "codec", "auto"):
        print(f"CYGEARMAN_WHEEL_TESTS must be full, codec or auto, not {mode!r}")
        return 2
    env = dict(os.environ, CYGEARMAN_REQUIRE_INSTALLED="1")
    if mode != "codec":
        gearmand = find_gearmand()
        if gearmand is None:
            if mode == "full":
                print("FAIL: CYGEARMAN_WHEEL_TESTS=full but no working gearmand was found "
                      "(PATH, $GEARMAND, " + ", ".join(EXTRA_GEARMAND) + ")")
                return 1
            print("=" * 78)
            print("NOTE: no working gearmand on this platform: running the codec and "
                  "extension tests only")
            print("=" * 78)
            mode = "codec"
        else:
            env["GEARMAND"] = gearmand
            mode = "full"
    if mode == "full":
        targets = [os.path.join(project, "tests"), "-m", "not interop"]
    else:
        targets = [os.path.join(project, t) for t in CODEC_TESTS]
    cmd = [sys.executable, "-m", "pytest", "-c", os.path.join(project, "pyproject.toml"),
           "--rootdir", project, "-p", "no:cacheprovider", "-q", *targets, *extra]
    print(f"==> wheel tests ({mode}):", " ".join(cmd), flush=True)
    # Run from a scratch folder: never the project, whose gearman/ has no compiled core.
    cwd = os.environ.get("TMPDIR") or os.environ.get("TEMP") or os.path.expanduser("~")
    return subprocess.call(cmd, env=env, cwd=cwd)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
