"""Synthetic driver data — NIR target and drive, NIR or visible-light labelled source (`--scenario`):
`python -m train synth --out DIR` (see train/synthetic/writer.py)."""


def main(argv=None) -> int:
    from train.synthetic.writer import main as writer_main

    return writer_main(argv)
