#!/usr/bin/env bash
# The suite on every CPython this machine has (called by scripts/test.sh, so by CI).
#
#   scripts/interpreters.sh SDIST [--full | --core] [--skip PYTHON]...
#
# Finds each CPython 3.9-3.14 on the machine (pyenv's versions, and every python3.X on
# PATH; one entry per real interpreter binary), and with each one: builds a wheel from
# SDIST (pip wheel, build isolation), repairs it with auditwheel (scripts/release_checks.sh
# repair), installs the repaired wheel into a fresh virtual environment and runs the suite
# against it from outside the source tree: the core subset (scripts/core-tests.txt) by
# default, the whole suite with --full. --skip PYTHON leaves out one interpreter binary
# (scripts/test.sh passes the default one, which ran the whole suite already).
#
# A version of 3.9-3.14 with no interpreter on the machine is reported as MISSING in the
# summary (CYGEARMAN_REQUIRE_PYTHONS="3.9 3.10 ..." makes a missing one a failure);
# interpreters outside that range, and free-threaded builds (not in the build list:
# docs/install.md), are listed and not tested.
#
# Prints a table (interpreter, architecture, wheel tag, tests run / passed, seconds) at the
# end and writes it, with the rows scripts/test.sh put there before, to
# build/interpreters.md ($CYGEARMAN_MATRIX: a tab-separated file of rows, kept across
# calls). Exits non-zero if any build or test failed.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
sdist="${1:?usage: scripts/interpreters.sh SDIST [--full|--core] [--skip PYTHON]...}"
shift
sdist="$(cd "$(dirname "$sdist")" && pwd)/$(basename "$sdist")"
scope=core
skip=()
while [ $# -gt 0 ]; do
    case "$1" in
        --full) scope=full ;;
        --core) scope=core ;;
        --skip) skip+=("$(readlink -f "$2")"); shift ;;
        *) echo "unknown argument $1"; exit 2 ;;
    esac
    shift
done
HOSTPY="${PYTHON:-python3}"
work="$(mktemp -d /tmp/cygearman-pythons.XXXXXX)"
trap 'rm -rf "$work"' EXIT
matrix="${CYGEARMAN_MATRIX:-$work/matrix.tsv}"
touch "$matrix"

core=()
while read -r line; do
    line="${line%%#*}"; line="${line//[[:space:]]/}"
    [ -n "$line" ] && core+=("$here/$line")
done <"$here/scripts/core-tests.txt"

