"""The seven synthetic expressions are distinct enough for a small classifier to learn."""
import numpy as np
import pytest

from face import bilinear
from face.expressions import EXPRESSIONS


@pytest.mark.slow
def test_a_linear_classifier_learns_the_source_expressions():
    linear_model = pytest.importorskip("sklearn.linear_model")
    import cv2

    from train.synthetic.writer import SynthWriter

    writer = SynthWriter("/nonexistent-not-written", seed=11, drivers=6)
    rng = np.random.default_rng(0)
    features, labels, drivers = [], [], []
    for label in range(len(EXPRESSIONS)):
        for i in range(24):
            d = int(rng.integers(6))
            driver, camera = writer.drivers["source"][d]
            frame, truth = writer._frame(rng, driver, camera, label, writer._random_pose(rng, {"yaw": 10, "pitch": 8, "roll": 5}))
            crop = writer.renderer.aligned_crop(frame, np.vstack([truth["landmarks"], truth["landmarks"][:10]]))
            grey = cv2.resize(crop[..., 0], (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
            features.append(grey.reshape(-1) - grey.mean())
            labels.append(label)
            drivers.append(d)
    x, y, drivers = np.array(features), np.array(labels), np.array(drivers)
    # Held-out drivers: the classifier must learn expressions, not faces.
    test = drivers >= 4
    clf = linear_model.LogisticRegression(max_iter=2000, C=1.0).fit(x[~test], y[~test])
    accuracy = (clf.predict(x[test]) == y[test]).mean()
    assert accuracy > 0.6, f"held-out accuracy {accuracy:.2f} (chance 0.14)"


def test_model_expressions_move_the_right_parts():
    model = bilinear.load()
    neutral = model.mesh()
    def shift(name, vertex):
        return model.mesh(None, model.expression_weights[EXPRESSIONS.index(name)])[vertex] - neutral[vertex]
    lip_gap = lambda name: (shift(name, 13) - shift(name, 14))[1]
    assert lip_gap("surprise") > 1.0          # the jaw drops
    assert shift("happiness", 61)[1] > 0.3    # mouth corners up
    assert shift("sadness", 61)[1] < -0.3     # mouth corners down
    assert shift("anger", 107)[1] < -0.2      # inner brows down
    assert shift("surprise", 105)[1] > 0.3    # brows up
    assert np.abs(shift("neutral", np.arange(468))).max() < 1e-4
