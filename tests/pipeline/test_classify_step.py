"""ClassifyStep with the shipped classifier (a real ONNX Runtime session): for each publish mode
(pose pooling by the face's yaw), the published `probs` and each path's probabilities in `paths`
(translated, render, crop) agree with the classifier run on each image alone and with
pipeline/fusion.py, and the emotion message carries them."""
import time

import cv2
import numpy as np
import pytest

from engines.chain import softmax
from face.imageio import to_network
from pipeline.config import PipelineConfig, resolve_models
from pipeline.decide import emotion_message, path_labels
from pipeline.fusion import PUBLISH_MODES, publish_probs
from pipeline.messages import Face, new_header, to_builtins
from pipeline.steps import ClassifyStep
from pipeline_clips import driver_photo
from pipeline_helpers import REPO

GENERATOR, CLASSIFIER = REPO / "models" / "uit_generator.onnx", REPO / "models" / "classifier.onnx"

pytestmark = pytest.mark.skipif(not (GENERATOR.is_file() and CLASSIFIER.is_file()),
                                reason="the default models are not built yet (models/build_default_models.sh)")


@pytest.fixture(scope="module")
def images():
    """Three different images, so the three paths give different distributions: the 'translation' is
    a face crop, the 'render' the same crop mirrored and darkened, the 'crop' it upside down."""
    config = resolve_models(PipelineConfig(generator=str(GENERATOR), classifier=str(CLASSIFIER)))
    size = config.image_size
    face = cv2.resize(driver_photo()[40:440, 120:520], (size, size))
    translated = cv2.cvtColor(face, cv2.COLOR_GRAY2BGR)
    frontal = np.ascontiguousarray((translated[:, ::-1] * 0.5).astype(np.uint8))
    crop = np.ascontiguousarray(translated[::-1])
    return translated, frontal, crop


@pytest.fixture(scope="module")
def reference(images):
    """Each image through the classifier alone, outside the step: (p_translated, p_render, p_crop)."""
    import engines

    engine = engines.load(str(CLASSIFIER), backend="onnxruntime", threads=1)
    return [softmax(engine.run({"image": to_network(image)[None]})["logits"].astype(np.float64))[0]
            for image in images]


def step_for(mode, all_paths=True, weight=0.5, crop_yaw=30.0):
    config = resolve_models(PipelineConfig(generator=str(GENERATOR), classifier=str(CLASSIFIER), publish_mode=mode,
                                           fusion_weight=weight, all_paths=all_paths, crop_yaw=crop_yaw))
    return ClassifyStep(config), config


def classify(step, images, yaw=12.0):
    header = new_header(7, "test", 1_000)
    header.face = Face(box=[0.0, 0.0, 10.0, 10.0], yaw=yaw, pitch=0.0, roll=0.0, fit_residual=0.01)
    translated, frontal, crop = images
    header, _ = step(header, {"translated": translated, "frontal": frontal, "crop": crop})
    return header


def expected_probs(reference, mode, weight=0.5, yaw=12.0, crop_yaw=30.0):
    p_t, p_r, p_c = reference
    return publish_probs(p_t, p_r, mode, weight, p_crop=p_c, yaw=yaw, crop_yaw=crop_yaw)


def test_the_paths_differ(reference):
    p_t, p_r, p_c = reference
    for a, b in ((p_t, p_r), (p_t, p_c), (p_r, p_c)):
        assert a.argmax() != b.argmax() or np.abs(a - b).max() > 0.05


@pytest.mark.parametrize("mode", PUBLISH_MODES)
def test_each_mode_publishes_its_choice_and_every_path(mode, images, reference):
    p_t, p_r, p_c = reference
    step, config = step_for(mode, weight=0.3)
    assert config.paths == (True, True, True)   # all_paths: every path, for the summary
    header = classify(step, images)
    assert list(header.paths) == ["translated", "render", "crop"]
    np.testing.assert_allclose(header.paths["translated"], p_t, atol=2e-5)
    np.testing.assert_allclose(header.paths["render"], p_r, atol=2e-5)
    np.testing.assert_allclose(header.paths["crop"], p_c, atol=2e-5)
    np.testing.assert_allclose(header.probs, expected_probs(reference, mode, 0.3), atol=2e-5)
    assert header.published_from == mode
    if mode in header.paths:
        assert header.probs == header.paths[mode]
    # The same numbers image by image when the engine cannot take a batch.
    step.batched = False
    alone = classify(step, images)
    assert alone.paths.keys() == header.paths.keys() and alone.published_from == mode
    np.testing.assert_allclose(alone.probs, header.probs, atol=2e-5)
    for path in header.paths:
        np.testing.assert_allclose(alone.paths[path], header.paths[path], atol=2e-5)
    # The emotion message: `probs` / `label` are the published choice, `paths` holds all three.
    message = to_builtins(emotion_message(header, None, config.classes, time.monotonic_ns()))
    assert message["published_from"] == mode
    assert message["probs"] == dict(zip(config.classes, header.probs))
    assert message["label"] == config.classes[int(np.argmax(header.probs))]
    assert message["paths"] == {path: dict(zip(config.classes, header.paths[path]))
                                for path in ("translated", "render", "crop")}
    assert path_labels(header, config.classes) == {"translated": config.classes[int(p_t.argmax())],
                                                   "render": config.classes[int(p_r.argmax())],
                                                   "crop": config.classes[int(p_c.argmax())]}


