"""BU-3DFE 2D images: subject, expression and intensity are in the file name.

`F0001_AN01WH_F2D.bmp` = subject F0001 (sex + number), expression code (AN DI FE HA NE SA SU),
intensity 01–04 (neutral is NE00), race code (two letters), F2D (the frontal 2D texture image).
Renders at other poses, which users make from the 3D models (paper section 5.4.2), may carry a
pose suffix: `F0001_AN01WH_F2D_yaw-45.png`, `..._+30.png` or `..._p15.png`; the yaw in degrees
goes to `meta["yaw"]` (0 without a suffix).
"""
import re
from pathlib import Path

from . import Sample
from .labels import label_index
from .named_files import index_named_files

NAME = re.compile(r"^(?P<subject>[FM]\d{4})_(?P<code>[A-Z]{2})(?P<intensity>\d{2})(?P<race>[A-Z]{2})_(?P<kind>F2D|F3D|[A-Z0-9]+)"
                  r"(?:_(?:yaw|pose|p)?(?P<yaw>[+-]?\d{1,3}))?$", re.IGNORECASE)


def parse_bu3dfe_name(path) -> dict | None:
    """subject, label, intensity (0 for neutral), race, kind and yaw of a BU-3DFE file name, or
    None when the name is not BU-3DFE's. A bad code or intensity is a clear error naming the file."""
    path = Path(path)
    match = NAME.match(path.stem)
    if not match:
        return None
    parts = match.groupdict()
    label = label_index(parts["code"], "bu3dfe", str(path))
    intensity = int(parts["intensity"])
    neutral = parts["code"].upper() == "NE"
    if (neutral and intensity != 0) or (not neutral and not 1 <= intensity <= 4):
        raise ValueError(f"{path}: intensity {intensity:02d} for {parts['code'].upper()}; BU-3DFE uses 01–04 "
                         f"(00 for neutral)")
    return {"subject": parts["subject"].upper(), "label": label, "intensity": intensity,
            "race": parts["race"].upper(), "kind": parts["kind"].upper(), "yaw": int(parts["yaw"] or 0)}


def index_bu3dfe(root, min_intensity: int = 1, yaws=None, kinds=("F2D",), domain: str = "bu3dfe") -> list[Sample]:
    """Samples of a BU-3DFE 2D tree. min_intensity drops weaker expressions (neutral always kept);
    yaws keeps only those poses (degrees); kinds the image kinds (F2D by default; None: all)."""
    if not 1 <= int(min_intensity) <= 4:
        raise ValueError(f"min_intensity must be 1–4, got {min_intensity}")
    yaws = None if yaws is None else {int(y) for y in (yaws.split(",") if isinstance(yaws, str) else yaws)}
    kinds = None if kinds is None else {k.upper() for k in kinds}

    def keep(info):
        return ((not info["intensity"] or info["intensity"] >= min_intensity)
                and (yaws is None or info["yaw"] in yaws) and (kinds is None or info["kind"] in kinds))

    return index_named_files(root, parse_bu3dfe_name, keep, domain, "BU-3DFE", "F0001_AN01WH_F2D.bmp")
