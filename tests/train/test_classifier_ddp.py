"""The classifier under torchrun: two CPU processes (gloo) stay in step and the main one reports."""
import json
import os
import subprocess
import sys
from pathlib import Path

from face.expressions import EXPRESSIONS
from tiny_data import write_labelled

ROOT = Path(__file__).resolve().parents[2]


def test_two_gloo_processes_train_one_classifier(tmp_path):
    data = write_labelled(tmp_path / "data", per_class=3, size=32, classes=EXPRESSIONS[:3], side=False)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "train", "classifier", "--data", str(data), "--split-by-image", "--backbone", "small",
               "--width", "4", "--image-size", "32", "--batch-size", "2", "--steps", "4", "--workers", "0",
               "--device", "cpu", "--no-progress", "--balanced", "--out", str(tmp_path / "run")]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["replicas_agree"] is True and summary["step"] == 4
    assert summary["test"]["images"] > 0 and (tmp_path / "run" / "test" / "confusion.png").is_file()
