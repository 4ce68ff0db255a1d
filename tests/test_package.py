"""The project as an installed distribution (setup.sh installs it editable): its metadata, its
console scripts, and its commands from a directory outside the repository."""
import json
import os
import subprocess
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

import pipeline

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = {
    "exprada-pipeline": "run_pipeline:main",
    "exprada-train": "train.__main__:main",
    "exprada-subscribe": "pipeline.subscribe:main",
    "exprada-engines": "engines.__main__:main",
    "exprada-calibration": "calibration.__main__:main",
    "exprada-calibration-report": "calibration.report:main",
    "exprada-curve": "pipeline.curve:main",
    "exprada-replay": "pipeline.replay:main",
    "exprada-report": "pipeline.report:main",
    "exprada-fleet": "pipeline.fleet:main",
}


def installed_here():
    """The distribution, or why the tests cannot use it: not installed, or installed from elsewhere."""
    try:
        dist = metadata.distribution("exprada-dms")
    except metadata.PackageNotFoundError:
        return None, "exprada-dms is not installed in this interpreter (./setup.sh installs it; or pip install -e .)"
    url = json.loads(dist.read_text("direct_url.json") or "{}").get("url", "")
    if url.startswith("file://") and Path(url[len("file://"):]).resolve() != REPO:
        return None, f"exprada-dms is installed from {url}, not from this checkout {REPO}"
    return dist, ""


DIST, WHY_NOT = installed_here()
pytestmark = pytest.mark.skipif(DIST is None, reason=WHY_NOT)


def outside(command, tmp_path):
    """Run a command in an empty folder, with nothing pointing Python at the repository."""
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(command, cwd=tmp_path, env=clean, capture_output=True, text=True, timeout=120)


def test_metadata_gives_the_version_the_licence_and_the_python():
    assert DIST.version == pipeline.__version__ == "0.1.0"
    assert DIST.metadata["License-Expression"] == "Apache-2.0"
    assert SpecifierSet(DIST.metadata["Requires-Python"]) == SpecifierSet(">=3.11,<3.13")
    requires = DIST.requires or []
    assert not any(r.startswith(("pytest", "jax")) for r in requires if "extra ==" not in r)


def test_console_scripts_are_declared():
    scripts = {ep.name: ep.value for ep in DIST.entry_points if ep.group == "console_scripts"}
    assert scripts == SCRIPTS


def test_exprada_pipeline_help_from_another_directory(tmp_path):
    script = Path(sysconfig.get_path("scripts")) / "exprada-pipeline"
    run = outside([str(script), "--help"], tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("usage: exprada-pipeline")


def test_python_m_train_help_from_another_directory(tmp_path):
    run = outside([sys.executable, "-m", "train", "--help"], tmp_path)
    assert run.returncode == 0, run.stderr
    assert "synth" in run.stdout


def test_a_train_command_given_bad_data_exits_2_with_one_line(tmp_path):
    run = outside([sys.executable, "-m", "train", "classifier", "--data", str(tmp_path / "missing"),
                   "--backbone", "small", "--out", str(tmp_path / "run")], tmp_path)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [f"error: data {tmp_path / 'missing'} does not exist"]


def test_repository_files_are_found_from_another_directory(tmp_path):
    """The shipped models, the schemas and the face model's data stay repo files."""
    code = ("from pipeline.config import DEFAULT_CLASSIFIER, DEFAULT_GENERATOR; from pipeline.messages import "
            "SCHEMA_DIR; from face.bilinear import DEFAULT_MODEL_PATH; from pathlib import Path; "
            "print(all(Path(p).exists() for p in (DEFAULT_CLASSIFIER, DEFAULT_GENERATOR, SCHEMA_DIR, DEFAULT_MODEL_PATH)))")
    run = outside([sys.executable, "-c", code], tmp_path)
    assert run.returncode == 0 and run.stdout.strip() == "True", run.stderr