@pytest.mark.parametrize("yaw", [0.0, 9.5, -21.0, 30.0, -55.0])
def test_pose_mode_pools_by_the_face_stage_yaw(yaw, images, reference):
    """Pose mode: the three paths pooled with the crop's weight set by the face's yaw,
    the same numbers as publish_probs on the three images classified apart."""
    step, config = step_for("pose", weight=0.4, crop_yaw=25.0)
    assert PipelineConfig().publish_mode == "fusion" and PipelineConfig().crop_yaw == 20.0
    assert PipelineConfig().fusion_weight == 0.5 and PipelineConfig(publish_mode="pose").fusion_weight == 1.0
    header = classify(step, images, yaw)
    probs = np.array(header.probs)
    np.testing.assert_allclose(probs, expected_probs(reference, "pose", 0.4, yaw, 25.0), atol=2e-5)
    p_t, p_r, p_c = reference
    if yaw == 0.0:      # the crop alone
        np.testing.assert_allclose(probs, p_c, atol=2e-5)
    elif abs(yaw) >= 25.0:   # exactly the two-path fusion
        np.testing.assert_allclose(probs, publish_probs(p_t, p_r, "fusion", 0.4), atol=2e-5)
    else:               # a real mix: neither the crop nor the fusion
        assert np.abs(probs - p_c).max() > 1e-3
        assert np.abs(probs - publish_probs(p_t, p_r, "fusion", 0.4)).max() > 1e-3


def test_pose_mode_without_a_yaw_is_refused(images):
    step, _ = step_for("pose")
    header = new_header(7, "test", 1_000)
    translated, frontal, crop = images
    with pytest.raises(ValueError, match="pose mode needs the head yaw"):
        step(header, {"translated": translated, "frontal": frontal, "crop": crop})


def test_a_missing_image_is_named(images):
    step, _ = step_for("crop")
    header = new_header(7, "test", 1_000)
    with pytest.raises(ValueError, match="classify needs the crop image"):
        step(header, {"translated": images[0], "frontal": images[1]})


@pytest.mark.parametrize("mode, paths", [("translated", {"translated"}), ("render", {"render"}), ("crop", {"crop"}),
                                         ("fusion", {"translated", "render"}),
                                         ("pose", {"translated", "render", "crop"})])
def test_published_paths_only_classifies_what_the_published_label_needs(mode, paths, images, reference):
    step, config = step_for(mode, all_paths=False)
    assert config.paths == tuple(path in paths for path in ("translated", "render", "crop"))
    header = classify(step, images)
    assert set(header.paths) == paths
    np.testing.assert_allclose(header.probs, expected_probs(reference, mode), atol=2e-5)
    message = to_builtins(emotion_message(header, None, config.classes, time.monotonic_ns()))
    assert message["published_from"] == mode
    # `paths` carries every classified path when there are two or more.
    assert set(message.get("paths", {})) == (paths if len(paths) >= 2 else set())


def test_a_frame_without_a_face_is_not_classified(images):
    step, config = step_for("pose")
    header = new_header(1, "test", time.monotonic_ns(), valid=False, reason="no face found")
    header, arrays = step(header, {})
    assert arrays == {} and header.probs is None and header.paths == {} and header.published_from is None
    message = to_builtins(emotion_message(header, None, config.classes, time.monotonic_ns()))
    assert message["probs"] is None and "paths" not in message and "published_from" not in message


def test_config_refuses_an_unknown_mode_weight_or_crop_yaw():
    with pytest.raises(ValueError, match="publish mode must be one of pose, fusion, translated, render, crop, "
                                         "got 'both'"):
        PipelineConfig(publish_mode="both")
    with pytest.raises(ValueError, match=r"fusion weight must be in \[0, 1\], got 2"):
        PipelineConfig(fusion_weight=2)
    with pytest.raises(ValueError, match="crop yaw must be a positive, finite number of degrees, got 0.0"):
        PipelineConfig(crop_yaw=0)
