"""Datasets whose file names say everything (KDEF, BU-3DFE): one walk for all of them."""
import logging
from pathlib import Path

from . import Sample, list_images

log = logging.getLogger(__name__)


def index_named_files(root, parse, keep, domain: str, dataset: str, example: str) -> list[Sample]:
    """Samples of every image under `root` whose name `parse` decodes (a dict with label, subject
    and meta fields, or None) and `keep(info)` accepts. Other names are counted in a warning."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{dataset} folder {root} does not exist")
    samples, foreign = [], []
    for path in list_images(root):
        info = parse(path)
        if info is None:
            foreign.append(path)
        elif keep(info):
            meta = {k: v for k, v in info.items() if k not in ("label", "subject")}
            samples.append(Sample(path=path, label=info["label"], subject=info["subject"], domain=domain, meta=meta))
    if foreign:
        log.warning("%s: %d images without a %s name left out (first: %s)", root, len(foreign), dataset, foreign[0])
    if not samples:
        raise ValueError(f"{root}: no {dataset} images (names like {example}) with the asked selection")
    return samples
