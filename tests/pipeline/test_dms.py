"""The driver monitor's decisions on scripted frame sequences (30 fps, times on the source's clock):
blinks and microsleeps, PERCLOS, distraction at the 3 s mark, time-sharing, calibration to an
off-axis driver, no face, another driver."""
import numpy as np
import pytest

from pipeline.dms import DmsSettings, DriverMonitor, parse_settings
from pipeline.messages import Eyes, Face, new_header

FPS = 30
OPEN = 0.30


def frame(i, yaw=0.0, pitch=0.0, openness=OPEN, face=True, identity=None, gaze=None):
    """Frame i with the head at (yaw, pitch), both eyes at `openness`; the camera gaze is the head's
    direction plus the eye-in-head `gaze` (default straight ahead); no face when face is False."""
    header = new_header(i, "scripted", 10_000 + i, t_media_ns=int(i * 1e9 / FPS))
    if not face:
        return header.invalidate("no face found")
    header.face = Face(box=[0, 0, 10, 10], yaw=yaw, pitch=pitch, roll=0.0)
    eye = gaze or (0.0, 0.0)
    seen = openness > 0.1
    header.eyes = Eyes(openness_left=openness, openness_right=openness, left_visible=True, right_visible=True,
                       gaze_yaw=eye[0] if seen else None, gaze_pitch=eye[1] if seen else None,
                       camera_gaze_yaw=yaw + eye[0] if seen else None,
                       camera_gaze_pitch=pitch + eye[1] if seen else None)
    header.identity = identity
    return header


def run(monitor, frames):
    """Every frame through the monitor: (per-frame Driver list, every event)."""
    drivers, events = [], []
    for header in frames:
        driver, new = monitor(header)
        drivers.append(driver)
        events += new
    return drivers, events


def seconds(event, key="t_ns"):
    return getattr(event, key) / 1e9


def quick(**changes):
    """Calibration over 2 s instead of a minute, so that the scripts stay short."""
    return DmsSettings(**{"calibration_s": 2.0, "provisional_s": 1.0, **changes})


def test_blinks_are_timed_and_a_long_closure_is_a_microsleep():
    monitor = DriverMonitor(quick())
    script = [frame(i) for i in range(90)]                                  # 3 s open: calibrated
    script += [frame(i, openness=0.03) for i in range(90, 96)]              # 0.2 s closed: a blink
    script += [frame(i) for i in range(96, 150)]
    script += [frame(i, openness=0.03) for i in range(150, 195)]            # 1.5 s closed: microsleep
    script += [frame(i) for i in range(195, 240)]
    drivers, events = run(monitor, script)
    blinks = [d.blink for d in drivers if d.blink]
    assert len(blinks) == 1 and blinks[0].duration_ms == pytest.approx(200, abs=1)
    assert blinks[0].t_start_ns == int(90e9 / FPS)
    start, end = events
    assert (start.kind, start.state, end.state) == ("microsleep", "start", "end") and start.event_id == end.event_id
    assert seconds(start, "t_start_ns") == pytest.approx(5.0) and seconds(start) == pytest.approx(6.0)  # decided at 1 s
    assert end.duration_s == pytest.approx(1.5, abs=0.01) and start.confidence > 0.9
    assert drivers[100].eyes.closed_prob < 0.05 < 0.95 < drivers[160].eyes.closed_prob


def test_a_glance_of_three_seconds_is_a_distraction_decided_at_the_three_second_mark():
    monitor = DriverMonitor(quick())
    script = [frame(i) for i in range(90)]
    script += [frame(i, yaw=40.0) for i in range(90, 90 + 2 * FPS)]          # a 2 s mirror check: nothing
    script += [frame(i) for i in range(150, 240)]
    script += [frame(i, yaw=-10.0, pitch=35.0) for i in range(240, 240 + 4 * FPS)]   # 4 s at the phone
    script += [frame(i) for i in range(360, 420)]
    drivers, events = run(monitor, script)
    assert [(e.kind, e.state) for e in events] == [("distraction", "start"), ("distraction", "end")]
    start, end = events
    assert seconds(start, "t_start_ns") == pytest.approx(8.0)
    assert seconds(start) - seconds(start, "t_start_ns") == pytest.approx(3.0, abs=1.5 / FPS)
    assert start.cause == "eyes" and start.confidence == 1.0
    assert end.duration_s == pytest.approx(4.0, abs=1.5 / FPS)
    assert drivers[100].on_road is False and drivers[100].off_road_s > 0 and drivers[200].on_road
    assert drivers[300].events == [] and drivers[340].events == ["distraction"] and drivers[419].events == []


