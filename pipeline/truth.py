"""Per-frame ground truth that travels beside a recording: VIDEO.json next to VIDEO.mp4, or a
recorded folder's frames.jsonl. Used only for the end-of-run accuracy, never published.

Accepted layouts (the synthetic writer's and --record's): a JSON list, or an object whose "frames"
holds the list; each entry is a label (expression name, index, or null when there is no face) or an
object with the frame index ("frame", "frame_id", "index") and the label ("expression", "label",
"emotion"), null or "face": false meaning no face; an object with neither, or marked
"transition": true (the face still blending from the previous expression), is left unlabelled.
"""
from __future__ import annotations

import json
from pathlib import Path

from face.expressions import EXPRESSIONS, expression_index

NO_FACE = -1   # the frame has no face to classify (an unknown label is simply absent)

FRAME_KEYS = ("frame", "frame_id", "index")
LABEL_KEYS = ("expression", "label", "emotion")


def label_index(value, where: str):
    """An expression name or index → index; None → NO_FACE."""
    if value is None:
        return NO_FACE
    if isinstance(value, bool):
        raise ValueError(f"{where}: label must be an expression name or index, got {value!r}")
    if isinstance(value, int):
        if not 0 <= value < len(EXPRESSIONS):
            raise ValueError(f"{where}: label index {value} outside 0..{len(EXPRESSIONS) - 1}")
        return value
    if isinstance(value, str):
        try:
            return expression_index(value)
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
    raise ValueError(f"{where}: label must be an expression name or index, got {value!r}")


def parse(entries, where: str) -> dict[int, int]:
    if isinstance(entries, dict):
        entries = entries.get("frames")
    if not isinstance(entries, list):
        raise ValueError(f"{where}: expected a list of per-frame labels (or an object with 'frames')")
    truth = {}
    for position, entry in enumerate(entries):
        here = f"{where} entry {position}"
        if not isinstance(entry, dict):
            truth[position] = label_index(entry, here)
            continue
        frame = next((entry[k] for k in FRAME_KEYS if k in entry), position)
        if not isinstance(frame, int) or isinstance(frame, bool):
            raise ValueError(f"{here}: frame index must be an integer, got {frame!r}")
        label_key = next((k for k in LABEL_KEYS if k in entry), None)
        if entry.get("face") is False or entry.get("has_face") is False:
            truth[frame] = NO_FACE
        elif entry.get("transition"):
            pass   # the face is still moving from the previous expression: no fair label
        elif label_key is not None:
            truth[frame] = label_index(entry[label_key], here)
        # neither: this frame's label is unknown, so it is left out of the accuracy
    return truth


def load(path) -> dict[int, int]:
    """Frame index → label index (NO_FACE: no face) from a .json or .jsonl file; ValueError naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")   # a byte-order mark from an editor is no error
        if path.suffix == ".jsonl":
            entries = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            entries = json.loads(text)
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: ground truth not readable: {error}") from None
    return parse(entries, str(path))


def beside(video) -> Path | None:
    """VIDEO.json next to VIDEO.*, if there is one."""
    candidate = Path(video).with_suffix(".json")
    return candidate if candidate.is_file() else None
