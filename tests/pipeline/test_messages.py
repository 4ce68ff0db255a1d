"""Frame messages on the wire (pipeline/wire.py) and the typed messages they carry (pipeline/messages.py)."""
import json

import numpy as np
import pytest

from pipeline import wire
from pipeline.messages import (EndOfStream, Face, FrameHeader, Result, ResultsEnd, StageReport, Counters,
                               decode_report, decode_result, encode, new_header)


def test_round_trip_keeps_header_and_arrays():
    frame = np.arange(480 * 640, dtype=np.uint16).reshape(480, 640)
    side = np.full((64, 64, 3), 7, np.uint8)
    header = new_header(12, "cam", 123456789, truth=3).stamp("capture", 1, 2)
    header.face = Face(box=[1.0, 2.0, 3.0, 4.0], yaw=10.0, pitch=0.0, roll=-1.5, fit_residual=0.02)
    header.paths["render"] = [0.5, 0.5]
    parts = wire.encode(header, {"frame": frame, "side_map": side})
    back, arrays = wire.decode([bytes(p) if not isinstance(p, bytes) else p for p in parts])
    assert isinstance(back, FrameHeader)
    assert back.frame_id == 12 and back.source == "cam" and back.t_capture_ns == 123456789
    assert back.timing == {"capture": [1, 2]} and back.truth == 3 and back.valid is True
    assert back.face == header.face and back.paths == {"render": [0.5, 0.5]}
    assert np.array_equal(arrays["frame"], frame) and arrays["frame"].dtype == np.uint16
    assert np.array_equal(arrays["side_map"], side)
    assert not arrays["frame"].flags.writeable   # views of the message: nobody may write into them


def good_parts(**override):
    token, header, frame = wire.encode(new_header(1, "s", 5), {"frame": np.zeros((4, 4), np.uint8)})
    head = json.loads(header)
    head.update(override)
    return [token, json.dumps(head).encode(), bytes(frame)]


@pytest.mark.parametrize("parts, why", [
    ([], "got 0 parts"),
    ([b"", b"\xff\xfe not json"], "malformed|invalid"),
    ([b"", b"[1, 2]"], "Expected `object`"),
    ([b"", b'{"type": "frame", "frame_id": 1}'], "missing required field `source`"),
    ([b"", b'{"type": "launch", "frame_id": 1}'], "Invalid value 'launch'"),
    ([b"", b"[" * 100_000 + b"]" * 100_000], "."),                        # deep nesting
    (good_parts(arrays=[{"name": "frame", "dtype": "uint8", "shape": [True, True]}]), r"at `\$.arrays\[0\].shape"),
    (good_parts(arrays=[{"name": "frame", "dtype": "uint8", "shape": [2 ** 70]}]), "."),
    (good_parts(arrays=[{"name": "frame", "dtype": "uint8", "shape": [1] * 40}]), "bad shape"),
    (good_parts(v=99), "version"),
    (good_parts(frame_id="x"), r"Expected `int`, got `str` - at `\$.frame_id`"),
    (good_parts(frame_id=True), r"Expected `int`, got `bool`"),
    (good_parts(valid="yes"), r"at `\$.valid`"),
    (good_parts(replica=-1.5), r"at `\$.replica`"),
    (good_parts(face={"box": "x"}), r"at `\$.face.box`"),
    (good_parts(arrays=[]), "describes 0 inline arrays"),
    (good_parts(arrays=[{"name": "frame", "dtype": "uint8", "shape": [5, 5]}]), "needs 25 bytes"),
    (good_parts(arrays=[{"name": "frame", "dtype": "object", "shape": [4, 4]}]), "not allowed"),
    (good_parts(arrays=[{"name": "frame", "dtype": "uint8", "shape": [-4, -4]}]), "bad shape"),
    (good_parts(arrays=[{"name": "frame", "dtype": "uint8", "shape": [2 ** 62, 2 ** 62]}]), "needs"),
])
def test_malformed_messages_are_refused_with_the_reason(parts, why):
    with pytest.raises(wire.BadMessage, match=why):
        wire.decode(parts)


def test_oversized_message_is_refused():
    parts = wire.encode(new_header(1, "s", 5), {"frame": np.zeros(2048, np.uint8)})
    with pytest.raises(wire.BadMessage, match="exceeds the maximum of 1000"):
        wire.decode([bytes(p) for p in parts], max_bytes=1000)


def test_only_messages_with_the_run_token_are_taken():
    """A peer without the run's token cannot inject a frame, an end of stream or a control message."""
    parts = wire.encode(EndOfStream("s", 10), token=b"secret")
    assert isinstance(wire.decode(parts, token=b"secret")[0], EndOfStream)
    for token in (b"", b"guess", b"secret!"):
        with pytest.raises(wire.BadMessage, match="not from this run"):
            wire.decode(parts, token=token)
    assert wire.unseal(wire.seal(b"{}", b"secret"), b"secret") == b"{}"
    for parts, why in (([b"guess", b"{}"], "not from this run"), ([b"{}"], "expected \\[token, payload\\]"),
                       ([b"secret", b"x" * 2_000_000], "exceeds")):
        with pytest.raises(wire.BadMessage, match=why):
            wire.unseal(parts, b"secret")


def test_end_of_stream_needs_no_frame_fields_and_carries_no_arrays():
    header, arrays = wire.decode(wire.encode(EndOfStream("s", 10, last_id=9)))
    assert isinstance(header, EndOfStream) and header.frames == 10 and header.last_id == 9 and arrays == {}
    with pytest.raises(wire.BadMessage, match="end of stream with 1 data parts"):
        wire.decode(wire.encode(EndOfStream("s", 10)) + [b"x"])


def test_reports_and_results_round_trip_typed():
    report = StageReport(stage="face", replica=1, pid=7, thread=8, t_ns=9, counters=Counters(frames_in=3))
    assert decode_report(encode(report)) == report
    header = new_header(4, "s", 5)
    from pipeline.decide import emotion_message
    result = Result(emotion_message(header, None, ("a", "b"), 10), truth=-1)
    assert decode_result(encode(result)) == result
    assert decode_result(encode(ResultsEnd("s", 3))) == ResultsEnd("s", 3)
