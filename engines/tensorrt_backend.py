"""TensorRT backend (10.x and 11.x): build an engine from ONNX (cached), run it with pycuda buffers.

Written to NVIDIA's documented Python API; TensorRT cannot be installed on the machines this was
developed on (the registry's tensorrt packages are stubs that download from NVIDIA's own index), so its tests skip there and the call order is checked against a
recording stand-in (tests/engines/fake_tensorrt_call_order.py).

- Name-based I/O (TensorRT ≥ 10): num_io_tensors / get_tensor_name / get_tensor_mode,
  set_input_shape per call, set_tensor_address for every I/O tensor, execute_async_v3(stream).
- One optimisation profile: batch min 1, opt `opt_batch`, max `max_batch`; other axes fixed.
- A timing cache per GPU and TensorRT version, loaded before and saved after each build, so
  rebuilding (another precision, a new ONNX) skips the kernel timing already done.
- Precision. TensorRT 11 is strongly typed only: precision comes from the ONNX file (an FP16 ONNX,
  or INT8 as Q/DQ nodes from `python -m calibration --target tensorrt`). TensorRT 10 also takes an
  FP32 ONNX with the FP16 builder flag, or with the INT8 flag and a calibrator
  (calibration/trt_calibrator.py) for implicit INT8.
- CUDA: the device's retained primary context (the one PyTorch uses), pushed around every call;
  never pycuda.autoinit, which would create a second context in a process that also runs torch.
"""
from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import numpy as np

from engines import trt_cache
from engines.base import Engine, EngineFileError, TensorSpec, require_file
from engines.contract import ModelInfo, read_metadata
from engines.cuda_buffers import BufferPool

NOT_INSTALLED = ("TensorRT is not installed here (the tensorrt packages on PyPI are stubs that download from "
                 "NVIDIA's index). Install TensorRT 10/11 and pycuda on the GPU machine, or use "
                 "backend='onnxruntime' / 'torch'")


def import_tensorrt():
    try:
        return importlib.import_module("tensorrt")
    except ImportError as error:
        raise ImportError(NOT_INSTALLED) from error


def import_cuda_driver():
    try:
        return importlib.import_module("pycuda.driver")
    except ImportError as error:
        raise ImportError("pycuda is not installed: `pip install pycuda` on the CUDA machine "
                          "(it builds against the CUDA toolkit: nvcc on PATH)") from error


def major_version(trt) -> int:
    return int(str(trt.__version__).split(".")[0])


class PrimaryContext:
    """The GPU's retained primary context, made current for the duration of a `with` block."""

    def __init__(self, driver, ordinal: int = 0):
        driver.init()
        self.driver = driver
        self.device = driver.Device(ordinal)
        self.context = self.device.retain_primary_context()

    def __enter__(self):
        self.context.push()
        return self

    def __exit__(self, *exc):
        self.context.pop()

    @property
    def gpu_name(self) -> str:
        return self.device.name()

    @property
    def compute_capability(self) -> str:
        major, minor = self.device.compute_capability()
        return f"{major}.{minor}"


# ---- reading the ONNX file (no TensorRT needed) --------------------------------------------------

def onnx_inputs(onnx_path) -> list[tuple[str, tuple]]:
    """[(input name, shape with None for dynamic axes)] of an ONNX file."""
    import onnx

    try:
        model = onnx.load(str(onnx_path), load_external_data=False)
    except Exception as error:
        raise EngineFileError(f"ONNX model {onnx_path} could not be read: {error}") from error
    initializers = {i.name for i in model.graph.initializer}
    inputs = []
    for value in model.graph.input:
        if value.name in initializers:
            continue
        dims = tuple(d.dim_value if d.HasField("dim_value") else None for d in value.type.tensor_type.shape.dim)
        inputs.append((value.name, dims))
    return inputs


def profile_shapes(inputs, max_batch: int, opt_batch: int = 1) -> tuple:
    """((name, min, opt, max), ...): the batch axis ranges 1..max_batch; every other axis must be fixed."""
    if not 1 <= opt_batch <= max_batch:
        raise ValueError(f"need 1 ≤ opt_batch ≤ max_batch, got opt {opt_batch}, max {max_batch}")
    shapes = []
    for name, dims in inputs:
        if any(d is None for d in dims[1:]):
            raise ValueError(f"input {name!r} has dynamic axes beyond the batch ({dims}); export with a fixed size")
        rest = tuple(dims[1:])
        shapes.append((name, (1, *rest), (opt_batch, *rest), (max_batch, *rest)))
    return tuple(shapes)


