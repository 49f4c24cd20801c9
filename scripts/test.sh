#!/usr/bin/env bash
# The README's second command (and what CI runs): set everything up, build
# the sdist and a wheel from it, install the wheel into a FRESH virtual
# environment, check the wheel's file list, and run the whole suite against
# the installed package from outside the source tree.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$here/scripts/setup.sh"

ci_venv="$(mktemp -d /tmp/cygearman-ci.XXXXXX)"
trap 'rm -rf "$ci_venv"' EXIT
echo "==> fresh test environment $ci_venv"
python3 -m venv "$ci_venv/venv"
"$ci_venv/venv/bin/python" -m pip install -q --upgrade pip >/dev/null
"$ci_venv/venv/bin/python" -m pip install -q "pytest>=7" "hypothesis>=6" "pytest-timeout>=2" uvloop >/dev/null
wheel="$(ls "$here"/dist/cygearman-*.whl)"
"$ci_venv/venv/bin/python" -m pip install -q --no-deps "$wheel"

echo "==> checking the wheel's file list"
"$ci_venv/venv/bin/python" "$here/scripts/check_dist.py" "$here/dist"

echo "==> a short fuzz pass over the decoder (tests/fuzz; longer runs: see its docstring)"
mkdir -p "$ci_venv/fuzz-scratch"
(cd "$ci_venv" && "$ci_venv/venv/bin/python" "$here/tests/fuzz/fuzz_decoder.py" -runs=3000 \
    "$ci_venv/fuzz-scratch" "$here/tests/fuzz/corpus")

echo "==> running the suite against the installed wheel"
cd "$ci_venv"
CYGEARMAN_REQUIRE_INSTALLED=1 "$ci_venv/venv/bin/python" -m pytest -c "$here/pyproject.toml" --rootdir "$here" \
    -p no:cacheprovider --durations=15 "$here/tests" "$@"
