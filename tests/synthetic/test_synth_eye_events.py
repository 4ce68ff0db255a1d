"""Scripted eye events (blinks, long closures) and look-aways in the synthetic drive: their ground
truth, and eyelids that FaceMesh sees close."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from train.synthetic import events

ROOT = Path(__file__).resolve().parents[2]


def test_event_schedules_are_realistic_and_deterministic():
    def schedule(seed):
        rng = np.random.default_rng(seed)
        return events.eye_events(rng, 60.0, blinks_per_minute=15, closures=2), events.look_aways(rng, 60.0, 3)

    eyes, looks = schedule(1)
    assert schedule(1) == (eyes, looks)
    blinks = [e for e in eyes if e.kind == "blink"]
    assert 8 <= len(blinks) <= 25 and all(0.1 <= e.end - e.start <= 0.4 for e in blinks)
    closures = [e for e in eyes if e.kind == "closure"]
    assert len(closures) == 2 and all(0.5 <= e.end - e.start <= 2.0 for e in closures)
    for group in (eyes, looks):
        assert all(a.end <= b.start for a, b in zip(group, group[1:]))  # no overlaps
    assert len(looks) == 3 and {e.kind for e in looks} <= set(events.LOOK_AWAYS)
    # Closure profile: 0 outside, shut in the middle of a long closure, within 0..1 throughout.
    closure = closures[0]
    assert events.eyes_closed(closure.start - 0.01, eyes) == (0.0, None)
    assert events.eyes_closed((closure.start + closure.end) / 2, eyes) == (1.0, "closure")
    assert all(0.0 <= events.eyes_closed(t, eyes)[0] <= 1.0 for t in np.arange(0, 60, 1 / 30))


@pytest.fixture(scope="module")
def drive(tmp_path_factory):
    out = tmp_path_factory.mktemp("eye_events")
    cmd = [sys.executable, "-m", "train", "synth", "--out", str(out), "--no-progress", "--seed", "3",
           "--per-class", "0", "--drivers", "1", "--video-seconds", "8", "--blinks-per-minute", "20",
           "--eye-closures", "1", "--look-aways", "1"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads((out / "drive.json").read_text())


def test_drive_writes_consistent_event_truth(drive):
    frames = drive["frames"]
    assert len(frames) == 240 and all(f["face"] for f in frames)  # no no-face moment in the first 11 s
    kinds = [e["kind"] for e in drive["eye_events"]]
    assert kinds.count("closure") == 1 and kinds.count("blink") >= 1
    assert len(drive["look_aways"]) == 1 and drive["look_aways"][0]["kind"] in events.LOOK_AWAYS

    def inside(t, episodes, kind):
        return any(e["start"] <= t < e["end"] and e["kind"] == kind for e in episodes)

    for f in frames:
        assert 0.0 <= f["eyes_closed"] <= 1.0
        assert (f["eyes_closed"] > 0) <= (f["eye_event"] is not None)
        if f["eye_event"] is not None:
            assert inside(f["time"], drive["eye_events"], f["eye_event"])
        if f["look_away"] is not None:
            assert inside(f["time"], drive["look_aways"], f["look_away"])
    for event in drive["eye_events"]:  # every event shows: its frames close the eyes
        closed = [f["eyes_closed"] for f in frames if event["start"] <= f["time"] < event["end"]]
        assert max(closed) > (0.5 if event["kind"] == "blink" else 0.99)
    look = drive["look_aways"][0]
    held = [f for f in frames if f["look_away"] is not None]
    assert len(held) == sum(look["start"] <= f["time"] < look["end"] for f in frames) >= 24
    # Mid-episode the head is turned the episode's way, beyond the slow sways (±26° yaw, ±12° pitch).
    middle = held[len(held) // 2]
    if look["kind"] in ("left mirror", "right mirror"):
        assert np.sign(middle["yaw"]) == np.sign(look["yaw"])
    elif look["kind"] == "centre console":
        assert middle["pitch"] > 15


def _lid_gaps(landmarks):
    """Mid-lid gap over corner-to-corner width, right and left eye (FaceMesh indices)."""
    def ratio(upper, lower, a, b):
        return np.linalg.norm(landmarks[upper] - landmarks[lower]) / np.linalg.norm(landmarks[a] - landmarks[b])

    return ratio(159, 145, 33, 133), ratio(386, 374, 263, 362)


def test_closed_eyelids_close_for_facemesh():
    import face
    from train.synthetic.scene import Pose
    from train.synthetic.writer import SynthWriter

    writer = SynthWriter("/nonexistent-not-written", seed=5, drivers=1)
    driver, camera = writer.drivers["target"][0]
    pose = Pose(yaw=5.0, pitch=3.0, height=200.0)
    gaps = {}
    with face.FaceStage(size=128, video=False, model=writer.model) as stage:
        for label in (3, 6):  # happiness, neutral
            w_exp = writer.factory.expression(np.random.default_rng(2), label)
            for closed in (0.0, 1.0):
                canvas = camera.backdrop(np.random.default_rng(1))
                writer.scene.draw(canvas, driver, w_exp, pose, light=camera.light, eyes_closed=closed)
                frame = camera.expose(canvas, pose.height)
                result = stage(frame)
                assert result, f"no face found (label {label}, closed {closed})"
                gaps.setdefault(closed, []).extend(_lid_gaps(result.landmarks))
    open_gap, closed_gap = np.mean(gaps[0.0]), np.mean(gaps[1.0])
    print(f"FaceMesh mid-lid gap / eye width: open {open_gap:.3f}, closed {closed_gap:.3f}")
    assert closed_gap < 0.85 * open_gap, (open_gap, closed_gap)
