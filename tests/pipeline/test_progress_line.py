"""On a terminal, a run shows a live line (frames, face found, fps, latency, accuracy so far) that it
rewrites in place; piped or with --quiet/--json, nothing of the kind."""
import os
import pty
import subprocess

from pipeline_helpers import REPO, env, free_endpoint, pipeline_command


def run_on_a_terminal(command) -> tuple[int, str]:
    """The command with stderr on a pseudo-terminal (as a person runs it); what the terminal showed."""
    leader, follower = pty.openpty()
    try:
        run = subprocess.Popen(command, cwd=REPO, env=env(), stdout=subprocess.DEVNULL, stderr=follower)
        os.close(follower)
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:   # the terminal closed: the run ended
                break
            if not chunk:
                break
            shown += chunk
        return run.wait(timeout=120), shown.decode(errors="replace")
    finally:
        os.close(leader)


def test_a_run_on_a_terminal_shows_a_live_progress_line(drive_clip, models):
    status, shown = run_on_a_terminal(pipeline_command(drive_clip, models, "--publish", free_endpoint()))
    assert status == 0, shown[-2000:]
    lines = [part for part in shown.split("\r") if part.startswith("frames ") and " · " in part]
    assert lines, shown[-2000:]
    assert "fps" in lines[-1] and "p50" in lines[-1] and "accuracy" in lines[-1]


def test_piped_stderr_gets_no_progress_line(drive_clip, models):
    run = subprocess.run(pipeline_command(drive_clip, models, "--fast", "--max-frames", 20, "--publish",
                                          free_endpoint()), cwd=REPO, env=env(), capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert "\r" not in run.stderr and " · " not in run.stderr
