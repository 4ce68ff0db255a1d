"""What a run leaves behind: train.log, TensorBoard scalars, metrics.csv + metrics.jsonl,
PNG sample grids, bad_files.txt. Only the main process writes; the others get a silent log.

Resuming at step k drops every logged row after k (TensorBoard via purge_step, the CSV/JSONL by
rewriting), so a resumed run's records read as if it had never stopped.
"""
import csv
import json
import logging
import os
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from face.imageio import from_network


def write_json(path, obj) -> Path:
    """Atomic JSON write (a reader never sees half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return path


def setup_logging(run_dir: Path | None, is_main: bool = True, name: str = "train") -> logging.Logger:
    """Console + RUN_DIR/train.log for the main process; warnings only for the others."""
    logger = logging.getLogger(name)
    logger.handlers.clear()
    logger.propagate = False
    logger.setLevel(logging.INFO if is_main else logging.WARNING)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S")
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(fmt)
    logger.addHandler(console)
    if is_main and run_dir is not None:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(Path(run_dir) / "train.log")
        file_handler.setFormatter(fmt)
        logger.addHandler(file_handler)
    return logger


def _truncate_rows(path: Path, after_step: int, jsonl: bool) -> None:
    if not path.is_file():
        return
    lines = path.read_text().splitlines()
    if jsonl:
        kept = [line for line in lines if line and json.loads(line).get("step", 0) <= after_step]
    else:
        kept = lines[:1] + [line for line in lines[1:] if line and int(float(line.split(",")[0])) <= after_step]
    path.write_text("".join(line + "\n" for line in kept))


class RunLog:
    """Scalars (TensorBoard + metrics.csv/jsonl), images and bad files of one run."""

    def __init__(self, run_dir, enabled: bool = True, start_step: int = 0, tensorboard: bool = True):
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        self.bad_files: dict[str, str] = {}
        self._writer = None
        self._columns: list[str] | None = None
        if not enabled:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.csv_path = self.run_dir / "metrics.csv"
        self.jsonl_path = self.run_dir / "metrics.jsonl"
        if start_step > 0:
            _truncate_rows(self.csv_path, start_step, jsonl=False)
            _truncate_rows(self.jsonl_path, start_step, jsonl=True)
        elif start_step == 0:
            for path in (self.csv_path, self.jsonl_path):
                path.unlink(missing_ok=True)
        bad_list = self.run_dir / "bad_files.txt"
        if start_step == 0:
            bad_list.write_text("")   # always there: an empty list says no file was skipped
        elif bad_list.is_file():  # a resumed run already logged (and counted) these
            for line in bad_list.read_text().splitlines():
                path, _, reason = line.partition("\t")
                self.bad_files[path] = reason
        if self.csv_path.is_file():
            with self.csv_path.open() as f:
                self._columns = next(csv.reader(f), None)
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter
            self._writer = SummaryWriter(str(self.run_dir / "tensorboard"),
                                         purge_step=start_step + 1 if start_step > 0 else None)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        """One row of figures at `step`: every key becomes a TensorBoard tag and a CSV column."""
        if not self.enabled:
            return
        values = {k: float(v) for k, v in values.items()}
        if self._writer is not None:
            for key, value in values.items():
                self._writer.add_scalar(key, value, step)
        with self.jsonl_path.open("a") as f:
            f.write(json.dumps({"step": step, **values}, allow_nan=True) + "\n")
        self._append_csv(step, values)

    def _append_csv(self, step: int, values: dict[str, float]) -> None:
        columns = ["step"] + sorted(values)
        if self._columns is not None and not set(columns) <= set(self._columns):
            # A new figure appeared: rewrite the file with the wider header (rare, small file).
            merged = self._columns + sorted(set(columns) - set(self._columns))
            with self.csv_path.open() as f:
                rows = list(csv.DictReader(f))
            with self.csv_path.open("w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=merged)
                writer.writeheader()
                writer.writerows(rows)
            self._columns = merged
        new_file = self._columns is None
        if new_file:
            self._columns = columns
        with self.csv_path.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self._columns, restval="")
            if new_file:
                writer.writeheader()
            writer.writerow({"step": step, **values})

    def image_grid(self, step: int, rows: dict[str, torch.Tensor], max_images: int = 8) -> Path | None:
        """RUN_DIR/samples/step_XXXXXXXX.png: one row per named N×3×H×W tensor in [-1, 1] (BGR),
        and the same grid in TensorBoard."""
        if not self.enabled:
            return None
        grid = make_grid(rows, max_images)
        path = self.run_dir / "samples" / f"step_{step:08d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(path), grid):
            raise OSError(f"cannot write sample grid {path}")
        if self._writer is not None:
            self._writer.add_image("samples", grid[:, :, ::-1].copy(), step, dataformats="HWC")
        return path

    def bad_file(self, path: str, reason: str, logger: logging.Logger | None = None) -> bool:
        """Record an unreadable file once (log + bad_files.txt); True the first time it is seen."""
        if path in self.bad_files:
            return False
        self.bad_files[path] = reason
        if logger is not None:
            logger.warning("skipping unreadable file %s (%s)", path, reason)
        if self.enabled:
            with (self.run_dir / "bad_files.txt").open("a") as f:
                f.write(f"{path}\t{reason}\n")
        return True

    def count_bad(self, batch: dict, logger: logging.Logger | None, is_main: bool) -> int:
        """How many of a batch's unreadable files to add to the run's count: each one once on the
        main process (which logs it); every one on the others, whose counts are summed across processes."""
        return sum(self.bad_file(path, reason, logger) or not is_main for path, reason in batch["bad"])

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def make_grid(rows: dict[str, torch.Tensor], max_images: int = 8) -> np.ndarray:
    """uint8 BGR grid: a label strip on the left, then up to `max_images` images per row."""
    if not rows:
        raise ValueError("a sample grid needs at least one row")
    tiles = []
    height = None
    for name, batch in rows.items():
        images = from_network(batch[:max_images].detach().float().cpu().numpy())
        height = images.shape[1]
        strip = np.zeros((height, 96, 3), np.uint8)
        cv2.putText(strip, name[:14], (2, height // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.3, (255, 255, 255), 1)
        row = np.concatenate([strip] + list(images), axis=1)
        tiles.append(row)
    width = max(t.shape[1] for t in tiles)
    tiles = [np.pad(t, ((0, 0), (0, width - t.shape[1]), (0, 0))) for t in tiles]
    return np.concatenate(tiles, axis=0)


def progress(total: int, initial: int = 0, enabled: bool = True, desc: str = "train"):
    """The run's progress bar (steps), starting at the resumed step."""
    from tqdm import tqdm
    return tqdm(total=total, initial=initial, disable=not enabled, desc=desc, unit="step", dynamic_ncols=True)
