"""CPU, ONNX Runtime, batch 1: the UIT generator in FP32 vs INT8, timed in one run; one JSON line.

    python -m benchmarks.engines_int8_cpu                        # w=8 and w=16, 128², 1 thread
    python -m benchmarks.engines_int8_cpu --widths 8 --threads 2
    python -m benchmarks.engines_int8_cpu --checkpoint run/checkpoints/last.pt   # a trained generator
    python -m benchmarks.engines_int8_cpu --checkpoint G.pt --classifier C.onnx --labelled test/ [--prerendered]

Four graphs of the same generator, timed round-robin on the same input (the machine is shared, so
ratios are measured under the same load; p50 and min are both given — min is the figure least
disturbed by neighbours):
  fp32_plain  export as traced (two 7×7 heads);
  fp32        export as shipped (heads merged into one conv + Split);
  int8_plain  a plain ORT Q/DQ pass (symmetric int8 activations, per-channel weights) on fp32_plain;
  int8        `python -m calibration` (cpu target: uint8 activations, dedicated Q/DQ pairs, head padded).
Calibration uses camera-like frames of real faces (public-domain photos from installed packages,
jittered in pose and brightness, grey like NIR) run through face.FaceStage; fidelity (MAE and PSNR of
the translated image against FP32) is measured on held-out frames. Without --checkpoint the weights
are random (latency is what they are for). With trained models and a labelled set (--classifier,
--labelled) the classifier's accuracy on FP32 / INT8 translations and their agreement are added.
`ops` shows where INT8 time goes (ORT profiler) and how many convolutions really run in int8.
"""
import argparse
import json
import platform
import sys
import tempfile
from collections import Counter
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import torch

import engines
from benchmarks.cli import exit_status
from calibration.frames import collect
from calibration.quantize import batched_feeds, quantize_int8
from engines.bench import compare
from engines.contract import UIT_GENERATOR
from face.ranges import at_least
from train.export import export_onnx, load_checkpoint_model


def camera_like_frames(folder: Path, count: int, seed: int = 0) -> Path:
    """NIR-like grey frames of two real faces with pose, position and exposure jitter."""
    from matplotlib import cbook
    from skimage import data

    faces = [cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR),
             cv2.resize(cv2.imread(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))), (512, 600))]
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        face = faces[i % len(faces)]
        h, w = face.shape[:2]
        matrix = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-10, 10), rng.uniform(0.9, 1.1))
        matrix[:, 2] += rng.uniform(-25, 25, 2)
        frame = cv2.warpAffine(face, matrix, (w, h), borderMode=cv2.BORDER_REFLECT)
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.float32) * rng.uniform(0.5, 1.1)
        grey += rng.normal(0, 3, grey.shape)
        cv2.imwrite(str(folder / f"frame_{i:03d}.png"), grey.clip(0, 255).astype(np.uint8))
    return folder


def plain_qdq(source: Path, out: Path, feeds) -> Path:
    """What a plain ORT Q/DQ pass gives: symmetric int8 activations and weights, per channel."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader:
        def __init__(self):
            self.items = iter(feeds)

        def get_next(self):
            return next(self.items, None)

    prepared = out.with_suffix(".pre.onnx")
    quant_pre_process(str(source), str(prepared))
    quantize_static(str(prepared), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax, extra_options={"ActivationSymmetric": True})
    return out


def op_profile(path: Path, feeds: dict, threads: int, runs: int = 20) -> dict:
    """Per-op-type share of kernel time (ORT profiler) and which convolutions run in int8."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3  # the "optimized model is hardware specific" notice is expected here
    options.enable_profiling = True
    options.profile_file_prefix = str(path.with_suffix(""))
    options.optimized_model_filepath = str(path.with_suffix(".optimized.onnx"))
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    for _ in range(runs):
        session.run(None, feeds)
    trace = json.loads(Path(session.end_profiling()).read_text())
    per_op = Counter()
    for event in trace:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            per_op[event["args"]["op_name"]] += event["dur"]
    total = sum(per_op.values())
    nodes = Counter(n.op_type for n in onnx.load(options.optimized_model_filepath).graph.node)
    return {"float_conv": nodes.get("Conv", 0) + nodes.get("FusedConv", 0), "int8_conv": nodes.get("QLinearConv", 0),
            "time_share": {op: round(t / total, 3) for op, t in per_op.most_common(6)}}


def fidelity(reference: dict, other: dict) -> dict:
    error = other["translated"] - reference["translated"]
    mse = float((error ** 2).mean())
    return {"mae": round(float(np.abs(error).mean()), 5),
            "psnr_db": round(10 * np.log10(4.0 / mse), 2) if mse > 0 else None}  # range [-1, 1]: peak² = 4


def trained_generator(checkpoint):
    """(module, config, image size, width) of a UIT checkpoint."""
    module, _, config, size, width = load_checkpoint_model(checkpoint, expect=UIT_GENERATOR, needed_by="--checkpoint")
    return module, config, size, width


