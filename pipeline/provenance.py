"""Which code made a result: a digest of source trees, so that a result made by other code is made
again (the demo drive, a fleet evaluation's per-drive results)."""
import hashlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCE_SUFFIXES = (".py", ".npz", ".json")


def code_digest(roots) -> str:
    """sha256 over the code and data files under each root (relative to the repository), in path order."""
    digest = hashlib.sha256()
    for root in roots:
        for path in sorted((REPO / root).rglob("*")):
            if path.is_file() and path.suffix in SOURCE_SUFFIXES and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()
