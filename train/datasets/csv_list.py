"""A CSV list of images: `path,label[,subject][,domain]`, one image a row.

Paths are relative to the CSV's folder (or absolute). A header row naming the columns is optional;
with one, the columns may come in any order. An empty label means unlabelled (a target domain);
labels go through the dataset's aliases (`labels.label_index`). `ignore` drops rows whose label is
a class outside the seven (e.g. "contempt"), counted, instead of failing.
"""
import csv
import logging
from pathlib import Path

from . import Sample
from .labels import label_index

log = logging.getLogger(__name__)
COLUMNS = ("path", "label", "subject", "domain")


def csv_rows(csv_path: Path, expected: str):
    """(line number, row) of a CSV file. Read as UTF-8 with or without the byte-order mark a spreadsheet's
    "CSV UTF-8" starts with (it must not stick to the first column's name); a binary file, another encoding
    or a NUL byte is a ValueError naming the file and what it should hold (`expected`)."""
    try:
        with csv_path.open(newline="", encoding="utf-8-sig") as f:
            yield from enumerate(csv.reader(f), start=1)
    except (UnicodeDecodeError, csv.Error) as error:
        raise ValueError(f"{csv_path}: not a UTF-8 CSV of {expected} ({error})") from None


def _rows(csv_path: Path):
    rows = csv_rows(csv_path, "path,label[,subject][,domain]")
    first = next(rows, (1, None))[1]
    if first is None:
        raise ValueError(f"{csv_path}: empty CSV; expected rows of path,label[,subject][,domain]")
    header = [c.strip().lower() for c in first]
    if "path" in header:
        unknown = [c for c in header if c and c not in COLUMNS]
        if unknown:
            raise ValueError(f"{csv_path}: unknown column(s) {unknown}; expected {', '.join(COLUMNS)}")
        columns = header
    else:
        columns = list(COLUMNS)
        yield 1, dict(zip(columns, first))
    for line_no, row in rows:
        if not row or all(not c.strip() for c in row):
            continue
        yield line_no, dict(zip(columns, row))


def index_csv(csv_path, dataset: str = "generic", domain: str = "csv", ignore=(), check_files: bool = True) -> list[Sample]:
    """Samples of a CSV list. Missing files are a clear error naming the CSV line (unreadable
    ones are found, skipped and counted later by the reader)."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise FileNotFoundError(f"CSV list {csv_path} does not exist")
    ignore = {name.strip().lower() for name in ignore}
    samples, ignored = [], 0
    for line_no, row in _rows(csv_path):
        where = f"{csv_path}:{line_no}"
        raw_path = (row.get("path") or "").strip()
        if not raw_path:
            raise ValueError(f"{where}: no image path")
        path = Path(raw_path) if Path(raw_path).is_absolute() else csv_path.parent / raw_path
        if check_files and not path.is_file():
            raise FileNotFoundError(f"{where}: image {path} does not exist")
        raw_label = (row.get("label") or "").strip()
        if raw_label.lower() in ignore:
            ignored += 1
            continue
        label = label_index(raw_label, dataset, where) if raw_label else None
        subject = (row.get("subject") or "").strip() or None
        samples.append(Sample(path=path, label=label, subject=subject,
                              domain=(row.get("domain") or "").strip() or domain, meta={"line": line_no}))
    if ignored:
        log.warning("%s: %d rows with ignored labels (%s) left out", csv_path, ignored, ", ".join(sorted(ignore)))
    if not samples:
        raise ValueError(f"{csv_path}: no images listed")
    return samples