def check_precision(onnx_precision: str, precision: str, trt_major: int, quantization: dict,
                    calibrator, onnx_path) -> str:
    """How the network must be built: 'strong' (types from the ONNX), 'fp16-flag' or 'int8-implicit'
    (TensorRT 10 only), or 'fp32'. A clear error for combinations a TensorRT version cannot build."""
    if precision not in ("fp32", "fp16", "int8"):
        raise ValueError(f"precision must be fp32, fp16 or int8, got {precision!r}")
    if onnx_precision == "int8" and quantization.get("target") == "cpu":
        raise ValueError(f"{onnx_path} was quantised for ONNX Runtime on CPU (uint8 activations); TensorRT "
                         "needs symmetric int8: `python -m calibration ... --target tensorrt`")
    if precision == onnx_precision:
        return "strong" if precision != "fp32" else "fp32"
    if onnx_precision != "fp32":
        raise ValueError(f"{onnx_path} is a {onnx_precision} model; asked for {precision}")
    if trt_major >= 11:
        fix = "--precision fp16" if precision == "fp16" else "--target tensorrt (INT8 Q/DQ)"
        raise ValueError(f"TensorRT {trt_major} takes precision only from the ONNX file: make a {precision} "
                         f"ONNX with `python -m calibration --onnx {onnx_path} {fix} ...`")
    if precision == "fp16":
        return "fp16-flag"
    if calibrator is None:
        raise ValueError(f"int8 from the FP32 model {onnx_path} needs a calibrator (TensorRT 10 implicit INT8) "
                         "or a Q/DQ model from `python -m calibration --target tensorrt`")
    return "int8-implicit"


# ---- building ------------------------------------------------------------------------------------

def _timing_cache_path(cache_dir, gpu_name: str, trt_version: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9.]+", "_", gpu_name)
    return Path(cache_dir) / f"timing.{safe}.trt{trt_version}.cache"


