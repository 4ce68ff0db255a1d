"""TensorRT backend: cache keys, buffers, precision rules and API call order without TensorRT; the
real build-and-run test needs TensorRT and a GPU and skips here, saying so."""
import importlib.util
import json
import multiprocessing
import os
import sys
import time
import types

import numpy as np
import pytest

import engines
import fake_tensorrt_call_order as fake
from engines import tensorrt_backend, trt_cache
from engines.cuda_buffers import BufferPool

HAVE_TENSORRT = importlib.util.find_spec("tensorrt") is not None and importlib.util.find_spec("pycuda") is not None


# ---- cache keys ------------------------------------------------------------------------------------

def _key(**change):
    fields = dict(onnx_sha256="a" * 64, tensorrt_version="10.9.0", gpu_name="NVIDIA H100", compute_capability="9.0",
                  precision="fp16", shapes=(("image", (1, 3, 128, 128), (1, 3, 128, 128), (32, 3, 128, 128)),))
    fields.update(change)
    return trt_cache.EngineKey(**fields)


def test_every_key_field_changes_the_key():
    base = _key().digest()
    for change in [dict(onnx_sha256="b" * 64), dict(tensorrt_version="11.0.0"), dict(gpu_name="NVIDIA A100"),
                   dict(compute_capability="8.0"), dict(precision="int8"),
                   dict(shapes=(("image", (1, 3, 128, 128), (1, 3, 128, 128), (64, 3, 128, 128)),))]:
        assert _key(**change).digest() != base, change
    assert _key().digest() == base


def test_cache_lookup_hit_stale_and_corrupt(tmp_path):
    plan, sidecar = trt_cache.cache_paths(tmp_path, tmp_path / "uit.onnx", "fp16")
    assert plan.name == "uit.fp16.plan"
    assert trt_cache.lookup(plan, sidecar, _key()) == "missing"
    trt_cache.store(plan, sidecar, _key(), b"plan bytes", {"exprada.kind": "uit_generator"})
    assert trt_cache.lookup(plan, sidecar, _key()) == "hit"
    assert trt_cache.lookup(plan, sidecar, _key(gpu_name="NVIDIA A100")) == "stale"  # foreign GPU
    assert trt_cache.lookup(plan, sidecar, _key(tensorrt_version="10.10.0")) == "stale"
    assert trt_cache.describe_mismatch(sidecar, _key(gpu_name="X")) == ["gpu_name: cached 'NVIDIA H100', now 'X'"]
    plan.write_bytes(b"plan by")  # truncated
    with pytest.raises(engines.EngineFileError, match=r"uit.fp16.plan is corrupt"):
        trt_cache.lookup(plan, sidecar, _key())
    sidecar.write_text("{not json")
    with pytest.raises(engines.EngineFileError, match=r"uit.fp16.plan.json is unreadable"):
        trt_cache.lookup(plan, sidecar, _key())


def build_or_reuse(folder, built):
    """What build_cached does around TensorRT, with a slow build of bytes that differ every time (as
    TensorRT's plans do): reports whether this process built."""
    plan, sidecar = trt_cache.cache_paths(folder, "uit.onnx", "fp16")
    with trt_cache.building(plan):
        if trt_cache.lookup(plan, sidecar, _key()) == "hit":
            built.put(False)
            return
        time.sleep(0.5)
        trt_cache.store(plan, sidecar, _key(), os.urandom(1024), {})
    built.put(True)


