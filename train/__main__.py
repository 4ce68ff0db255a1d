"""`python -m train COMMAND ...`: one entry point, each command in its own module.

Exit status, every command: 0 done; 2 a usage or data mistake, said in one line on stderr (a bad
flag, a folder without class folders, a checkpoint that does not fit, --steps below a run's end);
1 a failure while working (with its traceback); 130 stopped by Ctrl-C (SIGINT), 143 by SIGTERM (a trainer
ends its step and saves a checkpoint first, so --resume continues exactly)."""
import importlib
import sys

EXIT_USAGE = 2

COMMANDS = {
    "exprada": ("train.exprada", "train ExprADA (UIT or CGIT): both generators and discriminators"),
    "translate": ("train.translate", "apply a trained generator to an image or a folder"),
    "classifier": ("train.classifier", "train the source-domain expression classifier"),
    "evaluate": ("train.evaluate", "classify a labelled test set, with or without UIT translation"),
    "export": ("train.export", "checkpoint → ONNX (.onnx) or torch.export program (.pt2) for the engines"),
    "synth": ("train.synthetic", "write the synthetic NIR driver data (source, target, video)"),
    "warp-pairs": ("train.warp_pairs", "CGIT expression pairs from single labelled faces: each warped to every expression"),
    "renders": ("train.renders", "a UIT target set (frontal renders, side maps, frontal pairs) from your NIR drives"),
}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        print("usage: python -m train {" + ",".join(COMMANDS) + "} ...\n")
        for name, (_, help_text) in COMMANDS.items():
            print(f"  {name:<11} {help_text}")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    module = importlib.import_module(COMMANDS[argv[0]][0])
    from train.checkpoint import CheckpointError
    from train.trainer import Stopped
    try:
        return module.main(argv[1:]) or 0
    except SystemExit as stop:
        if isinstance(stop.code, str):   # the commands' one-line "error: …" for a user's mistake
            print(stop.code, file=sys.stderr)
            return EXIT_USAGE
        raise
    except CheckpointError as error:   # a checkpoint that is not the run's, or not this kind
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except Stopped as stop:
        return 128 + stop.signum   # the shell's convention for a process ended by that signal
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
