"""Helpers shared by the pipeline tests (a module of its own: `conftest` names clash across test folders)."""
import os
import socket
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_endpoint():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def pipeline_command(source, models, *extra):
    generator, classifier = models
    return [sys.executable, str(REPO / "run_pipeline.py"), "--source", str(source), "--generator", generator,
            "--classifier", classifier, *map(str, extra)]


def env():
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
