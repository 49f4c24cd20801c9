#!/usr/bin/env bash
# The documentation site (MkDocs, configured by mkdocs.yml):
#
#   scripts/docs.sh [build [SITE_DIR]]   build with warnings as errors into SITE_DIR (default
#                                        site/), then scripts/check_docs_site.py: no Sphinx role
#                                        left as literal text, the API page in docs/api.md's order
#   scripts/docs.sh serve [ARGS...]      mkdocs serve: a live preview on 127.0.0.1:8000
#
# The tools are the pinned doc tools of scripts/release-requirements.txt, installed into
# $DOCS_VENV (default .venv-docs; scripts/release_checks.sh passes its own environment).
#
# The theme, Material for MkDocs, is pinned (release-requirements.txt): its authors end its
# support on 2027-05-05 and every `mkdocs` run prints a banner saying so. We keep the pinned
# version until then and silence the banner here on purpose (NO_MKDOCS_2_WARNING=1); moving to
# a maintained theme before that date is an item of the release checklist (CONTRIBUTING.md).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DOCS_VENV="${DOCS_VENV:-$here/.venv-docs}"
PY="${PYTHON:-python3}"
export NO_MKDOCS_2_WARNING=1

if [ ! -x "$DOCS_VENV/bin/mkdocs" ] || [ "${DOCS_REINSTALL:-0}" = 1 ]; then
    [ -x "$DOCS_VENV/bin/python" ] || "$PY" -m venv "$DOCS_VENV"
    grep -E '^(mkdocs|mkdocstrings|mkdocstrings-python|mkdocs-material|pymdown-extensions)==' \
        "$here/scripts/release-requirements.txt" > "$DOCS_VENV/docs-requirements.txt"
    "$DOCS_VENV/bin/python" -m pip install -q --disable-pip-version-check \
        -r "$DOCS_VENV/docs-requirements.txt" 2>&1 | grep -v "^WARNING: Location" || true
fi

cd "$here"
case "${1:-build}" in
    build)
        site="${2:-$here/site}"
        "$DOCS_VENV/bin/mkdocs" build --strict --quiet --site-dir "$site"
        "$DOCS_VENV/bin/python" "$here/scripts/check_docs_site.py" "$site" "$here/docs/api.md"
        ;;
    serve)
        shift
        exec "$DOCS_VENV/bin/mkdocs" serve "$@"
        ;;
    *) sed -n '2,15p' "$0"; exit 2 ;;
esac
