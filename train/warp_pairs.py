"""`python -m train warp-pairs`: expression pairs for CGIT from single labelled faces (beyond the paper).

    python -m train warp-pairs --data cache/synth64/source --out runs/cgit/warp64
    python -m train exprada --mode cgit --source runs/cgit/warp64 --target runs/cgit/warp64 --lambda-pair 300 ...

CGIT's pair term (`--lambda-pair`) holds each translation to the same face in the asked expression —
which KDEF and BU-3DFE photograph, and most labelled sets do not. This command makes such pairs from
the labelled faces alone: the face stage fits the bilinear model to each aligned face crop (whole
portraits, as KDEF's, are first cropped and aligned by the face stage, as for the classifier), and the
crop is warped to every other expression's geometry (train.expression_warp). Each expression's
geometry is the mean fitted expression of that class's images, calibrated so that a face warped to
it is fitted, in the mean, as that class's own faces are (the fit under-reads the expression of a
small crop; a warp to the plain mean would under-draw it by as much).

Writes OUT/<expression>/NAME.png (each labelled image, copied as it is, with its NAME.side.png when it
has one), NAME.as-<expression>.png beside it for the six other expressions, and OUT/expressions.json:
the means, the calibrated targets, how close the calibration came, and the counts.

    python -m train warp-pairs --data renders/ --unlabelled --targets runs/cgit/warp64/expressions.json --out PAIRED

`--targets` takes each expression's geometry from an earlier run's expressions.json instead (no means, no
calibration); with it, `--unlabelled` pairs faces that have no label (e.g. the simulated renders CGIT
translates): each is copied to OUT/NAME.png with all seven pairs beside it. A face the fit does
not find keeps its image without pairs; an unreadable file or one that is not a square crop is skipped;
each is logged and counted.
"""
import argparse
import json
import logging
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from face import bilinear
from face.expressions import EXPRESSIONS
from face.imageio import write_image
from face.outputs import writable_folder
from face.ranges import at_least

from .data import expression_pair_beside, read_image, side_map_beside
from .datasets.face_crops import crop_faces
from .datasets.sources import add_data_arguments, data_options, load_samples, wants_face_crop
from .datasets.folder import index_unlabelled_folder
from .expression_warp import ExpressionMeans, ExpressionWarp, load_targets
from .runlog import setup_logging, write_json

log = logging.getLogger("train.warp_pairs")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m train warp-pairs", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="labelled aligned face crops (a class-folder tree or a CSV)")
    p.add_argument("--out", required=True, help="output folder (a labelled class-folder tree)")
    p.add_argument("--model", default=None, help="bilinear model .npz (default: the shipped one)")
    p.add_argument("--image-size", type=at_least(32), default=128,
                   help="side of the face crops made from whole frames (kdef, mmi, --face-crop face; default: "
                        "%(default)s); a set of crops keeps its own size")
    p.add_argument("--targets", default=None, metavar="EXPRESSIONS_JSON",
                   help="each expression's geometry from this earlier run's expressions.json (with its model): "
                        "no class means, no calibration")
    p.add_argument("--unlabelled", action="store_true",
                   help="--data is a folder of faces without labels: each gets all seven pairs (needs --targets)")
    p.add_argument("--calibrate-images", type=at_least(0), default=60,
                   help="faces whose warps calibrate each expression's geometry (0: the plain class means)")
    p.add_argument("--calibrate-rounds", type=at_least(1), default=3)
    p.add_argument("--seed", type=int, default=0, help="which faces calibrate")
    p.add_argument("--no-progress", action="store_true")
    add_data_arguments(p)
    return p


def calibrate(warp: ExpressionWarp, faces, means: np.ndarray, rounds: int):
    """Targets whose warps the fit reads as `means`: each round warps the faces to every target, fits
    the warps, and moves each target by what its fits fall short of its mean. Returns (targets,
    per round the largest distance between a class's fitted warps and its mean)."""
    targets, gaps = means.copy(), []
    for _ in range(rounds):
        fitted = ExpressionMeans(means.shape[1])
        for crop, shape in faces:
            for label in range(len(EXPRESSIONS)):
                again = warp.fit(warp(crop, shape, targets[label]))
                if again is not None:
                    fitted.add(label, again.w_exp)
        shortfall = means - fitted.means()
        gaps.append(round(float(np.linalg.norm(shortfall, axis=1).max()), 4))
        targets = targets + shortfall
    return targets, gaps


