"""What every benchmark command shares: a missing or unusable input is one line, not a traceback; at
least two seeds where models are compared; and the order contenders run in, round after round."""
import sys

from engines import EngineFileError, MetadataError
from face.outputs import UnwritableOutput

# a path that is not there, a model that will not load, an --out that cannot be written (tried before measuring)
INPUT_ERRORS = (FileNotFoundError, EngineFileError, MetadataError, UnwritableOutput)


def exit_status(main) -> int:
    """Exit status of a benchmark's main(): its own (0 when it returns something else), or 2 with one line on
    stderr when an input the user named cannot be used (a failure while measuring keeps its traceback)."""
    try:
        status = main()
    except Exception as error:
        if not isinstance(error, _input_errors()):
            raise
        print(f"python -m {_command()}: {error}", file=sys.stderr)
        return 2
    return status if isinstance(status, int) else 0   # a main may hand back its result (train_step does)


def _input_errors() -> tuple:
    """INPUT_ERRORS, and a training checkpoint of the wrong kind or damaged where the benchmark read one:
    train.checkpoint imports torch, which the benchmarks that read no checkpoint should not pay for."""
    checkpoint = sys.modules.get("train.checkpoint")
    return INPUT_ERRORS + ((checkpoint.CheckpointError,) if checkpoint else ())


def check_replicates(seeds) -> None:
    """Every figure that compares models is a mean ± std over seeds: one seed is refused, one line."""
    if len(seeds) < 2:
        raise SystemExit("error: give at least two --seeds (every figure is a mean ± std over seeds)")


def in_turn(contenders, round_index: int) -> list:
    """The contenders in the order round `round_index` runs them: each round starts with the next one,
    so a run's place in the round (just after another run's processes went away, say) favours none
    of them over the rounds."""
    shift = round_index % len(contenders)
    return list(contenders[shift:]) + list(contenders[:shift])


def _command() -> str:
    return getattr(sys.modules["__main__"].__spec__, "name", None) or sys.argv[0]
