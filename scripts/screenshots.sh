#!/usr/bin/env bash
# Screenshots of the built documentation site, for a person to look at before a release
# (release checklist, CONTRIBUTING.md). Not run in CI: it needs Chromium (~300 MB), and what
# it checks (the pages read well, the benchmark chart's labels are legible at the page's
# width) needs eyes; scripts/check_docs_site.py checks links, anchors and images in CI.
#
#   scripts/screenshots.sh [OUT_DIR]      default build/screenshots
#
# Builds the site (scripts/docs.sh, into site/), serves site/ with `python -m http.server` on a
# free 127.0.0.1 port, and has headless Chromium take a 1280x2000 PNG of the home, quickstart
# and benchmarks pages, and of the benchmarks page 1280x6000 (the chart and the tables below
# it, as wide as the page shows them): OUT_DIR/{home,quickstart,benchmarks,benchmarks-full}.png. Chromium comes from Debian (`apt-get install -y chromium`, done here
# when missing, as root). SKIP_BUILD=1 uses the site/ already built.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$here/build/screenshots}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

chrome="$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)"
if [ -z "$chrome" ]; then
    if [ "$(id -u)" = 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null
        chrome="$(command -v chromium)"
    else
        echo "screenshots.sh: no chromium on PATH (apt-get install chromium, as root)" >&2
        exit 1
    fi
fi

[ "${SKIP_BUILD:-0}" = 1 ] || bash "$here/scripts/docs.sh" build "$here/site"

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
profile="$(mktemp -d)"
python3 -m http.server "$port" --bind 127.0.0.1 --directory "$here/site" >/dev/null 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -rf "$profile"' EXIT
for _ in $(seq 50); do
    python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/')" \
        2>/dev/null && break
    sleep 0.1
done

shot() {   # shot NAME URL_PATH [WIDTH,HEIGHT]
    "$chrome" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$profile" --hide-scrollbars --window-size="${3:-1280,2000}" \
        --screenshot="$out/$1.png" "http://127.0.0.1:$port/$2" >/dev/null 2>&1
    if [ -s "$out/$1.png" ]; then echo "$out/$1.png"; else echo "FAILED: $1 ($2)" >&2; return 1; fi
}
shot home ""
shot quickstart "quickstart/"
shot benchmarks "benchmarks/"
shot benchmarks-full "benchmarks/" 1280,6000
