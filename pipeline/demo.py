"""The demo source: the project's synthetic driver video, written on first use into cache/demo/.

It is produced by the project's own synthetic-data writer (`python -m train synth`), run as a
command: the runtime never imports training code.

The drive depends on the writer's code and on the face stage it uses to make its textures, so a
drive cached by other code would give figures the current code does not produce. The folder keeps
a digest of those sources (`writer.digest`) and the drive is written again when they change.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pipeline.provenance import code_digest

REPO = Path(__file__).resolve().parents[1]
DEMO_DIR = REPO / "cache" / "demo"
DIGEST_FILE = "writer.digest"
WRITER_SOURCES = ("train/synthetic", "face")  # what the drive's pixels depend on
DEMO_SECONDS = 60


def writer_digest() -> str:
    """sha256 over the writer's and the face stage's code and data files, in path order."""
    return code_digest(WRITER_SOURCES)


def demo_video(folder: Path = DEMO_DIR, seconds: int = DEMO_SECONDS, quiet: bool = False) -> Path:
    """Path of the demo video (with its drive.json ground truth), written when missing or when it
    was written by other writer code. The writer's output goes to stderr (stdout is the run's
    summary); `quiet`: nowhere, unless it fails."""
    folder = Path(folder)
    video, stamp = folder / "drive.mp4", folder / DIGEST_FILE
    current = writer_digest()
    if video.is_file() and video.with_suffix(".json").is_file():
        if stamp.is_file() and stamp.read_text().strip() == current:
            return video
        why = "the synthetic writer or the face stage changed since it was written"
    else:
        why = "first run only"
    if not quiet:
        print(f"exprada pipeline: writing the synthetic demo video into {folder} ({why})...", file=sys.stderr, flush=True)
    # Only the drive: the labelled image sets are training material, not needed to run.
    command = [sys.executable, "-m", "train", "synth", "--out", str(folder), "--per-class", "0",
               "--target-per-class", "0", "--video-seconds", str(seconds)] + (["--no-progress"] if quiet else [])
    result = subprocess.run(command, cwd=REPO, stdout=subprocess.DEVNULL if quiet else 2,
                            stderr=subprocess.PIPE if quiet else None, text=True)
    if result.returncode != 0 or not video.is_file():
        said = (result.stderr or "").strip()
        raise RuntimeError(f"could not write the demo video: `{' '.join(command)}` exited with "
                           f"{result.returncode} and left no {video}" + (f"\n{said}" if said else ""))
    stamp.write_text(current + "\n")
    return video
