import cv2
import numpy as np
import pytest


@pytest.fixture(scope="session")
def astronaut_bgr():
    skimage_data = pytest.importorskip("skimage.data")
    return cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2BGR)


@pytest.fixture(scope="session")
def static_stage():
    import face

    stage = face.FaceStage(video=False)
    yield stage
    stage.close()


@pytest.fixture(scope="session")
def default_model():
    from face import bilinear

    return bilinear.load()


def shifted(image, dx):
    return np.roll(image, dx, axis=1)
