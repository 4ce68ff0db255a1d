"""Nothing is left behind: a run folder whose supervisor was killed outright (SIGKILL) is removed by
the next run, and only such a folder (ours, of this user, with a dead owner); benchmarks leave no
files either."""
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from pipeline_helpers import env
from pipeline.rundirs import PID_FILE, PREFIX, make_run_dir, remove_stale_run_dirs
from test_exit_codes import start_run, wait_for_a_frame


def dead_pid():
    """The pid of a process that has ended and been reaped."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def folder_owned_by(parent, pid, name=None):
    folder = Path(tempfile.mkdtemp(prefix=PREFIX, dir=parent)) if name is None else parent / name
    folder.mkdir(exist_ok=True)
    (folder / PID_FILE).write_text(f"{pid}\n")
    (folder / "in-face.0.sock").write_bytes(b"")
    return folder


def test_a_run_folder_records_its_owner(tmp_path):
    folder = Path(make_run_dir(tmp_path))
    assert folder.parent == tmp_path and folder.name.startswith(PREFIX)
    assert (folder / PID_FILE).read_text() == f"{os.getpid()}\n"
    assert remove_stale_run_dirs(tmp_path) == [] and folder.is_dir()   # its owner is alive


def test_only_folders_of_a_dead_owner_are_removed(tmp_path):
    stale = folder_owned_by(tmp_path, dead_pid())
    with subprocess.Popen(["sleep", "30"]) as sleeper:
        try:
            alive = folder_owned_by(tmp_path, sleeper.pid)
            ours_alive = folder_owned_by(tmp_path, os.getpid())
            no_pid = tmp_path / f"{PREFIX}cache"            # e.g. a benchmark's download cache
            no_pid.mkdir()
            garbage = folder_owned_by(tmp_path, "not a pid", f"{PREFIX}garbage")
            other_prefix = folder_owned_by(tmp_path, dead_pid(), "someone-else")
            a_file = tmp_path / f"{PREFIX}file"
            a_file.write_text(f"{dead_pid()}\n")
            target = folder_owned_by(tmp_path, dead_pid(), "target")
            link = tmp_path / f"{PREFIX}link"
            link.symlink_to(target)                         # never followed: the target is not ours to judge
            assert remove_stale_run_dirs(tmp_path) == [stale]
        finally:
            sleeper.kill()
    assert not stale.exists()
    for kept in (alive, ours_alive, no_pid, garbage, other_prefix, a_file, target, link):
        assert kept.exists(), kept
    assert (target / PID_FILE).exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a folder owned by another user")
def test_another_users_folder_is_kept(tmp_path):
    folder = folder_owned_by(tmp_path, dead_pid())
    for path in (folder, folder / PID_FILE):
        os.chown(path, 65534, 65534)
    assert remove_stale_run_dirs(tmp_path) == [] and folder.exists()


def test_the_next_run_removes_the_folder_of_a_killed_one(long_clip, drive_clip, models):
    with tempfile.TemporaryDirectory(prefix="x") as tmp:
        tmp = Path(tmp)
        killed, sub = start_run(long_clip, models, tmp)
        wait_for_a_frame(killed, sub)
        killed.send_signal(signal.SIGKILL)
        killed.communicate(timeout=30)
        (left,) = tmp.glob(f"{PREFIX}*")   # what SIGKILL leaves: the folder, its pid file and sockets
        assert (left / PID_FILE).read_text() == f"{killed.pid}\n" and list(left.glob("*.sock"))
        kept = folder_owned_by(tmp, os.getpid())      # a live run's folder
        following, sub = start_run(drive_clip, models, tmp, "--fast", "--max-frames", 3)
        sub.close(0)
        _, err = following.communicate(timeout=120)
        assert following.returncode == 0, err
        assert not left.exists() and kept.exists()
        assert list(tmp.glob(f"{PREFIX}*")) == [kept]   # and the new run removed its own folder


def test_the_hop_benchmark_leaves_no_files(tmp_path):
    run = subprocess.run([sys.executable, "-m", "benchmarks.pipeline_zmq_hop", "--repeats", "5"], cwd=tmp_path,
                         env=env() | {"TMPDIR": str(tmp_path)}, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert list(tmp_path.iterdir()) == []
