"""Choose, or check, the pipeline's publish settings on a table-4 run: `python -m benchmarks.publish_choice`.

The `pose` label (pipeline.fusion) pools three readings of each face — the aligned crop, the
translation of the frontal render, the render itself — with two settings: the translated path's
share of the frontalised paths (`--fusion-weight`) and the |yaw| at which the crop's weight reaches
zero (`--crop-yaw`). This command pools the probabilities that `python -m benchmarks.paper_table4`
saved (OUT/probs.npz: the same faces, classifier and generators) for every setting of a grid and
compares the published label, bin by bin, with the best single row (raw crop, render or the
translation, means over the seeds): the margin. The setting chosen is the one whose worst bin's
margin is largest, ties going to the higher mean accuracy over the bins.

Choose on validation drivers (seeds no table reports), then `--check WEIGHT CROP_YAW` on the test
seeds' run reports that one setting beside the current default, choosing nothing. One JSON line
(also OUT/publish_choice.json) and OUT/publish_choice.png (the worst margin over the grid).
"""
import argparse
import json
from pathlib import Path
import sys

import numpy as np

from benchmarks.cli import exit_status
from benchmarks.paper_table4 import mean_std
from face.outputs import writable_folder
from pipeline.fusion import CROP_YAW, POSE_WEIGHT, publish_probs
from train.eval_plots import pyplot, save

SINGLE = ("raw_crop", "render")   # the single rows beside the translation
WEIGHTS = tuple(round(w, 2) for w in np.linspace(0.0, 1.0, 11))
CROP_YAWS = (10.0, 15.0, 20.0, 25.0, 30.0, 35.0, 40.0, 45.0, 60.0)
CURRENT = (POSE_WEIGHT, CROP_YAW)   # the pipeline's `pose` defaults (run_pipeline.py --fusion-weight, --crop-yaw)


def load(path: Path, generator: str) -> dict:
    """{seed: {bin: {"translated", "raw_crop", "render", "label", "fitted_yaw"}}} from a probs.npz."""
    try:
        saved = np.load(path)
    except (OSError, ValueError) as e:
        raise SystemExit(f"error: cannot read {path}: {e}") from None
    data, generators = {}, set()
    for key in saved.files:
        try:
            seed, b, row = key.split("/", 2)
            seed, b = int(seed), int(b)
        except ValueError:
            raise SystemExit(f"error: {path} is not a table-4 probs.npz (key {key!r} is not SEED/YAW/ROW)") from None
        if row not in (*SINGLE, "label", "fitted_yaw"):
            generators.add(row)
        if row in (*SINGLE, "label", "fitted_yaw", generator):
            data.setdefault(seed, {}).setdefault(b, {})["translated" if row == generator else row] = saved[key]
    if generator not in generators:
        raise SystemExit(f"error: {path} has no generator {generator!r}; it has {', '.join(sorted(generators)) or 'none'}")
    return data


def published(data: dict, weight: float, crop_yaw: float) -> dict:
    """{bin: [accuracy per seed]} of the `pose` label with these settings."""
    out = {}
    for seed in sorted(data):
        for b, d in sorted(data[seed].items()):
            p = publish_probs(d["translated"], d["render"], "pose", weight, p_crop=d["raw_crop"], yaw=d["fitted_yaw"],
                              crop_yaw=crop_yaw)
            out.setdefault(b, []).append(_accuracy(p, d["label"]))
    return out


def single_rows(data: dict) -> dict:
    """{row: {bin: [accuracy per seed]}} of the raw crop, the render and the translation alone."""
    out = {}
    for seed in sorted(data):
        for b, d in sorted(data[seed].items()):
            for row in (*SINGLE, "translated"):
                out.setdefault(row, {}).setdefault(b, []).append(_accuracy(d[row], d["label"]))
    return out


