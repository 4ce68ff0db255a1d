"""Plain folders: a class-per-folder tree (labelled) or any folder of images (unlabelled).

Labelled layout: ROOT/<expression>/*.png, the folder names being expression names
(`face.expressions.EXPRESSIONS`, any case) or the usual words for them ("happy", "angry", ...:
`train.datasets.labels`). A dataset may hold only some of the seven classes
(MMI has six), but a class folder that is there must hold images.
"""
from pathlib import Path

from face.expressions import EXPRESSIONS

from . import Sample, list_images
from .labels import known_names, label_index


def _existing_folder(root, what: str) -> Path:
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"{what} folder {root} does not exist")
    if not root.is_dir():
        raise NotADirectoryError(f"{what} folder {root} is not a folder")
    return root


def index_labelled_folder(root, domain: str = "source") -> list[Sample]:
    """Samples of a class-per-folder tree; a clear error for a missing/empty tree, an unknown
    class folder, or a class folder with no images."""
    root = _existing_folder(root, f"labelled {domain}")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise ValueError(
            f"labelled {domain} folder {root} has no class folders; expected sub-folders named "
            f"after expressions ({', '.join(EXPRESSIONS)}) holding images")
    samples: list[Sample] = []
    for class_dir in class_dirs:
        try:
            label = label_index(class_dir.name)
        except ValueError:
            raise ValueError(f"{class_dir}: folder name is not an expression; expected one of "
                             f"{', '.join(known_names('generic'))}") from None
        images = list_images(class_dir)
        if not images:
            raise ValueError(f"{class_dir}: class {EXPRESSIONS[label]!r} has no images")
        samples.extend(Sample(path=p, label=label, domain=domain) for p in images)
    return samples


def index_unlabelled_folder(root, domain: str = "target") -> list[Sample]:
    """Every image under `root` (recursively), without labels."""
    root = _existing_folder(root, f"unlabelled {domain}")
    images = list_images(root)
    if not images:
        raise ValueError(f"{domain} folder {root} holds no images")
    return [Sample(path=p, label=None, domain=domain) for p in images]
