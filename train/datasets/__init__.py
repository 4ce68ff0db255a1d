"""Dataset indexing: every loader turns a dataset's own layout into a list of `Sample`s.

A `Sample` says where an image is and what is known about it; reading and transforming it is
`train/data.py`'s job, so every dataset layout shares one reader.
"""
import re
from dataclasses import dataclass, field
from pathlib import Path

from face.expressions import EXPRESSIONS

# Image files a loader picks up (lower-case suffixes). Side maps (`NAME.side.png`), frontal pairs
# (`NAME.pair.png`) and expression pairs (`NAME.as-<expression>.png`) belong to the image beside them
# and are never samples.
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm", ".ppm", ".webp"})
SIDE_MAP_SUFFIX = ".side.png"
# Beside a frontal render of a near-frontal frame: the camera's own aligned crop of that frame, the
# real image the render simulates (train synth writes them; `--lambda-pair` trains on them).
PAIR_SUFFIX = ".pair.png"
# NAME_turn+30.png: that render turned 30° further (rotate and render), paired with the same crop
# (train renders / train synth --turn-pairs).
TURNED = "_turn"
_TURNED_NAME = re.compile(re.escape(TURNED) + r"[+-]\d")
# Beside a labelled face: the same head, pose and camera in another expression (train synth
# --expression-pairs writes them; KDEF and BU-3DFE photograph every person in every expression), the
# real image a CGIT translation to that expression should be (`exprada --mode cgit --lambda-pair`).
EXPRESSION_PAIR_SUFFIXES = {name: f".as-{name}.png" for name in EXPRESSIONS}


def is_turned(path) -> bool:
    """Whether an image is a rotate-and-render render (NAME_turn±D.png)."""
    return _TURNED_NAME.search(Path(path).stem) is not None


@dataclass(frozen=True)
class Sample:
    """One image of a dataset.

    label: index into `face.expressions.EXPRESSIONS`, or None when unlabelled.
    subject: the person's id where the dataset gives one (subject-independent splits), else None.
    domain: free text naming where it came from ("source", "target", "kdef", ...).
    meta: anything else a loader knows (pose, sequence, frame, ...), JSON-able values.
    """

    path: Path
    label: int | None = None
    subject: str | None = None
    domain: str = ""
    meta: dict = field(default_factory=dict, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "path", Path(self.path))
        if self.label is not None and not (0 <= int(self.label) < len(EXPRESSIONS)):
            raise ValueError(f"{self.path}: label {self.label} is not an index into {len(EXPRESSIONS)} expressions")


def is_image_file(path: Path) -> bool:
    name = path.name.lower()
    return (path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES
            and not name.endswith((SIDE_MAP_SUFFIX, PAIR_SUFFIX, *EXPRESSION_PAIR_SUFFIXES.values())))


def list_images(folder: Path, recursive: bool = True) -> list[Path]:
    """Image files under `folder`, sorted so every run (and every process) sees one order."""
    folder = Path(folder)
    candidates = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in candidates if is_image_file(p))


def label_counts(samples) -> dict[str, int]:
    """Images per expression name (unlabelled samples under "unlabelled")."""
    counts: dict[str, int] = {}
    for sample in samples:
        name = "unlabelled" if sample.label is None else EXPRESSIONS[sample.label]
        counts[name] = counts.get(name, 0) + 1
    return counts
