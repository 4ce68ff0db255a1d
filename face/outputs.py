"""Where a command will write, made and tried before it starts any work: a run or a fleet that ends
in "cannot write" has lost its results."""
from __future__ import annotations

import tempfile
from pathlib import Path


class UnwritableOutput(ValueError):
    """An output the user named cannot be written: theirs to fix, one line."""


def writable_folder(folder, option: str) -> Path:
    """`folder`, made if missing and written to once (a temporary file); UnwritableOutput naming `option`
    when that fails. Tried rather than asked: os.access says yes to root everywhere, /proc included."""
    folder = Path(folder).resolve()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as error:
        raise UnwritableOutput(f"{option}: cannot write in {folder}: {error.strerror or error}") from None
    return folder
