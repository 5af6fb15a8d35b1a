#!/usr/bin/env bash
# Build the HTML documentation from scratch, as CI does: warnings are errors, and every
# example of the gallery (examples/plot_*.py) is executed. Installs nothing: run it in an
# environment with `pip install -e ".[docs]"`. Output: docs/_build/html/index.html.
#
#   bash docs/build.sh                  # uses .venv/bin/python when it exists
#   PYTHON=python3 bash docs/build.sh   # or any interpreter
set -euo pipefail
cd "$(dirname "$0")"

if [ -z "${PYTHON:-}" ]; then
    if [ -x ../.venv/bin/python ]; then PYTHON=../.venv/bin/python; else PYTHON=python3; fi
fi

rm -rf _build generated auto_examples sg_execution_times.rst
start=$(date +%s)
MPLBACKEND=Agg "$PYTHON" -m sphinx -b html -W --keep-going -j 1 . _build/html
echo "docs built in $(( $(date +%s) - start )) s: $(pwd)/_build/html/index.html"
