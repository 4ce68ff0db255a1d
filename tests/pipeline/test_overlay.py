"""The overlay video (--save-video): H.264 that browsers play, written at the source's own rate."""
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
    import av
    with av.open(str(out)) as container:   # what a browser needs: H.264, 4:2:0
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"


def test_the_ground_truth_is_drawn_green_when_the_smoothed_label_agrees_and_red_when_not():
    from pipeline.decide import DecideStep
    from pipeline.overlay import GREEN, RED, draw
    from pipeline.truth import NO_FACE

    classes = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")
    emotion = DecideStep(classes)(frame(0)).emotion
    arrays = {"frame": np.zeros((240, 320, 3), np.uint8)}
    plain = draw(arrays, emotion, classes)
    said = classes.index(emotion.smoothed_label) if emotion.smoothed_label in classes else NO_FACE
    other = (said + 1) % len(classes) if said != NO_FACE else 0
    agree, disagree = draw(arrays, emotion, classes, said), draw(arrays, emotion, classes, other)
    changed = np.any(agree != plain, axis=2)
    assert changed.any() and np.any(disagree != plain)
    colours = lambda image: {tuple(int(c) for c in px) for px in image[changed]}  # noqa: E731
    assert GREEN in colours(agree) and RED in colours(disagree)
