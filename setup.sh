#!/usr/bin/env bash
# Make .venv at the repo root from the pinned requirements and install the project into it, editable.
# Safe to run again: it only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")"
python3.11 -m venv .venv 2>/dev/null || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -r requirements-dev.txt
# Every dependency is pinned above; the build uses the pinned setuptools, so nothing else is fetched.
# (PYTHONWARNINGS: setuptools' "Editable installation" notice on every run says nothing to act on.)
PYTHONWARNINGS=ignore::UserWarning .venv/bin/python -m pip install -q --no-deps --no-build-isolation -e .
# A headless browser for the test that opens the HTML run report (pipeline/report.py) as a user would:
# Debian's Chromium, where this runs as root with apt-get; elsewhere that one test skips, saying why.
if ! command -v chromium >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1; }) \
        || echo "setup.sh: could not install chromium (apt-get); the HTML report's browser test will skip" >&2
fi
