"""The paper's table 4 on held-out synthetic drivers: `python -m benchmarks.paper_table4`, one JSON line.

Expression accuracy by head yaw (bins 0/±15/±30/±45/±60°) of one source classifier given, for the
same faces:
  source_crop   the same head, same expression, at yaw 0 in the source domain (the ceiling)
  raw_crop      the turned face cropped and aligned from its FaceMesh landmarks, no frontalisation
  render        the face stage's frontal render (the paper's simulated target image)
  NAME          the render translated by each `--generator NAME=G.onnx` (UIT, ablations, baselines)
  NAME+render   the two-path fusion of NAME's and the render's probabilities (pipeline.fusion, `fusion`)
  NAME/published what the pipeline publishes with `--publish-label pose` (pipeline.fusion): the raw
                crop and NAME (and the render, with a pose weight under 1) pooled, the crop's weight
                falling from 1 at the fitted yaw 0 to 0 at the crop yaw (±20°)
Drivers come from `--seeds` that no training used (each seed: new people, cameras, expressions,
poses); every row is mean ± std over the seeds, and each generator's paired difference against the
render, per seed, is reported too: it is what stays stable when the seeds' drivers differ. The first
`--generator` is the reference: every later one is also paired against it (an ablation or a baseline
against the full model, `NAME - FIRST`).
`NAME=G1.onnx,G2.onnx,G3.onnx` gives one model per seed (e.g. three training seeds): replicate i
translates seed i's drivers with model i, so each replicate is a new training and new people.
`--scenario camera` draws the source domain with the visible-light studio camera (the paper's
setting: a labelled RGB set against the in-car NIR camera), `pose` with the NIR camera.

Writes OUT/table4.json, OUT/table4.png (accuracy by yaw, one line per row), OUT/samples.png
(one face per bin: source crop, raw crop, render, each translation) and OUT/probs.npz: every face's
class probabilities per single row, with its label and fitted yaw, keyed `SEED/YAW/ROW` — what
`python -m benchmarks.publish_choice` pools to choose (or check) the publish settings.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

import engines
import face
from benchmarks.cli import check_replicates, exit_status
from engines.chain import classify, translate
from face.expressions import EXPRESSIONS
from face.imageio import from_network
from face.outputs import writable_folder
from face.ranges import above, at_least, between
from pipeline.fusion import CROP_YAW, FUSION_WEIGHT, POSE_WEIGHT, publish_probs
from train.eval_plots import pyplot, save
from train.synthetic.camera import NirCamera
from train.synthetic.scene import Pose
from train.synthetic.writer import FRAME_H, FRAME_W, SynthWriter

BINS = (0, 15, 30, 45, 60)
YAW_JITTER = 3.0   # degrees around each bin's ± angle
PITCH, ROLL = 8.0, 5.0
BATCH = 64         # images per engine run


def named_paths(items, seeds: int) -> dict:
    """{name: [path per seed]} from NAME=PATH or NAME=PATH1,...,PATHn (n = number of seeds)."""
    out = {}
    for item in items:
        name, sep, paths = item.partition("=")
        paths = [p for p in paths.split(",") if p]
        if not sep or not name or not paths:
            raise SystemExit(f"error: --generator takes NAME=PATH[,PATH...], got {item!r}")
        if name in out or name in ("source_crop", "raw_crop", "render") or set(name) & set("+/ "):
            raise SystemExit(f"error: generator name {name!r} is used twice, names a fixed row or has '+', '/' or ' '")
        if len(paths) not in (1, seeds):
            raise SystemExit(f"error: --generator {name} has {len(paths)} models for {seeds} seeds; give 1 or {seeds}")
        out[name] = paths * seeds if len(paths) == 1 else paths
    return out


def faces_for_seed(seed: int, scenario: str, size: int, per_bin: int, bins, drivers: int, progress: bool):
    """Per bin: images {row: N×S×S×3}, side maps of the renders, labels — for one seed's drivers."""
    writer = SynthWriter(Path("/nonexistent"), seed=seed, size=size, drivers=drivers, scenario=scenario)
    rng = np.random.default_rng(seed)
    people = [(writer.factory.driver(rng), NirCamera(rng, FRAME_H, FRAME_W), writer.source_camera(rng))
              for _ in range(drivers)]
    out, missed = {}, 0
    with face.FaceStage(size=size, video=False, model=writer.model) as stage:
        for b in bins:
            rows = {"source_crop": [], "raw_crop": [], "render": [], "side": [], "label": [], "yaw": [],
                    "fitted_yaw": []}
            for i in tqdm(range(per_bin), desc=f"seed {seed} yaw ±{b}", disable=not progress, leave=False):
                label = i % len(EXPRESSIONS)
                driver, nir, visible = people[int(rng.integers(drivers))]
                w_exp = writer.factory.expression(rng, label)
                sign = 1.0 if rng.random() < 0.5 else -1.0
                pose = Pose(yaw=sign * b + float(rng.uniform(-YAW_JITTER, YAW_JITTER)),
                            pitch=float(rng.uniform(-PITCH, PITCH)), roll=float(rng.uniform(-ROLL, ROLL)),
                            cx=float(rng.uniform(280, 360)), cy=float(rng.uniform(200, 260)),
                            height=float(rng.uniform(170, 240)))
                frame, _ = writer.target_frame(rng, driver, nir, w_exp, pose)
                result = stage(frame)
                if not result:
                    missed += 1
                    continue
                frontal_pose = Pose(cx=pose.cx, cy=pose.cy, height=pose.height)
                source, _ = writer.source_crop(rng, driver, visible, w_exp, frontal_pose)
                rows["source_crop"].append(source)
                rows["raw_crop"].append(result.crop)   # the face stage's aligned crop of the frame
                rows["render"].append(result.frontal)
                rows["side"].append(result.side_map)
                rows["label"].append(label)
                rows["yaw"].append(pose.yaw)
                rows["fitted_yaw"].append(result.yaw)
            out[b] = {k: np.asarray(v) for k, v in rows.items()}
    return out, missed


