"""What every benchmark command shares: a missing or unusable input is one line, not a traceback."""
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
    except INPUT_ERRORS as error:
        print(f"python -m {_command()}: {error}", file=sys.stderr)
        return 2
    return status if isinstance(status, int) else 0   # a main may hand back its result (train_step does)


def refuse_below(args, **least) -> None:
    """Exit 2 with one line naming the first option (a value or each of a list) under its least value:
    a count of 0 ended deep in a run (a numpy AxisError), a negative thread count ran on regardless."""
    for name, bound in least.items():
        values = getattr(args, name)
        for value in values if isinstance(values, list) else [values]:
            if not value >= bound:   # NaN too
                print(f"python -m {_command()}: --{name.replace('_', '-')} must be at least {bound}, got {value}",
                      file=sys.stderr)
                raise SystemExit(2)


def _command() -> str:
    return getattr(sys.modules["__main__"].__spec__, "name", None) or sys.argv[0]
