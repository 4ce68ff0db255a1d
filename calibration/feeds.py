"""A calibration set → the inputs of the model being calibrated, by the model's `exprada.kind`."""
from __future__ import annotations

import numpy as np
from tqdm import tqdm

import engines
from calibration.frames import CalibrationSet

NUM_EXPRESSIONS = 7


def model_inputs(engine: engines.Engine, calib: CalibrationSet, generator: engines.Engine | None = None,
                 batch: int = 8) -> dict[str, np.ndarray]:
    """{input name: N×...} for `engine`.

    Generators see frontal renders + side maps (CGIT also a one-hot cycling through the classes).
    A classifier in the car sees the UIT generator's translation, so with `generator` given the
    calibration images are translated first; without it the frontal renders are used as they are.
    """
    kind = engine.metadata.get("exprada.kind")
    size = engine.inputs[0].shape[-1]
    if calib.images.shape[-1] != size:
        raise ValueError(f"calibration images are {calib.images.shape[-1]}², model {engine.path} takes {size}²")
    if kind == "uit_generator":
        return {"image": calib.images, "side_map": calib.side_maps}
    if kind == "cgit_generator":
        onehot = np.eye(NUM_EXPRESSIONS, dtype=np.float32)[np.arange(len(calib)) % NUM_EXPRESSIONS]
        return {"image": calib.images, "side_map": calib.side_maps, "expression": onehot}
    if kind == "classifier":
        images = calib.images if generator is None else translate(generator, calib, batch)
        return {"image": images}
    raise ValueError(f"{engine.path}: exprada.kind {kind!r} is not one calibration knows "
                     "(uit_generator, cgit_generator, classifier); was it written by `python -m engines export`?")


def translate(generator: engines.Engine, calib: CalibrationSet, batch: int = 8) -> np.ndarray:
    """The generator's `translated` output for every calibration sample."""
    out = []
    for start in tqdm(range(0, len(calib), batch), desc="translating", unit="batch", leave=False):
        result = engines.check_finite(generator.run({"image": calib.images[start:start + batch],
                                                     "side_map": calib.side_maps[start:start + batch]}),
                                      where=generator.path)
        out.append(result["translated"])
    return np.concatenate(out)
