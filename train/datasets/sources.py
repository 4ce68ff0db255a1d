"""One way for every command to say which data it reads: `--data PATH [--format F]` + options.

Formats: folder (class-per-folder tree), csv (path,label[,subject][,domain]), kdef, bu3dfe, mmi;
`auto` picks csv for a .csv file, kdef/bu3dfe when the images carry those names, else folder.
Whole-frame datasets (kdef, mmi) are cropped and aligned by the face stage (`--face-crop auto`);
`--face-crop none` keeps the plain square crop + resize every image gets.
"""
import argparse
from pathlib import Path

from . import Sample, list_images
from .bu3dfe import index_bu3dfe, parse_bu3dfe_name
from .csv_list import index_csv
from .folder import index_labelled_folder, index_unlabelled_folder
from .kdef import index_kdef, parse_kdef_name
from .mmi import index_mmi
from .splits import with_subjects_from_names

FORMATS = ("auto", "folder", "csv", "kdef", "bu3dfe", "mmi")
WHOLE_FRAMES = ("kdef", "mmi")  # datasets whose images are whole portraits / video frames
OPTION_KEYS = ("format", "kdef_views", "kdef_sessions", "bu3dfe_min_intensity", "bu3dfe_yaws", "mmi_labels",
               "ignore_labels", "subject_pattern", "face_crop")


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("data format (applies to every data folder given: --data, --source, --target, ...)")
    g.add_argument("--format", choices=FORMATS, help="dataset layout (auto)")
    g.add_argument("--kdef-views", help="KDEF angles to keep, e.g. S or S,HL,HR (all)")
    g.add_argument("--kdef-sessions", help="KDEF sessions to keep: A, B or A,B (both)")
    g.add_argument("--bu3dfe-min-intensity", type=int, help="BU-3DFE: drop intensities below this, 1–4 (1)")
    g.add_argument("--bu3dfe-yaws", help="BU-3DFE: keep only these render yaws in degrees, e.g. 0,15,30 (all)")
    g.add_argument("--mmi-labels", help="MMI: CSV of sequence,label[,subject] (else ROOT/<expression>/<sequence>/)")
    g.add_argument("--ignore-labels", help="CSV: comma list of labels to leave out (e.g. contempt)")
    g.add_argument("--subject-pattern", help="regex giving a subject from file names where the format has none")
    g.add_argument("--face-crop", choices=("auto", "face", "none"),
                   help="align faces with the face stage: auto = for kdef/mmi whole frames (auto)")


def data_options(args) -> dict:
    """The data options given on the command line, JSON-able (stored in the run config)."""
    return {k: getattr(args, k) for k in OPTION_KEYS if getattr(args, k, None) is not None}


def detect_format(path) -> str:
    path = Path(path)
    if path.is_file():
        if path.suffix.lower() == ".csv":
            return "csv"
        raise ValueError(f"{path}: a file, but not a .csv list; --data takes a folder or a CSV")
    if not path.is_dir():
        raise FileNotFoundError(f"data {path} does not exist")
    for image in list_images(path)[:20]:
        if parse_kdef_name(image):
            return "kdef"
        if parse_bu3dfe_name(image):
            return "bu3dfe"
    return "folder"


def data_format(path, options: dict) -> str:
    """The layout of PATH: `--format`, or detected when it is auto (or not given)."""
    fmt = options.get("format") or "auto"
    return detect_format(path) if fmt == "auto" else fmt


def load_samples(path, options: dict | None = None, domain: str | None = None) -> tuple[list[Sample], str]:
    """(labelled samples, format) of one --data PATH under the given options."""
    options = options or {}
    fmt = data_format(path, options)
    if fmt == "folder":
        samples = index_labelled_folder(path, domain=domain or "folder")
    elif fmt == "csv":
        ignore = [x for x in (options.get("ignore_labels") or "").split(",") if x.strip()]
        samples = index_csv(path, domain=domain or "csv", ignore=ignore)
    elif fmt == "kdef":
        samples = index_kdef(path, options.get("kdef_views"), options.get("kdef_sessions"), domain=domain or "kdef")
    elif fmt == "bu3dfe":
        samples = index_bu3dfe(path, options.get("bu3dfe_min_intensity") or 1, options.get("bu3dfe_yaws"),
                               domain=domain or "bu3dfe")
    elif fmt == "mmi":
        samples = index_mmi(path, options.get("mmi_labels"), domain=domain or "mmi")
    else:
        raise ValueError(f"unknown data format {fmt!r}; expected one of {FORMATS}")
    if options.get("subject_pattern"):
        samples = with_subjects_from_names(samples, options["subject_pattern"])
    unlabelled = [s for s in samples if s.label is None]
    if unlabelled:
        raise ValueError(f"{path}: {len(unlabelled)} images have no label (first: {unlabelled[0].path}); "
                         f"a classifier's data must be labelled")
    return samples, fmt


def load_images(path, options: dict | None = None, domain: str | None = None) -> tuple[list[Sample], str]:
    """(samples, format) of data that need not be labelled (a generator's source or target): a plain
    folder gives every image under it, unlabelled; a dataset layout (kdef, bu3dfe, ...) its samples."""
    options = options or {}
    fmt = data_format(path, options)
    if fmt == "folder":
        return index_unlabelled_folder(path, domain=domain or "folder"), fmt
    return load_samples(path, {**options, "format": fmt}, domain)


def wants_face_crop(fmt: str, options: dict) -> bool:
    choice = options.get("face_crop") or "auto"
    return choice == "face" or (choice == "auto" and fmt in WHOLE_FRAMES)
