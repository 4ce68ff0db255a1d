"""KDEF (Karolinska Directed Emotional Faces): everything is in the file name.

`AF01ANS.JPG` = session A (or B), sex F (or M), subject 01–35, expression code (AF afraid, AN angry,
DI disgusted, HA happy, NE neutral, SA sad, SU surprised), angle (FL full left, HL half left,
S straight, HR half right, FR full right). The folders (KDEF ships one per session+subject, e.g.
`AF01/`) do not matter: every matching file under the root is taken. A subject is sex + number
("F01"): both sessions of a person are the same subject for subject-independent splits.
"""
import re
from pathlib import Path

from . import Sample
from .labels import label_index
from .named_files import index_named_files

NAME = re.compile(r"^(?P<session>[AB])(?P<sex>[FM])(?P<number>\d{2})(?P<code>[A-Z]{2})(?P<angle>FL|HL|S|HR|FR)$",
                  re.IGNORECASE)
# Yaw of each view in degrees (negative: the subject's face turned to the camera's left).
ANGLES = {"FL": -90, "HL": -45, "S": 0, "HR": 45, "FR": 90}


def parse_kdef_name(path) -> dict | None:
    """session, sex, subject, expression label, angle and yaw of a KDEF file name; None when the
    name is not KDEF's. An expression code KDEF does not use is a clear error naming the file."""
    path = Path(path)
    match = NAME.match(path.stem)
    if not match:
        return None
    parts = {k: v.upper() for k, v in match.groupdict().items()}
    label = label_index(parts["code"], "kdef", str(path))
    return {"session": parts["session"], "sex": parts["sex"], "subject": parts["sex"] + parts["number"],
            "label": label, "angle": parts["angle"], "yaw": ANGLES[parts["angle"]]}


def _choice(values, allowed, what: str) -> set[str] | None:
    if values is None:
        return None
    chosen = {v.strip().upper() for v in (values.split(",") if isinstance(values, str) else values) if v.strip()}
    bad = chosen - set(allowed)
    if bad:
        raise ValueError(f"unknown KDEF {what} {sorted(bad)}; expected some of {', '.join(allowed)}")
    return chosen


def index_kdef(root, angles=None, sessions=None, domain: str = "kdef") -> list[Sample]:
    """Samples of a KDEF tree, optionally only some views (e.g. "S,HL,HR") and sessions ("A").
    Files whose names are not KDEF's are left out and counted in a warning."""
    angles, sessions = _choice(angles, ANGLES, "angle(s)"), _choice(sessions, "AB", "session(s)")

    def keep(info):
        return (not angles or info["angle"] in angles) and (not sessions or info["session"] in sessions)

    return index_named_files(root, parse_kdef_name, keep, domain, "KDEF", "AF01ANS.JPG")
