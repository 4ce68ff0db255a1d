"""Two CPU processes under torchrun (gloo): replicas stay identical and see the data one process
with the double batch would see."""
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tiny_data import write_images
from train.checkpoint import load_checkpoint
from train.exprada import main
from train.networks import Generator

ROOT = Path(__file__).resolve().parents[2]
COMMON = ["--mode", "uit", "--width", "4", "--image-size", "64", "--steps", "3", "--workers", "0", "--no-progress",
          "--log-every", "1", "--sample-every", "100", "--checkpoint-every", "100"]


def test_two_gloo_processes_train_in_step_like_one_process_with_the_double_batch(tmp_path):
    write_images(tmp_path / "src", 6, 64, seed=1, brightness=190)
    write_images(tmp_path / "tgt", 5, 64, seed=2, brightness=100)
    data = ["--source", str(tmp_path / "src"), "--target", str(tmp_path / "tgt")]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    result = subprocess.run(torchrun + ["-m", "train", "exprada", *COMMON, *data, "--batch-size", "2",
                                        "--device", "cpu", "--out", str(tmp_path / "ddp")],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    summary = json.loads((tmp_path / "ddp" / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["replicas_agree"] is True and summary["step"] == 3

    assert main([*COMMON, *data, "--batch-size", "4", "--device", "cpu", "--out", str(tmp_path / "one")]) == 0
    ddp_rows = list(csv.DictReader((tmp_path / "ddp" / "metrics.csv").open()))
    one_rows = list(csv.DictReader((tmp_path / "one" / "metrics.csv").open()))
    # Step 1 runs on identical weights: the processes' mean losses equal the single process's losses.
    for key in ("G/adv_ts", "G/adv_st", "G/bi", "G/re", "D/adv_s", "D/adv_t"):
        assert float(ddp_rows[0][key]) == pytest.approx(float(one_rows[0][key]), rel=1e-4), key
    # Afterwards the updates point the same way (averaged gradients = the big batch's gradients).
    torch.manual_seed(0)  # the trainer's seed: G_ts is the first network it builds
    start = Generator(4).state_dict()
    ddp_w = load_checkpoint(tmp_path / "ddp")["models"]["G_ts"]
    one_w = load_checkpoint(tmp_path / "one")["models"]["G_ts"]
    delta_ddp = torch.cat([(ddp_w[k] - start[k]).flatten() for k in start])
    delta_one = torch.cat([(one_w[k] - start[k]).flatten() for k in start])
    assert torch.nn.functional.cosine_similarity(delta_ddp, delta_one, dim=0) > 0.99
