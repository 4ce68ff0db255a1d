"""ONNX Runtime backend: the embedded default (CPU), with the CUDA / TensorRT providers when present.

Loading an .onnx runs no code (a protobuf; custom-op libraries load only when registered, which this
backend never does), and ONNX Runtime refuses external data outside the model's folder. A model with
a MODEL.onnx.sha256 beside it (export writes one) is checked against it first.
"""
from __future__ import annotations

import numpy as np
import onnxruntime as ort

from engines.base import Engine, EngineFileError, TensorSpec, require_file, verify_digest

_ONNX_DTYPES = {
    "tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
    "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8, "tensor(bool)": np.bool_,
}
_PROVIDER_ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}
_OPT_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def provider_list(providers, provider_options: dict | None = None) -> list:
    """ORT's providers argument: names, or (name, options) where options are given, e.g.
    {"tensorrt": {"trt_fp16_enable": True, "trt_engine_cache_enable": True, "trt_engine_cache_path": "cache"}}."""
    names = resolve_providers(providers)
    options = {_PROVIDER_ALIASES.get(k.lower(), k): v for k, v in (provider_options or {}).items()}
    unknown = sorted(set(options) - set(names))
    if unknown:
        raise ValueError(f"provider_options for {unknown}, which are not among the providers {names}")
    return [(name, options[name]) if name in options else name for name in names]


def resolve_providers(providers) -> list[str]:
    """Short names or ORT provider names → ORT names; an error naming what is available otherwise."""
    if providers is None:
        return ["CPUExecutionProvider"]
    if isinstance(providers, str):
        providers = [p for p in providers.split(",") if p]
    available = ort.get_available_providers()
    names = [_PROVIDER_ALIASES.get(p.lower(), p) for p in providers]
    missing = [n for n in names if n not in available]
    if missing:
        raise ValueError(f"ONNX Runtime providers {missing} are not available here; available: {available}")
    if "CPUExecutionProvider" not in names:
        names.append("CPUExecutionProvider")  # the fallback for ops a GPU provider does not take
    return names


class OnnxRuntimeEngine(Engine):
    backend = "onnxruntime"

    def __init__(self, path, providers=None, threads: int | None = None, optimization: str = "all",
                 profile_prefix: str | None = None, optimized_model_path: str | None = None,
                 provider_options: dict | None = None):
        self.path = require_file(path, "ONNX model")
        verify_digest(self.path)
        options = ort.SessionOptions()
        if optimization not in _OPT_LEVELS:
            raise ValueError(f"optimization must be one of {sorted(_OPT_LEVELS)}, got {optimization!r}")
        options.graph_optimization_level = _OPT_LEVELS[optimization]
        if threads:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        if profile_prefix:
            options.enable_profiling = True
            options.profile_file_prefix = profile_prefix
        if optimized_model_path:
            options.optimized_model_filepath = str(optimized_model_path)
        try:
            self.session = ort.InferenceSession(self.path, sess_options=options,
                                                providers=provider_list(providers, provider_options))
        except Exception as error:  # ORT raises its own pybind types for bad protobufs and graphs
            raise EngineFileError(f"ONNX model {self.path} could not be loaded: {error}") from error
        self.providers = self.session.get_providers()
        self.inputs = [_spec(i) for i in self.session.get_inputs()]
        self.outputs = [_spec(o) for o in self.session.get_outputs()]
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        self._output_names = [o.name for o in self.outputs]

    def _run(self, feeds):
        values = self.session.run(self._output_names, feeds)
        return dict(zip(self._output_names, values))

    def end_profiling(self) -> str:
        """Stop profiling; returns the JSON trace file ORT wrote."""
        return self.session.end_profiling()


def _spec(node) -> TensorSpec:
    shape = tuple(d if isinstance(d, int) else None for d in node.shape)
    if node.type not in _ONNX_DTYPES:
        raise EngineFileError(f"tensor {node.name!r} has unsupported type {node.type}")
    return TensorSpec(node.name, shape, np.dtype(_ONNX_DTYPES[node.type]))
