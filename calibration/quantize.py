"""INT8 by Q/DQ nodes (ONNX Runtime CPU and TensorRT read the same kind of file) and FP16 ONNX.

Why two INT8 targets. Profiling the generator on ONNX Runtime's CPU provider (see the README):
with symmetric int8 activations, ORT converts every int8 Q/DQ pair to uint8 at load time
(QDQS8ToU8Transformer), and wherever one quantized tensor feeds two consumers — the residual
skip (Conv + Add) and the generator's two heads — the converted pairs no longer match the
QLinearConv pattern: 8 of 23 convolutions stayed in float between DequantizeLinear and
QuantizeLinear, the worst being the three full-resolution 7×7 layers, so INT8 was only ~1.3× the
FP32 speed. Writing uint8 (asymmetric) activations directly, with a dedicated Q/DQ pair per
consumer, lets every convolution and residual Add run as QLinearConv / QLinearAdd. The merged
6-channel head is also padded to 16 output channels for the int8 GEMM (engines/onnx_rewrite.py).
TensorRT wants the opposite: symmetric int8 activations (zero point 0) and float biases, which
it fuses itself. Weights are symmetric int8, per output channel, for both.

Calibration ranges are measured here, not inside `quantize_static`: through quantize_static ORT's
entropy calibrator gets 128 histogram bins for 128 quantised bins, so its KL search has a single
candidate — the full range — and "entropy" silently equals min-max. Here entropy uses ENTROPY_BINS
bins and its range, which ORT centres on zero, is clipped to the values
actually seen: a ReLU output never goes below zero, and an asymmetric uint8 range covering
[-t, t] would waste half its codes. The ranges are handed to quantize_static as its calibration
cache.
"""
from __future__ import annotations

import contextlib
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from tqdm import tqdm

from engines.contract import PRECISION_KEY, QUANTIZATION_KEY
from engines.onnx_rewrite import pad_split_convs

METHODS = ("minmax", "entropy", "percentile")
# KL search candidates grow with the bins and ORT's search is a Python loop: 512 bins keep a
# calibration to seconds (2048, TensorRT's choice, took ~30 s on the smallest test model).
ENTROPY_BINS = 512
TARGETS = ("cpu", "tensorrt")


def _ort_method(method: str):
    from onnxruntime.quantization import CalibrationMethod
    table = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
             "percentile": CalibrationMethod.Percentile}
    if method not in table:
        raise ValueError(f"calibration method {method!r}; expected one of {', '.join(METHODS)}")
    return table[method]


class _FeedReader:
    """ORT's CalibrationDataReader protocol over a list of feed dicts, with progress."""

    def __init__(self, feeds: list[dict], desc: str):
        self._feeds = feeds
        self._bar = tqdm(total=len(feeds), desc=desc, unit="batch", leave=False)
        self._iter = iter(feeds)

    def get_next(self):
        item = next(self._iter, None)
        if item is not None:
            self._bar.update(1)
        else:
            self._bar.close()
        return item

    def rewind(self):
        self._iter = iter(self._feeds)


def batched_feeds(arrays: dict[str, np.ndarray], batch: int = 8) -> list[dict[str, np.ndarray]]:
    """{input name: N×...} → list of feed dicts of at most `batch` samples each."""
    count = {len(a) for a in arrays.values()}
    if len(count) != 1:
        raise ValueError(f"calibration inputs differ in sample count: { {k: len(v) for k, v in arrays.items()} }")
    total = count.pop()
    if total == 0:
        raise ValueError("calibration set is empty")
    return [{name: np.ascontiguousarray(a[i:i + batch], dtype=np.float32) for name, a in arrays.items()}
            for i in range(0, total, batch)]


def quantize_int8(onnx_path, out, feeds: list[dict], *, method: str = "minmax", target: str = "cpu",
                  percentile: float = 99.999, per_channel: bool = True, exclude_nodes=()) -> Path:
    """Insert Q/DQ nodes calibrated on `feeds`; writes `out` and returns its path.

    The source model's `exprada.*` metadata is kept and `exprada.precision`, `exprada.quantization`
    are added so an engine knows what it runs.
    """
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if target not in TARGETS:
        raise ValueError(f"quantization target {target!r}; expected one of {', '.join(TARGETS)}")
    onnx_path, out = Path(onnx_path), Path(out)
    source = _load(onnx_path)
    calibrate_method = _ort_method(method)
    cpu = target == "cpu"
    extra = {
        "WeightSymmetric": True,
        "ActivationSymmetric": not cpu,
        "DedicatedQDQPair": True,
        "QuantizeBias": cpu,
        "CalibMovingAverage": False,
        # Instance norm runs in float: its 1-D scale gets one int8 scale per channel (axis 0; ORT's
        # default axis 1 is out of range for it and silently falls back to one scale for all channels).
        "QDQOpTypePerChannelSupportToAxis": {"InstanceNormalization": 0},
    }
    if method == "percentile":
        extra["CalibPercentile"] = float(percentile)
    with tempfile.TemporaryDirectory() as scratch:
        prepared = Path(scratch) / "prepared.onnx"
        source_for_quantizer = onnx_path
        if cpu:
            padded = onnx.load(str(onnx_path))
            if pad_split_convs(padded):
                source_for_quantizer = Path(scratch) / "padded.onnx"
                onnx.save(padded, str(source_for_quantizer))
        # Shape inference + constant folding first, as ORT's quantization guide asks; no fusions that
        # would hide Conv nodes from the quantizer.
        quant_pre_process(str(source_for_quantizer), str(prepared), skip_optimization=False, skip_onnx_shape=False,
                          skip_symbolic_shape=False)
        out.parent.mkdir(parents=True, exist_ok=True)
        # ORT's histogram calibrators print progress to stdout; keep stdout for the CLI's JSON line.
        with contextlib.redirect_stdout(sys.stderr):
            ranges = calibrate_ranges(prepared, feeds, method, percentile, symmetric=not cpu,
                                      scratch=Path(scratch))
            quantize_static(str(prepared), str(out), None, calibration_cache_path=str(ranges),
                            quant_format=QuantFormat.QDQ, per_channel=per_channel,
                            activation_type=QuantType.QUInt8 if cpu else QuantType.QInt8,
                            weight_type=QuantType.QInt8, calibrate_method=calibrate_method,
                            nodes_to_exclude=list(exclude_nodes), extra_options=extra)
    quantized = onnx.load(str(out))
    _copy_metadata(source, quantized, {
        PRECISION_KEY: "int8",
        QUANTIZATION_KEY: json.dumps({"method": method, "target": target, "per_channel": per_channel,
                                      "activations": "uint8 asymmetric" if cpu else "int8 symmetric",
                                      "weights": "int8 symmetric", "batches": len(feeds),
                                      **({"percentile": percentile} if method == "percentile" else {})}),
    })
    onnx.save(quantized, str(out))
    return out


