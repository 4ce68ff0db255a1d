"""The car's chain, written once: face image + side map → UIT generator → classifier → probabilities.

Images are uint8 N×S×S×3 BGR (normalised here by `face.imageio.to_network`) or float32 N×3×S×S
already in the network range; translations come back in the network range (`from_network` makes
them images again). Models are Engines, or anything with `run(feeds)` and `path`. Every output is
checked: NaN/Inf raise NonFiniteOutputError naming the model.

    translated = translate(generator, frontal, side_map)         # N×3×S×S in [-1, 1]
    probs = classify(classifier, translated)                     # N×classes, float64
"""
from __future__ import annotations

import numpy as np

from engines.base import check_finite
from face.imageio import to_network


def softmax(logits) -> np.ndarray:
    """Probabilities along the last axis, in float64 (the largest logit subtracted first, so no overflow)."""
    z = np.asarray(logits, dtype=np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def translate(generator, images, side_maps, batch: int | None = None) -> np.ndarray:
    """The generator's `translated` output for each image and its side map (None: one batch)."""
    images, side_maps = _network(images), _network(side_maps)
    return np.concatenate([_run(generator, "generator", {"image": images[s], "side_map": side_maps[s]})["translated"]
                           for s in _batches(len(images), batch)])


def logits(classifier, images, batch: int | None = None) -> np.ndarray:
    """The classifier's logits for each image (None: one batch; 1 for an engine without a dynamic batch)."""
    images = _network(images)
    return np.concatenate([_run(classifier, "classifier", {"image": images[s]})["logits"]
                           for s in _batches(len(images), batch)])


def classify(classifier, images, batch: int | None = None) -> np.ndarray:
    """Class probabilities (softmax of the logits) for each image."""
    return softmax(logits(classifier, images, batch))


def translate_and_classify(generator, classifier, images, side_maps=None,
                           batch: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(translated, probabilities) of the whole chain; without a generator the classifier sees the images."""
    translated = _network(images) if generator is None else translate(generator, images, side_maps, batch)
    return translated, classify(classifier, translated, batch)


def _network(images) -> np.ndarray:
    images = np.asarray(images)
    return to_network(images) if images.dtype == np.uint8 else images


def _batches(count: int, batch: int | None) -> list[slice]:
    step = batch or max(count, 1)
    return [slice(start, start + step) for start in range(0, count, step)]


def _run(model, role: str, feeds: dict) -> dict:
    return check_finite(model.run(feeds), where=f"{role} {model.path}")