def test_glances_that_add_up_are_visual_time_sharing():
    monitor = DriverMonitor(quick())
    script = [frame(i) for i in range(60)]
    for k in range(8):   # 2.5 s away, 1 s back, eight times: 20 s away within 28 s, no glance reaches 3 s
        start = 60 + k * 105
        script += [frame(i, yaw=45.0) for i in range(start, start + 75)]
        script += [frame(i) for i in range(start + 75, start + 105)]
    drivers, events = run(monitor, script)
    kinds = [(e.kind, e.state) for e in events]
    assert ("distraction", "start") not in kinds and kinds[0] == ("time_sharing", "start")
    assert events[0].value >= 10.0


def test_calibration_learns_an_off_axis_driver_so_their_road_gaze_is_not_a_distraction():
    monitor = DriverMonitor(DmsSettings(calibration_s=10.0))
    drivers, events = run(monitor, [frame(i, yaw=28.0, pitch=-14.0) for i in range(20 * FPS)])
    assert events == []
    assert drivers[0].state == "calibrating" and drivers[-1].state == "calibrated"
    assert drivers[5 * FPS].calibration == pytest.approx(0.5, abs=0.01)
    assert all(d.on_road for d in drivers[3 * FPS:])
    # …and a look away from that neutral is one.
    _, events = run(monitor, [frame(i, yaw=-20.0, pitch=-14.0) for i in range(20 * FPS, 25 * FPS)])
    assert [e.kind for e in events] == ["distraction"]


def test_perclos_over_a_minute_calls_drowsiness_and_an_alert_minute_does_not():
    alert = DriverMonitor(quick())
    _, events = run(alert, [frame(i, openness=0.03 if i % 90 < 6 else OPEN) for i in range(70 * FPS)])
    assert events == []   # a 0.2 s blink every 3 s: PERCLOS ≈ 7 %
    drowsy = DriverMonitor(quick())
    script = [frame(i) for i in range(3 * FPS)]
    script += [frame(i, openness=0.03 if i % 90 < 21 else OPEN) for i in range(3 * FPS, 70 * FPS)]  # 0.7 s of 3
    drivers, events = run(drowsy, script)
    started = [e for e in events if e.state == "start"]
    assert [(e.kind, e.cause) for e in started] == [("drowsiness", "perclos")]
    assert 0.15 <= started[0].value <= 0.3 and drivers[-1].perclos == pytest.approx(0.233, abs=0.02)
    assert seconds(started[0]) >= 30.0   # needs half a minute of readable eyes first


def test_no_face_is_an_event_and_a_long_absence_calibrates_the_next_driver_anew():
    monitor = DriverMonitor(quick())
    script = [frame(i) for i in range(90)]
    script += [frame(i, face=False) for i in range(90, 90 + 12 * FPS)]
    script += [frame(i) for i in range(450, 480)]
    drivers, events = run(monitor, script)
    start, end = events
    assert (start.kind, start.state, end.state) == ("no_face", "start", "end")
    assert seconds(start) - seconds(start, "t_start_ns") == pytest.approx(2.0, abs=1.5 / FPS)
    assert drivers[80].state == "calibrated" and drivers[100].present is False
    assert drivers[-1].state == "calibrating"


def test_another_identity_restarts_calibration_and_the_same_one_with_its_noise_does_not():
    monitor = DriverMonitor(quick(identity_change_s=1.0))
    rng = np.random.default_rng(0)
    first, second = rng.normal(0, 1, 18), rng.normal(0, 1, 18)
    noisy = lambda person: (person + rng.normal(0, 0.3, 18)).tolist()  # noqa: E731 - the fit's frame-to-frame noise
    drivers, _ = run(monitor, [frame(i, identity=noisy(first)) for i in range(10 * FPS)])
    assert drivers[-1].state == "calibrated" and all(d.state == "calibrated" for d in drivers[3 * FPS:])
    drivers, _ = run(monitor, [frame(i, identity=noisy(second)) for i in range(10 * FPS, 15 * FPS)])
    switched = next(i for i, d in enumerate(drivers) if d.state == "calibrating")
    assert 1.0 <= switched / FPS <= 1.0 + 2.5   # the 2 s average moves over, then 1 s of persistence


