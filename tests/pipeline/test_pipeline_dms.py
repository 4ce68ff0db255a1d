"""The driver monitor through the real pipeline: a synthetic drive with a scripted distraction, a long
eye closure and blinks, encoded as a video, replayed by run_pipeline.py (one process per stage), the
`event` and `emotion` topics read by a subscriber in another process."""
import json
import subprocess
import sys

import pytest

from pipeline.messages import EVENT_SCHEMA
from pipeline_helpers import REPO, env, free_endpoint, pipeline_command
from test_schemas import validator

pytestmark = pytest.mark.slow
SECONDS = 16


@pytest.fixture(scope="module")
def scripted_drive(tmp_path_factory):
    out = tmp_path_factory.mktemp("dms_drive")
    command = [sys.executable, "-m", "train", "synth", "--out", str(out), "--no-progress", "--seed", "5",
               "--per-class", "0", "--target-per-class", "0", "--drivers", "1", "--video-seconds", str(SECONDS),
               "--blinks-per-minute", "20", "--eye-closures", "1", "--distractions", "1", "--head-sway", "0.3"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return out / "drive.mp4", json.loads((out / "drive.json").read_text())


def test_events_and_driver_fields_reach_a_subscriber(models, scripted_drive, tmp_path):
    video, truth = scripted_drive
    endpoint = free_endpoint()
    # Each subscriber writes to a file (a pipe nobody reads until the end would stall it) and exits
    # once the stream has been quiet for 10 s.
    outputs = {name: tmp_path / f"{name}.out" for name in ("json", "brief")}
    subscribers = [subprocess.Popen([sys.executable, "-m", "pipeline.subscribe", "--endpoint", endpoint,
                                     "--timeout", "10", *extra], cwd=REPO, env=env(), stdout=outputs[name].open("w"))
                   for name, extra in (("json", ["--topic", "event", "--topic", "emotion"]), ("brief", ["--brief"]))]
    record = tmp_path / "rec"
    run = subprocess.run(pipeline_command(video, models, "--fast", "--publish", endpoint, "--record", record,
                                          "--save-video", tmp_path / "overlay.mp4"),
                         cwd=REPO, env=env(), capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    for subscriber in subscribers:
        assert subscriber.wait(timeout=60) == 0
    received = [json.loads(line) for line in outputs["json"].read_text().splitlines()]
    brief_lines = outputs["brief"].read_text().splitlines()
    events = [m for m in received if m["topic"] == "event"]
    emotions = [m for m in received if m["topic"] == "emotion"]
    assert len(emotions) == len(truth["frames"])

    # The scripted distraction is one `distraction` event, decided 3 s into it (give or take the
    # turn's first frames), and ended after it.
    (episode,) = truth["distractions"]
    distraction = [e for e in events if e["kind"] == "distraction"]
    assert [e["state"] for e in distraction] == ["start", "end"], events
    start, end = distraction
    decided = start["t_ns"] / 1e9
    assert episode["start"] + 3.0 - 0.2 <= decided <= episode["start"] + 3.5
    assert end["event_id"] == start["event_id"] and episode["end"] - 0.5 <= end["t_end_ns"] / 1e9 <= episode["end"] + 1.0
    # A closure of a second or more is a microsleep; no other alert on this otherwise attentive drive.
    (closure,) = [e for e in truth["eye_events"] if e["kind"] == "closure"]
    microsleeps = [e for e in events if e["kind"] == "microsleep" and e["state"] == "start"]
    assert len(microsleeps) == (closure["end"] - closure["start"] >= 1.0)
    assert not [e for e in events if e["kind"] in ("time_sharing", "drowsiness")]
    check = validator("event")
    for event in events:
        check.validate({k: v for k, v in event.items() if k != "topic"})
        assert event["schema"] == EVENT_SCHEMA

    # Per frame: the driver fields, eyes on every face frame, a blink now and then, the event listed
    # while it lasts.
    with_face = [m for m in emotions if m["face"]]
    assert all(m["driver"]["present"] and "eyes" in m["driver"] for m in with_face)
    assert sum("blink" in m["driver"] for m in emotions) >= 2
    during = [m for m in emotions if start["t_ns"] <= m["t_media_ns"] < end["t_ns"]]
    assert during and all("distraction" in m["driver"]["events"] for m in during)
    assert any("EVENT distraction (eyes) start" in line or "EVENT distraction (head) start" in line
               for line in brief_lines)
    assert any("| calibrating" in line for line in brief_lines)
    assert brief_lines[0].split()[:3] == ["frame", "smoothed", "this"]          # a header first
    assert any(line.startswith("STATUS replay, source ") for line in brief_lines)   # status in words

    # The summary counts them, --record keeps them.
    summary = json.loads([line for line in run.stdout.splitlines() if line.startswith('{"summary"')][-1])["summary"]
    assert summary["driver"]["events"]["distraction"] == 1 and summary["driver"]["blinks"] >= 2
    recorded = [json.loads(line) for line in (record / "event.jsonl").read_text().splitlines()]
    assert recorded == [{k: v for k, v in e.items() if k != "topic"} for e in events]
