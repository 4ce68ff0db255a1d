"""The two synthetic scenarios: `pose` (NIR source, as it always was) and `camera` (a visible-light
studio source against the NIR target, the paper's setting)."""
import copy
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from face.crops import face_crop
from face.expressions import EXPRESSIONS
from train.synthetic import textures
from train.synthetic.camera import NirCamera, VisibleCamera, cabin_background
from train.synthetic.scene import Pose

ROOT = Path(__file__).resolve().parents[2]
FRONTAL = Pose(yaw=5.0, pitch=3.0, roll=2.0, height=200.0)


def _synth(out: Path, *args):
    cmd = [sys.executable, "-m", "train", "synth", "--out", str(out), "--no-progress", "--seed", "3",
           "--per-class", "1", "--video-seconds", "1", "--drivers", "2", *args]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("scenarios")
    return {"pose": _synth(base / "pose"), "camera": _synth(base / "camera", "--scenario", "camera")}


@pytest.fixture(scope="module")
def writers():
    from train.synthetic.writer import SynthWriter

    pose = SynthWriter("/nonexistent-not-written", seed=5, drivers=3)
    camera = SynthWriter("/nonexistent-not-written", seed=5, drivers=3, scenario="camera", model=pose.model)
    return pose, camera


def _images(folder: Path, prefix: str):
    return [cv2.imread(str(p)) for p in sorted(folder.rglob(f"{prefix}*[0-9].png"))]


def _is_grey(image) -> bool:
    return bool((image[..., 0] == image[..., 1]).all() and (image[..., 1] == image[..., 2]).all())


def test_camera_scenario_has_colour_sources_and_grey_targets(runs):
    out = runs["camera"]
    source, target = _images(out / "source", "s"), _images(out / "target", "t")
    assert len(source) == len(EXPRESSIONS) and len(target) >= len(EXPRESSIONS) - 1
    for crop in source:
        face = crop.any(axis=2)
        saturation = cv2.cvtColor(crop, cv2.COLOR_BGR2HSV)[..., 1][face]
        assert not _is_grey(crop) and saturation.mean() > 40
        assert crop[:10, :10].max() == 0   # framed and masked like the renders, as in the pose scenario
    assert all(_is_grey(t) for t in target)
    assert all(_is_grey(s) for s in _images(runs["pose"] / "source", "s"))


def test_manifest_records_the_scenario(runs):
    for scenario, out in runs.items():
        assert json.loads((out / "manifest.json").read_text())["scenario"] == scenario


def test_the_scenarios_differ_in_the_source_only(runs):
    pose, camera = runs["pose"], runs["camera"]
    files = sorted(p.relative_to(pose) for p in (pose / "target").rglob("*.png"))
    assert files and files == sorted(p.relative_to(camera) for p in (camera / "target").rglob("*.png"))
    for name in [*files, Path("drive.mp4"), Path("drive.json"), Path("target.csv")]:
        assert (pose / name).read_bytes() == (camera / name).read_bytes(), f"{name} differs"


def _polygons(writer, driver, w_exp, pose, rings):
    """Mask of the polygons through the given landmark rings, in the source crop's pixels."""
    from train.synthetic.writer import _with_iris

    landmarks = writer.scene.posed(driver.w_id, w_exp, pose)[:, :2]
    matrix = writer.renderer.alignment(_with_iris(landmarks))
    xy = landmarks @ matrix[:, :2].T + matrix[:, 2]
    mask = np.zeros((writer.size, writer.size), np.uint8)
    for ring in rings:
        cv2.fillPoly(mask, [np.round(xy[list(ring)] * 16).astype(np.int32)], 1, cv2.LINE_8, shift=4)
    return mask > 0


