"""MMI sequences as folders of frames: each sequence gives its three middle frames (the peak of
the expression, paper section 5.1.4), labelled with the sequence's label.

Layouts (a sequence is a folder holding frame images):
- ROOT/<expression>/<sequence>/*.png — the label is the class folder's name (any alias, MMI's
  emotion codes 1–6 included);
- ROOT/.../<sequence>/*.png with a labels CSV `sequence,label[,subject]`, `sequence` being the
  folder's name or its path relative to ROOT.
The subject is the CSV's, else the `S<digits>` prefix of the sequence's name (`S001-101`) or of a
folder above it. Frames are ordered naturally (frame2 before frame10).
"""
import logging
import re
from pathlib import Path

from . import Sample, is_image_file
from .csv_list import csv_rows
from .labels import label_index

log = logging.getLogger(__name__)
SUBJECT = re.compile(r"^(S\d+)(?:[-_].*)?$", re.IGNORECASE)


def natural_key(path: Path):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def peak_frames(frames: list[Path], count: int = 3) -> list[Path]:
    """The `count` middle frames of a sequence (all of them when it is shorter)."""
    frames = sorted(frames, key=natural_key)
    if len(frames) <= count:
        return frames
    first = (len(frames) - count) // 2
    return frames[first:first + count]


def _sequences(root: Path) -> dict[Path, list[Path]]:
    found: dict[Path, list[Path]] = {}
    for path in root.rglob("*"):
        if is_image_file(path):
            found.setdefault(path.parent, []).append(path)
    return found


def _read_labels(labels_csv: Path) -> dict[str, tuple[int, str | None]]:
    table = {}
    for line_no, row in csv_rows(labels_csv, "sequence,label[,subject]"):
        if not row or not row[0].strip() or (line_no == 1 and row[0].strip().lower() == "sequence"):
            continue
        if len(row) < 2:
            raise ValueError(f"{labels_csv}:{line_no}: expected sequence,label[,subject], got {row}")
        label = label_index(row[1], "mmi", f"{labels_csv}:{line_no}")
        subject = row[2].strip() if len(row) > 2 and row[2].strip() else None
        table[row[0].strip().strip("/")] = (label, subject)
    return table


def _subject_from_path(sequence: Path, root: Path) -> str | None:
    for part in [sequence.name] + [p.name for p in sequence.relative_to(root).parents if p.name]:
        match = SUBJECT.match(part)
        if match:
            return match.group(1).upper()
    return None


def index_mmi(root, labels_csv=None, frames_per_sequence: int = 3, domain: str = "mmi") -> list[Sample]:
    """Peak-frame samples of every labelled sequence under `root`. Sequences shorter than
    `frames_per_sequence` give all their frames, and without a label are left out; both counted."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"MMI folder {root} does not exist")
    table = _read_labels(Path(labels_csv)) if labels_csv else None
    samples, short, unlabelled = [], [], []
    for sequence, frames in sorted(_sequences(root).items()):
        relative = sequence.relative_to(root).as_posix()
        subject = None
        if table is not None:
            entry = table.get(relative) or table.get(sequence.name)
            if entry is None:
                unlabelled.append(relative)
                continue
            label, subject = entry
        else:
            if sequence.parent == root:
                raise ValueError(f"{sequence}: a sequence directly under {root}; expected ROOT/<expression>/<sequence>/ "
                                 f"or a labels CSV (sequence,label[,subject])")
            class_folder = sequence.relative_to(root).parts[0]
            label = label_index(class_folder, "mmi", str(root / class_folder))
        subject = subject or _subject_from_path(sequence, root)
        chosen = peak_frames(frames, frames_per_sequence)
        if len(chosen) < frames_per_sequence:
            short.append(relative)
        for frame in chosen:
            samples.append(Sample(path=frame, label=label, subject=subject, domain=domain,
                                  meta={"sequence": relative, "frames_in_sequence": len(frames)}))
    if short:
        log.warning("%s: %d sequences have fewer than %d frames; all their frames used (first: %s)",
                    root, len(short), frames_per_sequence, short[0])
    if unlabelled:
        log.warning("%s: %d sequences not in %s left out (first: %s)", root, len(unlabelled), labels_csv, unlabelled[0])
    if not samples:
        raise ValueError(f"{root}: no labelled MMI sequences (folders of frames)")
    return samples
