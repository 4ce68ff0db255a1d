"""--record DIR: the raw frames (lossless PNG, 16-bit stays 16-bit) and every message, for replay tests.

    DIR/frames/000000.png ...   raw frames as captured; `--source DIR/frames` replays them
    DIR/frames/frames.jsonl     frame, t_capture_ns, expression (when the source had ground truth)
    DIR/emotion.jsonl           every published emotion message
    DIR/event.jsonl             every driver-monitor event message
    DIR/status.jsonl            every status message
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import msgspec

from face.expressions import EXPRESSIONS
from pipeline.messages import DecodeError, decode_published, encode
from pipeline.truth import NO_FACE


def read_messages(path, kind=None) -> tuple[list, int]:
    """The typed messages of a recorded DIR/emotion.jsonl, event.jsonl or status.jsonl (only those of
    `kind`, a message class, when given), and how many lines were not one (damaged or foreign): those
    are skipped, so a damaged recording is read as far as it goes. A missing file holds none."""
    path = Path(path)
    if not path.is_file():
        return [], 0
    messages, malformed = [], 0
    for line in path.read_bytes().splitlines():
        if not line.strip():
            continue
        try:
            message = decode_published(line)
        except DecodeError:
            malformed += 1
            continue
        if kind is None or isinstance(message, kind):
            messages.append(message)
        else:
            malformed += 1
    return messages, malformed


class FrameRecorder:
    def __init__(self, folder, run: str = ""):
        """run: names this run in every entry (a restarted capture of the same run is the same run)."""
        self.folder = Path(folder) / "frames"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.run = run
        index = self.folder / "frames.jsonl"
        # A restarted capture reads on from the last published frame: what this run had recorded
        # beyond that is already here, and is not written twice.
        entries = self._entries(index)
        self.recorded = max((e.get("source_index", -1) for e in entries
                             if isinstance(e, dict) and run and e.get("run") == run), default=-1)
        self.index_file = open(index, "a")
        # The index is written after each image: an image beyond it is from a capture killed in
        # between, and is written again with its entry.
        self.position = len(entries)
        for orphan in self.folder.glob("*.png"):
            if orphan.stem.isdigit() and int(orphan.stem) >= self.position:
                orphan.unlink()

    @staticmethod
    def _entries(index: Path) -> list:
        """The index's entries. A last line cut short (a capture killed by a full disk mid-write) is cut
        off, so the next entry starts on a line of its own; its image is then an orphan, written again."""
        if not index.is_file():
            return []
        data = index.read_bytes()
        whole = data[:data.rfind(b"\n") + 1]
        if len(whole) < len(data):
            with open(index, "r+b") as f:
                f.truncate(len(whole))
        entries = []
        for line in whole.splitlines():
            if not line.strip():
                continue
            try:
                entries.append(json.loads(line))
            except ValueError:
                entries.append({})   # keeps its position: the file names are positions
        return entries

    def write(self, captured):
        if captured.index <= self.recorded:
            return
        self.recorded = captured.index
        # The file name's order is the replay order: a position, not the source index.
        name = f"{self.position:06d}.png"
        if not cv2.imwrite(str(self.folder / name), captured.frame):
            raise OSError(f"{self.folder / name}: could not write the recorded frame")
        entry = {"frame": self.position, "source_index": captured.index, "t_capture_ns": captured.t_capture_ns,
                 "run": self.run}
        if captured.truth == NO_FACE:
            entry["face"] = False
        elif captured.truth is not None:
            entry["expression"] = EXPRESSIONS[captured.truth]
        self.index_file.write(json.dumps(entry) + "\n")
        self.index_file.flush()
        self.position += 1

    def close(self):
        self.index_file.close()


class JsonLines:
    def __init__(self, path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.file = open(path, "a")

    def write(self, message: msgspec.Struct):
        self.file.write(encode(message).decode() + "\n")

    def close(self):
        self.file.close()
