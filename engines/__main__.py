"""python -m engines build|bench — engine build, latency JSON (a checkpoint becomes an .onnx / .pt2 with
`python -m train export`)."""
import argparse
import json
import sys
from pathlib import Path

import engines


def _build(args) -> dict:
    if args.backend == "tensorrt":
        from engines.tensorrt_backend import build_cached
        plan, built = build_cached(args.onnx, precision=args.precision, cache_dir=args.cache_dir,
                                   max_batch=args.max_batch, workspace_gb=args.workspace_gb)
        return {"engine": str(plan), "built": built, "precision": args.precision}
    if args.backend == "onnxruntime":
        engine = engines.load(args.onnx)
        have = engine.info.precision
        if have != args.precision:
            raise SystemExit(f"{args.onnx} is {have}; make a {args.precision} model first with "
                             f"`python -m calibration --onnx {args.onnx} --precision {args.precision} ...`")
        out = Path(args.out or Path(args.onnx).with_suffix(".optimized.onnx"))
        try:   # ONNX Runtime's own failure to write blames the model it read ("could not be loaded"), not --out
            out.parent.mkdir(parents=True, exist_ok=True)
            open(out, "ab").close()
        except OSError as error:
            raise ValueError(f"--out {out}: cannot write: {error.strerror or error}") from None
        engines.load(args.onnx, optimization="extended", optimized_model_path=str(out))
        return {"engine": str(out), "precision": have,
                "note": "ONNX Runtime graph optimised offline (extended level: portable across CPUs)"}
    raise SystemExit("the torch backend needs no build: export a .pt2 with "
                     "`python -m train export --checkpoint CKPT --out MODEL.pt2` and load it")


def _bench(args) -> dict:
    from engines.bench import measure

    options = {}
    if args.backend == "onnxruntime" and args.threads:
        options["threads"] = args.threads
    if args.backend == "torch":
        import torch
        cuda = torch.cuda.is_available() if args.device is None else args.device.startswith("cuda")
        options.update(device=args.device or ("cuda" if cuda else "cpu"),
                       dtype=args.dtype or ("float16" if cuda else "float32"),
                       compile=args.compile or ("graph" if cuda else "none"))
    if args.backend == "tensorrt":
        options.update(precision=args.precision)
    engine = engines.load(args.onnx, backend=args.backend, **options)
    sync = None
    if args.backend == "torch" and options["device"].startswith("cuda"):
        import torch
        sync = torch.cuda.synchronize
    results = [measure(engine, b, runs=args.runs, sync=sync) for b in args.batch]
    return {"model": str(args.onnx), "backend": args.backend, "options": options, "results": results}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engines")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("build", help="build an engine from an ONNX file")
    p.add_argument("--onnx", required=True, help="the exported model (python -m train export)")
    p.add_argument("--backend", choices=("onnxruntime", "tensorrt", "torch"), default="onnxruntime",
                   help="onnxruntime: an offline-optimised .onnx; tensorrt: a plan for this GPU (default %(default)s)")
    p.add_argument("--precision", choices=("fp32", "fp16", "int8"), default="fp32",
                   help="the precision to build; fp16/int8 models come from python -m calibration (default %(default)s)")
    p.add_argument("--out", help="onnxruntime: where the optimised model goes (default MODEL.optimized.onnx)")
    p.add_argument("--cache-dir", default="engine_cache", help="tensorrt: the plan cache (default %(default)s)")
    p.add_argument("--max-batch", type=int, default=32, help="tensorrt: the largest batch (default %(default)s)")
    p.add_argument("--workspace-gb", type=float, default=4.0,
                   help="tensorrt: builder workspace in GiB (default %(default)s)")
    p = sub.add_parser("bench", help="latency p50/p99 and throughput per batch size, one JSON line")
    p.add_argument("--onnx", required=True, help="model file (.onnx; .pt2 for the torch backend)")
    p.add_argument("--backend", choices=engines.BACKENDS, default="onnxruntime")
    p.add_argument("--batch", type=lambda s: [int(b) for b in s.split(",")], default=[1, 8, 32])
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--precision", choices=("fp32", "fp16", "int8"), default="fp32")
    p.add_argument("--device", help="torch: cuda / cpu (default: cuda when present)")
    p.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), help="torch (default: float16 on CUDA)")
    p.add_argument("--compile", choices=("none", "graph", "compile"), help="torch (default: graph on CUDA)")
    args = parser.parse_args(argv)
    if args.command == "bench" and (args.runs < 1 or min(args.batch) < 1):
        parser.error(f"bench needs --runs and every --batch size at least 1, got --runs {args.runs} "
                     f"--batch {','.join(map(str, args.batch))}")
    try:
        result = {"build": _build, "bench": _bench}[args.command](args)
    except (ImportError, FileNotFoundError, ValueError) as error:
        # A missing backend, model file or metadata is the user's to fix: one line, not a traceback.
        print(f"python -m engines {args.command}: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
