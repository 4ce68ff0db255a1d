"""The TensorRT calibrator's batching and cache file (no TensorRT needed); the calibrator itself skips."""
import importlib.util

import numpy as np
import pytest

from calibration.trt_calibrator import CalibrationBatches, make_entropy_calibrator


def test_batches_are_equal_sized_and_the_partial_one_is_dropped(tmp_path):
    inputs = {"image": np.arange(10 * 2, dtype=np.float32).reshape(10, 2), "side_map": np.zeros((10, 2), np.float32)}
    batches = CalibrationBatches(inputs, batch_size=4, cache_path=tmp_path / "calib.cache")
    got = []
    while (batch := batches.next_batch()) is not None:
        got.append(batch)
    assert len(got) == 2 and all(b["image"].shape == (4, 2) for b in got)
    np.testing.assert_array_equal(got[1]["image"], inputs["image"][4:8])


def test_cache_file_round_trip(tmp_path):
    batches = CalibrationBatches({"image": np.zeros((4, 1), np.float32)}, 4, tmp_path / "sub" / "calib.cache")
    assert batches.read_cache() is None
    batches.write_cache(memoryview(b"TRT-1000-EntropyCalibration2\nimage: 3c010a14\n"))
    assert batches.read_cache().startswith(b"TRT-1000-EntropyCalibration2")


def test_too_few_samples_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="at least one full batch of 8 samples, got 3"):
        CalibrationBatches({"image": np.zeros((3, 1), np.float32)}, 8, tmp_path / "c")


@pytest.mark.tensorrt
@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is None,
                    reason="TensorRT is not installable on this machine (PyPI's packages are stubs)")
def test_entropy_calibrator_is_a_tensorrt_calibrator(tmp_path):
    import tensorrt as trt
    calibrator = make_entropy_calibrator({"image": np.zeros((8, 3, 8, 8), np.float32)}, tmp_path / "c", 4)
    assert isinstance(calibrator, trt.IInt8Calibrator) and calibrator.get_batch_size() == 4
