"""Subject-independent splits: train/val/test by subject, or k folds of subjects (paper 5.4.2:
5 folds of 100 BU-3DFE subjects, 80 train / 20 test each), seeded and written to a JSON split file
so a run can be reproduced and another command can take the same test subjects.

A split file lists subjects, not images: {"method", "seed", "k", "fold", "val_fraction",
"test_fraction", "subjects": {"train": [...], "val": [...], "test": [...]}}. Applying it to a
dataset puts each image where its subject is; an image of a subject the file does not name is
an error, and so is a subject named in two parts.
"""
import json
import logging
import os
import re
from dataclasses import replace
from pathlib import Path

import numpy as np

from . import Sample

log = logging.getLogger(__name__)
PARTS = ("train", "val", "test")


def with_subjects_from_names(samples: list[Sample], pattern: str) -> list[Sample]:
    """Give samples without a subject the first group (or whole match) of `pattern` searched in
    their file name, e.g. r"^(S\\d+)_" for `S012_happy_3.png`. A name that does not match is an error."""
    regex = re.compile(pattern)
    out = []
    for sample in samples:
        if sample.subject is None:
            match = regex.search(sample.path.name)
            if not match:
                raise ValueError(f"{sample.path}: file name does not match the subject pattern {pattern!r}")
            sample = replace(sample, subject=match.group(1) if regex.groups else match.group(0))
        out.append(sample)
    return out


def subjects_of(samples: list[Sample], by_image: bool = False) -> list[str]:
    """Sorted distinct subjects. Samples without a subject are an error naming the first one, unless
    by_image: then each image is its own 'subject' (not subject-independent; said in a warning)."""
    missing = [s for s in samples if s.subject is None]
    if missing and not by_image:
        raise ValueError(f"{len(missing)} of {len(samples)} images have no subject (first: {missing[0].path}); a "
                         f"subject-independent split needs one per image (CSV subject column, a dataset that names "
                         f"subjects, or a subject pattern), or split by image knowingly")
    if missing:
        log.warning("%d images without a subject are split by image: the split is NOT subject-independent", len(missing))
    return sorted({_subject(s) for s in samples})


def _subject(sample: Sample) -> str:
    return sample.subject if sample.subject is not None else f"image:{sample.path}"


def _count(fraction: float, total: int, what: str) -> int:
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"{what} fraction must be in [0, 1), got {fraction}")
    return 0 if fraction == 0 else max(1, int(round(fraction * total)))


def make_split(samples: list[Sample], *, val_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0,
               k: int | None = None, fold: int | None = None, by_image: bool = False) -> dict:
    """A split description (see the module doc). With k: subjects fall into k seeded folds, `fold` is
    the test part, and val_fraction of the remaining subjects make the validation part."""
    subjects = subjects_of(samples, by_image)
    order = [subjects[i] for i in np.random.default_rng(seed).permutation(len(subjects))]
    if k is not None:
        if not 2 <= k <= len(subjects):
            raise ValueError(f"k-fold needs 2 <= k <= {len(subjects)} subjects, got k={k}")
        if fold is None or not 0 <= fold < k:
            raise ValueError(f"fold must be in 0..{k - 1}, got {fold}")
        folds = [list(group) for group in np.array_split(np.array(order, dtype=object), k)]
        test = folds[fold]
        rest = [s for i, group in enumerate(folds) if i != fold for s in group]
        n_val = _count(val_fraction, len(rest), "validation")
        val, train = rest[:n_val], rest[n_val:]
        test_fraction = len(test) / len(subjects)
    else:
        n_test = _count(test_fraction, len(subjects), "test")
        n_val = _count(val_fraction, len(subjects), "validation")
        test, val, train = order[:n_test], order[n_test:n_test + n_val], order[n_test + n_val:]
    if not train:
        raise ValueError(f"{len(subjects)} subjects leave none for training with val {val_fraction}, test {test_fraction}")
    return {"method": "kfold" if k is not None else "holdout", "seed": seed, "k": k, "fold": fold,
            "val_fraction": val_fraction, "test_fraction": test_fraction, "by_image": by_image,
            "subjects": {"train": sorted(train), "val": sorted(val), "test": sorted(test)}}


def check_disjoint(split: dict, where: str = "split") -> None:
    """A subject in two parts is an error naming it and the parts."""
    seen: dict[str, str] = {}
    for part in PARTS:
        for subject in split["subjects"].get(part, []):
            if subject in seen:
                raise ValueError(f"{where}: subject {subject!r} is in both {seen[subject]!r} and {part!r}; "
                                 f"a subject-independent split needs each subject in one part")
            seen[subject] = part


def apply_split(samples: list[Sample], split: dict, where: str = "split") -> dict[str, list[Sample]]:
    """Samples of each part. An image whose subject the split does not name is an error."""
    check_disjoint(split, where)
    part_of = {subject: part for part in PARTS for subject in split["subjects"].get(part, [])}
    parts: dict[str, list[Sample]] = {part: [] for part in PARTS}
    for sample in samples:
        part = part_of.get(_subject(sample))
        if part is None:
            raise ValueError(f"{where}: {sample.path} has subject {_subject(sample)!r}, which the split does not "
                             f"name; was the split made for another dataset?")
        parts[part].append(sample)
    return parts


def check_parts_disjoint(parts: dict[str, list[Sample]]) -> None:
    """For parts given separately (e.g. --val-data/--test-data): no subject in two of them, naming
    a file of each."""
    first_file: dict[str, tuple[str, Path]] = {}
    for part, samples in parts.items():
        for sample in samples:
            if sample.subject is None:
                continue
            other = first_file.setdefault(sample.subject, (part, sample.path))
            if other[0] != part:
                raise ValueError(f"subject {sample.subject!r} appears in both {other[0]} ({other[1]}) and "
                                 f"{part} ({sample.path})")


def write_split(path, split: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(split, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def read_split(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"split file {path} does not exist")
    try:
        split = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not a split file ({err})") from None
    if not isinstance(split, dict) or not isinstance(split.get("subjects"), dict):
        raise ValueError(f"{path}: not a split file (no 'subjects' table)")
    unknown = set(split["subjects"]) - set(PARTS)
    if unknown:
        raise ValueError(f"{path}: unknown split part(s) {sorted(unknown)}; expected {PARTS}")
    check_disjoint(split, str(path))
    return split


def run_split(samples: list[Sample], run_file: Path, *, reuse=None, write: bool = True,
              **draw) -> tuple[dict[str, list[Sample]], dict]:
    """(parts, split) of a training run: the split the run wrote already (a resumed run reads it
    back), else the `reuse` split file, else a fresh one (make_split with `draw`), written to
    `run_file` when `write` (the main process)."""
    run_file = Path(run_file)
    if run_file.is_file():
        split, where = read_split(run_file), str(run_file)
    elif reuse:
        split, where = read_split(reuse), str(reuse)
    else:
        split, where = make_split(samples, **draw), "split"
    parts = apply_split(samples, split, where)
    if write and not run_file.is_file():
        write_split(run_file, split)
    return parts, split
