import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engines"))  # the shared tiny networks
from tiny_nets import TinyClassifier, TinyGenerator, seeded  # noqa: E402


@pytest.fixture(scope="session")
def generator_128(tmp_path_factory):
    from train.export import export_onnx
    return export_onnx(seeded(TinyGenerator(width=8), seed=0), "uit_generator",
                       tmp_path_factory.mktemp("cal") / "uit.onnx", config={"width": 8})


@pytest.fixture(scope="session")
def classifier_128(tmp_path_factory):
    from train.export import export_onnx
    return export_onnx(seeded(TinyClassifier(width=8), seed=1), "classifier",
                       tmp_path_factory.mktemp("cal") / "classifier.onnx")


@pytest.fixture(scope="session")
def face_frames(tmp_path_factory):
    """A folder of camera-like frames of a real face (skimage's astronaut photo, read from the installed
    package at test time): shifted, rotated, dimmed and turned grey like NIR, plus one frame with no face
    and one unreadable file, which calibration must skip and count."""
    from skimage import data
    root = tmp_path_factory.mktemp("frames")
    face = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    rng = np.random.default_rng(0)
    for i in range(10):
        angle, dx, dy = rng.uniform(-8, 8), rng.uniform(-20, 20), rng.uniform(-20, 20)
        matrix = cv2.getRotationMatrix2D((256, 256), angle, 1.0)
        matrix[:, 2] += (dx, dy)
        frame = cv2.warpAffine(face, matrix, (512, 512), borderMode=cv2.BORDER_REFLECT)
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.float32) * rng.uniform(0.6, 1.0)
        cv2.imwrite(str(root / f"frame_{i:02d}.png"), grey.clip(0, 255).astype(np.uint8))
    cv2.imwrite(str(root / "no_face.png"), np.full((240, 320), 90, np.uint8))
    (root / "broken.png").write_bytes(b"not a png")
    return root