def mean_std(values) -> dict:
    values = np.asarray(values, dtype=np.float64) * 100
    return {"mean": round(float(values.mean()), 2), "std": round(float(values.std(ddof=1)) if len(values) > 1 else 0.0, 2),
            "per_seed": [round(float(v), 2) for v in values]}


def run(args) -> dict:
    out = writable_folder(args.out, f"--out {args.out}")   # before measuring: a result that cannot be written is lost
    generators_paths = named_paths(args.generator, len(args.seeds))
    classifier = engines.load(args.classifier, threads=args.threads)
    size = classifier.info.image_size
    loaded = {}
    for name, paths in generators_paths.items():
        for path in paths:
            if path not in loaded:
                loaded[path] = engines.load(path, threads=args.threads)
                if loaded[path].info.image_size != size:
                    raise SystemExit(f"error: generator {path} takes {loaded[path].info.image_size}² images, "
                                     f"the classifier {size}²")
    combined = [f"{n}{suffix}" for n in generators_paths for suffix in ("+render", "/published")]
    rows = ["source_crop", "raw_crop", "render", *generators_paths, *combined]
    acc = {row: {b: [] for b in args.bins} for row in rows}
    samples, missed, started = {}, 0, time.perf_counter()
    saved = {}   # probs.npz: the single rows' probabilities, so a publish setting can be judged without rerunning
    for replicate, seed in enumerate(args.seeds):
        generators = {name: loaded[paths[replicate]] for name, paths in generators_paths.items()}
        data, lost = faces_for_seed(seed, args.scenario, size, args.per_bin, args.bins, args.drivers,
                                    not args.no_progress)
        missed += lost
        for b, d in data.items():
            labels = d["label"]
            probs = {row: classify(classifier, d[row], BATCH) for row in ("source_crop", "raw_crop", "render")}
            # uint8 between generator and classifier, as in the pipeline's stages
            translated = {name: from_network(translate(g, d["render"], d["side"], BATCH))
                          for name, g in generators.items()}
            for name, images in translated.items():
                probs[name] = classify(classifier, images, BATCH)
                probs[f"{name}+render"] = publish_probs(probs[name], probs["render"], "fusion", args.fusion_weight)
                probs[f"{name}/published"] = publish_probs(probs[name], probs["render"], "pose", args.pose_weight,
                                                           p_crop=probs["raw_crop"], yaw=d["fitted_yaw"],
                                                           crop_yaw=args.crop_yaw)
            for row in rows:
                acc[row][b].append(float(np.mean(probs[row].argmax(1) == labels)))
            for key, value in (*((row, probs[row]) for row in ("raw_crop", "render", *generators)),
                               ("label", labels), ("fitted_yaw", d["fitted_yaw"])):
                saved[f"{seed}/{b}/{key}"] = np.asarray(value, np.int64 if key == "label" else np.float32)
            if seed == args.seeds[0] and len(labels):
                samples[b] = [d["source_crop"][0], d["raw_crop"][0], d["render"][0],
                              *(t[0] for t in translated.values())]
    table = {row: {str(b): mean_std(acc[row][b]) for b in args.bins} for row in rows}
    pairs = [(name, base) for base in ("render", "raw_crop") for name in [*generators_paths, *combined]]
    names = list(generators_paths)
    pairs += [(name, names[0]) for name in names[1:]]   # ablations and baselines against the full model
    paired = {f"{name} - {base}": {str(b): mean_std(np.subtract(acc[name][b], acc[base][b])) for b in args.bins}
              for name, base in pairs}
    result = {"benchmark": "paper_table4", "scenario": args.scenario, "seeds": args.seeds, "per_bin": args.per_bin,
              "bins": list(args.bins), "image_size": size, "classifier": str(args.classifier),
              "generators": generators_paths,
              "publish": {"fusion_weight": args.fusion_weight, "pose_weight": args.pose_weight, "crop_yaw": args.crop_yaw},
              "accuracy": table,
              "paired": paired, "no_face": missed, "seconds": round(time.perf_counter() - started, 1)}
    (out / "table4.json").write_text(json.dumps(result, indent=1))
    np.savez_compressed(out / "probs.npz", **saved)
    chart(table, args.bins, out / "table4.png", f"held-out drivers, {args.scenario} scenario, seeds {args.seeds}")
    sample_grid(samples, ["source crop (yaw 0)", "raw crop", "render", *generators_paths], out / "samples.png")
    return result


