"""The demo source: the project's synthetic driver video, written on first use into cache/demo/.

It is produced by the project's own synthetic-data writer (`python -m train synth`), run as a
command: the runtime never imports training code.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEMO_DIR = REPO / "cache" / "demo"
DEMO_VIDEO = DEMO_DIR / "drive.mp4"


def demo_video(folder: Path = DEMO_DIR) -> Path:
    """Path of the demo video (with its drive.json ground truth), generating it when missing."""
    video = Path(folder) / "drive.mp4"
    if video.is_file() and video.with_suffix(".json").is_file():
        return video
    print(f"exprada pipeline: writing the synthetic demo video into {folder} (first run only)...",
          file=sys.stderr, flush=True)
    # Only the drive: the labelled image sets are training material, not needed to run.
    command = [sys.executable, "-m", "train", "synth", "--out", str(folder), "--per-class", "0",
               "--target-per-class", "0"]
    result = subprocess.run(command, cwd=REPO)
    if result.returncode != 0 or not video.is_file():
        raise RuntimeError(f"could not write the demo video: `{' '.join(command)}` exited with "
                           f"{result.returncode} and left no {video}")
    return video
