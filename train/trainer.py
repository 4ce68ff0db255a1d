"""The skeleton every trainer shares (`exprada.py`, `classifier.py`): its settings, opening or
resuming a run, the step loop with its skips and its stop on divergence, checkpoints, the logged
rows and the end-of-run summary. A trainer supplies its data, its networks and optimisers, and
one training step (the hooks under "what a trainer supplies").

A checkpoint keeps two things apart: `config`, the settings (what the user chose and what that
implies, e.g. the classes), which rebuild the networks and lock a resumed run; and `run_state`,
what the run worked out from its data (image counts and fingerprints, the schedule's length).
"""
import argparse
import signal
import threading
from abc import ABC, abstractmethod
from contextlib import contextmanager
from pathlib import Path

import torch

from face.ranges import check_ranges

from . import distributed
from .checkpoint import checkpoint_path, load_state_checked, restore_rng, save_checkpoint
from .data import make_loader
from .datasets.sources import data_options
from .run_setup import (SHARED_RANGES, SHARED_RUNTIME_DEFAULTS, make_run_folder, merge_config, open_run,
                        remove_refused_run_folder, samples_digest, saved_run_state)
from .runlog import RunLog, progress, setup_logging, write_json

BEST = "best.pt"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(KeyboardInterrupt):
    """A stop asked by SIGINT (Ctrl-C) or SIGTERM (a job scheduler, `docker stop`), taken between two steps."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextmanager
def stop_requests():
    """Within: SIGINT and SIGTERM only note the stop (in the list yielded), so the loop ends its step first
    and the checkpoint it saves resumes exactly; a second signal stops at once."""
    asked: list[int] = []
    if threading.current_thread() is not threading.main_thread():   # Python sets handlers only there
        yield asked
        return

    def note(signum, _frame):
        if asked:
            raise KeyboardInterrupt
        asked.append(signum)

    previous = {sig: signal.signal(sig, note) for sig in STOP_SIGNALS}
    try:
        yield asked
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def leave_stops_to_the_trainer(_worker_id: int) -> None:
    """In each DataLoader worker: ignore SIGINT and SIGTERM, which a terminal's Ctrl-C or a job scheduler
    sends to every process of the job. A worker they killed would end the run in PyTorch's "DataLoader
    worker ... is killed by signal" error, raised mid-step and without a checkpoint; this way the trainer
    alone decides, ends its step, saves, and shuts the workers down. (A worker outlives a trainer that
    died anyway only until PyTorch's watchdog sees its parent gone.)"""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


class Trainer(ABC):
    """A run of one trainer: subclasses set the class attributes and supply the hooks at the end."""

    KINDS: tuple[str, ...] = ()  # checkpoint kinds it writes and resumes
    WHAT = "a run"  # how the error for a checkpoint of another kind names the run
    LOCKED: tuple[str, ...] = ()  # settings that define the run: a resumed run must keep them
    RUNTIME: tuple[str, ...] = ()  # settings of how it runs: free to change on resume
    DEFAULTS: dict = {}
    PATHS: tuple[str, ...] = ()  # settings naming files or folders, stored absolute
    RANGES: dict = {}  # its numeric settings' (least, most), beside run_setup.SHARED_RANGES
    COUNTERS = ("bad_files", "skipped_steps", "nonfinite_steps")
    CHECKED = "gradients"  # what a skipped step found not finite, in its log line and the divergence error

    # ---- the command ---------------------------------------------------------------------
    @classmethod
    def main(cls, argv=None) -> int:
        args = cls.build_parser().parse_args(argv)
        run_dir, state, saved = open_run(args.out, args.resume, cls.KINDS, cls.WHAT)
        config = cls.resolve_config(args, saved)
        made_folder = not run_dir.exists()
        make_run_folder(run_dir)
        ctx = distributed.setup(config["device"])
        logger = setup_logging(run_dir, ctx.is_main)
        finished = False
        try:
            try:
                trainer = cls(config, run_dir, ctx, logger, state)
            except (ValueError, FileNotFoundError) as error:
                # The data or settings given cannot make a run (no class folders, a missing file, a
                # checkpoint that does not fit): the user's to fix, said in one line as the flag checks
                # are; a failure once training runs keeps its traceback.
                if state is None and ctx.is_main:
                    remove_refused_run_folder(run_dir, logger, made_folder)
                raise SystemExit(f"error: {error}") from None
            summary = trainer.train()
            logger.info("done: %s", {k: v for k, v in summary.items() if k != "test"})
            finished = True
        finally:
            distributed.cleanup(wait=finished)
        return 0

    @classmethod
    def resolve_config(cls, args: argparse.Namespace, saved: dict | None) -> dict:
        """Defaults < saved run settings < explicit flags; locked settings must match the saved run."""
        given = cls.given_settings(args)
        for key in cls.PATHS:
            if key in given:
                given[key] = str(Path(given[key]).resolve())
        # --resume RUN --steps N: the one locked setting a resumed run may change, to go on past its
        # end (checked against the run's schedule once it is read).
        extend_to = given.pop("steps", None) if saved is not None else None
        config = merge_config(given, saved, {**SHARED_RUNTIME_DEFAULTS, **cls.DEFAULTS}, cls.LOCKED)
        if extend_to is not None:
            config["steps"] = extend_to
        check_ranges(config, {**SHARED_RANGES, **cls.RANGES})
        cls.check_config(config, new_run=saved is None)
        config.update(cls.implied_settings(config))
        return config

    @classmethod
    def given_settings(cls, args: argparse.Namespace) -> dict:
        """The settings given on the command line (argparse leaves the others None), with the data-format
        flags of a trainer that has them (train.datasets.sources) gathered into one `data_options` setting."""
        options = data_options(args)
        given = {k: v for k, v in vars(args).items() if v is not None and k not in ("out", "resume", *options)}
        return {**given, "data_options": options} if options else given

    # ---- a run ---------------------------------------------------------------------------
    def __init__(self, config: dict, run_dir: Path, ctx: distributed.Context, logger, state: dict | None = None):
        self.config, self.run_dir, self.ctx, self.log = config, Path(run_dir), ctx, logger
        self.device = ctx.device
        self.resumed = state is not None
        saved = saved_run_state(state, config) if self.resumed else {}
        self.run_state = {}
        self.build_data(saved)
        plan = self.plan_steps()
        # The schedule is fixed when a run starts: a resumed run keeps it, even if its data changed,
        # unless --steps extends it.
        self.run_state.update({k: saved[k] for k in plan} if "total_steps" in saved else plan)
        if self.resumed and config.get("steps") and config["steps"] != self.run_state["total_steps"]:
            self._extend(int(config["steps"]))
        self.build_model()
        self.step, self.counters = 0, dict.fromkeys(self.COUNTERS, 0)
        self.sums, self.summed_steps = {}, 0  # the figures of the updates since the last logged row
        if self.resumed:
            self.load(state)
        self.runlog = RunLog(self.run_dir, enabled=ctx.is_main, start_step=self.step)

    def _extend(self, steps: int) -> None:
        """Go on to `steps` in all: the schedule's decay is stretched to end there, where the run
        stood it goes on from (a finished run's learning rate rises from ~0 to its stretched value)."""
        old = self.run_state["total_steps"]
        if steps <= old:
            raise SystemExit(f"error: --steps {steps} with --resume must be beyond the run's {old} steps "
                             f"(to stop earlier, --stop-after N)")
        self.log.warning("extending the run from %d to %d steps: the learning-rate schedule now ends at %d",
                         old, steps, steps)
        self.run_state["total_steps"] = steps

    @property
    def total_steps(self) -> int:
        return self.run_state["total_steps"]

    @property
    def kind(self) -> str:
        """The checkpoint kind this run writes."""
        return self.KINDS[0]

    def note_data(self, name: str, samples, saved: dict) -> None:
        """Record a data part's size and fingerprint; warn when a resumed run's data changed."""
        digest = samples_digest(samples)
        before = saved.get(f"{name}_digest")
        if before and before != digest:
            self.log.warning("%s data changed since the run started (%d images now): the resumed run will not "
                             "repeat the original exactly", name, len(samples))
        self.run_state[f"{name}_count"], self.run_state[f"{name}_digest"] = len(samples), digest

    def sampler_options(self, stream: int, start: int, count: int) -> dict:
        """StepBatchSampler's arguments for steps [start, start + count) of this process."""
        return dict(seed=self.config["seed"], stream=stream, rank=self.ctx.rank, world_size=self.ctx.world_size,
                    start_step=start, num_steps=count, flip=self.config["flip"], crop=self.config.get("crop", False))

    def loader(self, dataset, sampler):
        loader = make_loader(dataset, sampler, self.config["workers"], pin_memory=self.device.type == "cuda",
                             worker_init_fn=leave_stops_to_the_trainer)
        # Workers' seeds come from this generator, not the global RNG (dropout's): resume stays exact.
        loader.generator = torch.Generator().manual_seed(self.config["seed"])
        return loader

    # ---- checkpoints ---------------------------------------------------------------------
    def save(self, keep: bool = False, best: bool = False) -> bool:
        """Write last.pt, keeping the `keep_last` newest as last.pt, last.1.pt, … (with `keep` also a
        step_N.pt snapshot, with `best` best.pt) on the main process; True when written."""
        if not self.ctx.is_main or not self.can_save():
            return False
        runtime = self.RUNTIME + tuple(SHARED_RUNTIME_DEFAULTS)
        stored = {k: v for k, v in self.config.items() if k not in runtime}
        stored["runtime"] = {k: self.config[k] for k in runtime}
        last = checkpoint_path(self.run_dir)
        paths = {last: self.config["keep_last"]}
        if keep:
            paths[checkpoint_path(self.run_dir, self.step)] = 1
        if best:
            paths[last.with_name(BEST)] = 1
        for path, copies in paths.items():
            save_checkpoint(path, kind=self.kind, config=stored, run_state=self.run_state, models=self.models(),
                            optimizers=self.optimizers(), schedulers=self.schedulers(), step=self.step,
                            epoch=self.step // self.run_state["steps_per_epoch"],
                            extra={"counters": dict(self.counters), **self.extra_state()}, keep=copies)
        return True

    def load(self, state: dict) -> None:
        for note in state.get("notes", ()):
            self.log.warning(note)
        self.load_weights(state)
        self.step = int(state["step"])
        extra = state.get("extra", {})
        self.counters.update({k: int(v) for k, v in extra.get("counters", {}).items()})
        self.load_extra(extra)
        restore_rng(state["rng"])

    # ---- the loop ------------------------------------------------------------------------
    def train(self) -> dict:
        end = min(self.total_steps, self.config["stop_after"] or self.total_steps)
        if self.step >= end:
            self.log.info("nothing to do: the run is at step %d of %d", self.step, end)
            return self.summary()
        self.describe(end)
        steps = self.step_batches(self.step, end - self.step)
        bar = progress(end, self.step, enabled=self.ctx.is_main and self.config["progress"])
        nonfinite_run = 0
        try:
            with stop_requests() as asked:
                for batches in steps:
                    if self._skip_empty(batches, bar):
                        continue
                    problem = self.train_step(batches)
                    if problem is None:
                        nonfinite_run = 0
                    else:
                        nonfinite_run += 1
                        self._skip_nonfinite(nonfinite_run, problem)
                    self._advance(bar)
                    self.after_step(end, updated=problem is None)
                    if self._stop_asked(asked):
                        raise Stopped(asked[0] if asked else signal.SIGTERM)
        except KeyboardInterrupt:
            # Stopped comes between two steps, so the checkpoint resumes exactly; an interrupt raised
            # inside a step (a second signal) still saves, at the cost of that step's partial update.
            self.log.warning("interrupted at step %d: saving a checkpoint to resume from", self.step)
            self.save()
            raise
        finally:
            bar.close()
            self.runlog.close()
        return self.summary()

    def _stop_asked(self, asked: list) -> bool:
        """Whether a stop signal came (on any process: torchrun signals each, and all stop at the same step)."""
        return distributed.any_process(bool(asked), self.ctx) if self.ctx.distributed else bool(asked)

    def _skip_empty(self, batches, bar) -> bool:
        """Count the batches' unreadable files; skip the step when a batch has no image left (on
        one process: then every process skips it, so they stay in step)."""
        for batch in batches:
            self.counters["bad_files"] += self.runlog.count_bad(batch, self.log, self.ctx.is_main)
        empty = any(batch["size"] == 0 for batch in batches)
        if not (distributed.any_process(empty, self.ctx) if self.ctx.distributed else empty):
            return False
        self.counters["skipped_steps"] += 1
        if "empty_batches" in self.counters:  # counted apart where the trainer reports it
            self.counters["empty_batches"] += 1
        self.log.warning("step %d: no readable image in a batch; step skipped", self.step)
        self._advance(bar)
        return True

    def _skip_nonfinite(self, in_a_row: int, problem: str) -> None:
        """Count a skipped non-finite update; stop, keeping the last finite weights, after
        `max_nonfinite` in a row."""
        self.counters["nonfinite_steps"] += 1
        self.counters["skipped_steps"] += 1
        self.log.warning("step %d: non-finite %s (%s); update skipped (%d in a row)", self.step, self.CHECKED, problem,
                         in_a_row)
        if in_a_row >= self.config["max_nonfinite"]:
            saved = self.save()
            raise FloatingPointError(f"training diverged: {in_a_row} steps in a row with non-finite {self.CHECKED} "
                                     f"(up to step {self.step}); last checkpoint {checkpoint_path(self.run_dir)} holds "
                                     f"the last finite weights{'' if saved else ' saved before'} — try a lower --lr")

    def _advance(self, bar) -> None:
        self.step += 1
        for scheduler in self.schedulers().values():
            scheduler.step()
        bar.update(1)

    def due(self, every: int, end: int) -> bool:
        """Whether something done every `every` steps is due now (it always is at the last step)."""
        return self.step % every == 0 or self.step == end

    # ---- what is logged ------------------------------------------------------------------
    def tally(self, values: dict) -> None:
        """Add one update's figures (floats or device tensors) to the next logged row."""
        for key, value in values.items():
            self.sums[key] = self.sums.get(key, 0.0) + value
        self.summed_steps += 1

    def write_row(self, own: dict | None = None) -> None:
        """One metrics row: the trainer's figures since the last row, averaged over processes; the
        counters, summed; the learning rate; and `own`, this process's figures as they are."""
        figures = self.figures(self.sums, self.summed_steps) if self.summed_steps else {}
        values = distributed.mean_over_processes(figures, self.ctx)
        values.update({f"count/{k}": v for k, v in self.summed_counters().items()})
        values["lr"] = float(next(iter(self.schedulers().values())).get_last_lr()[0])
        values.update(own or {})
        self.runlog.scalars(self.step, values)
        self.sums, self.summed_steps = {}, 0

    def summed_counters(self) -> dict:
        return {k: distributed.sum_over_processes(v, self.ctx) for k, v in self.counters.items()}

    def summary(self) -> dict:
        """The run's counters (all processes), whether the replicas agree and the trainer's
        results, also written to summary.json."""
        self.runlog.close()
        summary = {"step": self.step, "total_steps": self.total_steps, "checkpoint": str(checkpoint_path(self.run_dir)),
                   "world_size": self.ctx.world_size, **self.summed_counters()}
        if self.ctx.distributed:
            summary["replicas_agree"] = distributed.replicas_agree(self.models().values(), self.ctx)
            if not summary["replicas_agree"]:
                self.log.error("the processes' weights differ: data-parallel replicas went out of step")
        summary.update(self.results())
        if self.ctx.is_main:
            write_json(self.run_dir / "summary.json", summary)
        return summary

    # ---- what a trainer supplies ---------------------------------------------------------
    @classmethod
    @abstractmethod
    def build_parser(cls) -> argparse.ArgumentParser:
        """The trainer's command line."""

    @classmethod
    def check_config(cls, config: dict, new_run: bool) -> None:
        """Raise SystemExit for settings that cannot make a run."""

    @classmethod
    def implied_settings(cls, config: dict) -> dict:
        """Settings that follow from the others (stored with them)."""
        return {}

    @abstractmethod
    def build_data(self, saved: dict) -> None:
        """Index the data; `saved` is the resumed run's run_state ({} for a new run)."""

    @abstractmethod
    def plan_steps(self) -> dict:
        """steps_per_epoch, total_steps and whatever else fixes the schedule's length."""

    @abstractmethod
    def build_model(self) -> None:
        """Make the networks, optimisers and schedules (after build_data and plan_steps)."""

    @abstractmethod
    def models(self) -> dict:
        """name -> network, as the checkpoint stores them."""

    @abstractmethod
    def optimizers(self) -> dict:
        """name -> optimiser, as the checkpoint stores them."""

    @abstractmethod
    def schedulers(self) -> dict:
        """name -> learning-rate schedule, stepped once a step; the first one's rate is logged."""

    def load_weights(self, state: dict) -> None:
        for name, model in self.models().items():
            load_state_checked(model, state["models"][name], f"{state['path']} model {name!r}")
        for name, optimizer in self.optimizers().items():
            optimizer.load_state_dict(state["optimizers"][name])
        for name, scheduler in self.schedulers().items():
            scheduler.load_state_dict(state["schedulers"][name])

    def extra_state(self) -> dict:
        """More of the run to checkpoint beside the counters (JSON types or tensors)."""
        return {}

    def load_extra(self, extra: dict) -> None:
        pass

    def can_save(self) -> bool:
        return True

    def describe(self, end: int) -> None:
        """Log what is about to be trained."""

    @abstractmethod
    def step_batches(self, start: int, count: int):
        """An iterable of one tuple of batches per step, for steps [start, start + count)."""

    @abstractmethod
    def train_step(self, batches) -> str | None:
        """One update from a step's batches. None when it was applied; else what was not finite
        (e.g. "loss 1e+30"): the update was skipped."""

    def after_step(self, end: int, updated: bool) -> None:
        """Logging, validation, samples, checkpoints: whatever is due after a step."""

    def figures(self, sums: dict, steps: int) -> dict:
        """The logged figures from the tallied sums of `steps` updates."""
        return {k: float(v) / steps for k, v in sums.items()}

    def results(self) -> dict:
        """What the trainer adds to the summary."""
        return {}
