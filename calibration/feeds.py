"""A calibration set → the inputs of the model being calibrated, by the model's kind (engines/contract.py)."""
from __future__ import annotations

import numpy as np
from tqdm import tqdm

import engines
from calibration.frames import CalibrationSet
from engines import chain
from engines.contract import CGIT_GENERATOR, UIT_GENERATOR


def model_inputs(engine: engines.Engine, calib: CalibrationSet, generator: engines.Engine | None = None,
                 batch: int = 8) -> dict[str, np.ndarray]:
    """{input name: N×...} for `engine`.

    Generators see frontal renders + side maps (CGIT also a one-hot cycling through the classes).
    A classifier in the car sees the UIT generator's translation, so with `generator` given the
    calibration images are translated first; without it the frontal renders are used as they are.
    """
    info = engine.info
    if calib.images.shape[-1] != info.image_size:
        raise ValueError(f"calibration images are {calib.images.shape[-1]}², model {engine.path} "
                         f"takes {info.image_size}²")
    if info.kind == UIT_GENERATOR:
        return {"image": calib.images, "side_map": calib.side_maps}
    if info.kind == CGIT_GENERATOR:
        classes = len(info.classes)
        onehot = np.eye(classes, dtype=np.float32)[np.arange(len(calib)) % classes]
        return {"image": calib.images, "side_map": calib.side_maps, "expression": onehot}
    # a classifier, the one kind left
    images = calib.images if generator is None else translate(generator, calib, batch)
    return {"image": images}


def translate(generator: engines.Engine, calib: CalibrationSet, batch: int = 8) -> np.ndarray:
    """The generator's `translated` output for every calibration sample."""
    starts = tqdm(range(0, len(calib), batch), desc="translating", unit="batch", leave=False)
    return np.concatenate([chain.translate(generator, calib.images[s:s + batch], calib.side_maps[s:s + batch])
                           for s in starts])
