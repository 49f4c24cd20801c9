#!/usr/bin/env bash
# The README's first command on a bare Debian (CI runs this through scripts/test.sh):
#
#   scripts/fresh_debian.sh [--arch ARCH] [--no-cache] [--tests core|none]
#
# 1. makes a minimal Debian bookworm root (debootstrap --variant=minbase: no python3, no
#    compiler, nothing added) in a temporary directory under /var/tmp, or unpacks the one
#    cached in $CYGEARMAN_ROOT_CACHE (default /var/cache/cygearman) today; without a cached
#    root (or with --no-cache) it is made from nothing and cached, keyed by architecture and
#    date (an older root of the same architecture is deleted);
# 2. puts the checkout in at /src (git archive of HEAD plus the uncommitted changes to
#    tracked files: `git stash create`), and the host's settings a new user's machine
#    would have on its network: /etc/resolv.conf, apt's sources and apt.conf.d, the CA
#    bundle (as /etc/ssl/host-ca-bundle.crt, named by PIP_CERT / SSL_CERT_FILE /
#    REQUESTS_CA_BUNDLE), /etc/pip.conf; and a policy-rc.d that keeps package scripts from starting
#    daemons (a chroot has no init: Debian's gearmand would otherwise stay running);
# 3. mounts /proc, /sys and /dev (rbind, slave) and runs, as root in a chroot, the README's
#    first command: `cd /src && bash scripts/demo.sh` (scripts/setup.sh installs python3,
#    its venv and headers, a C compiler, gearmand... then builds the sdist and a wheel from
#    it), and checks that the demo's job ran to "done!";
# 4. runs the suite's core subset (scripts/core-tests.txt) against the wheel demo.sh built,
#    installed into a fresh venv outside /src (--tests none: only the demo);
# 5. on any exit (success, failure, Ctrl-C): ends the processes whose root is the chroot
#    (by id), unmounts what it mounted, and deletes the root (rm --one-file-system, only
#    once nothing is mounted under it).
#
# --arch arm64 (or any arch debootstrap knows) makes a foreign root run under
# qemu-user-static through binfmt_misc (both installed and registered here if missing):
# the aarch64 release check (docs/install.md gives its time). Prints each step's time.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
arch="$(dpkg --print-architecture)"
use_cache=1
tests=core
while [ $# -gt 0 ]; do
    case "$1" in
        --arch) arch="$2"; shift ;;
        --no-cache) use_cache="" ;;
        --tests) tests="$2"; shift ;;
        -h|--help) sed -n '2,31p' "$0"; exit 0 ;;
        *) echo "unknown argument $1"; exit 2 ;;
    esac
    shift
done
[ "$(id -u)" -eq 0 ] || { echo "fresh_debian.sh needs root (debootstrap, chroot, mounts)"; exit 1; }
suite=bookworm
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
cache_dir="${CYGEARMAN_ROOT_CACHE:-/var/cache/cygearman}"
start=$SECONDS
step() { echo "==> [fresh_debian $arch, $((SECONDS - start)) s] $*"; }

need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
if [ "$arch" != "$(dpkg --print-architecture)" ]; then
    command -v qemu-aarch64-static >/dev/null || need+=(qemu-user-static)
    command -v update-binfmts >/dev/null || need+=(binfmt-support)
fi
if [ "${#need[@]}" -gt 0 ]; then
    step "installing ${need[*]} on the host"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
