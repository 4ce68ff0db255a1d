"""The trainer skeleton (train/trainer.py) on its own: a linear classifier over tiny images written
here, real SGD steps, and faults put in on purpose (non-finite losses, an interrupt, unreadable files)."""
import argparse
import json
import os
import re
import signal
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from face.expressions import EXPRESSIONS, NUM_EXPRESSIONS
from tiny_checkpoints import write_over_the_middle
from tiny_data import write_labelled
from train.checkpoint import CheckpointError, load_checkpoint
from train.data import ImageDataset, StepBatchSampler
from train.datasets.folder import index_labelled_folder
from train.distributed import Context
from train.runlog import setup_logging
from train.trainer import Stopped, Trainer

SIZE = 16


class TinyTrainer(Trainer):
    """The least a trainer supplies. `poison` (steps whose loss turns NaN), `interrupt_at` (a KeyboardInterrupt
    raised there) and `signals` ({step: signals this process sends itself inside that step}) put faults in."""

    KINDS = ("classifier",)
    LOCKED = ("data", "steps", "seed", "lr", "flip", "batch_size")
    RUNTIME = ("device", "workers", "log_every", "checkpoint_every", "max_nonfinite", "stop_after", "progress")
    DEFAULTS = dict(data=None, steps=8, seed=0, lr=0.05, flip=False, batch_size=2, device="cpu", workers=0,
                    log_every=1, checkpoint_every=100, max_nonfinite=3, stop_after=None, progress=False)
    PATHS = ("data",)
    poison: set = set()
    interrupt_at = None
    signals: dict = {}

    @classmethod
    def build_parser(cls):
        p = argparse.ArgumentParser(argument_default=None)
        for flag in ("--data", "--out", "--resume"):
            p.add_argument(flag)
        for flag in ("--steps", "--stop-after", "--max-nonfinite", "--batch-size", "--checkpoint-every", "--keep-last"):
            p.add_argument(flag, type=int)
        return p

    def build_data(self, saved):
        samples = index_labelled_folder(self.config["data"], domain="tiny")
        self.note_data("train", samples, saved)
        self.dataset = ImageDataset(samples, SIZE)

    def plan_steps(self):
        return {"steps_per_epoch": -(-len(self.dataset) // self.config["batch_size"]),
                "total_steps": self.config["steps"]}

    def build_model(self):
        torch.manual_seed(self.config["seed"])
        self.net = nn.Linear(3 * SIZE * SIZE, NUM_EXPRESSIONS)
        self.optimizer = torch.optim.SGD(self.net.parameters(), lr=self.config["lr"], momentum=0.9)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda step: 1.0 / (1 + step))

    def models(self):
        return {"net": self.net}

    def optimizers(self):
        return {"net": self.optimizer}

    def schedulers(self):
        return {"net": self.scheduler}

    def step_batches(self, start, count):
        sampler = StepBatchSampler(len(self.dataset), self.config["batch_size"], **self.sampler_options(0, start, count))
        return ((batch,) for batch in self.loader(self.dataset, sampler))

    def train_step(self, batches):
        if self.step == self.interrupt_at:
            raise KeyboardInterrupt
        for sig in self.signals.get(self.step, ()):
            os.kill(os.getpid(), sig)
        (batch,) = batches
        loss = F.cross_entropy(self.net(batch["image"].flatten(1)), batch["label"])
        if self.step in self.poison:
            loss = loss * float("nan")
        self.optimizer.zero_grad()
        loss.backward()
        if not torch.isfinite(torch.nn.utils.clip_grad_norm_(self.net.parameters(), float("inf"))):
            return f"loss {float(loss.detach()):.4g}"
        self.optimizer.step()
        self.tally({"loss": float(loss.detach())})
        return None

    def after_step(self, end, updated):
        if self.due(self.config["log_every"], end):
            self.write_row()
        if self.due(self.config["checkpoint_every"], end):
            self.save()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_labelled(tmp_path_factory.mktemp("tiny") / "data", per_class=2, size=SIZE, classes=EXPRESSIONS[:3],
                          side=False)


def _run(data, run_dir, *flags, **faults):
    """A new run of TinyTrainer in run_dir with `faults` set on it; the trainer and its summary."""
    args = TinyTrainer.build_parser().parse_args(["--data", str(data), *flags])
    trainer = TinyTrainer(TinyTrainer.resolve_config(args, None), run_dir, Context(), setup_logging(run_dir))
    for name, value in faults.items():
        setattr(trainer, name, value)
    return trainer, trainer.train()


