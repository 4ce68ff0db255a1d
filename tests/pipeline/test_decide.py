import numpy as np

from face.expressions import EXPRESSIONS
from pipeline.decide import Decider, emotion_message
from pipeline.messages import EMOTION_SCHEMA, Face, FrameHeader, new_header, to_builtins

HAPPY, SAD = EXPRESSIONS.index("happiness"), EXPRESSIONS.index("sadness")


def one_hot(index, p=0.9):
    probs = np.full(len(EXPRESSIONS), (1 - p) / (len(EXPRESSIONS) - 1))
    probs[index] = p
    return probs


def test_smoothed_label_ignores_a_single_frame_and_follows_a_lasting_change():
    decider = Decider(EXPRESSIONS)
    labels = [decider.update(one_hot(HAPPY)) for _ in range(5)]
    labels.append(decider.update(one_hot(SAD)))           # one odd frame: no flicker
    labels += [decider.update(one_hot(HAPPY)) for _ in range(3)]
    assert set(labels) == {"happiness"}
    labels = [decider.update(one_hot(SAD)) for _ in range(6)]  # a real change: followed within a few frames
    assert labels[0] == "happiness" and labels[-1] == "sadness"


def test_hysteresis_keeps_the_label_between_two_close_classes():
    decider = Decider(EXPRESSIONS, margin=0.15)
    decider.update(one_hot(HAPPY, 0.6))
    close = np.full(len(EXPRESSIONS), 0.02)
    close[HAPPY], close[SAD] = 0.42, 0.48                  # sadness leads, but by less than the margin
    assert all(decider.update(close) == "happiness" for _ in range(20))


def test_no_face_holds_the_label_briefly_then_clears_it():
    decider = Decider(EXPRESSIONS, hold_frames=3)
    decider.update(one_hot(HAPPY))
    assert [decider.update(None) for _ in range(4)] == ["happiness"] * 3 + [None]
    assert decider.update(one_hot(SAD)) == "sadness"      # starts afresh, no memory of the old face


def test_emotion_message_schema_for_face_and_no_face():
    header = new_header(7, "cam", 1_000_000).stamp("face", 1_000_000, 3_000_000)
    header.face = Face(box=[1, 2, 3, 4], yaw=5.0, pitch=1.0, roll=0.5, fit_residual=0.1)
    header.probs = list(one_hot(HAPPY))
    message = to_builtins(emotion_message(header, "happiness", EXPRESSIONS, 11_000_000))
    assert message["schema"] == EMOTION_SCHEMA and message["valid"] and message["label"] == "happiness"
    assert list(message["probs"]) == list(EXPRESSIONS) and abs(sum(message["probs"].values()) - 1) < 1e-6
    assert message["face"] == {"box": [1, 2, 3, 4], "yaw": 5.0, "pitch": 1.0, "roll": 0.5, "fit_residual": 0.1}
    assert message["latency_ms"] == {"face": 2.0, "total": 10.0}
    assert "reason" not in message and "paths" not in message   # optional fields are left out, not null
    header = new_header(8, "cam", 1_000_000, valid=False, reason="no face found")
    message = to_builtins(emotion_message(header, None, EXPRESSIONS, 2_000_000))
    assert message["valid"] is False and message["label"] is None and message["probs"] is None
    assert message["face"] is None and message["reason"] == "no face found"


def test_merger_puts_two_replicas_back_in_frame_order():
    import time

    from pipeline.decide import Merger

    merger = Merger(2, patience_s=0.2)
    arrival = [(1, 1), (3, 1), (0, 0), (2, 0), (5, 1), (4, 0)]   # (frame_id, replica), each replica in order
    out = []
    for frame_id, replica in arrival:
        merger.push(frame(frame_id, replica), {})
        out += [h.frame_id for h, _ in merger.pop()]
    assert out == [0, 1, 2, 3, 4, 5]              # each leaves as soon as the one before it has
    merger.push(frame(8, 1), {})
    assert merger.pop() == []                     # 6 and 7 missing: replica 0 may still send 6
    time.sleep(0.25)                              # ...it has nothing coming (a live drop): go on
    assert [h.frame_id for h, _ in merger.pop()] == [8]
    merger.push(frame(11, 1), {})
    merger.push(frame(10, 0), {})
    assert [h.frame_id for h, _ in merger.pop()] == [10, 11]   # a gap, but both replicas have spoken
    merger.push(frame(13, 0), {})
    assert [h.frame_id for h, _ in merger.pop(flush=True)] == [13]   # end of stream: everything


def frame(frame_id, replica) -> FrameHeader:
    return new_header(frame_id, "cam", 0, replica=replica)