def test_visible_light_shows_what_nir_hides(writers):
    """Same people (same seed), expression and pose: the studio crop has colour, lips redder than and
    darker than the skin, darker brows — the NIR crop has none of it (lips nearly skin-toned)."""
    pose_writer, camera_writer = writers
    w_exp = pose_writer.model.expression_weights[EXPRESSIONS.index("neutral")]  # the mouth closed
    brow_tones = []
    for d in range(3):
        driver, nir = pose_writer.drivers["source"][d]
        same_driver, studio = camera_writer.drivers["source"][d]
        assert np.array_equal(driver.w_id, same_driver.w_id) and isinstance(studio, VisibleCamera)
        lips = _polygons(pose_writer, driver, w_exp, FRONTAL, [textures.LIPS_OUTER])
        brows = _polygons(pose_writer, driver, w_exp, FRONTAL, textures.BROWS)
        measured = {}
        for name, writer, camera in (("nir", pose_writer, nir), ("visible", camera_writer, studio)):
            crop, side = writer.source_crop(np.random.default_rng(1), driver, camera, w_exp, FRONTAL)
            face = cv2.erode(crop.any(axis=2).astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
            skin = face & (side.max(axis=2) < 20)   # away from every feature's contour
            c = crop.astype(np.float64) + 1.0
            redness, grey = c[..., 2] / c[..., 1], c.mean(axis=2)
            measured[name] = {
                "saturation": cv2.cvtColor(crop, cv2.COLOR_BGR2HSV)[..., 1][skin].mean(),
                "lip_redness": redness[lips].mean() / redness[skin].mean(),
                "lip_tone": grey[lips].mean() / grey[skin].mean(),
                "brow_tone": grey[brows].mean() / grey[skin].mean(),
            }
        nir_m, vis_m = measured["nir"], measured["visible"]
        assert nir_m["saturation"] == 0 and vis_m["saturation"] > 60, measured
        assert nir_m["lip_redness"] == 1.0 and vis_m["lip_redness"] > 1.15, measured
        assert vis_m["lip_tone"] < min(0.85, nir_m["lip_tone"] - 0.1), measured
        brow_tones.append((nir_m["brow_tone"], vis_m["brow_tone"]))
    # Brows over the drivers, not per driver: a driver's brows vary in both looks, and on a later
    # session's machine, where the same code draws slightly different frames (see the default-drive
    # test), the first driver's NIR brows came out as dark as its studio ones (0.578 vs 0.627 of the
    # skin's tone; the other two: 0.944 vs 0.537, 0.719 vs 0.436).
    nir_brows, visible_brows = np.mean(brow_tones, axis=0)
    assert visible_brows < nir_brows - 0.1, brow_tones


def test_a_driver_looks_the_same_whoever_draws_them(writers):
    """The visible look follows from the driver alone, and the studio crops are deterministic."""
    pose_writer, camera_writer = writers
    driver = pose_writer.factory.driver(np.random.default_rng(9))
    twin = pose_writer.factory.driver(np.random.default_rng(9))
    studio = camera_writer.source_camera(np.random.default_rng(4))
    w_exp = pose_writer.model.expression_weights[EXPRESSIONS.index("happiness")]
    a, side_a = camera_writer.source_crop(np.random.default_rng(2), driver, copy.deepcopy(studio), w_exp, FRONTAL)
    b, side_b = pose_writer.source_crop(np.random.default_rng(2), twin, copy.deepcopy(studio), w_exp, FRONTAL)
    assert np.array_equal(a, b) and np.array_equal(side_a, side_b) and not _is_grey(a)
    assert isinstance(pose_writer.source_camera(np.random.default_rng(4)), NirCamera)
    with pytest.raises(TypeError, match="NIR"):
        camera_writer.target_frame(np.random.default_rng(0), driver, studio, w_exp, FRONTAL)
    assert pose_writer.scenario == "pose"  # the default


def test_pose_scenario_is_the_nir_recipe_it_always_was(writers):
    """source_crop / target_frame of the pose scenario draw exactly as the writer always did:
    cabin background, then the expression, the face, the NIR camera, face_crop."""
    from train.synthetic.writer import FRAME_H, FRAME_W, _with_iris

    writer, _ = writers
    driver, camera = writer.drivers["source"][1]
    label, pose = EXPRESSIONS.index("surprise"), Pose(yaw=-7.0, pitch=4.0, roll=-3.0, cx=300, cy=240, height=190)

    def old(rng, camera):
        canvas = cabin_background(rng, FRAME_H, FRAME_W)
        truth = writer.scene.draw(canvas, driver, writer.factory.expression(rng, label), pose)
        return camera.expose(canvas, pose.height), truth

    frame, truth = old(np.random.default_rng(8), copy.deepcopy(camera))
    crop, crop_landmarks = face_crop(writer.renderer, frame, _with_iris(truth["landmarks"]))
    new_crop, _ = writer.source_crop(np.random.default_rng(8), driver, copy.deepcopy(camera),
                                     writer._expression_of(label), pose)
    assert np.array_equal(crop, new_crop) and _is_grey(crop)
    new_frame, new_truth = writer.target_frame(np.random.default_rng(8), driver, copy.deepcopy(camera),
                                               writer._expression_of(label), pose)
    assert np.array_equal(frame, new_frame) and np.array_equal(truth["landmarks"], new_truth["landmarks"])
    assert new_frame.shape == (480, 640, 3)


def test_an_unknown_scenario_is_refused(tmp_path):
    from train.synthetic.writer import SynthWriter

    with pytest.raises(ValueError, match="'studio'.*pose, camera"):
        SynthWriter(tmp_path, scenario="studio")
    cmd = [sys.executable, "-m", "train", "synth", "--out", str(tmp_path), "--scenario", "studio"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "--scenario" in done.stderr and "studio" in done.stderr


@pytest.mark.parametrize("option, expected", [
    (["--size", "7"], "argument --size: must be at least 16, got 7"),
    (["--size", "17"], "--size must be an even number of pixels, got 17"),
    (["--per-class", "-3"], "argument --per-class: must be at least 0, got -3"),
    (["--target-yaw", "100"], "argument --target-yaw: must be between 0 and 90, got 100.0"),
    (["--fleet", "2", "--video-seconds", "0"], "--fleet N writes drives: give --video-seconds above 0"),
    (["--out", "/proc/no-such/out"], "--out /proc/no-such/out: cannot write in /proc/no-such/out: "),
    (["--out", "/proc"], "--out /proc: cannot write in /proc: "),   # exists, holds no file: was a traceback
])
def test_bad_options_are_refused_in_one_line_before_anything_is_written(tmp_path, capsys, option, expected):
    from train.synthetic.writer import main

    with pytest.raises(SystemExit) as stop:
        main(["--out", str(tmp_path / "out"), *option])
    assert stop.value.code == 2 and f"error: {expected}" in capsys.readouterr().err.splitlines()[-1]
    assert not (tmp_path / "out").exists()
