"""Tiny, untrained generator checkpoints the classifier/evaluation tests write (real networks,
real checkpoint files; only their size is small)."""
from pathlib import Path

import torch

from face.expressions import NUM_EXPRESSIONS
from train.checkpoint import checkpoint_path, save_checkpoint
from train.networks import Generator


def write_generator_run(run_dir: Path, mode: str, image_size: int = 64, width: int = 4, target=None) -> Path:
    """RUN/checkpoints/last.pt of an ExprADA run holding G_ts (and G_st), as the trainer saves it."""
    torch.manual_seed(0)
    classes = NUM_EXPRESSIONS if mode == "cgit" else 0
    models = {"G_ts": Generator(width, classes, num_residual=1), "G_st": Generator(width, 0, num_residual=1)}
    config = {"mode": mode, "width": width, "image_size": image_size, "num_residual": 1,
              "target": None if target is None else str(target)}
    return save_checkpoint(checkpoint_path(run_dir), kind=f"exprada-{mode}", config=config, models=models)
