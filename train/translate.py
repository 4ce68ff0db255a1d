"""`python -m train translate`: apply a trained generator to one image or a folder.

    python -m train translate --checkpoint runs/uit --input frames/ --out translated/
    python -m train translate --checkpoint runs/cgit --input face.png --out fig4/ --expression all

UIT writes OUT/NAME.png (the translation) and OUT/NAME.side.png (its side map). CGIT writes one
translation per asked expression, OUT/<expression>/NAME.png, and with several expressions a
strip per image, OUT/strips/NAME.png: the input, then every expression in order, each named
(paper fig. 4).
Side maps come from NAME.side.png beside an input or are computed by the face stage into
OUT/.cache. Camera frames (images that are not square) are first cropped to the face and aligned
by the face stage, as the training images were (`--face-crop`). Unreadable files are skipped,
logged and counted.
"""
import argparse
import logging
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image
import torch.nn.functional as F

from face.expressions import EXPRESSIONS, expression_index
from face.imageio import from_network, write_image
from face.outputs import writable_folder
from face.ranges import at_least

from .checkpoint import load_model
from .data import ImageDataset, SideMaps, read_generator_batch
from .datasets import Sample, is_image_file
from .datasets.folder import index_unlabelled_folder
from .distributed import pick_device
from .runlog import setup_logging, write_json


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m train translate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="checkpoint file or run folder")
    p.add_argument("--input", required=True, help="an image file or a folder of images")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--generator", default=None, choices=("G_ts", "G_ts_ema", "G_st"),
                   help="G_ts: target→source (the car's direction; its weight average G_ts_ema by default when "
                        "the run kept one); G_st: source→target")
    p.add_argument("--expression", default="all",
                   help="CGIT: an expression name, a comma list, or 'all' (default)")
    p.add_argument("--batch-size", type=at_least(1), default=8)
    p.add_argument("--device", default="auto")
    p.add_argument("--cache", help="where computed side maps and face crops go (default OUT/.cache)")
    p.add_argument("--face-crop", choices=("auto", "face", "none"), default="auto",
                   help="align each face with the face stage first: auto = for images that are not square (camera "
                        "frames; a square image is taken as an aligned face crop), face = always, none = never "
                        "(default: %(default)s)")
    return p


def with_face_crops(samples: list[Sample], mode: str, cache: Path, size: int, logger) -> list[Sample]:
    """Camera frames (or, with mode "face", every image) replaced by the face stage's aligned crop of
    their face, as the generator was trained on; `meta["original"]` keeps the frame's path."""
    if mode == "none":
        return samples
    if mode == "auto":
        def is_frame(sample):   # the header's size only: the image itself is read once, later
            try:
                with Image.open(sample.path) as image:
                    return image.width != image.height
            except OSError:
                return False   # unreadable: skipped and counted where it is read
        chosen = [i for i, sample in enumerate(samples) if is_frame(sample)]
    else:
        chosen = list(range(len(samples)))
    if not chosen:
        return samples
    from .datasets.face_crops import crop_faces
    cropped, counts = crop_faces([samples[i] for i in chosen], cache / "face_crops", size, progress=False)
    logger.info("face crops of %d camera frames: %s", len(chosen), counts)
    out = list(samples)
    for i, sample in zip(chosen, cropped):
        out[i] = sample
    return out


def input_samples(path) -> tuple[list[Sample], Path]:
    """Samples for a file or a folder, and the root their output names are relative to."""
    path = Path(path)
    if path.is_file():
        if not is_image_file(path):
            raise ValueError(f"{path}: not an image file")
        return [Sample(path, domain="input")], path.parent
    return index_unlabelled_folder(path, domain="input"), path


def expressions_asked(text: str) -> list[int]:
    if text.strip().lower() == "all":
        return list(range(len(EXPRESSIONS)))
    return [expression_index(name) for name in text.split(",") if name.strip()]


