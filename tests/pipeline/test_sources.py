import json

import cv2
import numpy as np
import pytest

from pipeline_clips import HAPPY, SAD, drive_frames, write_clip
from pipeline.sources import (CameraSource, FolderSource, SourceError, VideoSource, open_source,
                              unpack_raw)
from pipeline.truth import NO_FACE


def test_video_source_gives_every_frame_with_its_ground_truth(drive_clip, drive_plan):
    source = open_source(str(drive_clip), fast=True)
    frames = list(source.frames())
    assert [c.index for c in frames] == list(range(len(drive_plan)))
    expected = {"bright": HAPPY, "dark": SAD, "empty": NO_FACE}
    assert [c.truth for c in frames] == [expected[k] for k in drive_plan]
    assert frames[0].frame.shape == (480, 640, 3)
    assert all(a.t_capture_ns < b.t_capture_ns for a, b in zip(frames, frames[1:]))
    assert source.status.state == "ended" and not source.status.note


def test_skip_resumes_after_a_frame(drive_clip):
    assert [c.index for c in open_source(str(drive_clip), fast=True, skip=30).frames()] == [30, 31, 32, 33, 34, 35]


def test_a_video_decodes_each_frame_into_the_buffer_given_for_it(drive_clip):
    plain = [c.frame for c in open_source(str(drive_clip), fast=True, skip=30).frames()]
    asked, buffers = [], {}

    def buffer_for(index, shape, dtype):   # as capture's outlet leases a slot: here, one array a frame
        asked.append(index)
        buffers[index] = np.empty(shape, dtype)
        return buffers[index]

    got = list(open_source(str(drive_clip), fast=True, skip=30).frames(buffer_for))
    assert [c.index for c in got] == [30, 31, 32, 33, 34, 35] and asked[0] == 30   # none asked for skipped frames
    assert all(np.array_equal(a, c.frame) for a, c in zip(plain, got))
    assert all(c.frame is buffers[c.index] for c in got)   # decoded in place, no new array


