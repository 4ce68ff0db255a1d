"""Checkpoints the tests write: tiny, untrained generators for the classifier/evaluation tests
(real networks, real checkpoint files; only their size is small), a classifier that reads every
image as one expression, a trainer's checkpoint
rewritten in the layout of older trainers, and damage done to a checkpoint file."""
from pathlib import Path

import numpy as np
import torch

from face.expressions import EXPRESSIONS, NUM_EXPRESSIONS
from train.checkpoint import checkpoint_path, save_checkpoint
from train.classifier_nets import build_classifier
from train.networks import Generator


def write_generator_run(run_dir: Path, mode: str, image_size: int = 64, width: int = 4, target=None) -> Path:
    """RUN/checkpoints/last.pt of an ExprADA run holding G_ts (and G_st), as the trainer saves it."""
    torch.manual_seed(0)
    classes = NUM_EXPRESSIONS if mode == "cgit" else 0
    models = {"G_ts": Generator(width, classes, num_residual=1), "G_st": Generator(width, 0, num_residual=1)}
    config = {"mode": mode, "width": width, "image_size": image_size, "num_residual": 1,
              "target": None if target is None else str(target)}
    return save_checkpoint(checkpoint_path(run_dir), kind=f"{mode}_generator", config=config, models=models)


def write_classifier_run(run_dir: Path, reads: str, image_size: int = 32) -> Path:
    """RUN/checkpoints/last.pt of a `small` classifier that reads every image as the expression `reads`:
    its last layer's weights are zero and its bias favours that one class."""
    config = {"arch": "small", "image_size": image_size, "width": 4, "num_classes": NUM_EXPRESSIONS}
    net = build_classifier(config)
    with torch.no_grad():
        net.fc.weight.zero_()
        net.fc.bias.copy_(torch.nn.functional.one_hot(torch.tensor(EXPRESSIONS.index(reads)), NUM_EXPRESSIONS))
    return save_checkpoint(checkpoint_path(run_dir), kind="classifier", config=config, models={"classifier": net})


def rewrite_in_old_layout(path: Path) -> dict:
    """Rewrite a trainer's checkpoint as trainers wrote it before `run_state` existed: what the
    run worked out from its data sat in the config beside the settings. Returns that config."""
    state = torch.load(path, weights_only=True)
    state["config"].update(state.pop("run_state"))
    torch.save(state, path)
    return state["config"]


def write_over_the_middle(path: Path, size: int = 4096, seed: int = 0) -> None:
    """Overwrite `size` bytes in the middle of a file with random ones, as a failing disk might."""
    data = bytearray(path.read_bytes())
    start = len(data) // 2 - size // 2
    data[start:start + size] = np.random.default_rng(seed).bytes(size)
    path.write_bytes(bytes(data))
