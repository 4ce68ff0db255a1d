"""Scripted eye events (blinks, long closures) and look-aways in the synthetic drive: their ground
truth, eyelids that FaceMesh sees close, and a drive left as it was when no option is given."""
import hashlib
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
    assert all(0.5 <= e.end - e.start <= 2.5 and 0.1 <= e.lead <= 0.2 for e in looks)
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
    scripted = [e for e in drive["look_aways"] if e["kind"] != "glance"]  # not the head motion's own
    assert len(scripted) == 1 and scripted[0]["kind"] in events.LOOK_AWAYS
    assert drive["script"]["eyeballs"] is True and drive["script"]["look_aways"] == 1

    def inside(t, episodes, kind):
        return any(e["start"] <= t < e["end"] and e["kind"] == kind for e in episodes)

    for f in frames:
        assert 0.0 <= f["eyes_closed"] <= 1.0
        assert (f["eyes_closed"] > 0) <= (f["eye_event"] is not None)
        if f["eye_event"] is not None:
            assert inside(f["time"], drive["eye_events"], f["eye_event"])
        if f["look_away"] is not None:
            assert inside(f["time"], drive["look_aways"], f["look_away"])
        assert f["off_road"] == (f["look_away"] is not None or f["distraction"] is not None)
    for event in drive["eye_events"]:  # every event shows: its frames close the eyes
        closed = [f["eyes_closed"] for f in frames if event["start"] <= f["time"] < event["end"]]
        assert max(closed) > (0.5 if event["kind"] == "blink" else 0.99)
    look = scripted[0]
    held = [f for f in frames if f["look_away"] == look["kind"]]
    assert len(held) == sum(look["start"] <= f["time"] < look["end"] for f in frames) >= 15
    # Mid-episode the head is turned the episode's way, beyond the slow sways (±26° yaw, ±12° pitch);
    # the eyes reach and hold their share of the turn.
    middle = held[len(held) // 2]
    if look["kind"] in ("left mirror", "right mirror"):
        assert np.sign(middle["yaw"]) == np.sign(look["yaw"])
    elif look["kind"] in ("centre console", "phone glance"):
        assert middle["pitch"] > 15
    assert any(f["gaze"] == pytest.approx([look["gaze_yaw"], look["gaze_pitch"]], abs=0.02) for f in held)


def _openness(stage, writer, driver, camera, w_exp, pose, closed):
    """FaceMesh's (face.eyes) openness, both eyes' mean, of one rendered frame."""
    canvas = camera.backdrop(np.random.default_rng(1))
    writer.scene.draw(canvas, driver, w_exp, pose, light=camera.light, eyes_closed=closed, gaze=(0.0, 0.0))
    result = stage(camera.expose(canvas, pose.height))
    assert result and result.eyes is not None, f"no face or eyes found (closed {closed})"
    return (result.eyes.openness_left + result.eyes.openness_right) / 2


def test_closed_eyelids_close_for_facemesh():
    import face
    from train.synthetic.scene import Pose
    from train.synthetic.writer import SynthWriter

    writer = SynthWriter("/nonexistent-not-written", seed=5, drivers=2)
    pose = Pose(yaw=5.0, pitch=3.0, height=200.0)
    seen = {}
    with face.FaceStage(size=128, video=False, model=writer.model) as stage:
        for driver, camera in writer.drivers["target"]:
            for label in (3, 6):  # happiness, neutral
                w_exp = writer.factory.expression(np.random.default_rng(2), label)
                for closed in (0.0, 0.5, 1.0):
                    seen.setdefault(closed, []).append(_openness(stage, writer, driver, camera, w_exp, pose, closed))
    opened, half, shut = (np.mean(seen[c]) for c in (0.0, 0.5, 1.0))
    print(f"FaceMesh openness: open {opened:.3f}, half {half:.3f}, shut {shut:.3f}")
    assert shut < half < opened and shut < 0.35 * opened, (opened, half, shut)


# The default drive (no drive option), as HEAD b331ba5 wrote it before moving eyes and the newer
# episodes existed, for SynthWriter(seed=0, drivers=1).write_video(16.0) (one glance included): the
# sha256 of the per-frame pose and label fields, and a thumbnail of every 16th frame handed to the
# video writer (grey, 40×40-pixel block means; `data/default_drive.npz`). Thumbnails and not a hash
# of the pixels: OpenCV's resize and blur round differently on CPUs with other vector units, so the
# same code draws frames a level or so apart on another machine; a changed drive moves far more.
# The truth hash was made on a `git worktree add /tmp/synth_head b331ba5` checkout, the thumbnails
# by this file's `drive_thumbnails` on a checkout of 1e0ae59, which still drew that drive.
DEFAULT_TRUTH_SHA256 = "c10295d436f8becb215cad7dbd971743dbdc3fae7c823e0886e8e63a89fab34d"
DEFAULT_DRIVE_THUMBNAILS = Path(__file__).with_name("data") / "default_drive.npz"
TRUTH_KEYS = ("frame", "time", "face", "expression", "label", "transition", "box", "yaw", "pitch", "roll",
              "eyes_closed", "eye_event")


def drive_thumbnails(frames) -> np.ndarray:
    """Every 16th frame, grey, as means of 40×40-pixel blocks (float16: ample for a 0.25 tolerance)."""
    out = []
    for frame in frames[::16]:
        grey = frame.astype(np.float64).mean(axis=2)
        h, w = grey.shape[0] // 40 * 40, grey.shape[1] // 40 * 40
        out.append(grey[:h, :w].reshape(h // 40, 40, w // 40, 40).mean(axis=(1, 3)))
    return np.asarray(out, dtype=np.float16)


def write_default_drive(folder, monkeypatch):
    """SynthWriter(seed=0, drivers=1).write_video(16.0) with the frames kept instead of encoded."""
    from train.synthetic import writer as synth_writer

    frames = []

    class Capture:  # stands in for cv2.VideoWriter
        def __init__(self, *args):
            pass

        def isOpened(self):
            return True

        def write(self, frame):
            frames.append(frame.copy())

        def release(self):
            pass

    monkeypatch.setattr(synth_writer.cv2, "VideoWriter", Capture)
    writer = synth_writer.SynthWriter(folder, seed=0, drivers=1)
    assert writer.script["eyeballs"] is False and writer.script["head_sway"] == 1.0
    return writer.write_video(16.0, progress=False), frames


def test_default_drive_is_unchanged(tmp_path, monkeypatch):
    meta, frames = write_default_drive(tmp_path, monkeypatch)
    truth = hashlib.sha256(json.dumps([[f.get(k) for k in TRUTH_KEYS] for f in meta["frames"]]).encode())
    assert truth.hexdigest() == DEFAULT_TRUTH_SHA256
    thumbnails, reference = drive_thumbnails(frames), np.load(DEFAULT_DRIVE_THUMBNAILS)["thumbnails"]
    assert thumbnails.shape == reference.shape
    difference = np.abs(thumbnails.astype(np.float32) - reference)
    assert difference.max() < 0.25 and difference.mean() < 0.01, (
        f"the default drive moved: up to {difference.max():.2f} grey levels, {difference.mean():.3f} on average")
    # The new truth is there all the same: the head motion's glance is an off-road moment.
    glances = [e for e in meta["look_aways"] if e["kind"] == "glance"]
    assert len(glances) == 1 and not meta["distractions"] and not meta["gaze_shifts"]
    off = [f for f in meta["frames"] if f["off_road"]]
    assert off and all(f["look_away"] == "glance" and f["gaze"] is None for f in off)
