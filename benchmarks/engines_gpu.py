"""GPU: UIT generator (w=64) + classifier per frame, eager fp32 vs the fast PyTorch path; one JSON line.

    python -m benchmarks.engines_gpu                       # w=64, resnet18, batch 1 and 32
    python -m benchmarks.engines_gpu --arch vgg16 --batches 1,8

Both networks are exported as torch.export programs (random weights: speed does not depend on
them) and run through `engines.load(..., backend="torch")`, as the pipeline runs them, numpy in
and out. Variants, timed round-robin in the same run:
  eager_fp32   float32, NCHW, no graphs;
  fp16_graph   float16 + channels_last + one CUDA graph per batch size;
  fp16_compile float16 + channels_last + torch.compile(mode="reduce-overhead").
ms_per_frame is the generator + classifier chain's p50 divided by the batch. A variant that fails
is reported with its error instead of stopping the run. Without CUDA it prints why and exits 0.
"""
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

import engines
from benchmarks.cli import exit_status
from engines.bench import random_feeds
from face.ranges import at_least
from train.export import export_program

VARIANTS = {
    "eager_fp32": dict(dtype="float32", channels_last=False, compile="none"),
    "fp16_graph": dict(dtype="float16", channels_last=True, compile="graph"),
    "fp16_compile": dict(dtype="float16", channels_last=True, compile="compile"),
}


def chain_timer(generator, classifier, batch):
    feeds = random_feeds(generator, batch)

    def run():
        translated = generator.run(feeds)["translated"]
        return classifier.run({"image": translated})["logits"]
    return run


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=at_least(1), default=64)
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batches", default="1,32")
    parser.add_argument("--runs", type=at_least(1), default=100)
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print(json.dumps({"benchmark": "engines_gpu", "skipped": "needs a CUDA GPU; none visible to PyTorch"}))
        return 0
    from train.classifier_nets import build_classifier
    from train.networks import Generator

    torch.manual_seed(0)
    result = {"benchmark": "engines_gpu", "gpu": torch.cuda.get_device_name(0), "torch": torch.__version__,
              "generator_width": args.width, "classifier": args.arch, "image_size": args.size, "results": []}
    with tempfile.TemporaryDirectory() as tmp:
        g_path = export_program(Generator(args.width).eval(), "uit_generator", Path(tmp) / "g.pt2", image_size=args.size)
        c_path = export_program(build_classifier({"arch": args.arch, "image_size": args.size}).eval(), "classifier",
                                Path(tmp) / "c.pt2", image_size=args.size)
        loaded, errors = {}, {}
        for name, options in VARIANTS.items():
            try:
                loaded[name] = (engines.load(g_path, backend="torch", device="cuda", **options),
                                engines.load(c_path, backend="torch", device="cuda", **options))
            except Exception as error:  # report, do not stop: one broken path must not hide the others
                errors[name] = f"{type(error).__name__}: {error}"
        for batch in (int(b) for b in args.batches.split(",")):
            timers, times = {}, {}
            for name, (g, c) in loaded.items():
                try:
                    timers[name] = chain_timer(g, c, batch)
                    for _ in range(5):
                        timers[name]()
                    times[name] = []
                except Exception as error:
                    errors[f"{name}@{batch}"] = f"{type(error).__name__}: {error}"
            for _ in range(args.runs):
                for name, run in timers.items():
                    torch.cuda.synchronize()
                    start = time.perf_counter()
                    run()
                    torch.cuda.synchronize()
                    times[name].append((time.perf_counter() - start) * 1e3)
            row = {"batch": batch}
            for name, t in times.items():
                p50 = float(np.percentile(t, 50))
                row[name] = {"p50_ms": round(p50, 3), "p99_ms": round(float(np.percentile(t, 99)), 3),
                             "ms_per_frame": round(p50 / batch, 4)}
            if "eager_fp32" in times:
                for name in times:
                    if name != "eager_fp32":
                        row[name]["speedup_vs_eager"] = round(row["eager_fp32"]["p50_ms"] / row[name]["p50_ms"], 2)
            result["results"].append(row)
        if errors:
            result["errors"] = errors
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(exit_status(main))