def test_processes_wanting_one_plan_build_it_once_and_leave_a_sound_cache(tmp_path):
    spawn = multiprocessing.get_context("spawn")
    built = spawn.Queue()
    workers = [spawn.Process(target=build_or_reuse, args=(tmp_path, built)) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert sorted(built.get(timeout=5) for _ in workers) == [False, False, True]
    plan, sidecar = trt_cache.cache_paths(tmp_path, "uit.onnx", "fp16")
    assert trt_cache.lookup(plan, sidecar, _key()) == "hit"   # the sidecar vouches for the plan that is there


# ---- buffers -----------------------------------------------------------------------------------------

class RecordingAllocator:
    """Allocator double for BufferPool: counts allocations and frees (BufferPool's logic is what is tested)."""

    def __init__(self):
        self.allocated, self.freed = [], []

    def mem_alloc(self, nbytes):
        allocator = self
        allocation = types.SimpleNamespace(nbytes=nbytes, free=lambda: allocator.freed.append(nbytes))
        self.allocated.append(nbytes)
        return allocation

    def pagelocked_empty(self, count, dtype):
        return np.empty(count, dtype)


def test_buffers_grow_only_and_are_reused():
    allocator = RecordingAllocator()
    pool = BufferPool(allocator)
    first = pool.device("image", 1000)
    assert pool.device("image", 400) is first  # smaller batch reuses
    bigger = pool.device("image", 4000)
    assert bigger is not first and allocator.freed == [1000]
    host = pool.host("image", (2, 3), np.float32)
    assert host.shape == (2, 3)
    small = pool.host("image", (1, 3), np.float32)
    assert np.shares_memory(host, small)
    assert pool.device_bytes == 4000
    pool.free()
    assert allocator.freed == [1000, 4000]


# ---- precision rules ------------------------------------------------------------------------------------

def test_precision_rules_for_tensorrt_10_and_11():
    check = tensorrt_backend.check_precision
    assert check("fp32", "fp32", 10, {}, None, "m.onnx") == "fp32"
    assert check("fp32", "fp16", 10, {}, None, "m.onnx") == "fp16-flag"
    assert check("fp16", "fp16", 11, {}, None, "m.onnx") == "strong"
    assert check("int8", "int8", 11, {"target": "tensorrt"}, None, "m.onnx") == "strong"
    assert check("fp32", "int8", 10, {}, object(), "m.onnx") == "int8-implicit"
    with pytest.raises(ValueError, match="TensorRT 11 takes precision only from the ONNX file"):
        check("fp32", "fp16", 11, {}, None, "m.onnx")
    with pytest.raises(ValueError, match="needs a calibrator"):
        check("fp32", "int8", 10, {}, None, "m.onnx")
    with pytest.raises(ValueError, match="quantised for ONNX Runtime on CPU"):
        check("int8", "int8", 10, {"target": "cpu"}, None, "m.int8.onnx")


def test_profile_shapes_span_the_batch_only():
    shapes = tensorrt_backend.profile_shapes([("image", (None, 3, 64, 64))], max_batch=32, opt_batch=1)
    assert shapes == (("image", (1, 3, 64, 64), (1, 3, 64, 64), (32, 3, 64, 64)),)
    with pytest.raises(ValueError, match="dynamic axes beyond the batch"):
        tensorrt_backend.profile_shapes([("image", (None, 3, None, 64))], max_batch=8)


# ---- call order against the recording stand-in ----------------------------------------------------------

@pytest.fixture
def fake_trt(monkeypatch):
    """Install the call-order stand-in as `tensorrt` / `pycuda.driver` for one test."""
    fake.calls.clear()
    fake.device_memory.clear()

    def install(version="10.9.0", gpu="Fake GPU H100"):
        pycuda = types.ModuleType("pycuda")
        driver = fake.make_pycuda_driver(gpu_name=gpu)
        pycuda.driver = driver
        monkeypatch.setitem(sys.modules, "tensorrt", fake.make_tensorrt(version))
        monkeypatch.setitem(sys.modules, "pycuda", pycuda)
        monkeypatch.setitem(sys.modules, "pycuda.driver", driver)
    install()
    return install


def _names(calls):
    return [c[0] for c in calls]


def test_build_call_order_timing_cache_and_reuse(tmp_path, generator_onnx, fake_trt):
    plan, built = tensorrt_backend.build_cached(generator_onnx, "fp16", cache_dir=tmp_path, max_batch=8)
    assert built and plan.is_file()
    order = _names(fake.calls)
    expected = ["retain_primary_context", "ctx.push", "Builder", "create_network", "parse_from_file",
                "create_builder_config", "set_memory_pool_limit", "set_flag", "profile.set_shape",
                "profile.set_shape", "add_optimization_profile", "create_timing_cache", "set_timing_cache",
                "build_serialized_network", "get_timing_cache", "ctx.pop"]
    assert [c for c in order if c in expected] == expected
    assert ("set_flag", "FP16") in fake.calls  # TensorRT 10: FP16 from an FP32 ONNX via the builder flag
    assert ("profile.set_shape", "image", (1, 3, 64, 64), (1, 3, 64, 64), (8, 3, 64, 64)) in fake.calls
    assert list(tmp_path.glob("timing.Fake_GPU_H100.trt10.9.0.cache"))
    # second time: a cache hit, nothing built
    fake.calls.clear()
    plan2, built2 = tensorrt_backend.build_cached(generator_onnx, "fp16", cache_dir=tmp_path, max_batch=8)
    assert plan2 == plan and not built2 and "Builder" not in _names(fake.calls)
    # the timing cache saved by the first build is handed to the next build
    fake.calls.clear()
    tensorrt_backend.build_cached(generator_onnx, "fp32", cache_dir=tmp_path, max_batch=8)
    assert ("create_timing_cache", b"timing") in fake.calls


def test_other_gpu_or_tensorrt_rebuilds_and_corrupt_plan_is_named(tmp_path, generator_onnx, fake_trt, capsys):
    tensorrt_backend.build_cached(generator_onnx, "fp32", cache_dir=tmp_path)
    fake_trt(gpu="Fake GPU A100")
    _, built = tensorrt_backend.build_cached(generator_onnx, "fp32", cache_dir=tmp_path)
    assert built  # foreign engine replaced, and the user is told why
    said = capsys.readouterr().err
    assert "rebuilding" in said and "gpu_name: cached 'Fake GPU" in said
    fake_trt(version="10.10.1", gpu="Fake GPU A100")
    _, built = tensorrt_backend.build_cached(generator_onnx, "fp32", cache_dir=tmp_path)
    assert built  # stale TensorRT version replaced
    plan = tmp_path / "uit.fp32.plan"
    plan.write_bytes(plan.read_bytes()[:20])
    with pytest.raises(engines.EngineFileError, match="uit.fp32.plan is corrupt"):
        tensorrt_backend.build_cached(generator_onnx, "fp32", cache_dir=tmp_path)


def test_tensorrt_11_is_strongly_typed_and_refuses_the_fp16_flag(tmp_path, generator_onnx, fake_trt):
    fake_trt(version="11.1.0")
    with pytest.raises(ValueError, match="TensorRT 11 takes precision only from the ONNX file"):
        tensorrt_backend.build_cached(generator_onnx, "fp16", cache_dir=tmp_path)
    tensorrt_backend.build_cached(generator_onnx, "fp32", cache_dir=tmp_path)
    assert ("create_network", 0) in fake.calls and not any(c[0] == "set_flag" for c in fake.calls)


def test_run_call_order_and_data_through_buffers(tmp_path, generator_onnx, fake_trt):
    engine = engines.load(generator_onnx, backend="tensorrt", cache_dir=tmp_path, max_batch=4)
    assert [s.name for s in engine.inputs] == ["image", "side_map"]
    assert [s.name for s in engine.outputs] == ["translated", "side_map_out"]
    assert engine.metadata["exprada.kind"] == "uit_generator"
    fake.calls.clear()
    feeds = engine.example_feeds(batch=2, fill=0.5)
    feeds["image"] = np.arange(2 * 3 * 64 * 64, dtype=np.float32).reshape(2, 3, 64, 64)
    out = engine.run(feeds)
    np.testing.assert_array_equal(out["translated"], feeds["image"])  # the stand-in copies input → output
    order = _names(fake.calls)
    assert order[0] == "ctx.push" and order[-1] == "ctx.pop"
    execute = order.index("execute_async_v3")
    assert order.index("set_input_shape") < execute
    assert order.count("set_tensor_address") == 4 and max(
        i for i, c in enumerate(order) if c == "set_tensor_address") < execute
    assert all(i < execute for i, c in enumerate(order) if c == "memcpy_htod_async")
    assert all(i > execute for i, c in enumerate(order) if c == "memcpy_dtoh_async")
    assert order.index("stream.synchronize") > max(i for i, c in enumerate(order) if c == "memcpy_dtoh_async")
    allocations = order.count("mem_alloc")
    engine.run(engine.example_feeds(batch=1))  # smaller batch: buffers reused, nothing allocated
    assert _names(fake.calls).count("mem_alloc") == allocations
    with pytest.raises(ValueError, match="exceeds the engine's optimisation profile"):
        engine.run(engine.example_feeds(batch=5))
    with pytest.raises(ValueError, match=r"channels: expected 3, got 1"):
        engine.run({"image": np.zeros((1, 1, 64, 64), np.float32), "side_map": np.zeros((1, 3, 64, 64), np.float32)})


def test_plan_from_another_gpu_is_refused_when_loaded_directly(tmp_path, generator_onnx, fake_trt):
    plan, _ = tensorrt_backend.build_cached(generator_onnx, "fp32", cache_dir=tmp_path)
    fake_trt(gpu="Fake GPU L4")
    with pytest.raises(engines.EngineFileError, match="built elsewhere.*gpu_name"):
        engines.load(plan, backend="tensorrt")


def test_without_tensorrt_the_error_says_why(tmp_path, generator_onnx, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import fails as if not installed
    with pytest.raises(ImportError, match="TensorRT is not installed here"):
        engines.load(generator_onnx, backend="tensorrt", cache_dir=tmp_path)


# ---- the real thing -----------------------------------------------------------------------------------

@pytest.mark.tensorrt
@pytest.mark.skipif(not HAVE_TENSORRT, reason="TensorRT and pycuda are not installable on this machine "
                    "(PyPI's tensorrt packages are stubs that download from NVIDIA's index)")
def test_real_tensorrt_matches_onnxruntime(tmp_path, generator_onnx):
    reference = engines.load(generator_onnx)
    engine = engines.load(generator_onnx, backend="tensorrt", cache_dir=tmp_path, max_batch=4)
    feeds = reference.example_feeds(batch=2, fill=0.3)
    a, b = reference.run(feeds), engine.run(feeds)
    for name in a:
        np.testing.assert_allclose(a[name], b[name], atol=1e-3)
    again = engines.load(generator_onnx, backend="tensorrt", cache_dir=tmp_path, max_batch=4)
    assert not again.built
