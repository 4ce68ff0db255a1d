"""The overlay video (--save-video): written at the source's own rate."""
import numpy as np
import pytest

from test_dms import frame


def test_the_overlay_video_plays_at_the_source_rate(tmp_path):
    import cv2

    from pipeline.decide import DecideStep
    from pipeline.overlay import OverlayWriter

    classes = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")
    decide, out = DecideStep(classes), tmp_path / "overlay.mp4"
    writer = OverlayWriter(str(out), False, classes)
    for i in range(5):
        header = frame(i)
        header.t_media_ns = i * 100_000_000            # a folder replayed at 10 fps
        writer.write({"frame": np.zeros((240, 320, 3), np.uint8)}, decide(header).emotion)
    writer.close()
    video = cv2.VideoCapture(str(out))
    assert video.get(cv2.CAP_PROP_FPS) == pytest.approx(10.0) and int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
