"""Frontal renders reach the ground truth when the landmarks are exact (renderer and visibility
checked apart from the detector), and hidden parts are filled from the mirrored side."""
import cv2
import numpy as np
import pytest

from face import bilinear
from face.fit import Fitter
from face.render import Renderer
from train.synthetic.camera import cabin_background
from train.synthetic.scene import DriverFactory, Pose, SceneRenderer


@pytest.fixture(scope="module")
def setup():
    model = bilinear.load()
    factory, scene = DriverFactory(model), SceneRenderer(model)
    driver = factory.driver(np.random.default_rng(7))
    return model, factory, scene, driver, Renderer(model, 128)


def _frontal(setup, yaw, label=3):
    from skimage.metrics import structural_similarity

    model, factory, scene, driver, renderer = setup
    w_exp = model.expression_weights[label]
    canvas = cabin_background(np.random.default_rng(0), 480, 640)
    pose = Pose(yaw=yaw, height=220)
    scene.draw(canvas, driver, w_exp, pose, shading=False)
    frame = cv2.cvtColor((canvas * 255).round().astype(np.uint8), cv2.COLOR_GRAY2BGR)
    posed = scene.posed(driver.w_id, w_exp, pose)
    landmarks = np.zeros((478, 3))
    landmarks[:468] = posed
    fit = Fitter(model)(landmarks, pool_identity=False)
    frontal, visibility, _, _ = renderer.render(frame, posed[:, :2], fit.posed(), fit.vertices)
    truth, mask = scene.frontal_truth(driver, w_exp, 128)
    truth = (truth * 255).round().astype(np.uint8)
    _, ssim = structural_similarity(truth, frontal[..., 0], data_range=255, full=True)
    inner = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    return float(ssim[inner].mean()), visibility, mask


def test_frontal_render_matches_truth_with_exact_landmarks(setup):
    ssim, visibility, mask = _frontal(setup, 0)
    assert ssim > 0.9
    # Seen head-on, nearly all of the face counts as seen (only grazing sides and the nose's
    # flanks less), so hardly anything is filled from the mirror.
    assert (visibility[mask] > 0.5).mean() > 0.85


def test_hidden_side_is_filled_from_the_mirror(setup):
    ssim, visibility, mask = _frontal(setup, 50)
    left, right = visibility[:, :50][mask[:, :50]].mean(), visibility[:, 78:][mask[:, 78:]].mean()
    # Turned 50° towards the image's right, the face's left half (image right) is hardly seen...
    assert min(left, right) < 0.6 < max(left, right)
    # ...yet the frontal render is close to the truth there too, thanks to the mirrored fill.
    assert ssim > 0.7