# -- find the interpreters --------------------------------------------------------------------
candidates=()
pyenv_root="${PYENV_ROOT:-$HOME/.pyenv}"
command -v pyenv >/dev/null 2>&1 && pyenv_root="$(pyenv root)"
for p in "$pyenv_root"/versions/*/bin/python3; do [ -x "$p" ] && candidates+=("$p"); done
IFS=: read -r -a path_dirs <<<"$PATH"
for d in "${path_dirs[@]}"; do
    for p in "$d"/python3.[0-9] "$d"/python3.[0-9][0-9] "$d"/python3.[0-9]t "$d"/python3.[0-9][0-9]t; do
        [ -x "$p" ] && candidates+=("$p")
    done
done

declare -A seen=()
tested=()        # "X.Y<TAB>binary"
by_caller=()     # X.Y of the interpreters --skip named
notes=()
for c in "${candidates[@]}"; do
    # a pyenv shim of a version that is not active fails here: it is no interpreter itself
    info="$(timeout 30 "$c" -c 'import os, platform, sys, sysconfig
print(sys.implementation.name, "%d.%d" % sys.version_info[:2], platform.python_version(),
      os.path.realpath(sys.executable), int(bool(sysconfig.get_config_var("Py_GIL_DISABLED"))))' \
        2>/dev/null)" || continue
    read -r impl ver full real ft <<<"$info"
    [ -n "${seen[$real]:-}" ] && continue
    seen[$real]=1
    if [ "$impl" != cpython ]; then notes+=("$real: $impl $full, not CPython: not tested"); continue; fi
    case "$ver" in
        3.9|3.1[0-4]) ;;
        *) notes+=("$real: CPython $full, outside requires-python/the build list (3.9-3.14): not tested"); continue ;;
    esac
    if [ "$ft" = 1 ]; then
        notes+=("$real: CPython $full free-threaded: not in the build list (docs/install.md): not tested")
        continue
    fi
    for s in "${skip[@]}"; do
        [ "$s" = "$real" ] && { notes+=("$real: CPython $full: tested by the caller"); by_caller+=("$ver"); continue 2; }
    done
    tested+=("$ver	$real")
done

# oldest first
[ "${#tested[@]}" -eq 0 ] || mapfile -t tested < <(printf '%s\n' "${tested[@]}" | sort -V)
failed=0
for v in 3.9 3.10 3.11 3.12 3.13 3.14; do
    found=""
    for t in "${tested[@]}"; do [ "${t%%	*}" = "$v" ] && found=1; done
    for t in "${by_caller[@]}"; do [ "$t" = "$v" ] && found=1; done
    if [ -z "$found" ] && ! grep -q "^CPython $v\." "$matrix"; then
        printf 'CPython %s\t-\t-\t-\tMISSING: no CPython %s on this machine\t-\n' "$v" "$v" >>"$matrix"
        echo "==> MISSING: no CPython $v on this machine (pyenv versions, python3.X on PATH)"
        case " ${CYGEARMAN_REQUIRE_PYTHONS:-} " in *" $v "*) failed=1 ;; esac
    fi
done
for n in "${notes[@]}"; do echo "==> note: $n"; done

wheel_tag() {   # the tags of a wheel file's name: cp39-cp39-manylinux2014_x86_64.manylinux_2_17_x86_64
    local name
    name="$(basename "$1" .whl)"
    echo "$name" | cut -d- -f3-
}

junit_counts() {   # "N run, M passed[, K skipped or xfailed]" from a JUnit XML file
    "$HOSTPY" - "$1" <<'PYEOF'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else list(root)
n = sum(int(s.get("tests", 0)) for s in suites)
bad = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
skipped = sum(int(s.get("skipped", 0)) for s in suites)
print(f"{n} run, {n - bad - skipped} passed" + (f", {skipped} skipped or xfailed" if skipped else ""))
PYEOF
}

quiet() {     # quiet LOG CMD...: CMD's output to LOG, shown (its end) only if CMD fails
    local log="$1"; shift
    "$@" >"$log" 2>&1 && return 0
    grep -v "^WARNING: Location" "$log" | tail -40
    return 1
}

row_fail() {   # a row for an interpreter whose wheel could not be built or installed
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "CPython $full" "$py" "$arch" "-" "$1" "$((SECONDS - t0)) s" >>"$matrix"
    failed=1
}

# -- build, repair, install, test: one interpreter at a time (two cores, shared) ----------------
i=0
for t in "${tested[@]}"; do
    i=$((i + 1))
    ver="${t%%	*}"; py="${t#*	}"
    w="$work/$i"; mkdir -p "$w"
    full="$("$py" -c 'import platform; print(platform.python_version())')"
    arch="$("$py" -c 'import platform; print(platform.machine())')"
    label="CPython $full ($py)"
    echo "==> [$label] fresh venv, wheel from $(basename "$sdist")"
    t0=$SECONDS
    if ! { "$py" -m venv "$w/venv" && quiet "$w/pip.log" "$w/venv/bin/python" -m pip install --upgrade pip; }; then
        row_fail "FAILED: no venv (python3.X-venv?)"; continue
    fi
    vpy="$w/venv/bin/python"
    if ! quiet "$w/build.log" "$vpy" -m pip wheel --no-deps -w "$w/built" "$sdist"; then
        row_fail "FAILED: wheel build"; continue
    fi
    if ! quiet "$w/repair.log" bash "$here/scripts/release_checks.sh" repair "$w/built" "$w/repaired"; then
        row_fail "FAILED: auditwheel repair"; continue
    fi
    wheel="$(ls "$w"/repaired/cygearman-*manylinux*.whl)"
    tag="$(wheel_tag "$wheel")"
    built=$((SECONDS - t0))
    echo "==> [$label] wheel tag: $tag (built and repaired in ${built} s)"
    if ! quiet "$w/deps.log" "$vpy" -m pip install "pytest>=7" "hypothesis>=6" "pytest-timeout>=2" uvloop \
            "prometheus_client>=0.16" "opentelemetry-api>=1.20" "opentelemetry-sdk>=1.20" \
        || ! quiet "$w/install.log" "$vpy" -m pip install --no-deps "$wheel"; then
        row_fail "FAILED: installing the wheel or the test tools"; continue
    fi
    if [ "$scope" = full ]; then targets=("$here/tests"); else targets=("${core[@]}"); fi
    echo "==> [$label] the $scope suite against the installed repaired wheel"
    t1=$SECONDS
    rc=0
    (cd "$w" && CYGEARMAN_REQUIRE_INSTALLED=1 "$vpy" -m pytest -c "$here/pyproject.toml" --rootdir "$here" \
        -p no:cacheprovider -q --junitxml="$w/junit.xml" "${targets[@]}") || rc=$?
    secs=$((SECONDS - t1))
    counts="no JUnit report"
    [ -f "$w/junit.xml" ] && counts="$(junit_counts "$w/junit.xml")"
    result="$scope: $counts"
    [ "$rc" -eq 0 ] || { result="FAILED ($result)"; failed=1; }
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "CPython $full" "$py" "$arch" "$tag" "$result" "build $built s, tests $secs s" >>"$matrix"
done

# -- the table ----------------------------------------------------------------------------------
mkdir -p "$here/build"
{
    echo "| interpreter | binary | arch | wheel tag | tests | time |"
    echo "|---|---|---|---|---|---|"
    sort -V "$matrix" | awk -F'\t' '{printf "| %s | `%s` | %s | `%s` | %s | %s |\n", $1, $2, $3, $4, $5, $6}'
} >"$here/build/interpreters.md"
echo "==> interpreters (also in build/interpreters.md):"
cat "$here/build/interpreters.md"
exit "$failed"