def chart(table: dict, bins, path: Path, title: str):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for row, by_bin in table.items():
        means = [by_bin[str(b)]["mean"] for b in bins]
        stds = [by_bin[str(b)]["std"] for b in bins]
        ax.errorbar(bins, means, yerr=stds, marker="o", capsize=3, label=row,
                    linestyle="--" if "+" in row else "-")
    ax.set_xlabel("|yaw| (degrees)")
    ax.set_ylabel("accuracy % (mean ± std over seeds)")
    ax.set_xticks(list(bins))
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    save(plt, fig, path, dpi=120)


def sample_grid(samples: dict, names, path: Path, scale: int = 2):
    if not samples:
        return
    tiles = []
    for b, images in samples.items():
        row = np.concatenate([cv2.resize(im, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
                              for im in images], axis=1)
        cv2.putText(row, f"{b}", (3, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 255, 255), 1, cv2.LINE_AA)
        tiles.append(row)
    grid = np.concatenate(tiles, axis=0)
    header = np.zeros((18, grid.shape[1], 3), np.uint8)
    tile_w = grid.shape[1] // len(names)
    for i, name in enumerate(names):
        cv2.putText(header, name[:18], (i * tile_w + 2, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1,
                    cv2.LINE_AA)
    cv2.imwrite(str(path), np.concatenate([header, grid], axis=0))


def build_parser():
    p = argparse.ArgumentParser(prog="python -m benchmarks.paper_table4", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--classifier", default="models/classifier.onnx", help="source classifier (ONNX)")
    p.add_argument("--generator", action="append", default=[], metavar="NAME=G.onnx[,G2.onnx,...]",
                   help="a UIT generator to compare (repeatable); one model, or one per seed")
    p.add_argument("--scenario", choices=("pose", "camera"), default="pose")
    # The default size is what tells levers apart: at 6 drivers × 140 faces a lever's mean paired gain over
    # three seeds changed by up to 6 points on a second draw of people, as much as levers differ; at
    # 24 × 700 the paired differences' std over the seeds is 0.1-3.2 points.
    p.add_argument("--seeds", type=int, nargs="+", default=[401, 402, 403],
                   help="held-out driver seeds (never used for training data)")
    p.add_argument("--bins", type=at_least(0), nargs="+", default=list(BINS), help="|yaw| bins in degrees")
    p.add_argument("--per-bin", type=at_least(1), default=700, help="faces per bin and seed")
    p.add_argument("--drivers", type=at_least(1), default=24, help="drivers per seed")
    p.add_argument("--fusion-weight", type=between(0, 1), default=FUSION_WEIGHT,
                   help="NAME+render: the translated path's share against the render (the pipeline's `fusion`)")
    p.add_argument("--pose-weight", type=between(0, 1), default=POSE_WEIGHT,
                   help="NAME/published: the translated path's share of what the crop leaves (the pipeline's `pose`)")
    p.add_argument("--crop-yaw", type=above(0), default=CROP_YAW, help="NAME/published: the |yaw| where the crop's weight ends")
    p.add_argument("--threads", type=at_least(0), default=2)
    p.add_argument("--out", default="runs/table4")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    check_replicates(args.seeds)
    result = run(args)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(exit_status(main))