def one_width(width, args, scratch: Path, calib, held_out, trained=None) -> dict:
    if trained:
        module, config, size, width = trained
    else:
        from train.networks import Generator
        torch.manual_seed(0)
        module, config, size = Generator(width).eval(), {"width": width, "weights": "random"}, args.size
    paths = {"fp32_plain": export_onnx(module, UIT_GENERATOR, scratch / f"w{width}.plain.onnx", config=config,
                                       image_size=size, merge_heads=False),
             "fp32": export_onnx(module, UIT_GENERATOR, scratch / f"w{width}.onnx", config=config, image_size=size)}
    feeds = batched_feeds({"image": calib.images, "side_map": calib.side_maps}, batch=8)
    paths["int8_plain"] = plain_qdq(paths["fp32_plain"], scratch / f"w{width}.plain.int8.onnx", feeds)
    paths["int8"] = quantize_int8(paths["fp32"], scratch / f"w{width}.int8.onnx", feeds, method=args.method)
    loaded = {name: engines.load(path, threads=args.threads) for name, path in paths.items()}
    timings = compare(loaded, batch=1, runs=args.runs, warmup=5)
    test = {"image": held_out.images, "side_map": held_out.side_maps}
    outputs = {name: engines.check_finite(e.run(test), where=name) for name, e in loaded.items()}
    one = {k: v[:1] for k, v in test.items()}
    accuracy = None
    if args.labelled:
        from calibration.report import evaluate, prepare
        classifier = engines.load(_classifier_onnx(args.classifier, scratch), threads=args.threads)
        images, side_maps, labels, skipped = prepare(args.labelled, size, args.prerendered)
        accuracy = evaluate({name: (loaded[name], classifier) for name in ("fp32", "int8", "int8_plain")},
                            images, side_maps, labels)
        accuracy["int8_accuracy_loss_points"] = round(100 * (accuracy["fp32"]["accuracy"] - accuracy["int8"]["accuracy"]), 2)
        accuracy["skipped"] = skipped
    return {
        "width": width, "image_size": size, "weights": "checkpoint" if args.checkpoint else "random",
        "latency_ms": {name: {k: t[k] for k in ("p50_ms", "p99_ms", "min_ms")} for name, t in timings.items()},
        "int8_speedup_vs_fp32": {"p50": round(timings["fp32"]["p50_ms"] / timings["int8"]["p50_ms"], 2),
                                 "min": round(timings["fp32"]["min_ms"] / timings["int8"]["min_ms"], 2)},
        "int8_speedup_vs_fp32_plain": round(timings["fp32_plain"]["p50_ms"] / timings["int8"]["p50_ms"], 2),
        "int8_plain_speedup_vs_fp32_plain": round(timings["fp32_plain"]["p50_ms"] / timings["int8_plain"]["p50_ms"], 2),
        "fidelity_vs_fp32": {name: fidelity(outputs["fp32"], outputs[name]) for name in ("int8", "int8_plain")},
        "ops": {name: op_profile(paths[name], one, args.threads) for name in ("fp32", "int8_plain", "int8")},
        **({"accuracy": accuracy} if accuracy else {}),
    }


def _classifier_onnx(path, scratch: Path) -> Path:
    """An ONNX classifier as given, or exported from a classifier checkpoint."""
    if str(path).endswith(".onnx"):
        return Path(path)
    from train.export import export_checkpoint
    return export_checkpoint(path, scratch / "classifier.onnx")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="8,16")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--threads", type=at_least(0), default=1)
    parser.add_argument("--runs", type=at_least(1), default=100)
    parser.add_argument("--frames", help="calibration frames (video or folder); default: generated camera-like frames")
    parser.add_argument("--calibration-faces", type=at_least(1), default=64)
    parser.add_argument("--method", default="percentile", choices=("minmax", "entropy", "percentile"))
    parser.add_argument("--checkpoint", help="a trained UIT checkpoint instead of random weights")
    parser.add_argument("--classifier", help="trained classifier (.onnx or checkpoint) for --labelled")
    parser.add_argument("--labelled", help="labelled set ROOT/<expression>/*: adds classifier accuracy")
    parser.add_argument("--prerendered", action="store_true", help="--labelled holds frontal renders + NAME.side.png")
    args = parser.parse_args(argv)
    if bool(args.labelled) != bool(args.classifier):
        parser.error("--labelled and --classifier go together")
    trained = trained_generator(args.checkpoint) if args.checkpoint else None   # a wrong file refused before any work
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        frames = Path(args.frames) if args.frames else camera_like_frames(scratch / "frames", args.calibration_faces + 32)
        size = trained[2] if trained else args.size
        faces = collect(frames, size=size, limit=args.calibration_faces + 32, progress=False)
        calib = type(faces)(faces.images[:args.calibration_faces], faces.side_maps[:args.calibration_faces])
        held_out = type(faces)(faces.images[args.calibration_faces:], faces.side_maps[args.calibration_faces:])
        widths = [None] if args.checkpoint else [int(w) for w in args.widths.split(",")]
        results = [one_width(w, args, scratch, calib, held_out, trained) for w in widths]
    print(json.dumps({"benchmark": "engines_int8_cpu", "backend": "onnxruntime " + ort.__version__,
                      "cpu": platform.processor() or platform.machine(), "threads": args.threads, "batch": 1,
                      "calibration": {"faces": len(calib), "held_out": len(held_out), "method": args.method,
                                      "skipped": faces.skipped}, "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(exit_status(main))
