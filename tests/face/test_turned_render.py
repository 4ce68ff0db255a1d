"""Renderer.turned (rotate and render): the frontal render a near-frontal face would give with its head
turned further, checked against the face stage's renders of the same synthetic heads really turned."""
import copy

import numpy as np
import pytest

import face
from train.synthetic.scene import Pose
from train.synthetic.writer import SynthWriter


@pytest.fixture(scope="module")
def heads(tmp_path_factory):
    """Per synthetic head (three drivers, happy): the face stage's results at yaw 5, 35 and −25°."""
    writer = SynthWriter(tmp_path_factory.mktemp("synth"), seed=3, size=64, drivers=3)
    found = []
    with face.FaceStage(size=64, video=False, model=writer.model) as stage:
        for driver, camera in writer.drivers["target"]:
            results = {}
            for yaw in (5.0, 35.0, -25.0):
                frame, _ = writer.target_frame(np.random.default_rng(1), driver, copy.deepcopy(camera),
                                               writer._expression_of(face.expression_index("happiness")),
                                               Pose(yaw=yaw, pitch=0.0, roll=0.0, cx=320, cy=240, height=200))
                results[yaw] = stage(frame)
                assert results[yaw], results[yaw]
            found.append(results)
        yield stage.renderer, found


def _distance(a, b):
    """Mean |difference| in grey levels where both images hold a face."""
    both = (a.sum(-1) > 0) & (b.sum(-1) > 0)
    return float(np.abs(a.astype(float) - b.astype(float))[both].mean())


def test_no_turn_gives_the_render_back(heads):
    renderer, found = heads
    for results in found:
        near = results[5.0]
        again = renderer.turned(near.sampling, 0.0)
        assert again.shape == near.frontal.shape and again.dtype == np.uint8
        assert np.array_equal(again.sum(-1) > 0, near.frontal.sum(-1) > 0)   # the same face outline
        assert _distance(again, near.frontal) < 1.0   # two resamplings of one image


def test_a_turned_render_looks_like_the_head_really_turned(heads):
    """Turned +30° from yaw 5 it is nearer the render of the head at 35° than the unturned render is,
    and nearer it than the render at −25° (the turn's sign is the fitted yaw's); −30° the other way."""
    renderer, found = heads
    for results in found:
        near = results[5.0]
        right, left = renderer.turned(near.sampling, 30.0), renderer.turned(near.sampling, -30.0)
        assert _distance(right, results[35.0].frontal) < min(_distance(near.frontal, results[35.0].frontal),
                                                            _distance(right, results[-25.0].frontal))
        assert _distance(left, results[-25.0].frontal) < min(_distance(near.frontal, results[-25.0].frontal),
                                                            _distance(left, results[35.0].frontal))
        assert not np.array_equal(right, left)
