"""Run folders: the private temporary folder of a staged run, which holds its ipc sockets and its
shared-memory frame rings (pipeline/shared_frames.py). They go in /dev/shm where there is one (memory:
a ring's pages are never written back to a disk), unless $TMPDIR names another place.

The supervisor removes its folder when the run ends; a supervisor killed outright (SIGKILL, power
loss) cannot, so each folder records its owner's pid, and the next run removes the folders whose
owner is gone. Only folders that are plainly ours are touched: named with PREFIX, owned by this user,
holding a pid file whose process no longer exists. Anything else is left alone.
"""
from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

PREFIX = "exprada-"
PID_FILE = "owner.pid"


def default_parent() -> str:
    """$TMPDIR when set (the user's choice), else /dev/shm when it is a folder this user may write,
    else the system's temporary folder."""
    shm = "/dev/shm"
    if os.environ.get("TMPDIR") or not (os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK)):
        return tempfile.gettempdir()
    return shm


def make_run_dir(parent=None) -> str:
    """A new run folder (in `default_parent()` unless `parent`) with this process's pid."""
    folder = tempfile.mkdtemp(prefix=PREFIX, dir=parent or default_parent())
    Path(folder, PID_FILE).write_text(f"{os.getpid()}\n")
    return folder


def remove_stale_run_dirs(parent=None) -> list[Path]:
    """Remove the run folders left by dead owners (in `parent`, or where runs put them: /dev/shm and
    the temporary folder, which held them before); returns them."""
    parents = [parent] if parent else sorted({default_parent(), tempfile.gettempdir()})
    removed = []
    for folder in (f for p in parents for f in Path(p).glob(f"{PREFIX}*")):
        if owner_is_gone(folder):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def owner_is_gone(folder: Path) -> bool:
    """True only for a real folder (not a link) of this user whose pid file names a dead process."""
    try:
        info = folder.lstat()
        pid_info = (folder / PID_FILE).lstat()
        if not (stat.S_ISDIR(info.st_mode) and stat.S_ISREG(pid_info.st_mode)
                and info.st_uid == pid_info.st_uid == os.getuid()):
            return False
        pid = int((folder / PID_FILE).read_text())
    except (OSError, ValueError):   # no pid file, or one being written: not provably stale
        return False
    return pid > 0 and not process_exists(pid)


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # it exists, as another user's process
        return True
    return True