def test_a_fast_replay_decides_as_the_recorded_pace_does():
    """Decisions follow the frames' media times, not when they were captured or processed."""
    script = [frame(i, yaw=40.0 if 90 <= i < 220 else 0.0) for i in range(300)]
    _, paced = run(DriverMonitor(quick()), script)
    for header in script:
        header.t_capture_ns = 7   # a fast replay: every frame captured at nearly the same time
    _, fast = run(DriverMonitor(quick()), script)
    assert paced == fast and len(paced) == 2


def test_settings_are_checked_with_a_clear_message():
    assert parse_settings(["distraction_s=2.5"]).distraction_s == 2.5
    for bad, words in ((["speed=3"], "expected KEY=VALUE"), (["distraction_s=soon"], "not a number"),
                       (["distraction_s=-1"], "must be positive"), (["closed_ratio=0.9"], "below reopen_ratio")):
        with pytest.raises(ValueError, match=words):
            parse_settings(bad)


def test_a_long_look_away_while_calibrating_does_not_move_the_learned_road():
    """The scripted drive's case: 1.3 s ahead, 3.3 s at the passenger, then ahead again; a plain
    median over the first seconds would have learned the passenger seat as the road."""
    monitor = DriverMonitor(DmsSettings(calibration_s=10.0))
    script = [frame(i) for i in range(39)]
    script += [frame(i, yaw=-50.0, pitch=5.0) for i in range(39, 138)]
    script += [frame(i) for i in range(138, 15 * FPS)]
    drivers, events = run(monitor, script)
    assert [(e.kind, e.state) for e in events] == [("distraction", "start"), ("distraction", "end")]
    assert seconds(events[1], "t_end_ns") == pytest.approx(138 / FPS, abs=1.5 / FPS)
    assert all(d.on_road for d in drivers[140:])


def test_a_driver_who_starts_by_looking_away_is_recalibrated_to_where_they_look_most():
    monitor = DriverMonitor(DmsSettings(calibration_s=10.0))
    script = [frame(i, yaw=45.0) for i in range(3 * FPS)]           # the first 3 s at the mirror
    script += [frame(i, yaw=5.0) for i in range(3 * FPS, 14 * FPS)]  # then the road, at 5°
    drivers, _ = run(monitor, script)
    assert drivers[-1].state == "calibrated" and monitor.calibration.neutral_head[0] == pytest.approx(5.0)
    assert drivers[-1].on_road


def test_the_overlay_draws_the_eyes_the_gaze_ray_and_the_events():
    from pipeline.overlay import GREEN, RED, draw_driver

    monitor = DriverMonitor(quick())
    drivers, _ = run(monitor, [frame(i) for i in range(60)] + [frame(i, yaw=40.0) for i in range(60, 200)])
    landmarks = np.zeros((478, 2))
    landmarks[[468, 473]] = [[300, 200], [340, 200]]
    looking, away = np.zeros((480, 640, 3), np.uint8), np.zeros((480, 640, 3), np.uint8)
    draw_driver(looking, drivers[50], landmarks)
    draw_driver(away, drivers[-1], landmarks)
    assert drivers[-1].events == ["distraction"]
    has = lambda image, colour: bool((image == colour).all(axis=2).any())  # noqa: E731
    assert has(looking, GREEN) and not has(looking, RED)   # open eyes, gaze on the road, no event
    assert has(away, RED)                                  # the ray off the road, the event's line


def test_eyes_of_a_head_turned_away_are_not_read():
    """Beyond 30° of head yaw FaceMesh's lids are guesses: no closure, no microsleep, and no
    eyes_unseen either (that is for a face turned to the camera whose eyes cannot be seen)."""
    monitor = DriverMonitor(quick())
    script = [frame(i) for i in range(90)] + [frame(i, yaw=45.0, openness=0.03) for i in range(90, 240)]
    drivers, events = run(monitor, script)
    assert [e.kind for e in events] == ["distraction"]
    assert drivers[-1].eyes.closed_prob is None and drivers[-1].gaze_from == "head"