def build_plan(trt, onnx_path, shapes, mode: str, workspace_gb: float, timing_cache: Path,
               calibrator=None, logger=None) -> bytes:
    """Parse the ONNX, configure, build; returns the serialized plan. Saves the timing cache."""
    logger = logger or trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    strongly_typed = mode == "strong" or (mode == "fp32" and major_version(trt) >= 11)
    flags = 0
    if strongly_typed and major_version(trt) < 11:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineFileError(f"TensorRT could not parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * (1 << 30)))
    if mode == "fp16-flag":
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    for name, low, opt, high in shapes:
        profile.set_shape(name, low, opt, high)
    config.add_optimization_profile(profile)
    if mode == "int8-implicit":
        config.set_flag(trt.BuilderFlag.INT8)
        config.set_flag(trt.BuilderFlag.FP16)  # layers INT8 cannot take run in FP16, not FP32
        config.int8_calibrator = calibrator
        config.set_calibration_profile(profile)
    cache = config.create_timing_cache(timing_cache.read_bytes() if timing_cache.is_file() else b"")
    config.set_timing_cache(cache, False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT failed to build an engine from {onnx_path} (see the TensorRT log above)")
    timing_cache.parent.mkdir(parents=True, exist_ok=True)
    timing_cache.write_bytes(bytes(memoryview(config.get_timing_cache().serialize())))
    return bytes(memoryview(serialized))


def build_cached(onnx_path, precision: str = "fp32", cache_dir="engine_cache", max_batch: int = 32,
                 opt_batch: int = 1, workspace_gb: float = 4.0, device: int = 0, calibrator=None,
                 context: PrimaryContext | None = None) -> tuple[Path, bool]:
    """The plan for this ONNX/precision/shapes on this GPU and TensorRT: (path, whether it was built now)."""
    onnx_path = Path(require_file(onnx_path, "ONNX model"))
    trt = import_tensorrt()
    context = context or PrimaryContext(import_cuda_driver(), device)
    metadata = read_metadata(onnx_path)
    info = ModelInfo.from_metadata(metadata, onnx_path)
    shapes = profile_shapes(onnx_inputs(onnx_path), max_batch, opt_batch)
    mode = check_precision(info.precision, precision, major_version(trt), info.quantization, calibrator, onnx_path)
    key = trt_cache.EngineKey(trt_cache.file_sha256(onnx_path), str(trt.__version__), context.gpu_name,
                              context.compute_capability, precision, shapes)
    plan, sidecar = trt_cache.cache_paths(cache_dir, onnx_path, precision)
    with trt_cache.building(plan):   # another process building this plan: wait for it, then reuse
        state = trt_cache.lookup(plan, sidecar, key)
        if state == "hit":
            return plan, False
        if state == "stale":   # say why a build of minutes starts instead of a cache hit
            print(f"exprada engines: rebuilding {plan} ({'; '.join(trt_cache.describe_mismatch(sidecar, key))})",
                  file=sys.stderr, flush=True)
        with context:
            plan_bytes = build_plan(trt, onnx_path, shapes, mode, workspace_gb,
                                    _timing_cache_path(cache_dir, context.gpu_name, str(trt.__version__)),
                                    calibrator)
        trt_cache.store(plan, sidecar, key, plan_bytes, metadata)
    return plan, True


# ---- running -------------------------------------------------------------------------------------

class TensorRTEngine(Engine):
    backend = "tensorrt"

    def __init__(self, path, precision: str = "fp32", cache_dir="engine_cache", max_batch: int = 32,
                 opt_batch: int = 1, workspace_gb: float = 4.0, device: int = 0, calibrator=None):
        self.path = require_file(path, "TensorRT model")
        trt = import_tensorrt()
        driver = import_cuda_driver()
        self._trt, self._driver = trt, driver
        self._context = PrimaryContext(driver, device)
        if self.path.endswith(".onnx"):
            plan, self.built = build_cached(self.path, precision, cache_dir, max_batch, opt_batch, workspace_gb,
                                            device, calibrator, self._context)
        else:
            plan, self.built = Path(self.path), False
        self.plan_path = str(plan)
        self.metadata = self._plan_metadata(plan, trt)
        with self._context:
            self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
            self._engine = self._runtime.deserialize_cuda_engine(plan.read_bytes())
            if self._engine is None:
                raise EngineFileError(f"TensorRT engine {plan} could not be deserialized (corrupt, or built "
                                      f"by another TensorRT version or for another GPU)")
            self._exec = self._engine.create_execution_context()
            self._stream = driver.Stream()
            self.inputs, self.outputs = self._io_specs(trt)
            self._buffers = BufferPool(driver)

    def _plan_metadata(self, plan: Path, trt) -> dict:
        sidecar = plan.with_suffix(".plan.json")
        if not sidecar.is_file():
            return {}
        record = trt_cache.read_sidecar(sidecar)
        key = record.get("key", {})
        here = {"tensorrt_version": str(trt.__version__), "gpu_name": self._context.gpu_name,
                "compute_capability": self._context.compute_capability}
        foreign = [f"{k}: built for {key.get(k)!r}, here {v!r}" for k, v in here.items() if key.get(k) != v]
        if foreign:
            raise EngineFileError(f"TensorRT engine {plan} was built elsewhere ({'; '.join(foreign)}); "
                                  "rebuild it from the ONNX file")
        return dict(record.get("metadata", {}))

    def _io_specs(self, trt):
        inputs, outputs = [], []
        for index in range(self._engine.num_io_tensors):
            name = self._engine.get_tensor_name(index)
            shape = tuple(None if d < 0 else int(d) for d in self._engine.get_tensor_shape(name))
            spec = TensorSpec(name, shape, np.dtype(trt.nptype(self._engine.get_tensor_dtype(name))))
            (inputs if self._engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else outputs).append(spec)
        return inputs, outputs

    def max_batch(self) -> int:
        name = self.inputs[0].name
        return int(self._engine.get_tensor_profile_shape(name, 0)[2][0])

    def _run(self, feeds):
        driver = self._driver
        batch = next(iter(feeds.values())).shape[0]
        if batch > self.max_batch():
            raise ValueError(f"{self._where()}: batch {batch} exceeds the engine's optimisation profile "
                             f"(max {self.max_batch()}); rebuild with a larger max_batch")
        with self._context:
            for spec in self.inputs:
                array = feeds[spec.name]
                if not self._exec.set_input_shape(spec.name, array.shape):
                    raise ValueError(f"{self._where()}: TensorRT refused shape {array.shape} for {spec.name!r}")
                device = self._buffers.device(spec.name, array.nbytes)
                host = self._buffers.host(spec.name, array.shape, spec.dtype)
                host[...] = array
                driver.memcpy_htod_async(device, host, self._stream)
                self._exec.set_tensor_address(spec.name, int(device))
            results = {}
            for spec in self.outputs:
                shape = tuple(self._exec.get_tensor_shape(spec.name))
                host = self._buffers.host(spec.name, shape, spec.dtype)
                device = self._buffers.device(spec.name, host.nbytes)
                self._exec.set_tensor_address(spec.name, int(device))
                results[spec.name] = (device, host)
            if not self._exec.execute_async_v3(self._stream.handle):
                raise RuntimeError(f"{self._where()}: execute_async_v3 failed (see the TensorRT log)")
            for device, host in results.values():
                driver.memcpy_dtoh_async(host, device, self._stream)
            self._stream.synchronize()
        return {name: host.copy() for name, (_, host) in results.items()}

    def close(self) -> None:
        with self._context:
            self._buffers.free()
            self._exec = self._engine = None
