"""CGIT data augmentation (paper table 3): a trained CGIT generator translates unlabelled faces
into each training class, adding `per_class` images per class to a classifier's training data."""
import json
import shutil
from pathlib import Path

import torch

from engines.contract import CGIT_GENERATOR
from face.expressions import EXPRESSIONS

from .checkpoint import CheckpointError, load_model
from .data import ImageDataset, SideMaps, read_generator_batch
from .datasets.folder import index_unlabelled_folder
from .run_setup import samples_digest
from .runlog import write_json
from .translate import to_expression, write_png

BATCH_SIZE = 16


def _generator_inputs(inputs: str | None, cgit_config: dict) -> Path:
    source = inputs or cgit_config.get("target")
    if not source or not Path(source).is_dir():
        raise SystemExit(f"error: no images for the CGIT generator to translate: the CGIT run's target folder "
                         f"{source!r} is not here; give --augment-from DIR")
    return Path(source)


@torch.no_grad()
def generate_augmentation(run_dir: Path, classes: list[int], *, checkpoint: str, per_class: int, seed: int,
                          inputs: str | None, device, logger, progress: bool) -> Path:
    """RUN_DIR/augmented/<expression>/*.png: `per_class` CGIT translations per class, of the
    inputs (`inputs`, else the CGIT run's target folder) in a seeded order, cycled when there are
    fewer inputs. Kept across resumes: a manifest says what was made, and a finished set is reused."""
    from tqdm import tqdm

    out = run_dir / "augmented"
    generator, cgit_config, kind = load_model(checkpoint, "G_ts")
    if kind != CGIT_GENERATOR:
        raise CheckpointError(f"{checkpoint}: a {kind} checkpoint; augmentation needs a CGIT generator "
                              f"(python -m train exprada --mode cgit)")
    images = index_unlabelled_folder(_generator_inputs(inputs, cgit_config), domain="cgit-input")
    manifest = {"checkpoint": checkpoint, "per_class": per_class, "seed": seed,
                "classes": [EXPRESSIONS[k] for k in classes], "inputs": samples_digest(images)}
    manifest_path = out / "manifest.json"
    if manifest_path.is_file() and json.loads(manifest_path.read_text()) == manifest:
        logger.info("CGIT augmentation already made: %s", out)
        return out
    if out.exists():
        shutil.rmtree(out)
    generator = generator.to(device)
    dataset = ImageDataset(images, int(cgit_config["image_size"]), SideMaps(run_dir / "cache"))
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed)).tolist()
    bad = set()
    bar = tqdm(total=per_class * len(classes), desc="CGIT augmentation", unit="img", disable=not progress)
    cursor = 0
    for label in classes:
        (out / EXPRESSIONS[label]).mkdir(parents=True, exist_ok=True)
        made = 0
        while made < per_class:
            keys = []  # the next inputs in the seeded order, unreadable ones passed over
            while len(keys) < min(BATCH_SIZE, per_class - made):
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
            for image in to_expression(generator, x, label):
                write_png(out / EXPRESSIONS[label] / f"cgit_{made:06d}.png", image)
                made += 1
                bar.update(1)
    bar.close()
    write_json(manifest_path, manifest)
    logger.info("CGIT augmentation: %d images per class for %s from %d inputs (%d unreadable)",
                per_class, ", ".join(EXPRESSIONS[k] for k in classes), len(images), len(bad))
    return out