def unique_name(folder: Path, stem: str, taken: set) -> str:
    name, k = stem, 1
    while (folder, name) in taken:
        name, k = f"{stem}-{k}", k + 1
    taken.add((folder, name))
    return name


def run(args) -> dict:
    if args.unlabelled and not args.targets:
        raise ValueError("--unlabelled faces have no class to take means from: give --targets EXPRESSIONS_JSON")
    if args.targets and args.model:
        raise ValueError("--targets names the model its geometry belongs to: give no --model with it")
    targets, model = load_targets(args.targets) if args.targets else (None, bilinear.load(args.model))
    out = writable_folder(args.out, f"--out {args.out}")
    options = data_options(args)
    if args.unlabelled:
        samples, fmt = index_unlabelled_folder(args.data, domain="unlabelled face"), "unlabelled"
    else:
        samples, fmt = load_samples(args.data, options)
    crops = tempfile.TemporaryDirectory(prefix="warp-pairs-")   # whole frames' crops live only until copied to OUT
    if wants_face_crop(fmt, options):
        samples, cropped = crop_faces(samples, crops.name, args.image_size, progress=not args.no_progress)
        log.info("face crops: %s", cropped)
    warp = ExpressionWarp(model)
    counts = {"images": 0, "no_face": 0, "unreadable": 0, "not_square": 0, "pairs": 0}
    means = ExpressionMeans(model.num_expression)
    shapes = []
    started = time.perf_counter()
    try:
        for sample in tqdm(samples, desc="fit", disable=args.no_progress):
            try:
                crop = read_image(sample.path)
            except (OSError, ValueError) as error:
                log.warning("skipped unreadable %s (%s)", sample.path, error)
                counts["unreadable"] += 1
                continue
            if crop.shape[0] != crop.shape[1]:
                log.warning("skipped %s: %dx%d is not a square face crop (align faces first, as train synth "
                            "and the dataset loaders' --face-crop do)", sample.path, crop.shape[1], crop.shape[0])
                counts["not_square"] += 1
                continue
            shape = warp.fit(crop)
            if shape is None:
                counts["no_face"] += 1
            elif sample.label is not None:
                means.add(sample.label, shape.w_exp)
            shapes.append((sample, crop, shape))
        class_means, chosen, gaps = None, [], []
        if targets is None:
            class_means = means.means()
            fitted = [(crop, shape) for _, crop, shape in shapes if shape is not None]
            rng = np.random.default_rng(args.seed)
            chosen = [fitted[i] for i in rng.permutation(len(fitted))[:args.calibrate_images]]
            targets, gaps = calibrate(warp, chosen, class_means, args.calibrate_rounds) if chosen else (class_means, [])
        taken = set()
        for sample, crop, shape in tqdm(shapes, desc="warp", disable=args.no_progress):
            folder = out if sample.label is None else out / EXPRESSIONS[sample.label]
            folder.mkdir(exist_ok=True)
            named = Path(sample.meta.get("original", sample.path))   # a whole frame's crop keeps the frame's name
            image = folder / (unique_name(folder, named.stem, taken) + sample.path.suffix.lower())
            shutil.copyfile(sample.path, image)
            if side_map_beside(sample.path).is_file():
                shutil.copyfile(side_map_beside(sample.path), side_map_beside(image))
            counts["images"] += 1
            if shape is None:
                continue
            for label, name in enumerate(EXPRESSIONS):
                if label != sample.label:
                    write_image(expression_pair_beside(image, name), warp(crop, shape, targets[label]))
                    counts["pairs"] += 1
    finally:
        warp.close()
        crops.cleanup()
    # the shipped model is named by no path (None), so the record stays valid wherever the project moves
    source = Path(model.source).resolve()
    model_path = None if source == bilinear.DEFAULT_MODEL_PATH else str(source)
    summary = {"data": str(args.data), "format": fmt, "out": str(out), "counts": counts,
               "class_images": means.counts.tolist(), "calibration_images": len(chosen),
               "calibration_gaps": gaps, "seconds": round(time.perf_counter() - started, 1),
               "means": None if class_means is None else class_means.round(6).tolist(),
               "targets": targets.round(6).tolist(), "targets_from": args.targets,
               "expressions": list(EXPRESSIONS), "model_path": model_path, "model": model.description}
    write_json(out / "expressions.json", summary)
    return summary


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(None)
    try:
        summary = run(args)
    except (FileNotFoundError, ValueError) as error:
        raise SystemExit(f"error: {error}") from None
    print(json.dumps({k: v for k, v in summary.items() if k not in ("means", "targets")}))
    return 0
