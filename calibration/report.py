"""Accuracy and agreement of FP32 / FP16 / INT8 engines on a labelled set.

python -m calibration.report --labelled DIR --generator fp32=G.onnx --generator int8=G.int8.onnx \
    --classifier fp32=C.onnx [--classifier int8=C.int8.onnx] [--prerendered] [--out report.json]

Each precision runs the car's chain — frontal render + side map → UIT generator → classifier —
with that precision's engines (a precision without its own classifier uses the reference one);
a generator given as `identity` skips translation (the classifier sees the frontal render, as the
pipeline's --baseline does), which isolates the classifier's own INT8/FP16 loss.
Reported per precision: classifier accuracy, top-1 agreement with the reference precision, and how
far its translated images and probabilities are from the reference. The labelled set is a
class-per-folder tree (ROOT/<expression>/*.png): camera frames that go through the face stage, or
with --prerendered frontal renders with their NAME.side.png side maps (the synthetic writer's
layout). A batch with NaN/Inf outputs is counted and left out, never averaged in.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

import engines
from calibration.frames import IMAGE_SUFFIXES, SIDE_MAP_SUFFIX
from engines import chain
from engines.contract import DEFAULT_IMAGE_SIZE
from face.expressions import EXPRESSIONS, expression_index
from face.imageio import read_image, to_network
from face.outputs import writable_folder
from face.ranges import at_least


def labelled_files(root) -> list[tuple[Path, int]]:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"labelled folder {root} not found")
    items = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        try:
            label = expression_index(folder.name)
        except ValueError:
            raise ValueError(f"{folder}: folder name is not an expression; expected one of "
                             f"{', '.join(EXPRESSIONS)}") from None
        items += [(p, label) for p in sorted(folder.iterdir())
                  if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.lower().endswith(SIDE_MAP_SUFFIX)]
    if not items:
        raise ValueError(f"labelled folder {root} holds no images in expression-named sub-folders")
    return items


def _resized(image, size: int):
    """A square render at the model's size (area averaging when shrinking, as training does)."""
    if image.shape[0] == size:
        return image
    import cv2
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if image.shape[0] > size else cv2.INTER_LINEAR)


def prepare(root, size: int = DEFAULT_IMAGE_SIZE, prerendered: bool = False, stage=None):
    """(images, side_maps, labels, skipped): network-ready inputs for every usable labelled sample."""
    images, side_maps, labels, skipped = [], [], [], {}
    own_stage = stage is None and not prerendered
    if own_stage:
        from face import FaceStage
        stage = FaceStage(size=size, video=False)
    try:
        for path, label in tqdm(labelled_files(root), desc="labelled set", unit="image"):
            try:
                image = read_image(path)
            except ValueError:
                skipped["unreadable"] = skipped.get("unreadable", 0) + 1
                continue
            if prerendered:
                side_path = path.with_name(path.stem + SIDE_MAP_SUFFIX)
                if not side_path.is_file() or image.shape[0] != image.shape[1]:
                    skipped["no side map or not square"] = skipped.get("no side map or not square", 0) + 1
                    continue
                frontal, side = _resized(image, size), _resized(read_image(side_path), size)
            else:
                result = stage(image)
                if not result:
                    reason = result.reason.split(":")[0]
                    skipped[reason] = skipped.get(reason, 0) + 1
                    continue
                frontal, side = result.frontal, result.side_map
            images.append(frontal)
            side_maps.append(side)
            labels.append(label)
    finally:
        if own_stage:
            stage.close()
    if not images:
        raise ValueError(f"{root}: no usable labelled sample (skipped: {skipped})")
    return to_network(np.stack(images)), to_network(np.stack(side_maps)), np.asarray(labels), skipped


def run_chain(generator, classifier, images, side_maps, batch: int = 8):
    """(translated, probabilities, bad_batch_mask) over the whole set; generator None: no translation."""
    translated, probs, bad = [], [], []
    for start in range(0, len(images), batch):
        sl = slice(start, start + batch)
        try:
            batch_translated, batch_probs = chain.translate_and_classify(generator, classifier, images[sl],
                                                                         side_maps[sl])
            translated.append(batch_translated)
            probs.append(batch_probs)
            bad.append(np.zeros(len(batch_translated), bool))
        except engines.NonFiniteOutputError:
            n = len(images[sl])
            translated.append(np.zeros_like(images[sl]))
            probs.append(np.full((n, len(EXPRESSIONS)), np.nan))
            bad.append(np.ones(n, bool))
    return np.concatenate(translated), np.concatenate(probs), np.concatenate(bad)


