"""The driver-monitor benchmark's scoring: interval matching, episode detection and latency, blink
durations against the half-shut time of the scripted lids."""
import pytest

from benchmarks.driver_monitor import half_shut_s, match, mean_std, score_blinks, score_episodes
from pipeline.messages import Blink, Driver, Emotion, Event, Result

FPS = 30


def result(frame_id, blink=None, events=()):
    driver = Driver(state="calibrated", calibration=1.0, present=True, blink=blink)
    emotion = Emotion(frame_id=frame_id, source="s", t_capture_ns=0, t_publish_ns=1, valid=False, label=None,
                      probs=None, smoothed_label=None, face=None, latency_ms={}, driver=driver)
    return Result(emotion, None, {}, list(events))


def start(t, kind="distraction"):
    return Event(event_id=1, kind=kind, state="start", source="s", frame_id=0, t_ns=int(t * 1e9), t_start_ns=0,
                 confidence=1.0)


def test_intervals_match_one_to_one_within_the_slack():
    assert match([(1.0, 1.2), (5.0, 5.1), (9.0, 9.1)], [(1.1, 1.3), (5.15, 5.3), (20.0, 20.1)], 0.1) == [(0, 0), (1, 1)]
    assert match([(1.0, 1.2), (1.1, 1.2)], [(1.0, 1.3)], 0.0) == [(0, 0)]   # one truth, one match


def test_episodes_are_found_with_their_latency_and_false_ones_counted():
    episodes = [{"start": 10.0, "end": 15.0}, {"start": 30.0, "end": 32.0}, {"start": 50.0, "end": 56.0}]
    found = score_episodes([start(13.2), start(31.0), start(70.0)], episodes, 3.0, "d")
    assert found["d_scripted"] == 2 and found["d_events"] == 3       # the 2 s episode is not a positive
    assert found["d_recall"] == 0.5 and found["d_precision"] == pytest.approx(1 / 3)
    assert found["d_latency_s_mean"] == pytest.approx(0.2)


def test_blink_durations_are_compared_with_the_half_shut_time():
    frames = [{"time": i / FPS, "face": True, "eyes_closed": 1.0 if 30 <= i < 36 else 0.3 if 27 <= i < 40 else 0.0}
              for i in range(90)]
    truth = {"fps": FPS, "frames": frames, "eye_events": [{"kind": "blink", "start": 0.9, "end": 1.35}]}
    assert half_shut_s(truth["eye_events"][0], truth) == pytest.approx(0.2)
    published = Blink(t_start_ns=int(1.0e9), t_end_ns=int(1.25e9), duration_ms=250.0)
    scores = score_blinks([result(0), result(37, blink=published)], truth)
    assert scores["blink_recall"] == 1.0 and scores["blink_precision"] == 1.0
    assert scores["blink_duration_error_ms_mean"] == pytest.approx(50.0)


def test_figures_over_drives_are_mean_and_sample_std_of_the_drives_that_measured_them():
    assert mean_std([1.0, 2.0, None, 3.0]) == [2.0, 1.0]   # the sample std, as every benchmark here prints
    assert mean_std([0.5]) == [0.5, 0.0] and mean_std([None, None]) is None
