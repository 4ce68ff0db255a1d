"""The TensorRT runner's CUDA plumbing against the real pycuda, on a real GPU (no TensorRT needed):
the retained primary context shared with PyTorch, and the grow-only buffer pool's copies."""
import importlib.util

import numpy as np
import pytest
import torch

from engines.cuda_buffers import BufferPool
from engines.tensorrt_backend import PrimaryContext, import_cuda_driver

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available() or importlib.util.find_spec("pycuda") is None,
                       reason="needs a CUDA GPU and pycuda (`pip install pycuda` builds it against the CUDA toolkit)"),
]


@pytest.fixture
def cuda():
    torch.zeros(1, device="cuda")  # PyTorch first, as in the pipeline: pycuda must join its context
    driver = import_cuda_driver()
    return driver, PrimaryContext(driver, 0)


def test_pool_round_trips_through_the_device_on_a_stream_and_only_grows(cuda):
    driver, context = cuda
    with context:
        pool, stream = BufferPool(driver), driver.Stream()
        for batch in (4, 2, 8):  # smaller reuses the larger allocation, larger reallocates once
            data = np.random.default_rng(batch).standard_normal((batch, 6, 32, 32)).astype(np.float32)
            device = pool.device("x", data.nbytes)
            host_in = pool.host("x", data.shape, np.float32)
            host_in[...] = data
            driver.memcpy_htod_async(device, host_in, stream)
            host_out = pool.host("y", data.shape, np.float32)
            driver.memcpy_dtoh_async(host_out, device, stream)
            stream.synchronize()
            np.testing.assert_array_equal(host_out, data)
        assert pool.device_bytes == 8 * 6 * 32 * 32 * 4
        pool.free()
        assert pool.device_bytes == 0


def test_primary_context_is_the_one_pytorch_uses(cuda):
    driver, context = cuda
    assert context.gpu_name == torch.cuda.get_device_name(0)
    assert context.compute_capability == "{}.{}".format(*torch.cuda.get_device_capability(0))
    tensor = torch.zeros(1000, device="cuda")
    values = np.arange(1000, dtype=np.float32)
    with context:  # a pycuda copy straight into PyTorch's memory works only in the same context
        driver.memcpy_htod(int(tensor.data_ptr()), values)
        driver.Context.synchronize()
    np.testing.assert_array_equal(tensor.cpu().numpy(), values)