if [ "$arch" != "$(dpkg --print-architecture)" ]; then
    # a foreign root's binaries run through the kernel's binfmt_misc and qemu-user-static
    [ -e /proc/sys/fs/binfmt_misc/status ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    qemu_name="qemu-$(case "$arch" in arm64) echo aarch64 ;; armhf|armel) echo arm ;; ppc64el) echo ppc64le ;; *) echo "$arch" ;; esac)"
    [ -e "/proc/sys/fs/binfmt_misc/$qemu_name" ] || update-binfmts --enable "$qemu_name"
    [ -e "/proc/sys/fs/binfmt_misc/$qemu_name" ] || { echo "no binfmt_misc entry $qemu_name: cannot run $arch binaries"; exit 1; }
fi

root="$(mktemp -d "/var/tmp/cygearman-$suite-$arch.XXXXXX")"
mounted=()

cleanup() {
    local rc=$? pid p m left
    trap - EXIT INT TERM
    # the processes this run started inside the root (a demo's gearmand, a test's worker)
    for p in /proc/[0-9]*; do
        pid="${p#/proc/}"
        [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] && kill -9 "$pid" 2>/dev/null || true
    done
    for ((m = ${#mounted[@]} - 1; m >= 0; m--)); do
        umount -R "${mounted[m]}" 2>/dev/null || umount -R -l "${mounted[m]}" 2>/dev/null || true
    done
    left="$(awk -v r="$root/" 'index($2, r) == 1 {print $2}' /proc/mounts)"
    if [ -n "$left" ]; then
        echo "fresh_debian.sh: still mounted, NOT deleting $root:"; echo "$left"
        exit 1
    fi
    rm -rf --one-file-system "$root"
    echo "==> [fresh_debian $arch] removed $root; $((SECONDS - start)) s in all; exit $rc"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# -- 1. the root -------------------------------------------------------------------------------
mkdir -p "$cache_dir"
tarball="$cache_dir/$suite-minbase-$arch-$(date +%Y%m%d).tar.gz"
if [ -n "$use_cache" ] && [ -s "$tarball" ]; then
    step "unpacking the cached bare root $tarball"
    tar -xzf "$tarball" -C "$root"
else
    step "debootstrap --variant=minbase --arch=$arch $suite (from $mirror)"
    debootstrap --variant=minbase --arch="$arch" "$suite" "$root" "$mirror" >"$root.debootstrap.log" 2>&1 \
        || { tail -30 "$root.debootstrap.log"; rm -f "$root.debootstrap.log"; echo "debootstrap failed"; exit 1; }
    rm -f "$root.debootstrap.log"
    if [ -n "$use_cache" ]; then
        step "caching the bare root as $tarball"
        tar -czf "$tarball.part" -C "$root" . && mv "$tarball.part" "$tarball"
        find "$cache_dir" -maxdepth 1 -name "$suite-minbase-$arch-*.tar.gz" ! -path "$tarball" -delete
    fi
fi
chmod 755 "$root"       # tar and debootstrap keep mktemp's 0700: apt's _apt user needs to get in
# what a bare root has: no python3, no compiler (the README's command must bring them)
for absent in usr/bin/python3 usr/bin/gcc usr/bin/cc; do
    [ ! -e "$root/$absent" ] || { echo "the bare root already has /$absent: not a bare root"; exit 1; }
done

# -- 2. the checkout and the host's settings ---------------------------------------------------------
step "the checkout into /src (git archive)"
rev="$(git -C "$here" stash create 2>/dev/null || true)"
mkdir -p "$root/src"
git -C "$here" archive "${rev:-HEAD}" | tar -x -C "$root/src"
cp /etc/resolv.conf "$root/etc/resolv.conf"
rm -f "$root/etc/apt/sources.list"
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && cp "$f" "$root$f"
done
for f in /etc/apt/apt.conf.d/*; do [ -f "$f" ] && cp "$f" "$root$f"; done
# The host's CA bundle (its network may re-sign TLS) at a path no package owns: Debian's
# ca-certificates, pulled in by the README's command, rewrites /etc/ssl/certs/ca-certificates.crt.
host_ca="${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}"
ca=""
if [ -f "$host_ca" ]; then ca=/etc/ssl/host-ca-bundle.crt; mkdir -p "$root/etc/ssl"; cp "$host_ca" "$root$ca"; fi
[ -f /etc/pip.conf ] && cp /etc/pip.conf "$root/etc/pip.conf"
printf '#!/bin/sh\n# fresh_debian.sh: no daemon starts in this chroot\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod +x "$root/usr/sbin/policy-rc.d"

# -- 3. mounts, then the README's first command ----------------------------------------------------
mount -t proc proc "$root/proc"; mounted+=("$root/proc")
mount --rbind /sys "$root/sys"; mount --make-rslave "$root/sys"; mounted+=("$root/sys")
mount --rbind /dev "$root/dev"; mount --make-rslave "$root/dev"; mounted+=("$root/dev")

env_in=(HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 TERM=dumb)
[ -n "$ca" ] && env_in+=(PIP_CERT="$ca" SSL_CERT_FILE="$ca" REQUESTS_CA_BUNDLE="$ca")
for v in PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_DEFAULT_TIMEOUT \
         http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
    [ -n "${!v:-}" ] && env_in+=("$v=${!v}")
done
in_root() { chroot "$root" /usr/bin/env -i "${env_in[@]}" "$@"; }

step "chroot: cd /src && bash scripts/demo.sh   (the README's first command)"
t_demo=$SECONDS
in_root /bin/bash -c 'cd /src && bash scripts/demo.sh' 2>&1 | tee "$root/demo.log"
grep -qx 'done!' "$root/demo.log" || { echo "FAIL: the demo did not end with done!"; exit 1; }
step "the README's first command passed in $((SECONDS - t_demo)) s ($(in_root /src/.venv/bin/python -c \
    'import platform, sys; print("CPython", platform.python_version(), platform.machine())'))"

# -- 4. the core subset ---------------------------------------------------------------------------
if [ "$tests" = core ]; then
    core=()
    while read -r line; do
        line="${line%%#*}"; line="${line//[[:space:]]/}"
        [ -n "$line" ] && core+=("/src/$line")
    done <"$here/scripts/core-tests.txt"
    step "chroot: the core subset against the installed wheel: ${core[*]#/src/}"
    t_tests=$SECONDS
    set +e
    # in a fresh venv outside /src (test_core_loaded insists the package under test is not
    # under the source tree), with the wheel the README's command built
    in_root /bin/bash -c 'set -e; python3 -m venv /root/venv-tests
        /root/venv-tests/bin/python -m pip install -q "pytest>=7" "hypothesis>=6" "pytest-timeout>=2" \
            uvloop /src/dist/cygearman-*.whl 2>&1 | grep -v "^WARNING: Location" || true
        cd /tmp && CYGEARMAN_REQUIRE_INSTALLED=1 /root/venv-tests/bin/python -m pytest \
        -c /src/pyproject.toml --rootdir /src -p no:cacheprovider -q "$@"' bash "${core[@]}" 2>&1 \
        | tee "$root/tests.log"
    rc=${PIPESTATUS[0]}
    set -e
    step "core subset: $(grep -E '(passed|failed|error)' "$root/tests.log" | tail -1) in $((SECONDS - t_tests)) s"
    [ "$rc" -eq 0 ] || { echo "FAIL: the core subset failed in the fresh $suite $arch root"; exit 1; }
fi
step "PASS: bare $suite $arch: the README's first command and the ${tests} tests"
