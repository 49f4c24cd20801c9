#!/usr/bin/env bash
# Set up everything cygearman needs on a Debian machine, idempotently:
# system packages (python3 with venv and headers, a C compiler, gearmand, the
# reference C tools, PHP's extension, socat),
# a virtual environment with the build and test tools, and cygearman itself
# built as a wheel from its sdist and installed into that environment.
#
#   scripts/setup.sh            -> .venv with cygearman installed
#   VENV=/path scripts/setup.sh -> another environment
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
VENV="${VENV:-$here/.venv}"
PY="${PYTHON:-python3}"

# python3, its venv module and headers and a C compiler: what a bare Debian (debootstrap
# --variant=minbase; scripts/fresh_debian.sh checks it) lacks to build the wheel
apt_pkgs=(python3 python3-venv python3-dev gcc libc6-dev
          gearman-job-server gearman-tools libgearman-dev php-cli php-gearman socat tmux iproute2)
missing=()
for p in "${apt_pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "==> installing Debian packages: ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# Debian starts a system gearmand on 4730 after install; we never need it
# (tests start their own on free ports), so leave it alone either way.

if [ ! -x "$VENV/bin/python" ]; then
    echo "==> creating virtual environment $VENV"
    "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
"$VENV/bin/python" -m pip install -q build "pytest>=7" "hypothesis>=6" "pytest-timeout>=2" uvloop \
    "prometheus_client>=0.16" "opentelemetry-api>=1.20" "opentelemetry-sdk>=1.20" >/dev/null

echo "==> building sdist and wheel (the wheel is built from the sdist)"
rm -rf "$here/dist"
"$VENV/bin/python" -m build --outdir "$here/dist" "$here" >/tmp/cygearman-build.log 2>&1 || {
    tail -40 /tmp/cygearman-build.log; echo "build failed (full log: /tmp/cygearman-build.log)"; exit 1; }
wheel="$(ls "$here"/dist/cygearman-*.whl)"
echo "==> installing $(basename "$wheel") into $VENV"
"$VENV/bin/python" -m pip install -q --force-reinstall --no-deps "$wheel"