def test_a_clean_run_trains_logs_a_row_a_step_and_writes_its_summary(data, tmp_path):
    trainer, summary = _run(data, tmp_path / "run")
    assert summary["step"] == summary["total_steps"] == 8
    assert {k: summary[k] for k in trainer.COUNTERS} == {"bad_files": 0, "skipped_steps": 0, "nonfinite_steps": 0}
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 9)) and rows[-1]["lr"] == pytest.approx(0.05 / 9)
    assert rows[-1]["loss"] < rows[0]["loss"]  # the default figures: each tallied sum over its steps
    state = load_checkpoint(tmp_path / "run")
    assert state["step"] == 8 and state["config"]["runtime"]["max_nonfinite"] == 3
    assert state["run_state"]["train_count"] == 6 and "train_count" not in state["config"]
    written = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert written["step"] == 8 and written["checkpoint"].endswith("last.pt")


def test_a_nonfinite_update_changes_nothing_and_the_run_goes_on(data, tmp_path):
    one_step, _ = _run(data, tmp_path / "one", "--stop-after", "1")
    skipped, _ = _run(data, tmp_path / "skipped", "--stop-after", "2", poison={1})
    assert torch.equal(skipped.net.weight, one_step.net.weight)
    assert "step 1: non-finite gradients (loss nan); update skipped (1 in a row)" in \
        (tmp_path / "skipped" / "train.log").read_text()
    trainer, summary = _run(data, tmp_path / "run", poison={1})
    assert summary["step"] == 8 and summary["nonfinite_steps"] == summary["skipped_steps"] == 1
    assert torch.isfinite(trainer.net.weight).all()


def test_nonfinite_steps_in_a_row_stop_the_run_with_the_last_finite_weights(data, tmp_path):
    halted, _ = _run(data, tmp_path / "clean", "--stop-after", "2")
    with pytest.raises(FloatingPointError, match=r"3 steps in a row with non-finite gradients \(up to step 4\)"):
        _run(data, tmp_path / "run", poison={2, 3, 4})
    state = load_checkpoint(tmp_path / "run")
    assert state["step"] == 4 and state["extra"]["counters"]["nonfinite_steps"] == 3
    assert torch.equal(state["models"]["net"]["weight"], halted.net.weight)  # nothing moved after step 2
    # One finite step between two non-finite ones starts the count again.
    _, summary = _run(data, tmp_path / "apart", "--max-nonfinite", "2", poison={2, 4})
    assert summary["step"] == 8 and summary["nonfinite_steps"] == 2


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_ends_the_step_then_saves_a_checkpoint_the_run_resumes_from_exactly(data, tmp_path, sig):
    straight, _ = _run(data, tmp_path / "straight")
    before = signal.getsignal(sig)
    with pytest.raises(Stopped) as stopped:
        _run(data, tmp_path / "run", signals={4: [sig]})   # arrives inside step 5 (steps count from 1)
    assert stopped.value.signum == sig and signal.getsignal(sig) is before   # the handlers put back
    assert load_checkpoint(tmp_path / "run")["step"] == 5    # step 5 finished, not cut short
    assert TinyTrainer.main(["--resume", str(tmp_path / "run")]) == 0
    resumed = load_checkpoint(tmp_path / "run")
    assert resumed["step"] == 8 and torch.equal(resumed["models"]["net"]["weight"], straight.net.weight)


def test_a_second_stop_signal_stops_at_once_and_still_saves(data, tmp_path):
    with pytest.raises(KeyboardInterrupt) as stopped:
        _run(data, tmp_path / "run", signals={4: [signal.SIGTERM, signal.SIGTERM]})
    assert not isinstance(stopped.value, Stopped)
    assert load_checkpoint(tmp_path / "run")["step"] == 4     # inside step 5: the last whole step is 4


def test_an_interrupt_saves_a_checkpoint_the_run_resumes_from_exactly(data, tmp_path):
    straight, _ = _run(data, tmp_path / "straight")
    with pytest.raises(KeyboardInterrupt):
        _run(data, tmp_path / "run", interrupt_at=5)
    assert load_checkpoint(tmp_path / "run")["step"] == 5
    assert "interrupted at step 5: saving a checkpoint" in (tmp_path / "run" / "train.log").read_text()
    assert TinyTrainer.main(["--resume", str(tmp_path / "run")]) == 0
    resumed = load_checkpoint(tmp_path / "run")
    assert resumed["step"] == 8 and torch.equal(resumed["models"]["net"]["weight"], straight.net.weight)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 9))


