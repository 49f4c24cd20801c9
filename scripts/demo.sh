#!/usr/bin/env bash
# The README's first command: set everything up, then run the seed's example
# end to end -- a background job submitted with doBackground and its status
# polled with jobStatus until done, against a gearmand this script starts.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$here/scripts/setup.sh"
echo "==> running examples/seed_demo.py"
cd /tmp   # import the installed package, never the source tree
exec "$here/.venv/bin/python" "$here/examples/seed_demo.py" "$@"