def evaluate(chains: dict, images, side_maps, labels, reference: str = "fp32", batch: int = 8) -> dict:
    """chains: {precision: (generator engine or None, classifier engine)} → {precision: figures}."""
    if reference not in chains:
        raise ValueError(f"reference precision {reference!r} missing; have {sorted(chains)}")
    outputs = {name: run_chain(g, c, images, side_maps, batch) for name, (g, c) in chains.items()}
    ref_translated, ref_probs, ref_bad = outputs[reference]
    ref_pred = ref_probs.argmax(axis=1)
    report = {}
    for name, (translated, probs, bad) in outputs.items():
        ok = ~bad & ~ref_bad
        pred = np.where(bad, -1, np.nan_to_num(probs).argmax(axis=1))
        report[name] = {
            "samples": int(len(labels)),
            "nonfinite_samples": int(bad.sum()),
            "accuracy": round(float((pred == labels).mean()), 4),
            "agreement_with_" + reference: round(float((pred[ok] == ref_pred[ok]).mean()), 4) if ok.any() else None,
            "translated_mae_vs_" + reference: round(float(np.abs(translated[ok] - ref_translated[ok]).mean()), 5)
            if ok.any() else None,
            "translated_max_abs_vs_" + reference: round(float(np.abs(translated[ok] - ref_translated[ok]).max()), 4)
            if ok.any() else None,
            "probability_max_abs_vs_" + reference: round(float(np.abs(probs[ok] - ref_probs[ok]).max()), 4)
            if ok.any() else None,
        }
    return report


def _named(values, what) -> dict:
    named = {}
    for value in values or []:
        name, sep, path = value.partition("=")
        if not sep:
            raise ValueError(f"--{what} takes PRECISION=PATH (e.g. int8=model.int8.onnx), got {value!r}")
        named[name] = path
    return named


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m calibration.report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labelled", required=True,
                        help="class-per-folder tree ROOT/<expression>/*.png: camera frames, or with --prerendered "
                             "frontal renders with their NAME.side.png")
    parser.add_argument("--generator", action="append", required=True,
                        help="PRECISION=G.onnx, repeat per precision (fp32=..., int8=...); G=identity skips translation")
    parser.add_argument("--classifier", action="append", required=True,
                        help="PRECISION=C.onnx, repeat; a precision without its own uses the reference's")
    parser.add_argument("--reference", default="fp32",
                        help="the precision the others are compared with (default: %(default)s)")
    parser.add_argument("--prerendered", action="store_true",
                        help="the images are frontal renders already (no face stage)")
    parser.add_argument("--threads", type=at_least(0), default=0, help="engine threads (default: the runtime's own)")
    parser.add_argument("--out", help="also write the report JSON to this file")
    args = parser.parse_args(argv)
    try:
        return _report(args)
    except (ImportError, FileNotFoundError, ValueError) as error:   # the user's to fix: one line
        print(f"python -m calibration.report: {error}", file=sys.stderr)
        return 2


def _report(args) -> int:
    if args.out:   # tried before the chains run: a report that cannot be written is work lost
        writable_folder(Path(args.out).parent, f"--out {args.out}")
    generators, classifiers = _named(args.generator, "generator"), _named(args.classifier, "classifier")
    if args.reference not in classifiers:
        raise ValueError(f"--classifier {args.reference}=PATH is required (the reference chain)")
    options = {"threads": args.threads} if args.threads else {}
    chains = {name: (None if path == "identity" else engines.load(path, **options),
                     engines.load(classifiers.get(name, classifiers[args.reference]), **options))
              for name, path in generators.items()}
    size = chains[args.reference][1].info.image_size
    images, side_maps, labels, skipped = prepare(args.labelled, size, args.prerendered)
    result = {"labelled": args.labelled, "skipped": skipped, "reference": args.reference,
              "precisions": evaluate(chains, images, side_maps, labels, args.reference)}
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
