"""The one image convention: any camera or dataset frame becomes uint8 BGR, networks see [-1, 1]."""
import cv2
import numpy as np
import pytest

from face.expressions import EXPRESSIONS, expression_index
from face.imageio import from_network, load_image, read_image, to_bgr8, to_network
from hostile_images import png_claiming


def test_grey_and_single_channel_frames_become_three_equal_channels():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    for frame in (grey, grey[..., None]):
        bgr = to_bgr8(frame)
        assert bgr.shape == (3, 4, 3) and bgr.dtype == np.uint8
        assert (bgr == grey[..., None]).all()


def test_sixteen_bit_frames_are_scaled_not_truncated():
    ten_bit = np.array([[0, 512, 1023]], dtype=np.uint16)  # a 10-bit NIR sensor in a 16-bit container
    out = to_bgr8(ten_bit)[..., 0]
    assert out.tolist() == [[0, 128, 255]]
    full = np.array([[0, 65535]], dtype=np.uint16)
    assert to_bgr8(full)[..., 0].tolist() == [[0, 255]]


def test_bgra_drops_alpha_and_float_in_unit_range_is_scaled():
    bgra = np.zeros((2, 2, 4), np.uint8)
    bgra[..., 2] = 200
    bgra[..., 3] = 7
    assert to_bgr8(bgra)[0, 0].tolist() == [0, 0, 200]
    assert to_bgr8(np.full((2, 2), 0.5, np.float32))[0, 0, 0] == 128


@pytest.mark.parametrize("bad", [np.zeros((0, 4), np.uint8), np.zeros((2, 2, 2), np.uint8), np.zeros(5, np.uint8)])
def test_malformed_frames_are_a_clear_error(bad):
    with pytest.raises(ValueError, match="expected"):
        to_bgr8(bad)


def test_read_image_names_the_file_when_missing_or_corrupt(tmp_path):
    with pytest.raises(ValueError, match="missing.png"):
        read_image(tmp_path / "missing.png")
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG not really")
    with pytest.raises(ValueError, match="corrupt.png"):
        read_image(corrupt)
    good = tmp_path / "good16.png"
    cv2.imwrite(str(good), np.full((4, 5), 4095, np.uint16))
    assert read_image(good).shape == (4, 5, 3)


def test_network_round_trip_is_exact_for_uint8():
    images = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    x = to_network(images)
    assert x.shape == (2, 3, 8, 8) and x.min() >= -1 and x.max() <= 1
    assert (from_network(x) == images).all()


def test_expression_names():
    assert len(EXPRESSIONS) == 7 and EXPRESSIONS[-1] == "neutral"
    assert expression_index(" Happiness") == 3
    with pytest.raises(ValueError, match="contempt"):
        expression_index("contempt")


def test_an_image_claiming_billions_of_pixels_is_unreadable_not_a_crash(tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_claiming(60000, 60000))   # 138 bytes; OpenCV raised cv2.error on it
    with pytest.raises(ValueError, match=f"{bomb}: not a readable image"):
        read_image(bomb)
    assert load_image(bomb) is None and load_image(tmp_path / "missing.png") is None
