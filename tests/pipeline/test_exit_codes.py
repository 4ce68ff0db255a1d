"""The exit status of run_pipeline.py, as a shell or a service manager sees it: 0 when the run ended,
130 on Ctrl-C (SIGINT), 143 on SIGTERM, with the summary still printed and the run folder gone."""
import json
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import zmq

from pipeline_helpers import REPO, env, free_endpoint, pipeline_command
from pipeline.rundirs import PREFIX
from pipeline.subscribe import receive, subscribe


def start_run(source, models, tmp, *extra):
    """run_pipeline.py on a paced replay with its own temporary folder (TMPDIR), and a subscriber
    to its stream."""
    endpoint = free_endpoint()
    run = subprocess.Popen(pipeline_command(source, models, "--publish", endpoint, *extra), cwd=REPO,
                           env=env() | {"TMPDIR": str(tmp)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    return run, subscribe(endpoint, ["emotion"], zmq.Context())


def wait_for_a_frame(run, sub):
    """Until the first emotion message: the stages are up and the supervisor holds the signals."""
    try:
        for _ in range(120):
            if receive(sub, 500):
                return
            assert run.poll() is None, run.communicate()
        raise AssertionError("no frame published within a minute")
    finally:
        sub.close(0)


@pytest.fixture
def short_tmp():
    """A temporary folder of a short path (ipc socket paths have a length limit)."""
    with tempfile.TemporaryDirectory(prefix="x") as folder:
        yield Path(folder)


@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_mid_run_gives_its_exit_status_and_the_summary(long_clip, models, short_tmp, sig, status):
    run, sub = start_run(long_clip, models, short_tmp)
    try:
        wait_for_a_frame(run, sub)
        run.send_signal(sig)
        out, err = run.communicate(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == status, err
    summary = json.loads(out.splitlines()[-1])["summary"]
    assert summary["interrupted"] == sig.name and summary["frames"] > 0 and "error" not in summary
    assert not list(short_tmp.glob(f"{PREFIX}*")), "the run folder was left behind"


def test_a_run_that_ends_exits_0(drive_clip, models, short_tmp):
    run, sub = start_run(drive_clip, models, short_tmp, "--fast", "--max-frames", 5)
    sub.close(0)
    out, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    assert "interrupted" not in json.loads(out.splitlines()[-1])["summary"]


def test_help_names_every_exit_status():
    help_text = subprocess.run([sys.executable, str(REPO / "run_pipeline.py"), "--help"], cwd=REPO, env=env(),
                               capture_output=True, text=True, timeout=60).stdout
    for line in ("0    the run ended", "1    a fatal error", "2    bad input", "130  stopped by Ctrl-C (SIGINT)",
                 "143  stopped by SIGTERM"):
        assert line in help_text
