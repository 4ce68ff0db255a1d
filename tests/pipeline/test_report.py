"""`python -m pipeline.report`: a recording becomes one self-contained HTML page, checked in a real
headless Chromium (its screenshot shows the charts) where one is installed."""
import json
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from pipeline.report import load_run, tally_of
from pipeline_helpers import REPO, env, free_endpoint, pipeline_command

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def test_the_report_gives_the_runs_own_figures(recording, tmp_path):
    out = tmp_path / "report.html"
    run = subprocess.run([sys.executable, "-m", "pipeline.report", str(recording), "--out", str(out)], cwd=REPO,
                         env=env(), capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    page = out.read_text()
    emotions, _, truth = load_run(recording)
    summary = tally_of(emotions, truth, tuple(emotions[0].probs or ())).summary({})
    recorded = [json.loads(line) for line in (recording / "emotion.jsonl").read_text().splitlines()]
    assert summary["frames"] == len(recorded) and summary["frames_with_truth"] > 0
    assert f"<td>frames</td><td>{len(recorded)}</td>" in page
    assert f"{100 * summary['accuracy_published']:.1f} %" in page
    assert page.count("id='timeline'") == page.count("id='latency'") == page.count("id='health'") == 1
    assert page.count("class='frame'") == 4 and "<script" not in page   # a few frames as the overlay draws them


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium here (setup.sh installs Debian's where apt-get can)")
def test_run_pipeline_report_writes_the_page_that_renders_in_a_real_browser(drive_clip, models, tmp_path):
    run = subprocess.run(pipeline_command(drive_clip, models, "--fast", "--publish", free_endpoint(), "--report",
                                          tmp_path / "run", "--json"), cwd=REPO, env=env(), capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    out = tmp_path / "run" / "report.html"
    assert json.loads(run.stdout.splitlines()[-1])["summary"]["report"] == str(out)
    shot = tmp_path / "shot.png"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}"]
    subprocess.run([CHROMIUM, *flags, f"--screenshot={shot}", "--window-size=1100,1800", out.as_uri()],
                   capture_output=True, timeout=120)
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[:2] == (1800, 1100)
    # the charts drew: many colours, not a blank or a broken-image page
    colours = len(np.unique(image.reshape(-1, 3) // 16, axis=0))
    assert colours > 40, colours
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", out.as_uri()], capture_output=True, text=True,
                         timeout=120).stdout
    assert dom.count("<img") == 4 + 4 and "ExprADA run" in dom
