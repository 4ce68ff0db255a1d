"""Implicit INT8 for TensorRT 10 and older: an IInt8EntropyCalibrator2 fed from the calibration set.

TensorRT 11 removed implicit calibration (precision comes from Q/DQ nodes: `python -m calibration
--target tensorrt`); on 10 this calibrator lets the builder measure scales itself, and keeps them
in a calibration cache file so the next build skips calibration. The batching and cache-file logic
lives in `CalibrationBatches` (no TensorRT needed, tested everywhere); `make_entropy_calibrator`
wraps it in TensorRT's interface with pycuda device buffers.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


class CalibrationBatches:
    """Equal-sized batches (TensorRT's calibrator needs one fixed batch size) and the cache file."""

    def __init__(self, inputs: dict[str, np.ndarray], batch_size: int, cache_path):
        counts = {len(a) for a in inputs.values()}
        if len(counts) != 1:
            raise ValueError(f"calibration inputs differ in sample count: { {k: len(v) for k, v in inputs.items()} }")
        total = counts.pop()
        if total < batch_size:
            raise ValueError(f"calibration needs at least one full batch of {batch_size} samples, got {total}")
        self.inputs = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in inputs.items()}
        self.batch_size = int(batch_size)
        self.count = total // batch_size  # the partial last batch is dropped, not padded with fake data
        self.cache_path = Path(cache_path)
        self.position = 0

    def next_batch(self) -> dict[str, np.ndarray] | None:
        if self.position >= self.count:
            return None
        start = self.position * self.batch_size
        self.position += 1
        return {k: v[start:start + self.batch_size] for k, v in self.inputs.items()}

    def read_cache(self) -> bytes | None:
        return self.cache_path.read_bytes() if self.cache_path.is_file() else None

    def write_cache(self, data) -> None:
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        self.cache_path.write_bytes(bytes(memoryview(data)))


def make_entropy_calibrator(inputs: dict[str, np.ndarray], cache_path, batch_size: int = 8):
    """A `tensorrt.IInt8EntropyCalibrator2` over `inputs` ({input name: N×...}); needs TensorRT ≤ 10 and
    pycuda, and must be used while the device's primary context is current (the engine builder's)."""
    from engines.tensorrt_backend import import_cuda_driver, import_tensorrt, major_version

    trt, driver = import_tensorrt(), import_cuda_driver()
    if major_version(trt) >= 11 or not hasattr(trt, "IInt8EntropyCalibrator2"):
        raise ValueError(f"TensorRT {trt.__version__} has no implicit INT8 calibration; "
                         "use Q/DQ: `python -m calibration --target tensorrt`")
    batches = CalibrationBatches(inputs, batch_size, cache_path)

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            trt.IInt8EntropyCalibrator2.__init__(self)  # the binding's base must be initialised explicitly
            first = {k: v[:batch_size] for k, v in batches.inputs.items()}
            self._device = {name: driver.mem_alloc(array.nbytes) for name, array in first.items()}

        def get_batch_size(self):
            return batches.batch_size

        def get_batch(self, names):
            batch = batches.next_batch()
            if batch is None:
                return None
            for name in names:
                driver.memcpy_htod(self._device[name], batch[name])
            return [int(self._device[name]) for name in names]

        def read_calibration_cache(self):
            return batches.read_cache()

        def write_calibration_cache(self, cache):
            batches.write_cache(cache)

    return EntropyCalibrator()