def calibrate_ranges(model_path: Path, feeds: list[dict], method: str, percentile: float, symmetric: bool,
                     scratch: Path) -> Path:
    """Run the calibration feeds through an instrumented copy of the model; write the per-tensor
    ranges as ORT's calibration cache (JSON) and return its path."""
    from onnxruntime.quantization.calibrate import TensorData, TensorsData, create_calibrator, save_tensors_data

    options = {"symmetric": symmetric}
    if method != "minmax":
        # ORT's histogram collectors stack each tensor's outputs over the calibration runs, so every
        # run must have the same batch size (a short last batch broke them); and they hold all runs'
        # activations until merged, so merge every 32 runs to bound memory.
        feeds = [{name: array[i:i + 1] for name, array in feed.items()}
                 for feed in feeds for i in range(len(next(iter(feed.values()))))]
        options["max_intermediate_outputs"] = 32
    if method == "entropy":
        options.update(num_bins=ENTROPY_BINS, num_quantized_bins=128)
    elif method == "percentile":
        options.update(num_bins=2048, percentile=float(percentile))
    calibrator = create_calibrator(model_path, augmented_model_path=str(scratch / "augmented.onnx"),
                                   calibrate_method=_ort_method(method), extra_options=options)
    calibrator.collect_data(_FeedReader(feeds, f"calibrating ({method})"))
    ranges = calibrator.compute_data()
    seen = getattr(getattr(calibrator, "collector", None), "histogram_dict", None) or {}
    inputs = {i.name for i in onnx.load(str(model_path), load_external_data=False).graph.input}
    fixed = {}
    for name, data in ranges.data.items():
        low, high = (float(np.asarray(v).reshape(-1)[0]) for v in data.range_value)
        if name in inputs:
            # Inputs have a range by contract, not by sample: images and side maps x/127.5-1 in
            # [-1, 1], the CGIT expression one-hot in [0, 1]. Histogram methods would otherwise clip
            # the side map's sparse landmark lines as "outliers" (entropy kept ±0.07 of ±1).
            low, high = (0.0, 1.0) if name == "expression" else (-1.0, 1.0)
        elif method == "entropy" and not symmetric and name in seen:
            low, high = max(low, float(np.asarray(seen[name][2]).reshape(-1)[0])), \
                min(high, float(np.asarray(seen[name][3]).reshape(-1)[0]))
        fixed[name] = TensorData(lowest=np.array(low, np.float32), highest=np.array(high, np.float32),
                                 **({"hist": data.hist, "bins": data.bins} if hasattr(data, "hist") else {}))
    ranges = TensorsData(ranges.calibration_method, fixed)
    path = scratch / "ranges.json"
    save_tensors_data(ranges, path)
    return path


def convert_fp16(onnx_path, out) -> Path:
    """FP16 weights and arithmetic, float32 inputs and outputs kept (callers feed what they fed FP32).

    The casts at the edges stay inside the graph, so the engine's interface is unchanged. Instance
    norm's statistics are the op most sensitive to fp16; `report` checks the result against FP32.
    """
    from onnxruntime.transformers.float16 import convert_float_to_float16

    onnx_path, out = Path(onnx_path), Path(out)
    source = _load(onnx_path)
    half = convert_float_to_float16(onnx.load(str(onnx_path)), keep_io_types=True)
    _copy_metadata(source, half, {PRECISION_KEY: "fp16"})
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(half, str(out))
    return out


def _load(path: Path) -> onnx.ModelProto:
    if not path.is_file():
        raise FileNotFoundError(f"ONNX model {path} not found")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as error:  # protobuf decode errors and checker errors both mean "not usable"
        raise ValueError(f"ONNX model {path} is corrupt or invalid: {error}") from error
    return model


def _copy_metadata(source: onnx.ModelProto, target: onnx.ModelProto, extra: dict) -> None:
    values = {p.key: p.value for p in source.metadata_props}
    values.update(extra)
    del target.metadata_props[:]
    for key, value in values.items():
        target.metadata_props.add(key=key, value=value)