def margins(pub: dict, singles: dict) -> dict:
    """{bin: published − the best single row}, in points, on the means over the seeds."""
    return {b: round(100 * (np.mean(acc) - max(np.mean(row[b]) for row in singles.values())), 2)
            for b, acc in pub.items()}


def setting(data: dict, singles: dict, weight: float, crop_yaw: float) -> dict:
    pub = published(data, weight, crop_yaw)
    m = margins(pub, singles)
    return {"weight": weight, "crop_yaw": crop_yaw, "worst_margin": min(m.values()),
            "mean": round(100 * float(np.mean([np.mean(a) for a in pub.values()])), 2),
            "margin": {str(b): v for b, v in m.items()},
            "accuracy": {str(b): mean_std(a) for b, a in pub.items()}}


def _accuracy(p, labels) -> float:
    return float(np.mean(np.asarray(p).argmax(1) == labels)) if len(labels) else float("nan")


def run(args) -> dict:
    out = writable_folder(args.out, f"--out {args.out}")   # before measuring: a result that cannot be written is lost
    data = load(Path(args.probs), args.generator)
    if len(data) < 2:
        raise SystemExit(f"error: {args.probs} holds {len(data)} seed(s); a choice needs at least two")
    singles = single_rows(data)
    result = {"benchmark": "publish_choice", "probs": str(args.probs), "generator": args.generator,
              "seeds": sorted(data), "bins": sorted(next(iter(data.values()))),
              "single_rows": {row: {str(b): mean_std(a) for b, a in by_bin.items()} for row, by_bin in singles.items()},
              "current": setting(data, singles, *CURRENT)}
    if args.check:
        result["checked"] = setting(data, singles, *args.check)
    else:
        grid = [setting(data, singles, w, y) for y in CROP_YAWS for w in WEIGHTS]
        result["chosen"] = max(grid, key=lambda s: (s["worst_margin"], s["mean"]))
        result["grid"] = [{k: s[k] for k in ("weight", "crop_yaw", "worst_margin", "mean")} for s in grid]
        heatmap(result["grid"], out / "publish_choice.png", f"{args.generator}, seeds {result['seeds']}")
    (out / "publish_choice.json").write_text(json.dumps(result, indent=1))
    return result


def heatmap(grid: list, path: Path, title: str):
    plt = pyplot()
    worst = np.array([[s["worst_margin"] for s in grid if s["crop_yaw"] == y] for y in CROP_YAWS])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    limit = max(abs(worst).max(), 0.1)
    im = ax.imshow(worst, cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto", origin="lower")
    ax.set_xticks(range(len(WEIGHTS)), [f"{w:g}" for w in WEIGHTS])
    ax.set_yticks(range(len(CROP_YAWS)), [f"{y:g}" for y in CROP_YAWS])
    ax.set_xlabel("fusion weight (the translated path's share)")
    ax.set_ylabel("crop yaw (degrees)")
    ax.set_title(f"worst bin: published − best single row (points)\n{title}", fontsize=9)
    fig.colorbar(im, ax=ax)
    save(plt, fig, path, dpi=120)


def build_parser():
    p = argparse.ArgumentParser(prog="python -m benchmarks.publish_choice", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("probs", help="probs.npz written by benchmarks.paper_table4")
    p.add_argument("--generator", required=True, help="the generator row to publish with (a NAME of that run)")
    p.add_argument("--check", type=float, nargs=2, metavar=("WEIGHT", "CROP_YAW"),
                   help="report this one setting (on test seeds) instead of choosing over the grid")
    p.add_argument("--out", default="runs/publish_choice")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.check:
        weight, crop_yaw = args.check
        if not (0 <= weight <= 1 and crop_yaw > 0):
            raise SystemExit(f"error: --check takes a weight in [0, 1] and a positive crop yaw, got {weight} {crop_yaw}")
    print(json.dumps(run(args)))
    return 0


if __name__ == "__main__":
    sys.exit(exit_status(main))
