"""`python -m pipeline.replay`: a recording replays to the same messages with the same models, and a
changed model shows where it changes them (process replay, timing ignored)."""
import json
import shutil
import subprocess
import sys
from types import SimpleNamespace

import cv2
import numpy as np

from pipeline.messages import Emotion
from pipeline.record import FrameRecorder, read_messages
from pipeline.replay import compare, differences
from pipeline_clips import brightness_classifier
from pipeline_helpers import REPO, env


def replay(record, models):
    run = subprocess.run([sys.executable, "-m", "pipeline.replay", str(record), "--generator", models[0],
                          "--classifier", models[1]], cwd=REPO, env=env(), capture_output=True, text=True,
                         timeout=180)
    return run.returncode, json.loads(run.stdout.splitlines()[-1]) if run.stdout.strip() else run.stderr


def test_a_recording_replays_to_the_same_messages_and_a_new_model_shows_its_changes(recording, models, tmp_path):
    record = recording
    status, same = replay(record, models)
    assert status == 0 and same["same"], same
    assert same["frames_recorded"] == same["frames_replayed"] > 0 and same["fields"] == {}
    # a classifier that reads every face brighter: its labels change where the brightness is in between
    darker = str(brightness_classifier(tmp_path / "darker.onnx", -0.9))
    status, changed = replay(record, (models[0], darker))
    assert status == 1 and not changed["same"] and changed["frames_differing"] > 0
    assert changed["fields"].get("label", 0) > 0 and changed["first"][0]["field"]


def test_timing_is_ignored_and_numbers_agree_within_the_tolerance():
    a = {"frame_id": 1, "t_capture_ns": 5, "latency_ms": {"total": 3.0}, "source": "a.mp4", "label": "fear",
         "probs": {"fear": 0.9001, "anger": 0.0999}, "valid": True}
    b = {**a, "t_capture_ns": 9, "latency_ms": {"total": 8.0}, "source": "rec/frames",
         "probs": {"fear": 0.9005, "anger": 0.0995}}
    assert differences(a, b, 1e-3) == []
    c = {**b, "label": "anger", "valid": 1}
    assert [d[0] for d in differences(a, c, 1e-3)] == ["label", "valid"]   # True is no number here
    report = compare([a, {**a, "frame_id": 2}], [c], 1e-3)
    assert report["missing"] == [2] and report["frames_differing"] == 1 and report["fields"] == {"label": 1, "valid": 1}


def test_no_recording_is_bad_input(tmp_path):
    run = subprocess.run([sys.executable, "-m", "pipeline.replay", str(tmp_path)], cwd=REPO, env=env(),
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "holds no recording" in run.stderr
    for option in (["--face-workers", "0"], ["--atol", "-1"]):   # were: no face stage started; nothing agreed
        run = subprocess.run([sys.executable, "-m", "pipeline.replay", str(tmp_path), *option], cwd=REPO, env=env(),
                             capture_output=True, text=True, timeout=60)
        assert run.returncode == 2 and f"argument {option[0]}: must be at least" in run.stderr


def test_a_damaged_recording_is_read_as_far_as_it_goes_by_the_replay_and_the_report(recording, models, tmp_path):
    damaged = tmp_path / "damaged"
    shutil.copytree(recording, damaged)
    lines = (damaged / "emotion.jsonl").read_text().splitlines()
    lines[1], lines[2] = "not json {", json.dumps({**json.loads(lines[2]), "frame_id": "two"})   # cut; mistyped
    (damaged / "emotion.jsonl").write_text("\n".join(lines) + "\n")
    (damaged / "event.jsonl").write_text('{"kind": 5}\n[1, 2\n')
    with (damaged / "status.jsonl").open("a") as status:
        status.write("\x00\xff garbage\n")
    emotions, malformed = read_messages(damaged / "emotion.jsonl", Emotion)
    assert malformed == 2 and len(emotions) == len(lines) - 2 and all(isinstance(m, Emotion) for m in emotions)
    assert read_messages(damaged / "event.jsonl") == ([], 2) and read_messages(tmp_path / "none.jsonl") == ([], 0)

    status, result = replay(damaged, models)   # was: a JSONDecodeError traceback
    assert status == 1 and result["damaged_lines"] == 4 and len(result["extra"]) == 2 and result["frames_differing"] == 0
    page = tmp_path / "report.html"
    run = subprocess.run([sys.executable, "-m", "pipeline.report", str(damaged), "--out", str(page)], cwd=REPO,
                         env=env(), capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "Traceback" not in run.stderr and page.stat().st_size > 0, run.stderr


def test_a_restarted_capture_cuts_a_half_written_index_line_and_records_on(tmp_path):
    """A capture killed by a full disk mid-line: the next capture of the run must not die on the index, nor
    glue its first entry onto the cut one."""
    frame = np.zeros((8, 8, 3), np.uint8)
    first = FrameRecorder(tmp_path, run="r")
    for index in range(2):
        first.write(SimpleNamespace(index=index, frame=frame, t_capture_ns=index, truth=None))
    first.close()
    index_file = tmp_path / "frames" / "frames.jsonl"
    index_file.write_bytes(index_file.read_bytes() + b'{"frame": 2, "source_in')   # cut mid-line
    (tmp_path / "frames" / "000002.png").write_bytes(b"half")                       # its image, written before it
    again = FrameRecorder(tmp_path, run="r")
    again.write(SimpleNamespace(index=2, frame=frame, t_capture_ns=2, truth=None))
    again.close()
    entries = [json.loads(line) for line in index_file.read_text().splitlines()]
    assert [(e["frame"], e["source_index"]) for e in entries] == [(0, 0), (1, 1), (2, 2)]
    assert cv2.imread(str(tmp_path / "frames" / "000002.png")).shape == (8, 8, 3)   # written again, whole


def test_replay_and_report_say_up_front_when_they_cannot_write_their_out(recording, tmp_path):
    for command in ("pipeline.replay", "pipeline.report"):   # the replay said so only after replaying it all
        run = subprocess.run([sys.executable, "-m", command, str(recording), "--out", "/proc/no-such/out.json"],
                             cwd=REPO, env=env(), capture_output=True, text=True, timeout=60)
        lines = run.stderr.splitlines()
        assert run.returncode == 2 and len(lines) == 1
        assert "--out /proc/no-such/out.json: cannot write in /proc/no-such" in lines[0]