def test_truncated_avi_plays_what_is_there_and_says_it_ended_early(tmp_path):
    frames, _ = drive_frames(["bright"] * 20)
    clip = write_clip(tmp_path / "cut.avi", frames, fourcc="MJPG")
    data = clip.read_bytes()
    clip.write_bytes(data[: len(data) // 2])
    source = VideoSource(clip, fast=True)
    got = list(source.frames())
    assert 0 < len(got) < 20
    assert "ended early" in source.status.note and str(clip) in source.status.note


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_unreadable_video_is_a_clear_error(tmp_path, drive_clip, damage):
    bad = tmp_path / "bad.mp4"
    data = drive_clip.read_bytes()
    bad.write_bytes({"truncated": data[: len(data) // 3], "garbage": bytes(range(256)) * 40, "empty": b""}[damage])
    with pytest.raises(SourceError, match="bad.mp4: not a readable video"):
        VideoSource(bad)


def test_missing_video_and_missing_camera(tmp_path):
    with pytest.raises(SourceError, match="nothing.mp4: no such video file"):
        open_source(str(tmp_path / "nothing.mp4"))
    with pytest.raises(SourceError, match="/dev/video97: no such camera device"):
        open_source("/dev/video97")
    with pytest.raises(SourceError, match="/dev/video98: no such camera device"):
        open_source("98")


def test_a_source_that_is_no_file_folder_or_camera_says_what_to_give(tmp_path):
    import os

    os.mkfifo(tmp_path / "pipe")   # a reader would block on it for ever
    for spec, expected in (("", "--source is empty"), ("  ", "--source is empty"),
                           ("/dev/null", "/dev/null: not a video file, a folder of frames or a camera"),
                           (str(tmp_path / "pipe"), "pipe: not a video file, a folder of frames or a camera"),
                           ("rtsp://127.0.0.1:1/cam", "rtsp://127.0.0.1:1/cam: network streams are not a source")):
        with pytest.raises(SourceError, match=expected):   # were: "no such video file" or the working folder
            open_source(spec)


def test_camera_that_is_not_a_capture_device_is_refused(tmp_path):
    not_a_camera = tmp_path / "video0"
    not_a_camera.write_bytes(b"")
    with pytest.raises(SourceError, match="camera could not be opened"):
        CameraSource(str(not_a_camera))


def test_folder_replays_sorted_images_skipping_bad_ones(tmp_path, capsys):
    grey16 = (np.arange(64 * 80, dtype=np.uint16).reshape(64, 80) * 12)
    cv2.imwrite(str(tmp_path / "002.png"), grey16)
    cv2.imwrite(str(tmp_path / "001.png"), np.full((64, 80, 3), 9, np.uint8))
    (tmp_path / "003.png").write_bytes(b"not a png")
    (tmp_path / "notes.txt").write_text("ignored")
    (tmp_path / "frames.jsonl").write_text("\n".join(json.dumps(e) for e in [
        {"frame": 0, "expression": "happiness"}, {"frame": 1, "face": False}, {"frame": 2}]))
    source = FolderSource(tmp_path, fast=True)
    got = list(source.frames())
    assert [c.index for c in got] == [0, 1]
    assert got[0].frame.dtype == np.uint8 and got[1].frame.dtype == np.uint16   # NIR 16-bit stays 16-bit
    assert [c.truth for c in got] == [HAPPY, NO_FACE]
    assert source.status.skipped == 1
    assert source.status.note == f"{tmp_path}: skipped 1 unreadable or unsupported image(s)"
    assert f"exprada pipeline: skipped {tmp_path / '003.png'}: not a readable image" in capsys.readouterr().err


def test_folder_errors_name_the_folder(tmp_path):
    with pytest.raises(SourceError, match="no images in folder"):
        FolderSource(tmp_path)
    with pytest.raises(SourceError, match="no such folder"):
        FolderSource(tmp_path / "missing")


def test_y16_buffer_from_the_driver_gets_its_image_shape():
    raw = np.arange(4 * 6, dtype=np.uint16).reshape(4, 6)
    flat = raw.view(np.uint8).reshape(1, -1)     # what OpenCV hands back with CONVERT_RGB off
    assert np.array_equal(unpack_raw(flat, 6, 4), raw)
    grey = np.arange(24, dtype=np.uint8).reshape(1, 24)
    assert unpack_raw(grey, 6, 4).shape == (4, 6)


def test_lost_camera_reconnects_with_back_off_and_reports_it(tmp_path):
    import time

    stop_at = time.monotonic() + 2.0
    camera = CameraSource(str(tmp_path / "video5"), should_stop=lambda: time.monotonic() > stop_at, open_now=False)
    states, heartbeats = set(), 0
    for captured in camera.frames():   # the device never comes back: the generator must still end on stop
        assert captured is None
        heartbeats += 1
        states.add(camera.status.state)
    assert states == {"reconnecting"} and heartbeats >= 4
    # Waits of 0.5 s then 1 s: within 2 s the third attempt at most (no back-off would make dozens).
    assert camera.status.note.endswith(("(attempt 2)", "(attempt 3)")) and camera.status.reconnects == 0
    assert camera.status.state == "ended"


def test_truth_layouts():
    from pipeline.truth import parse

    assert parse(["happiness", None, 4], "t") == {0: HAPPY, 1: NO_FACE, 2: 4}
    synthetic = {"frames": [{"frame": 0, "face": True, "expression": "sadness", "label": 4, "transition": False},
                            {"frame": 1, "face": True, "expression": "happiness", "label": 3, "transition": True},
                            {"frame": 2, "face": False, "expression": None, "label": -1}]}
    assert parse(synthetic, "t") == {0: SAD, 2: NO_FACE}
    with pytest.raises(ValueError, match="t entry 0: unknown expression 'glee'"):
        parse(["glee"], "t")


def test_truth_files_with_a_byte_order_mark_read_and_binary_ones_are_a_clear_error(tmp_path):
    from pipeline.truth import load

    edited = tmp_path / "drive.json"
    edited.write_text('\ufeff["happiness", "sadness"]', encoding="utf-8")   # as some editors save it
    assert load(edited) == {0: HAPPY, 1: SAD}
    binary = tmp_path / "frames.jsonl"
    binary.write_bytes(b"\xff\xfe binary")
    with pytest.raises(ValueError, match="frames.jsonl: ground truth not readable"):
        load(binary)


def test_torch_backend_runs_the_program_beside_the_onnx(tmp_path):
    from pipeline.config import engine_file

    onnx_file = tmp_path / "uit_generator.onnx"
    onnx_file.write_bytes(b"")
    assert engine_file(onnx_file, "onnxruntime") == str(onnx_file)
    with pytest.raises(FileNotFoundError, match="no .*uit_generator.pt2 beside"):
        engine_file(onnx_file, "torch")
    (tmp_path / "uit_generator.pt2").write_bytes(b"")
    assert engine_file(onnx_file, "torch") == str(tmp_path / "uit_generator.pt2")


def test_replay_is_paced_by_the_file_timestamps_unless_fast(drive_clip, drive_plan):
    paced = [c.t_capture_ns for c in VideoSource(drive_clip).frames()]
    # 30 fps: frame i leaves no earlier than i/30 s after frame 0 (sleeping never ends early).
    assert all(t - paced[0] >= i / 30 * 1e9 - 1e6 for i, t in enumerate(paced))
    assert (paced[-1] - paced[0]) / 1e9 >= (len(drive_plan) - 1) / 30 - 0.001
    fast = [c.t_capture_ns for c in VideoSource(drive_clip, fast=True).frames()]
    assert len(fast) == len(paced) == len(drive_plan)
