"""The generator → classifier chain gives the numbers the code it replaced gave: the pipeline's stages,
calibration's report and feeds, and train/evaluate's softmax."""
import numpy as np
import pytest
import torch

import engines
from engines import chain
from face.imageio import from_network, to_network


@pytest.fixture(scope="module")
def faces():
    """uint8 BGR renders and side maps, as the face stage gives them."""
    rng = np.random.default_rng(4)
    return (rng.integers(0, 256, (5, 64, 64, 3), dtype=np.uint8),
            rng.integers(0, 256, (5, 64, 64, 3), dtype=np.uint8))


def _old_pipeline(generator, classifier, frontal, side_map):
    """pipeline/steps.py before the chain: TranslateStep on one frame, then ClassifyStep's softmax."""
    outputs = generator.run({"image": to_network(frontal)[None], "side_map": to_network(side_map)[None]})
    translated = from_network(outputs["translated"][0])
    logits = classifier.run({"image": to_network(translated[None])})["logits"].astype(np.float64)
    z = logits - logits.max(axis=-1, keepdims=True)
    return translated, np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)


def test_the_pipeline_numbers_are_unchanged(generator_onnx, classifier_onnx, faces):
    generator, classifier = engines.load(generator_onnx), engines.load(classifier_onnx)
    for frontal, side_map in zip(*faces):
        old_translated, old_probs = _old_pipeline(generator, classifier, frontal, side_map)
        translated = from_network(chain.translate(generator, frontal[None], side_map[None])[0])
        np.testing.assert_array_equal(translated, old_translated)
        np.testing.assert_array_equal(chain.classify(classifier, translated[None]), old_probs)


def test_the_report_numbers_are_unchanged(generator_onnx, classifier_onnx, faces):
    """calibration/report.py before the chain: network-range inputs, float32 softmax."""
    generator, classifier = engines.load(generator_onnx), engines.load(classifier_onnx)
    images, side_maps = to_network(faces[0]), to_network(faces[1])
    old_translated = generator.run({"image": images, "side_map": side_maps})["translated"]
    logits = classifier.run({"image": old_translated})["logits"]
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    translated, probs = chain.translate_and_classify(generator, classifier, images, side_maps)
    np.testing.assert_array_equal(translated, old_translated)
    np.testing.assert_allclose(probs, z / z.sum(axis=1, keepdims=True), atol=1e-6)
    # uint8 images are normalised by the chain itself; no generator: the classifier sees the images
    np.testing.assert_array_equal(chain.translate(generator, *faces), old_translated)
    untranslated, probs = chain.translate_and_classify(None, classifier, faces[0])
    np.testing.assert_array_equal(untranslated, images)
    np.testing.assert_array_equal(probs, chain.classify(classifier, images))


def test_batches_give_the_same_numbers(generator_onnx, classifier_onnx, faces):
    generator, classifier = engines.load(generator_onnx), engines.load(classifier_onnx)
    np.testing.assert_allclose(chain.translate(generator, *faces, batch=2), chain.translate(generator, *faces),
                               atol=1e-5)
    np.testing.assert_allclose(chain.logits(classifier, faces[0], batch=1), chain.logits(classifier, faces[0]),
                               atol=1e-5)


def test_softmax_matches_torch():
    """train/evaluate.py took F.softmax of the float32 logits."""
    logits = np.random.default_rng(0).normal(0, 30, (6, 7)).astype(np.float32)
    expected = torch.nn.functional.softmax(torch.from_numpy(logits), dim=1).numpy()
    probs = chain.softmax(logits)
    assert probs.dtype == np.float64
    np.testing.assert_allclose(probs, expected, atol=1e-6)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)


def test_non_finite_outputs_name_the_model(classifier_onnx, faces):
    class Broken:
        path = "broken.onnx"

        def run(self, feeds):
            return {"translated": np.full(feeds["image"].shape, np.nan, np.float32), "side_map_out": feeds["side_map"]}

    with pytest.raises(engines.NonFiniteOutputError,
                       match=r"^generator broken.onnx: non-finite output in 'translated'"):
        chain.translate_and_classify(Broken(), engines.load(classifier_onnx), *faces)
