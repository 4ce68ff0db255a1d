import json

import numpy as np
import pytest

from pipeline import messages


def test_round_trip_keeps_header_and_arrays():
    frame = np.arange(480 * 640, dtype=np.uint16).reshape(480, 640)
    side = np.full((64, 64, 3), 7, np.uint8)
    header = messages.new_header(12, "cam", 123456789, truth=3)
    messages.stamp(header, "capture", 1, 2)
    parts = messages.encode(header, {"frame": frame, "side_map": side})
    back, arrays = messages.decode([bytes(p) if not isinstance(p, bytes) else p for p in parts])
    assert back["frame_id"] == 12 and back["source"] == "cam" and back["t_capture_ns"] == 123456789
    assert back["timing"] == {"capture": [1, 2]} and back["truth"] == 3 and back["valid"] is True
    assert np.array_equal(arrays["frame"], frame) and arrays["frame"].dtype == np.uint16
    assert np.array_equal(arrays["side_map"], side)
    assert not arrays["frame"].flags.writeable   # views of the message: nobody may write into them


def good_parts(**override):
    header = messages.new_header(1, "s", 5)
    parts = messages.encode(header, {"frame": np.zeros((4, 4), np.uint8)})
    head = json.loads(parts[0])
    head.update(override)
    return [json.dumps(head).encode(), bytes(parts[1])]


@pytest.mark.parametrize("parts, why", [
    ([], "empty"),
    ([b"\xff\xfe not json"], "not JSON"),
    ([b"[1, 2]"], "JSON object"),
    (good_parts(v=99), "version"),
    (good_parts(frame_id="x"), "frame_id"),
    (good_parts(arrays=[]), "describes 0 arrays"),
    (good_parts(arrays=[{"name": "frame", "dtype": "uint8", "shape": [5, 5]}]), "needs 25 bytes"),
    (good_parts(arrays=[{"name": "frame", "dtype": "object", "shape": [4, 4]}]), "not allowed"),
    (good_parts(arrays=[{"name": "frame", "dtype": "uint8", "shape": [-4, -4]}]), "bad shape"),
])
def test_malformed_messages_are_refused_with_the_reason(parts, why):
    with pytest.raises(messages.BadMessage, match=why):
        messages.decode(parts)


def test_oversized_message_is_refused():
    parts = messages.encode(messages.new_header(1, "s", 5), {"frame": np.zeros(2048, np.uint8)})
    with pytest.raises(messages.BadMessage, match="exceeds the maximum of 1000"):
        messages.decode([bytes(p) for p in parts[:1]] + [bytes(parts[1])], max_bytes=1000)


def test_end_of_stream_needs_no_frame_fields():
    header, arrays = messages.decode(messages.encode(messages.end_of_stream("s", 10)))
    assert header["eos"] and header["frames"] == 10 and arrays == {}