def test_resume_falls_back_past_a_damaged_last_checkpoint_and_repeats_the_run_exactly(data, tmp_path):
    straight, _ = _run(data, tmp_path / "straight")
    _run(data, tmp_path / "run", "--stop-after", "6", "--checkpoint-every", "1")
    checkpoints = tmp_path / "run" / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["last.1.pt", "last.2.pt", "last.pt"]  # keep_last 3
    write_over_the_middle(checkpoints / "last.pt")
    assert TinyTrainer.main(["--resume", str(tmp_path / "run")]) == 0
    notes = [line for line in (tmp_path / "run" / "train.log").read_text().splitlines() if "older copy" in line]
    assert len(notes) == 1 and re.search(r"WARNING .*checkpoints/last.pt: (damaged|not a loadable checkpoint).*: "
                                         r"resuming from the older copy last.1.pt \(step 5\)$", notes[0])
    resumed = load_checkpoint(tmp_path / "run")
    assert resumed["step"] == 8 and torch.equal(resumed["models"]["net"]["weight"], straight.net.weight)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 9))


def test_resume_with_every_checkpoint_damaged_is_one_clear_error(data, tmp_path):
    _run(data, tmp_path / "run", "--stop-after", "2", "--checkpoint-every", "1", "--keep-last", "2")
    checkpoints = tmp_path / "run" / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["last.1.pt", "last.pt"]
    write_over_the_middle(checkpoints / "last.pt")
    (checkpoints / "last.1.pt").write_bytes((checkpoints / "last.1.pt").read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=r"^no usable checkpoint: .*last.pt: .*; .*last.1.pt: not a loadable "
                                              r"checkpoint \(BadZipFile") as info:
        TinyTrainer.main(["--resume", str(tmp_path / "run")])
    assert "\n" not in str(info.value)
    with pytest.raises(SystemExit, match="--keep-last must be at least 1"):
        _run(data, tmp_path / "none", "--keep-last", "0")


def test_an_unverified_checkpoint_resumes_with_a_note(data, tmp_path):
    _run(data, tmp_path / "run", "--stop-after", "4")
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    torch.save(torch.load(last, weights_only=True), last)   # as saved before checkpoints carried a sha256
    assert TinyTrainer.main(["--resume", str(tmp_path / "run")]) == 0
    assert "last.pt: no sha256 inside (saved before checkpoints carried one): loaded unverified" in \
        (tmp_path / "run" / "train.log").read_text()
    assert load_checkpoint(tmp_path / "run")["step"] == 8


def test_steps_without_a_readable_image_are_skipped_and_bad_files_counted_once(tmp_path):
    data = write_labelled(tmp_path / "data", per_class=1, size=SIZE, classes=EXPRESSIONS[:2], side=False)
    for name in ("broken_a.png", "broken_b.png"):
        (data / EXPRESSIONS[0] / name).write_bytes(b"\x89PNG broken")
    trainer, summary = _run(data, tmp_path / "run", "--batch-size", "1", "--steps", "12")
    # Which steps drew a broken file follows from the sampler alone.
    paths = [str(s.path) for s in trainer.dataset.samples]
    drawn = [paths[StepBatchSampler(4, 1, num_steps=12).batch_for_step(step)[0][0]] for step in range(12)]
    empty = sum("broken" in path for path in drawn)
    assert 0 < empty < 12 and summary["step"] == 12
    assert summary["skipped_steps"] == empty and summary["nonfinite_steps"] == 0
    assert summary["bad_files"] == len({path for path in drawn if "broken" in path}) == 2
    log = (tmp_path / "run" / "train.log").read_text()
    assert log.count("no readable image in a batch; step skipped") == empty
    listed = (tmp_path / "run" / "bad_files.txt").read_text().splitlines()
    assert sorted(Path(line.split("\t")[0]).name for line in listed) == ["broken_a.png", "broken_b.png"]


def test_data_that_cannot_make_a_run_is_one_line_not_a_traceback(tmp_path):
    """A labelled folder without class folders is the user's to fix: said in one line, exit 2."""
    import cv2
    import numpy as np

    from train.exprada import main

    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(3):
        cv2.imwrite(str(flat / f"x{i}.png"), np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(SystemExit) as stop:
        main(["--mode", "cgit", "--source", str(flat), "--target", str(flat), "--steps", "2",
              "--out", str(tmp_path / "run")])
    message = str(stop.value.code)
    assert message.startswith("error: labelled source folder") and "no class folders" in message
    assert "\n" not in message
