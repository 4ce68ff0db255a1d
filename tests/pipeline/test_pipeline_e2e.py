"""The whole pipeline as a user runs it: run_pipeline.py in its own process, one process per stage,
the emotion stream read by subscribers in other processes, on encoded video files."""
import json
import os
import signal
import subprocess
import sys
import time

import cv2
import pytest
import zmq

from pipeline_helpers import REPO, env, free_endpoint, pipeline_command
from pipeline.messages import EMOTION_SCHEMA, STATUS_SCHEMA, to_builtins
from test_schemas import validator

pytestmark = pytest.mark.slow
FIELDS = {"schema", "frame_id", "source", "t_capture_ns", "t_publish_ns", "valid", "label", "probs",
          "smoothed_label", "face", "latency_ms"}
ACCURACY_FLOOR = 0.9   # the brightness classifier separates the clip's two looks; tracking may miss a frame


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:   # a zombie is dead but still listed until reaped
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def summary_of(stdout):
    lines = [line for line in stdout.splitlines() if line.startswith('{"summary"')]
    assert lines, f"no summary in output:\n{stdout}"
    return json.loads(lines[-1])["summary"]


def start_subscriber(endpoint, out_file):
    """A subscriber in its own process, printing into a file (a pipe nobody reads until the end would
    fill and stall it), that exits once the stream has been quiet for 10 s."""
    return subprocess.Popen([sys.executable, "-m", "pipeline.subscribe", "--endpoint", endpoint, "--timeout", "10"],
                            cwd=REPO, env=env(), stdout=open(out_file, "w"), text=True)


