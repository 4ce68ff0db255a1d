"""Moving eyes and the episodes a driver monitor is judged on (gaze shifts, look-aways,
distractions, the head motion's glances) in the synthetic drive: schedules, per-frame truth, and
FaceMesh's gaze following the rendered eyes."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from face.fit import rotation_from_angles
from train.synthetic import eyeballs, events

ROOT = Path(__file__).resolve().parents[2]
OFF_ROAD = ("look_aways", "distractions")


def test_episode_schedules_are_deterministic_and_apart():
    def schedule(seed):
        rng = np.random.default_rng(seed)
        distractions = events.distractions(rng, 120.0, 4)
        looks = events.look_aways(rng, 120.0, 5, ((distractions, events.DISTRACTION_GAP_S),))
        shifts = events.gaze_shifts(rng, 120.0, 10, ((distractions + looks, 0.5),))
        return distractions, looks, shifts

    distractions, looks, shifts = schedule(2)
    assert schedule(2) == (distractions, looks, shifts)
    assert len(distractions) == 4 and len(looks) == 5 and len(shifts) >= 8
    assert all(3.0 <= e.end - e.start <= 8.0 and e.kind in events.DISTRACTIONS for e in distractions)
    for a, b in zip(distractions, distractions[1:]):
        assert b.start - a.end >= events.DISTRACTION_GAP_S
    assert not any(d.overlaps(e.start, e.end, events.DISTRACTION_GAP_S - 1e-9) for d in distractions for e in looks)
    everything = sorted(distractions + looks + shifts, key=lambda e: e.start)
    assert all(a.end <= b.start for a, b in zip(everything, everything[1:]))  # no overlaps at all
    for e in shifts:
        assert 0.3 <= e.end - e.start <= 2.0 and e.yaw == e.pitch == 0.0
        assert 5 <= abs(e.gaze_yaw) <= 15 and 3 <= abs(e.gaze_pitch) <= 8
    phone = events.LOOK_AWAYS["phone glance"]  # eyes and head together 30–45° down, 10–25° right
    assert 30 <= (phone[1] + phone[3]) * 0.85 and (phone[1] + phone[3]) * 1.15 <= 45
    assert -25 <= (phone[0] + phone[2]) * 1.15 and (phone[0] + phone[2]) * 0.85 <= -10


def test_eyes_lead_the_head():
    e = events.Event("left mirror", 10.0, 12.0, yaw=45.0, pitch=5.0, gaze_yaw=15.0, gaze_pitch=3.0, lead=0.15)
    early = 10.0 + 0.9 * e.lead  # the eyes are there, the head has not moved
    assert events.head_turn(early, [e])[:2] == (0.0, 0.0) and events.eye_gaze(early, [e]) == (15.0, 3.0)
    assert events.head_turn(11.0, [e]) == (45.0, 5.0, "left mirror") and events.eye_gaze(11.0, [e]) == (15.0, 3.0)
    late = 12.0 - events.TURN_S + 0.05  # on the way back the eyes are home first
    assert events.eye_gaze(late, [e]) == (0.0, 0.0) and events.head_turn(late, [e])[0] > 30.0
    assert events.head_turn(12.0, [e])[:2] == events.eye_gaze(12.0, [e]) == (0.0, 0.0)
    shift = events.Event("gaze shift", 5.0, 6.0, gaze_yaw=-10.0, gaze_pitch=4.0)
    assert events.eye_gaze(5.0 + events.saccade_s(10.0), [shift]) == (-10.0, 4.0)  # a saccade's 45 ms


def test_head_sway_scales_the_head_motion():
    from train.synthetic.video import HeadMotion

    def motion(sway):
        return HeadMotion(np.random.default_rng(4), 60.0, 640, 480, sway=sway)

    plain, calm, still = HeadMotion(np.random.default_rng(4), 60.0, 640, 480), motion(0.4), motion(0.0)
    times = np.arange(0.0, 60.0, 0.25)
    assert all(plain.pose(t) == motion(1.0).pose(t) for t in times)  # 1: as it always was
    assert all(still.pose(t).yaw == still.pose(t).pitch == still.pose(t).roll == 0.0 for t in times)
    assert still.glance_events() == [] and len(calm.glance_events()) == len(plain.glances) == 4
    bare = motion(0.4)
    bare.glances = []  # the sways alone
    for glance, (start, target) in zip(calm.glance_events(), sorted(calm.glances)):
        assert glance.yaw == pytest.approx(0.4 * target) and np.sign(glance.gaze_yaw) == np.sign(target)
        assert glance.start < start and glance.end == pytest.approx(start + 1.2)  # the eyes go first
        alone = sum(abs(other - start) < 1.2 for other, _ in calm.glances) == 1
        if alone:  # at its peak the head is turned by the glance's recorded yaw
            assert calm.pose(start + 0.6).yaw - bare.pose(start + 0.6).yaw == pytest.approx(glance.yaw)


def test_camera_gaze_is_face_eyes_camera_gaze():
    # face.eyes: eye-in-head gaze = angles(rotation(head).T @ camera direction).
    for head, gaze in (((30.0, -10.0, 5.0), (12.0, 8.0)), ((-40.0, 20.0, 0.0), (-25.0, -15.0))):
        camera = eyeballs.camera_gaze(head, gaze)
        back = rotation_from_angles(*head).T @ eyeballs.gaze_vector(*camera)
        assert eyeballs.angles(back) == pytest.approx(gaze, abs=1e-6)
    assert eyeballs.camera_gaze((20.0, 0.0, 0.0), (15.0, 0.0)) == pytest.approx((35.0, 0.0))


@pytest.fixture(scope="module")
def drive(tmp_path_factory):
    out = tmp_path_factory.mktemp("gaze")
    cmd = [sys.executable, "-m", "train", "synth", "--out", str(out), "--no-progress", "--seed", "1",
           "--per-class", "0", "--drivers", "1", "--video-seconds", "30", "--blinks-per-minute", "10",
           "--gaze-shifts-per-minute", "10", "--look-aways", "2", "--distractions", "1", "--head-sway", "0.4"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads((out / "drive.json").read_text())


def test_drive_episode_truth_is_consistent(drive):
    frames = drive["frames"]
    assert drive["script"] == dict(blinks_per_minute=10.0, eye_closures=0, look_aways=2, gaze_shifts_per_minute=10.0,
                                   distractions=1, head_sway=0.4, eyeballs=True, video_seconds=30.0, seed=1)
    scripted = [e for e in drive["look_aways"] if e["kind"] != "glance"]
    assert len(drive["distractions"]) == 1 and len(scripted) == 2 and len(drive["gaze_shifts"]) >= 2
    glances = [e for e in drive["look_aways"] if e["kind"] == "glance"]
    assert len(glances) == 2 and all(abs(g["yaw"]) <= 0.4 * 58 + 1e-6 for g in glances)  # scaled by the sway
    # Scripted episodes: apart from each other, the glances and the no-face moments.
    no_face = [s for s in drive["segments"] if s["expression"] is None]
    placed = sorted(scripted + drive["distractions"] + drive["gaze_shifts"], key=lambda e: e["start"])
    assert all(a["end"] <= b["start"] for a, b in zip(placed, placed[1:]))
    for e in placed:
        assert not any(e["start"] < o["end"] and o["start"] < e["end"] for o in glances + no_face)
    d = drive["distractions"][0]
    assert all(e["start"] - d["end"] >= 4.0 or d["start"] - e["end"] >= 4.0 for e in scripted)

    def holding(t, episodes):
        return [e["kind"] for e in episodes if e["start"] <= t < e["end"]]

    for f in frames:
        if not f["face"]:
            assert f["off_road"] is None and f["gaze"] is None and f["camera_gaze"] is None
            continue
        t = f["time"]
        assert (f["look_away"] in holding(t, drive["look_aways"])) if f["look_away"] else not holding(t, drive["look_aways"])
        assert (f["distraction"] in holding(t, drive["distractions"])) if f["distraction"] else \
            not holding(t, drive["distractions"])
        assert f["gaze_shift"] == bool(holding(t, drive["gaze_shifts"]))
        assert f["off_road"] == bool(f["look_away"] or f["distraction"])
        in_episode = f["off_road"] or f["gaze_shift"]
        assert in_episode or f["gaze"] == [0.0, 0.0]  # on the road between episodes
        head = (f["yaw"], f["pitch"], f["roll"])
        assert eyeballs.camera_gaze(head, f["gaze"]) == pytest.approx(f["camera_gaze"], abs=0.05)
    # While a distraction holds, the eyes hold their part of it and the head is turned its way.
    held = [f for f in frames if f.get("distraction") and d["start"] + 0.6 <= f["time"] <= d["end"] - 0.6]
    assert held and all(f["gaze"] == pytest.approx([d["gaze_yaw"], d["gaze_pitch"]], abs=0.02) for f in held)
    assert np.sign(np.mean([f["yaw"] for f in held])) == np.sign(d["yaw"])


def test_facemesh_gaze_follows_the_eyes():
    """face.eyes' gaze from FaceMesh on rendered frames turns the way the eyes do: left vs right in
    sign, for the eye in the head and in camera terms; up vs down in order only (FaceMesh places
    the iris mostly by the lids, so its pitch moves ≈¼ as far as the eyes, about an offset)."""
    import face
    from train.synthetic.scene import Pose
    from train.synthetic.writer import SynthWriter

    writer = SynthWriter("/nonexistent-not-written", seed=5, drivers=2)
    with face.FaceStage(size=128, video=False, model=writer.model) as stage:
        for driver, camera in writer.drivers["target"]:
            w_exp = writer.factory.expression(np.random.default_rng(2), 6)
            for head_yaw in (0.0, 20.0):
                pose = Pose(yaw=head_yaw, pitch=0.0, height=200.0)
                seen = {}
                for gaze in ((20.0, 0.0), (-20.0, 0.0), (0.0, 15.0), (0.0, -15.0)):
                    canvas = camera.backdrop(np.random.default_rng(1))
                    writer.scene.draw(canvas, driver, w_exp, pose, light=camera.light, gaze=gaze)
                    eyes = stage(camera.expose(canvas, pose.height)).eyes
                    assert eyes is not None and eyes.gaze_yaw is not None
                    seen[gaze] = eyes
                right, left = seen[(20.0, 0.0)], seen[(-20.0, 0.0)]
                assert right.gaze_yaw > 5.0 and left.gaze_yaw < -5.0, (head_yaw, right.gaze_yaw, left.gaze_yaw)
                assert right.camera_gaze_yaw > head_yaw + 5.0 > left.camera_gaze_yaw + 10.0
                assert seen[(0.0, 15.0)].gaze_pitch > seen[(0.0, -15.0)].gaze_pitch
