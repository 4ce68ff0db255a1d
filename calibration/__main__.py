"""python -m calibration --onnx MODEL.onnx --frames VIDEO|DIR --out MODEL.int8.onnx [--method ...]

INT8 (Q/DQ) from representative frames run through the face stage, or FP16 (--precision fp16,
no frames needed). Prints one JSON line describing what was written.
"""
import argparse
import json
import sys
from pathlib import Path

import engines
from calibration.feeds import model_inputs
from calibration.frames import collect
from calibration.quantize import METHODS, TARGETS, batched_feeds, convert_fp16, quantize_int8
from face.outputs import writable_folder
from face.ranges import at_least, number_type


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m calibration", description=__doc__.splitlines()[0])
    parser.add_argument("--onnx", required=True, help="FP32 model written by `python -m train export`")
    parser.add_argument("--out", required=True)
    parser.add_argument("--precision", choices=("int8", "fp16"), default="int8")
    parser.add_argument("--frames", help="video file or folder of images (int8)")
    parser.add_argument("--method", choices=METHODS, default="percentile")
    parser.add_argument("--percentile", type=number_type(float, 0, 100, strict=True), default=99.999)
    parser.add_argument("--target", choices=(*TARGETS, "tensorrt-implicit"), default="cpu",
                        help="cpu: Q/DQ with uint8 activations for ONNX Runtime on x86; tensorrt: Q/DQ with "
                             "symmetric int8 (TensorRT 10/11); tensorrt-implicit: TensorRT 10's entropy "
                             "calibrator builds an INT8 engine from the FP32 ONNX (--out is the engine cache dir)")
    parser.add_argument("--calibration-cache", help="tensorrt-implicit: TensorRT calibration cache file")
    parser.add_argument("--limit", type=at_least(1), default=200, help="faces to collect")
    parser.add_argument("--stride", type=at_least(1), default=1, help="use every k-th frame")
    parser.add_argument("--generator", help="FP32 UIT generator ONNX: a classifier is calibrated on its translations")
    args = parser.parse_args(argv)
    try:
        return _run(args, parser)
    except (ImportError, FileNotFoundError, ValueError) as error:
        # A missing backend or file, a corrupt model, frames without a face: one line, not a traceback.
        print(f"python -m calibration: {error}", file=sys.stderr)
        return 2


def _run(args, parser) -> int:
    # Tried before the frames are read and calibrated: a result that cannot be written is work lost.
    implicit = args.target == "tensorrt-implicit" and args.precision == "int8"
    writable_folder(args.out if implicit else Path(args.out).parent, f"--out {args.out}")
    model = engines.load(args.onnx)
    if args.precision == "fp16":
        out = convert_fp16(args.onnx, args.out)
        print(json.dumps({"out": str(out), "precision": "fp16", "source": args.onnx}))
        return 0
    if not args.frames:
        parser.error("--frames is required for int8")
    calib = collect(args.frames, size=model.info.image_size, limit=args.limit, stride=args.stride)
    generator = engines.load(args.generator) if args.generator else None
    inputs = model_inputs(model, calib, generator)
    if args.target == "tensorrt-implicit":
        return _implicit_tensorrt(args, inputs, calib)
    feeds = batched_feeds(inputs)
    out = quantize_int8(args.onnx, args.out, feeds, method=args.method, target=args.target,
                        percentile=args.percentile)
    result = {"out": str(out), "precision": "int8", "method": args.method, "target": args.target,
              "calibration": calib.summary()}
    print(json.dumps(result))
    return 0


def _implicit_tensorrt(args, inputs, calib) -> int:
    from calibration.trt_calibrator import make_entropy_calibrator
    from engines.tensorrt_backend import PrimaryContext, build_cached, import_cuda_driver

    context = PrimaryContext(import_cuda_driver())
    cache = args.calibration_cache or str(Path(args.out) / (Path(args.onnx).stem + ".calibration.cache"))
    with context:
        calibrator = make_entropy_calibrator(inputs, cache)
    plan, built = build_cached(args.onnx, precision="int8", cache_dir=args.out, calibrator=calibrator,
                               context=context)
    print(json.dumps({"engine": str(plan), "built": built, "calibration_cache": cache,
                      "calibration": calib.summary()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
