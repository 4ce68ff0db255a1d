"""ClassifyStep with the shipped classifier (a real ONNX Runtime session): for each publish mode, the
published `probs` and the per-path `probs_translated` / `probs_render` agree with the classifier run
on each image alone and with pipeline/fusion.py, and the emotion message carries them."""
import time

import cv2
import numpy as np
import pytest

from face.imageio import to_network
from pipeline import messages
from pipeline.config import PipelineConfig, resolve_models
from pipeline.decide import emotion_message, path_labels
from pipeline.fusion import PUBLISH_MODES, publish_probs
from pipeline.steps import ClassifyStep, softmax
from pipeline_clips import driver_photo
from pipeline_helpers import REPO

GENERATOR, CLASSIFIER = REPO / "models" / "uit_generator.onnx", REPO / "models" / "classifier.onnx"

pytestmark = pytest.mark.skipif(not (GENERATOR.is_file() and CLASSIFIER.is_file()),
                                reason="the default models are not built yet (models/build_default_models.sh)")


@pytest.fixture(scope="module")
def images():
    """Two different images, so the two paths give different distributions: the 'translation' is a
    face crop, the 'render' the same crop mirrored and darkened."""
    config = resolve_models(PipelineConfig(generator=str(GENERATOR), classifier=str(CLASSIFIER)))
    size = config.image_size
    face = cv2.resize(driver_photo()[40:440, 120:520], (size, size))
    translated = cv2.cvtColor(face, cv2.COLOR_GRAY2BGR)
    frontal = np.ascontiguousarray((translated[:, ::-1] * 0.5).astype(np.uint8))
    return translated, frontal


@pytest.fixture(scope="module")
def reference(images):
    """Each image through the classifier alone, outside the step."""
    import engines

    engine = engines.load(str(CLASSIFIER), backend="onnxruntime", threads=1)
    return [softmax(engine.run({"image": to_network(image)[None]})["logits"].astype(np.float64))[0]
            for image in images]


def step_for(mode, baseline=True, weight=0.5):
    config = resolve_models(PipelineConfig(generator=str(GENERATOR), classifier=str(CLASSIFIER), publish_mode=mode,
                                           fusion_weight=weight, baseline=baseline))
    return ClassifyStep(config), config


def classify(step, images):
    header = messages.new_header(7, "test", 1_000)
    translated, frontal = images
    header, _ = step(header, {"translated": translated, "frontal": frontal})
    return header


@pytest.mark.parametrize("mode", PUBLISH_MODES)
def test_each_mode_publishes_its_choice_and_both_paths(mode, images, reference):
    p_t, p_r = reference
    assert p_t.argmax() != p_r.argmax() or np.abs(p_t - p_r).max() > 0.05   # the paths do differ
    step, config = step_for(mode, weight=0.3)
    header = classify(step, images)
    np.testing.assert_allclose(header["probs_translated"], p_t, atol=2e-5)
    np.testing.assert_allclose(header["probs_render"], p_r, atol=2e-5)
    np.testing.assert_allclose(header["probs"], publish_probs(p_t, p_r, mode, 0.3), atol=2e-5)
    assert header["published_from"] == mode and "probs_baseline" not in header
    expected = {"translated": header["probs_translated"], "render": header["probs_render"]}.get(mode)
    if expected is not None:
        assert header["probs"] == expected
    # The same numbers image by image when the engine cannot take a batch.
    step.batched = False
    alone = classify(step, images)
    assert alone.keys() == header.keys() and alone["published_from"] == mode
    for key in ("probs", "probs_translated", "probs_render"):
        np.testing.assert_allclose(alone[key], header[key], atol=2e-5)
    # The emotion message: `probs` / `label` are the published choice, `paths` holds both.
    message = emotion_message(header, None, config.classes, time.monotonic_ns())
    assert message["published_from"] == mode
    assert message["probs"] == dict(zip(config.classes, header["probs"]))
    assert message["label"] == config.classes[int(np.argmax(header["probs"]))]
    assert message["paths"] == {"translated": dict(zip(config.classes, header["probs_translated"])),
                                "render": dict(zip(config.classes, header["probs_render"]))}
    assert path_labels(header, config.classes) == {"translated": config.classes[int(p_t.argmax())],
                                                   "render": config.classes[int(p_r.argmax())]}


@pytest.mark.parametrize("mode, paths", [("translated", {"probs_translated"}), ("render", {"probs_render"}),
                                         ("fusion", {"probs_translated", "probs_render"})])
def test_without_baseline_only_what_the_published_label_needs(mode, paths, images, reference):
    step, config = step_for(mode, baseline=False)
    header = classify(step, images)
    assert {k for k in header if k.startswith("probs_")} == paths
    np.testing.assert_allclose(header["probs"], publish_probs(*reference, mode), atol=2e-5)
    message = emotion_message(header, None, config.classes, time.monotonic_ns())
    assert ("paths" in message) == (mode == "fusion") and message["published_from"] == mode


def test_a_frame_without_a_face_is_not_classified(images):
    step, config = step_for("fusion")
    header = messages.new_header(1, "test", time.monotonic_ns(), valid=False, reason="no face found")
    header, arrays = step(header, {})
    assert arrays == {} and not any(k.startswith("probs") or k == "published_from" for k in header)
    message = emotion_message(header, None, config.classes, time.monotonic_ns())
    assert message["probs"] is None and "paths" not in message and "published_from" not in message


def test_config_refuses_an_unknown_mode_or_weight():
    with pytest.raises(ValueError, match="publish mode must be one of fusion, translated, render, got 'both'"):
        PipelineConfig(publish_mode="both")
    with pytest.raises(ValueError, match=r"fusion weight must be in \[0, 1\], got 2"):
        PipelineConfig(fusion_weight=2)
