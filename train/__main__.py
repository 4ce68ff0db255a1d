"""`python -m train COMMAND ...`: one entry point, each command in its own module."""
import importlib
import sys

COMMANDS = {
    "exprada": ("train.exprada", "train ExprADA (UIT or CGIT): both generators and discriminators"),
    "translate": ("train.translate", "apply a trained generator to an image or a folder"),
    "classifier": ("train.classifier", "train the source-domain expression classifier"),
    "evaluate": ("train.evaluate", "classify a labelled test set, with or without UIT translation"),
    "export": ("train.export", "checkpoint → ONNX (.onnx) or torch.export program (.pt2) for the engines"),
    "synth": ("train.synthetic", "write the synthetic NIR driver data (source, target, video)"),
}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        print("usage: python -m train {" + ",".join(COMMANDS) + "} ...\n")
        for name, (_, help_text) in COMMANDS.items():
            print(f"  {name:<11} {help_text}")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    module = importlib.import_module(COMMANDS[argv[0]][0])
    return module.main(argv[1:]) or 0


if __name__ == "__main__":
    sys.exit(main())