def to_expression(model, x: torch.Tensor, label: int) -> np.ndarray:
    """A CGIT generator's translation of a batch (image + side map, N×6×H×W) to one expression,
    as uint8 BGR images."""
    onehot = F.one_hot(torch.full((x.shape[0],), label, device=x.device), len(EXPRESSIONS)).float()
    return from_network(model(x, onehot)[0].float().cpu().numpy())


def labelled_strip(images, titles, scale: int = 2) -> np.ndarray:
    """Images side by side (each scaled up `scale`×, so the names fit a 64² face) under a black band
    naming each column — a CGIT strip reads as the paper's figure 4: input, then the expressions."""
    tiles = [cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST) for image in images]
    strip = np.concatenate(tiles, axis=1)
    band = np.zeros((16, strip.shape[1], 3), np.uint8)
    for i, (tile, title) in enumerate(zip(tiles, titles)):
        cv2.putText(band, title, (i * tile.shape[1] + 2, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.36, (255, 255, 255), 1,
                    cv2.LINE_AA)
    return np.concatenate([band, strip], axis=0)


@torch.no_grad()
def translate(checkpoint, input_path, out, generator=None, expression="all", batch_size=8, device="auto",
              cache=None, logger=None, face_crop="auto") -> dict:
    logger = logger or logging.getLogger("train")
    out = Path(out)
    model, config, kind = load_model(checkpoint, generator)
    device = pick_device(device)
    model = model.to(device)
    conditioned = getattr(model, "num_classes", 0) > 0
    labels = expressions_asked(expression) if conditioned else []
    samples, root = input_samples(input_path)
    cache = Path(cache) if cache else out / ".cache"
    samples = with_face_crops(samples, face_crop, cache, int(config["image_size"]), logger)
    side_maps = SideMaps(cache)
    dataset = ImageDataset(samples, int(config["image_size"]), side_maps)
    from tqdm import tqdm
    written, bad = 0, []
    for first in tqdm(range(0, len(samples), batch_size), desc="translate", unit="batch"):
        x, batch = read_generator_batch(dataset, range(first, min(first + batch_size, len(samples))), device, logger)
        bad.extend(path for path, _ in batch["bad"])
        if x is None:
            continue
        names = [Path(samples[int(i)].meta.get("original", samples[int(i)].path)).relative_to(root).with_suffix(".png")
                 for i in batch["index"]]
        if not conditioned:
            image, side = (from_network(t.float().cpu().numpy()) for t in model(x))
            for k, name in enumerate(names):
                write_image(out / name, image[k])
                write_image(out / name.with_name(name.stem + ".side.png"), side[k])
                written += 1
            continue
        per_expression = []
        for label in labels:
            image = to_expression(model, x, label)
            per_expression.append(image)
            for k, name in enumerate(names):
                write_image(out / EXPRESSIONS[label] / name, image[k])
                written += 1
        if len(labels) > 1:
            inputs = from_network(batch["image"].numpy())
            for k, name in enumerate(names):
                write_image(out / "strips" / name, labelled_strip([inputs[k]] + [imgs[k] for imgs in per_expression],
                                                                ["input"] + [EXPRESSIONS[i] for i in labels]))
    summary = {"checkpoint": str(checkpoint), "kind": kind, "generator": generator, "inputs": len(samples),
               "written": written, "bad_files": bad, "expressions": [EXPRESSIONS[i] for i in labels],
               "no_face_side_maps": side_maps.counts["no_face"]}
    write_json(out / "translate_summary.json", summary)
    return summary


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logger = setup_logging(None)
    try:
        writable_folder(args.out, f"--out {args.out}")
        summary = translate(args.checkpoint, args.input, args.out, args.generator, args.expression,
                            args.batch_size, args.device, args.cache, logger, args.face_crop)
    except (ValueError, FileNotFoundError) as error:   # no images there, a generator that does not fit
        raise SystemExit(f"error: {error}") from None
    logger.info("wrote %d images to %s (%d unreadable inputs skipped)", summary["written"], args.out,
                len(summary["bad_files"]))
    return 0
