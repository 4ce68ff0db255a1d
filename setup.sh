#!/usr/bin/env bash
# Make .venv at the repo root from the pinned requirements. Safe to run again: it only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")"
python3.11 -m venv .venv 2>/dev/null || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -r requirements.txt
