"""CGIT data augmentation (paper table 3): a trained CGIT generator translates unlabelled faces
into each training class, adding `per_class` images per class to a classifier's training data; or,
as the baseline the table compares with, as many plain flipped and cropped copies of the labelled
training images; or both at once: CGIT images, each flipped and cropped as the baseline's are; or
the expression pairs beside the labelled images (each face in the other expressions, as
`train warp-pairs` makes them from single labelled faces), added to the classes they show."""
import itertools
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import torch

from engines.contract import CGIT_GENERATOR, CLASSIFIER
from face.expressions import EXPRESSIONS
from face.imageio import read_image, to_network, write_image

from .checkpoint import load_model
from .data import ImageDataset, SideMaps, crop_box, crop_square, pairs_of, read_generator_batch, square_resize
from .datasets import EXPRESSION_PAIR_SUFFIXES
from .datasets.folder import index_unlabelled_folder
from .run_setup import samples_digest
from .runlog import write_json
from .translate import to_expression

BATCH_SIZE = 16
INPUT_DOMAIN = "CGIT input"   # what the generator translates, as errors about its folder name it


def _generator_inputs(inputs: str | None, cgit_config: dict) -> Path:
    source = inputs or cgit_config.get("target")
    if not source or not Path(source).is_dir():
        raise SystemExit(f"error: no images for the CGIT generator to translate: the CGIT run's target folder "
                         f"{source!r} is not here; give --augment-from DIR")
    return Path(source)


def _reuse_or_clear(out: Path, manifest: dict, logger) -> bool:
    """True when OUT holds a finished set made from the same manifest; else OUT is cleared."""
    manifest_path = out / "manifest.json"
    if manifest_path.is_file() and json.loads(manifest_path.read_text()) == manifest:
        logger.info("augmentation already made: %s", out)
        return True
    if out.exists():
        shutil.rmtree(out)
    return False