def test_replay_end_to_end_with_subscribers_record_and_overlay(models, drive_clip, drive_plan, tmp_path):
    endpoint = free_endpoint()
    frames = len(drive_plan)
    subscriber_out = tmp_path / "subscriber.jsonl"
    subscriber = start_subscriber(endpoint, subscriber_out)
    stalled_ctx = zmq.Context()
    stalled = stalled_ctx.socket(zmq.SUB)                     # a subscriber that never reads
    stalled.setsockopt(zmq.RCVHWM, 1)
    stalled.setsockopt(zmq.SUBSCRIBE, b"")
    stalled.connect(endpoint)
    overlay, record = tmp_path / "overlay.mp4", tmp_path / "rec"
    run = subprocess.run(pipeline_command(drive_clip, models, "--fast", "--publish", endpoint, "--save-video",
                                          overlay, "--record", record),
                         cwd=REPO, env=env(), capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert subscriber.wait(timeout=60) == 0
    out = subscriber_out.read_text()
    stalled.close(0)
    stalled_ctx.term()
    received = [json.loads(line) for line in out.splitlines()]
    emotions = [m for m in received if m["topic"] == "emotion"]
    statuses = [m for m in received if m["topic"] == "status"]
    strip = lambda m: {k: v for k, v in m.items() if k != "topic"}  # noqa: E731

    # One message per frame, in order, with the schema; no face → valid: false, not silence.
    assert [m["frame_id"] for m in emotions] == list(range(frames))
    for m, kind in zip(emotions, drive_plan):
        assert FIELDS <= set(m) and m["schema"] == EMOTION_SCHEMA and m["source"] == str(drive_clip)
        assert m["t_capture_ns"] < m["t_publish_ns"]
        assert set(m["latency_ms"]) >= {"capture", "face", "decide", "total"}
        if kind == "empty":
            assert m["valid"] is False and m["probs"] is None and m["reason"]
    valid = [m for m in emotions if m["valid"]]
    assert valid and all(set(m["latency_ms"]) >= {"translate", "classify"} for m in valid)
    assert all(abs(sum(m["probs"].values()) - 1) < 1e-3 and m["face"]["box"] for m in valid)
    # The published label is the fusion (the default) of the translated and render paths; every valid
    # message carries all three paths (every path is classified by default, for the summary).
    assert all(m["published_from"] == "fusion" and set(m["paths"]) == {"translated", "render", "crop"} for m in valid)
    assert not any("paths" in m or "published_from" in m for m in emotions if not m["valid"])
    assert statuses and statuses[-1]["schema"] == STATUS_SCHEMA
    # Every message a subscriber in another process got is valid against the shipped JSON Schema.
    for topic, messages in (("emotion", emotions), ("status", statuses)):
        check = validator(topic)
        for m in messages:
            check.validate(strip(m))
    assert set(statuses[-1]["stages"]) == {"capture", "perceive", "decide"}   # the default layout: fused
    # The run's last message says the stream ended (and the subscriber, told so, exited by itself).
    assert received[-1]["topic"] == "status" and statuses[-1]["ended"] == "end of source"
    assert all(s["ended"] is None for s in statuses[:-1])

    summary = summary_of(run.stdout)
    assert summary["frames"] == frames and summary["drops"] == 0 and summary["restarts"] == 0
    assert summary["frames_with_truth"] == frames and summary["no_face_agreement"] == 1.0
    assert summary["published_from"] == "fusion" and all(
        summary[f"accuracy_{key}"] >= ACCURACY_FLOOR for key in ("published", "translated", "render", "crop"))
    assert (f"published (fusion) {summary['accuracy_published']}, translated (with UIT) "
            f"{summary['accuracy_translated']}, render {summary['accuracy_render']}, "
            f"crop (aligned frame) {summary['accuracy_crop']}") in run.stderr
    assert summary["latency_ms"]["p50"] <= summary["latency_ms"]["p99"]

    # --record: raw frames and the very messages that were published.
    recorded = [json.loads(line) for line in (record / "emotion.jsonl").read_text().splitlines()]
    assert recorded == [strip(m) for m in emotions]
    assert len(list((record / "frames").glob("*.png"))) == frames
    # --save-video: one overlay frame per frame, wider than the input (the side panel).
    video = cv2.VideoCapture(str(overlay))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == frames and video.get(cv2.CAP_PROP_FRAME_WIDTH) > 640

    # Every stage process is gone.
    pids = [pid for s in statuses[-1]["stages"].values() for pid in (s.get("pids") or [s["pid"]])]
    assert len(pids) == 4 and not any(alive(pid) for pid in pids)   # capture, perceive ×2, decide

    # The recording replays through the single-process mode to the same messages, timing fields aside.
    replayed_log = tmp_path / "replayed"
    replay = subprocess.run(pipeline_command(record / "frames", models, "--fast", "--single-process", "--publish",
                                             free_endpoint(), "--record", replayed_log, "--json"),
                            cwd=REPO, env=env(), capture_output=True, text=True, timeout=120)
    assert replay.returncode == 0, replay.stderr
    again = summary_of(replay.stdout)
    assert again["frames"] == frames and again["accuracy_translated"] == summary["accuracy_translated"]
    replayed = [json.loads(line) for line in (replayed_log / "emotion.jsonl").read_text().splitlines()]
    assert [without_timing(m) for m in replayed] == [without_timing(m) for m in recorded]

    # The staged layout (face, translate and classify each in its own process) publishes the same
    # messages, timing aside, and times the same steps; its status names its own stages.
    staged_log = tmp_path / "staged"
    staged = subprocess.run(pipeline_command(record / "frames", models, "--fast", "--layout", "staged", "--publish",
                                             free_endpoint(), "--record", staged_log, "--json"),
                            cwd=REPO, env=env(), capture_output=True, text=True, timeout=120)
    assert staged.returncode == 0, staged.stderr
    staged_messages = [json.loads(line) for line in (staged_log / "emotion.jsonl").read_text().splitlines()]
    assert [without_timing(m) for m in staged_messages] == [without_timing(m) for m in recorded]
    assert all(set(m["latency_ms"]) >= {"face", "translate", "classify"} for m in staged_messages if m["valid"])
    staged_status = [json.loads(line) for line in (staged_log / "status.jsonl").read_text().splitlines()][-1]
    assert set(staged_status["stages"]) == {"capture", "face", "translate", "classify", "decide"}
    assert summary_of(staged.stdout)["frames"] == frames and summary_of(staged.stdout)["drops"] == 0

    # The benchmark's reference, the same stages in one plain loop, reaches the same decisions (the
    # face geometry differs in its last digits: one tracker sees every frame, each replica every other).
    from pipeline.config import PipelineConfig
    from pipeline.sequential import run_sequential

    sequential = run_sequential(PipelineConfig(source=str(drive_clip), fast=True, generator=models[0],
                                               classifier=models[1]))
    assert sequential["published_from"] == "fusion" and sequential["accuracy_crop"] >= ACCURACY_FLOOR
    assert [decisions(to_builtins(r.emotion)) for r in sequential["results"]] == [decisions(m) for m in recorded]


def decisions(message):
    return {k: message[k] for k in ("frame_id", "valid", "label", "smoothed_label")}


def without_timing(message):
    """What a replay must reproduce: everything but clocks, latencies and the source's name."""
    kept = {k: v for k, v in message.items() if k not in ("t_capture_ns", "t_publish_ns", "latency_ms", "source")}
    if kept["probs"]:
        kept["probs"] = {k: round(v, 3) for k, v in kept["probs"].items()}
    if "paths" in kept:
        kept["paths"] = {path: {k: round(v, 3) for k, v in probs.items()} for path, probs in kept["paths"].items()}
    return kept


class Stream:
    """The emotion and status topics, collected by a subscriber in the test's own process."""

    def __init__(self, endpoint, run):
        self.ctx, self.run = zmq.Context(), run
        self.sub = self.ctx.socket(zmq.SUB)
        for topic in (b"emotion", b"status"):
            self.sub.setsockopt(zmq.SUBSCRIBE, topic)
        self.sub.connect(endpoint)
        self.emotions, self.statuses = [], []

    def wait_until(self, condition, what, timeout_s=60):
        deadline = time.monotonic() + timeout_s
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting for {what}; last status {self.statuses[-1:]}"
            assert self.run.poll() is None, f"the run ended while waiting for {what}: {self.run.communicate()}"
            if self.sub.poll(200):
                topic, payload = self.sub.recv_multipart()
                (self.emotions if topic == b"emotion" else self.statuses).append(json.loads(payload))

    def stage(self, name):
        return self.statuses[-1]["stages"][name]

    def close(self):
        self.sub.close(0)
        self.ctx.term()


def test_crashed_and_hung_stages_are_restarted_and_sigterm_stops_everything(models, long_clip):
    endpoint = free_endpoint()
    run = subprocess.Popen(pipeline_command(long_clip, models, "--publish", endpoint, "--stall-timeout", 3,
                                            "--layout", "staged"),   # a stage per step: each restarted alone
                           cwd=REPO, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stream = Stream(endpoint, run)
    victims = []
    try:
        # A crash (SIGKILL) of face, then of capture; then translate hangs (SIGSTOP) and the
        # supervisor, hearing nothing from it for 3 s, kills and restarts it.
        for name, sig in (("face", signal.SIGKILL), ("capture", signal.SIGKILL), ("translate", signal.SIGSTOP)):
            stream.wait_until(lambda: len(stream.emotions) >= 10 * (len(victims) + 1) and stream.statuses,
                              "frames before the kill")
            victims.append(stream.stage(name)["pid"])
            os.kill(victims[-1], sig)
            killed_at = stream.emotions[-1]["frame_id"]
            # The stream goes on, with faces, and a status names the new process.
            stream.wait_until(lambda: any(m["frame_id"] > killed_at + 5 and m["valid"] for m in stream.emotions),
                              f"valid frames after killing {name}")
            stream.wait_until(lambda: stream.stage(name)["restarts"] == 1 and stream.stage(name)["alive"]
                              and stream.stage(name)["pid"] != victims[-1], f"{name} restarted")
        ids = [m["frame_id"] for m in stream.emotions]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)   # in order, no duplicate after the capture restart
        pids = [s["pid"] for s in stream.statuses[-1]["stages"].values()]
        # SIGTERM mid-run: everything stops (within 2 s by design; a loaded CI machine gets slack).
        started = time.monotonic()
        run.send_signal(signal.SIGTERM)
        out, err = run.communicate(timeout=10)
        stopped_in = time.monotonic() - started
    finally:
        if run.poll() is None:
            run.kill()
        stream.close()
    assert run.returncode == 143, err
    assert stopped_in < 4.0, f"took {stopped_in:.1f} s to stop"
    assert not any(alive(pid) for pid in pids + victims)
    assert summary_of(out)["restarts"] == 3 and err.count("restarting") == 3
    assert "stage translate silent for" in err


@pytest.mark.parametrize("layout", ["fused", "staged"])   # fused: the default
def test_live_mode_accounts_for_every_frame(models, drive_clip, drive_plan, layout):
    """Latest-frame-wins at the recorded pace: every captured frame is either published or counted
    as dropped, and what is published stays in order."""
    run = subprocess.run(pipeline_command(drive_clip, models, "--live", "--layout", layout, "--publish",
                                          free_endpoint(), "--json"),
                         cwd=REPO, env=env(), capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    summary = summary_of(run.stdout)
    assert summary["frames"] + summary["drops"] == len(drive_plan)
    assert summary["frames"] > 0 and summary["latency_ms"]["p99"] is not None
