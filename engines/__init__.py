"""Runners for exported models behind one interface: `engines.load(path, backend=...)`.

The runners import nothing else of the project but the model contract (`engines/contract.py`: kinds,
tensor names, metadata; the car never imports training code); `engines/export.py` alone turns
training checkpoints into the artefacts loaded here.
"""
from engines.base import Engine, EngineFileError, NonFiniteOutputError, TensorSpec, check_finite
from engines.contract import MetadataError, ModelInfo, read_metadata

BACKENDS = ("onnxruntime", "torch", "tensorrt")


def load(path, backend: str = "onnxruntime", **options) -> Engine:
    """Load an exported model as an Engine.

    onnxruntime: an .onnx file; options providers=("cpu"|"cuda"|"tensorrt", ...), threads, optimization.
    torch:       a torch.export program (.pt2) written by `python -m train export`; options
                 device, dtype ("float32"|"float16"|"bfloat16"), channels_last, compile ("none"|"graph"|"compile").
    tensorrt:    an .onnx file (engine built and cached) or a serialized plan; options precision,
                 cache_dir, max_batch, workspace_gb.
    """
    suffix = str(path).rsplit(".", 1)[-1].lower()
    expected = {"pt2": "torch", "plan": "tensorrt"}.get(suffix)
    if expected and backend != expected:
        raise ValueError(f"{path} is a {'torch.export program' if suffix == 'pt2' else 'TensorRT plan'}; "
                         f"load it with backend={expected!r}, not {backend!r}")
    if backend == "torch" and suffix == "onnx":
        raise ValueError(f"{path}: the torch backend runs torch.export programs (.pt2), not ONNX; "
                         f"`python -m train export --out MODEL.pt2` writes one")
    if backend == "onnxruntime":
        from engines.onnxruntime_backend import OnnxRuntimeEngine
        return OnnxRuntimeEngine(path, **options)
    if backend == "torch":
        from engines.torch_backend import TorchEngine
        return TorchEngine(path, **options)
    if backend == "tensorrt":
        from engines.tensorrt_backend import TensorRTEngine
        return TensorRTEngine(path, **options)
    raise ValueError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")


__all__ = ["BACKENDS", "Engine", "EngineFileError", "MetadataError", "ModelInfo", "NonFiniteOutputError", "TensorSpec",
           "check_finite", "load", "read_metadata"]
