"""How a trainer (train/trainer.py) opens its run: a new run or a resumed one, its settings
merged (defaults < the saved run < explicit flags, with locked settings kept), and what the
resumed run had worked out from its data."""
import contextlib
import hashlib
import logging
from pathlib import Path

from face.outputs import writable_folder

from .checkpoint import CheckpointError, checkpoint_path, config_mismatches, load_newest_good

# Run settings every trainer has beside its own DEFAULTS; like those of how it runs, free to change on resume.
SHARED_RUNTIME_DEFAULTS = dict(keep_last=3)
# The numeric settings every trainer has, each with its inclusive (least, most) range (None: open), checked
# by face.ranges.check_ranges; a trainer's RANGES add its own.
SHARED_RANGES = dict(keep_last=(1, None), batch_size=(1, None), width=(1, None), lr=(0, None), steps=(1, None),
                     stop_after=(1, None), workers=(0, None), log_every=(1, None), checkpoint_every=(1, None),
                     max_nonfinite=(1, None))


def open_run(out, resume, kinds: tuple[str, ...], what: str) -> tuple[Path, dict | None, dict | None]:
    """(run folder, checkpoint state or None, saved settings or None) for `--out` xor `--resume`.
    The saved settings carry how the run ran too, except where to stop: a resumed run goes on.
    A resumed run starts from its newest checkpoint that loads and verifies (state["notes"] says
    which were passed over)."""
    if bool(out) == bool(resume):
        raise SystemExit("error: give either --out RUN_DIR (new run) or --resume RUN_DIR")
    run_dir = Path(resume or out)
    state = load_newest_good(run_dir) if resume else None
    if state is not None and state["kind"] not in kinds:
        raise CheckpointError(f"{state['path']}: a {state['kind']} checkpoint, not {what}")
    if state is None and checkpoint_path(run_dir).exists():
        raise SystemExit(f"error: {run_dir} already holds a run; --resume {run_dir} continues it")
    saved = None
    if state is not None:
        saved = {k: v for k, v in state["config"].items() if k != "runtime"}
        saved.update({k: v for k, v in state["config"].get("runtime", {}).items() if k != "stop_after"})
    return run_dir, state, saved


def make_run_folder(run_dir: Path) -> None:
    """The run folder, made once the settings are known good; a place that cannot hold it is the user's to fix."""
    try:
        writable_folder(run_dir, f"--out {run_dir}")
    except ValueError as error:
        raise SystemExit(f"error: {error}") from None


def remove_refused_run_folder(run_dir: Path, logger, made_folder: bool) -> None:
    """A new run refused before anything was logged (its data cannot make a run) leaves nothing behind,
    as a flag mistake leaves nothing: its empty log, and its folder when this command made it."""
    for handler in list(logger.handlers):
        if isinstance(handler, logging.FileHandler):
            handler.close()
            logger.removeHandler(handler)
    log = run_dir / "train.log"
    with contextlib.suppress(OSError):
        if log.is_file() and log.stat().st_size == 0:
            log.unlink()
        if made_folder:
            run_dir.rmdir()   # only when empty


def merge_config(given: dict, saved: dict | None, defaults: dict, locked) -> dict:
    """Defaults < saved run settings < explicit flags; a locked setting given anew must equal the
    saved one. Only settings (the keys of `defaults`) are taken from the saved run: what follows
    from them is worked out again, and an old checkpoint's config also held the run's state."""
    if saved is None:
        return {**defaults, **given}
    mismatches = config_mismatches(saved, {**saved, **{k: v for k, v in given.items() if k in locked}}, locked)
    if mismatches:
        raise CheckpointError("cannot resume with different training settings: " + "; ".join(mismatches))
    return {**defaults, **{k: v for k, v in saved.items() if k in defaults}, **given}


def saved_run_state(state: dict, config: dict) -> dict:
    """What a checkpoint's run worked out from its data (counts, fingerprints, the schedule).
    Checkpoints written before `run_state` existed kept it in their config, beside the settings:
    there it is every key that is not one of the resolved `config`'s."""
    if "run_state" in state:
        return dict(state["run_state"])
    return {k: v for k, v in state["config"].items() if k not in config and k != "runtime"}


def samples_digest(samples) -> str:
    """Short fingerprint of a sample list (paths and labels): tells a resumed run its data changed."""
    return hashlib.sha1("\n".join(f"{s.path}|{s.label}" for s in samples).encode()).hexdigest()[:16]


def add_run_control_arguments(group, defaults: dict) -> None:
    """The flags every trainer shares for how a run runs; they may change on --resume."""
    group.add_argument("--device", help="auto | cpu | cuda | cuda:N (auto)")
    group.add_argument("--workers", type=int, help=f"data-loading processes ({defaults['workers']})")
    group.add_argument("--log-every", type=int, help=f"steps between logged scalars ({defaults['log_every']})")
    group.add_argument("--checkpoint-every", type=int, help=f"steps between checkpoints ({defaults['checkpoint_every']})")
    group.add_argument("--keep-last", type=int,
                       help="checkpoints kept: last.pt and the older last.1.pt, last.2.pt, …; --resume falls back to "
                            f"the newest good one ({SHARED_RUNTIME_DEFAULTS['keep_last']})")
    group.add_argument("--max-nonfinite", type=int,
                       help=f"stop after this many non-finite steps in a row ({defaults['max_nonfinite']})")
    group.add_argument("--stop-after", type=int, help="stop (with a checkpoint) at this global step")
    group.add_argument("--no-progress", dest="progress", action="store_false", default=None)