def flip_crop(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A square image cropped to a random square as the classifier's on-the-fly crops are (`crop_box`), scaled
    back, flipped half the time."""
    copy = crop_square(image, *crop_box(image.shape[0], rng.random(3)))
    return copy[:, ::-1] if rng.random() < 0.5 else copy


def generate_flips_crops(run_dir: Path, samples, *, per_class: int, seed: int, size: int, logger) -> Path:
    """RUN_DIR/augmented/<expression>/*.png: `per_class` copies per class of the labelled training
    images, each flipped at random and cropped to a random square of 80–100 % of its side, resized
    back to `size` — the plain augmentation CGIT images are compared with (same count per class)."""
    out = run_dir / "augmented"
    by_class = {}
    for sample in samples:
        by_class.setdefault(sample.label, []).append(sample)
    manifest = {"flips_crops": True, "per_class": per_class, "seed": seed, "size": size,
                "classes": [EXPRESSIONS[k] for k in sorted(by_class)], "inputs": samples_digest(samples)}
    if _reuse_or_clear(out, manifest, logger):
        return out
    rng = np.random.default_rng(seed)
    for label, members in sorted(by_class.items()):
        images = []
        for sample in members:
            try:
                images.append(square_resize(read_image(sample.path), size))
            except (ValueError, OSError, cv2.error) as err:
                logger.warning("flips-and-crops: skipped unreadable %s (%s)", sample.path, err)
        if not images:
            raise ValueError(f"no readable {EXPRESSIONS[label]} training image to flip and crop")
        folder = out / EXPRESSIONS[label]
        folder.mkdir(parents=True, exist_ok=True)
        for made in range(per_class):
            image = images[int(rng.integers(len(images)))]
            write_image(folder / f"flipcrop_{made:06d}.png", flip_crop(image, rng))
    write_json(out / "manifest.json", manifest)
    logger.info("flips-and-crops augmentation: %d images per class from %d training images", per_class, len(samples))
    return out


def generate_pair_copies(run_dir: Path, samples, *, per_class: int, seed: int, size: int, flips_crops: bool,
                         logger) -> Path:
    """RUN_DIR/augmented/<expression>/*.png: `per_class` images per class of the training faces' expression
    pairs in that class (NAME.as-<expression>.png beside each face), in a seeded order,
    cycled when there are fewer (each read once); each flipped and cropped as the baseline's copies with
    `flips_crops`. A face's own class is never among its pairs. An unreadable pair is skipped and counted."""
    out = run_dir / "augmented"
    classes = sorted({s.label for s in samples})
    manifest = {"pairs": True, "per_class": per_class, "seed": seed, "size": size, "flips_crops": flips_crops,
                "classes": [EXPRESSIONS[k] for k in classes], "inputs": samples_digest(samples)}
    if _reuse_or_clear(out, manifest, logger):
        return out
    rng = np.random.default_rng(seed)
    found, unreadable = {}, 0
    pairs = [(s.label, pairs_of(s, "expression")) for s in samples]   # each face's seven, looked up once
    for label in classes:
        paths = [of[label] for own, of in pairs if own != label and of[label] is not None]
        if not paths:
            raise ValueError(f"no {EXPRESSIONS[label]} expression pair beside the training images "
                             f"(NAME{EXPRESSION_PAIR_SUFFIXES[EXPRESSIONS[label]]}; `train warp-pairs` writes them)")
        folder = out / EXPRESSIONS[label]
        folder.mkdir(parents=True, exist_ok=True)
        order, made, failed, read = rng.permutation(len(paths)), 0, set(), {}
        for k in itertools.cycle(order):
            if made == per_class or len(failed) == len(paths):
                break
            if k in failed:
                continue
            if k not in read:
                try:
                    read[k] = square_resize(read_image(paths[k]), size)
                except (ValueError, OSError, cv2.error) as err:
                    logger.warning("pair augmentation: skipped unreadable %s (%s)", paths[k], err)
                    failed.add(k)
                    continue
            write_image(folder / f"pair_{made:06d}.png", flip_crop(read[k], rng) if flips_crops else read[k])
            made += 1
        if made < per_class:
            raise ValueError(f"no readable {EXPRESSIONS[label]} expression pair among {len(paths)} beside the training images")
        found[EXPRESSIONS[label]] = len(paths) - len(failed)
        unreadable += len(failed)
    write_json(out / "manifest.json", manifest)
    logger.info("pair augmentation: %d images per class from the training faces' pairs (distinct per class: %s; "
                "%d unreadable)", per_class, ", ".join(f"{k} {v}" for k, v in found.items()), unreadable)
    return out


class Judge:
    """A classifier that sorts CGIT images: an image is kept only where it reads it as the class it
    was made for, to drop translations whose expression did not come across (label noise). The
    classifier of the labelled set alone needs no label the user does not already have; how much noise
    it removes is only as good as it is (the README's table 3 measures one)."""

    def __init__(self, checkpoint: str, device):
        net, config, _ = load_model(checkpoint, expect=CLASSIFIER, needed_by="--augment-judge")
        self.net, self.size, self.device = net.to(device), int(config["image_size"]), device

    @torch.no_grad()
    def agrees(self, images: np.ndarray, label: int) -> np.ndarray:
        """Per uint8 BGR image: does the classifier read it as `label`? (It sees each image as it will
        be read back from its PNG: squared and resized to its own size.)"""
        x = to_network(np.stack([square_resize(image, self.size) for image in images]))
        logits = self.net(torch.from_numpy(x).to(self.device))[0]
        return (logits.argmax(1) == label).cpu().numpy()


@torch.no_grad()
def generate_augmentation(run_dir: Path, classes: list[int], *, checkpoint: str, per_class: int, seed: int,
                          inputs: str | None, device, logger, progress: bool, judge: str | None = None,
                          flips_crops: bool = False) -> Path:
    """RUN_DIR/augmented/<expression>/*.png: `per_class` CGIT translations per class, of the
    inputs (`inputs`, else the CGIT run's target folder) in a seeded order, cycled when there are
    fewer inputs. With `judge` (a classifier checkpoint) only the translations it reads as their class
    are kept, each input tried once per class; a class that keeps fewer than `per_class` repeats its
    kept images, and RUN_DIR/augmented/judged.json counts what was tried and kept. With `flips_crops`
    each image is written flipped and cropped as `generate_flips_crops` makes its copies (after the judge
    read it). Kept across resumes: a manifest says what was made, and a finished set is reused."""
    from tqdm import tqdm

    out = run_dir / "augmented"
    generator, cgit_config, _ = load_model(checkpoint, "G_ts", expect=CGIT_GENERATOR, needed_by="augmentation")
    images = index_unlabelled_folder(_generator_inputs(inputs, cgit_config), domain=INPUT_DOMAIN)
    if per_class > len(images):   # the generator is deterministic: an input met again repeats its image
        logger.warning("CGIT augmentation: %d images per class from %d inputs: %d of each class's images repeat "
                       "one already made (more inputs: --augment-from DIR)", per_class, len(images),
                       per_class - len(images))
    manifest = {"checkpoint": checkpoint, "per_class": per_class, "seed": seed,
                "classes": [EXPRESSIONS[k] for k in classes], "inputs": samples_digest(images)}
    if judge:   # only then: sets made before judging existed keep their manifests
        manifest["judge"] = judge
    if flips_crops:   # only then too: sets made before cropping existed keep their manifests
        manifest["flips_crops"] = True
    if _reuse_or_clear(out, manifest, logger):
        return out
    generator = generator.to(device)
    sorter = Judge(judge, device) if judge else None
    dataset = ImageDataset(images, int(cgit_config["image_size"]), SideMaps(run_dir / "cache"))
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed)).tolist()
    jitter = np.random.default_rng(seed)
    bad = set()
    judged = {}
    bar = tqdm(total=per_class * len(classes), desc="CGIT augmentation", unit="img", disable=not progress)
    cursor = 0
    for label in classes:
        folder = out / EXPRESSIONS[label]
        folder.mkdir(parents=True, exist_ok=True)
        made = tried = 0
        while made < per_class:
            # Judged: each readable input once per class. Else the inputs cycle until the class is full.
            room = per_class - made if sorter is None else len(images) - len(bad) - tried
            if room <= 0:
                break
            keys = []  # the next inputs in the seeded order, unreadable ones passed over
            while len(keys) < min(BATCH_SIZE, room):
                if len(bad) == len(images):
                    raise ValueError(f"no readable input image for the CGIT generator under {images[0].path.parent}")
                key = order[cursor % len(order)]
                cursor += 1
                if str(images[key].path) not in bad:
                    keys.append(key)
            x, batch = read_generator_batch(dataset, keys, device, logger, "CGIT augmentation: ")
            bad.update(path for path, _ in batch["bad"])
            if x is None:
                continue
            made_now = to_expression(generator, x, label)
            tried += len(made_now)
            if sorter is not None:
                made_now = made_now[sorter.agrees(made_now, label)]
            for image in made_now[:per_class - made]:
                write_image(folder / f"cgit_{made:06d}.png", flip_crop(image, jitter) if flips_crops else image)
                made += 1
                bar.update(1)
        if sorter is not None:
            judged[EXPRESSIONS[label]] = {"tried": tried, "kept": made}
            _repeat_kept(folder, made, per_class, EXPRESSIONS[label], logger)
    bar.close()
    if sorter is not None:
        write_json(out / "judged.json", judged)
    write_json(out / "manifest.json", manifest)
    logger.info("CGIT augmentation: %d images per class for %s from %d inputs (%d unreadable)%s",
                per_class, ", ".join(EXPRESSIONS[k] for k in classes), len(images), len(bad),
                f"; kept by {judge}: " + ", ".join(f"{k} {v['kept']} of {v['tried']}" for k, v in judged.items())
                if sorter is not None else "")
    return out


def _repeat_kept(folder: Path, kept: int, per_class: int, expression: str, logger) -> None:
    """Fill a judged class up to `per_class` with copies of its `kept` images, in turn."""
    if kept == 0:
        raise ValueError(f"the judge read none of the CGIT {expression} images as {expression}: no image to keep")
    if kept < per_class:
        logger.warning("CGIT augmentation: the judge kept %d %s images, fewer than %d: each repeats about %.1f times",
                       kept, expression, per_class, per_class / kept)
    for made in range(kept, per_class):
        shutil.copyfile(folder / f"cgit_{made % kept:06d}.png", folder / f"cgit_{made:06d}.png")
