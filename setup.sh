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
