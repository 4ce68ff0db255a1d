"""ExprADA training step: eager fp32 against the fast path, side by side in one run; one JSON line.

    python -m benchmarks.train_step                      # CUDA: paper size (w=64, 128², batch 8)
    python -m benchmarks.train_step --width 16 --size 64 # what the 2-core CPU reports

The step is the trainer's own (`train.exprada_model.ExprADAModel.step`: both generators, both
discriminators, every loss, fused Adam) on random inputs, so data loading is not timed. Fast
variants, each tried and reported (an error is reported, not raised):
  CUDA: bf16 + channels_last + whole-step CUDA graph; the same with torch.compile'd networks.
  CPU:  channels_last + torch.compile (fp32); bf16 + channels_last.
`speedup` is the best fast variant's step rate over eager fp32's, measured in this run.
"""
import argparse
import json
import platform
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from benchmarks.cli import exit_status
from face.expressions import NUM_EXPRESSIONS
from face.ranges import at_least
from train.distributed import Context, pick_device
from train.exprada import DEFAULTS
from train.exprada_model import ExprADAModel

FAST_VARIANTS = {
    "cuda": {"bf16+channels_last+cuda_graph": dict(precision="bf16", channels_last=True, cuda_graph=True),
             "bf16+channels_last+compile+cuda_graph": dict(precision="bf16", channels_last=True, compile=True,
                                                           cuda_graph=True)},
    "cpu": {"fp32+channels_last+compile": dict(channels_last=True, compile=True),
            "bf16+channels_last": dict(precision="bf16", channels_last=True)},
}


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_variant(options: dict, args, device) -> dict:
    config = {**DEFAULTS, "mode": args.mode, "width": args.width, "image_size": args.size,
              "batch_size": args.batch, "constant_steps": 10 ** 6, "total_steps": 2 * 10 ** 6, **options}
    model = ExprADAModel(config, Context(device=device))
    g = torch.Generator().manual_seed(0)
    shape = (args.batch, 6, args.size, args.size)
    x_s, x_t = (torch.rand(shape, generator=g) * 2 - 1 for _ in range(2))
    y_s, y_wanted = (torch.randint(NUM_EXPRESSIONS, (args.batch,), generator=g) for _ in range(2))
    memory_format = torch.channels_last if config["channels_last"] else torch.contiguous_format
    x_s, x_t = (x.to(device).contiguous(memory_format=memory_format) for x in (x_s, x_t))
    y_s, y_wanted = y_s.to(device), y_wanted.to(device)
    started = time.perf_counter()
    for _ in range(args.warmup):  # compiles / captures here
        model.step(x_s, y_s, x_t, y_wanted)
    _sync(device)
    warmup_s = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(args.steps):
        scalars = model.step(x_s, y_s, x_t, y_wanted)
    _sync(device)
    seconds = (time.perf_counter() - started) / args.steps
    return {"ms_per_step": round(seconds * 1e3, 2), "steps_per_s": round(1 / seconds, 3),
            "images_per_s": round(args.batch / seconds, 1), "warmup_s": round(warmup_s, 1),
            "finite": bool(scalars["finite"])}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto")
    p.add_argument("--mode", default="uit", choices=("uit", "cgit"))
    p.add_argument("--width", type=at_least(1), help="base width (CUDA default 64, CPU 16)")
    p.add_argument("--size", type=int, help="image size (CUDA default 128, CPU 64)")
    p.add_argument("--batch", type=at_least(1), default=8)
    p.add_argument("--steps", type=at_least(1), help="timed steps per variant (CUDA 50, CPU 5)")
    p.add_argument("--warmup", type=at_least(0), help="untimed steps first (CUDA 5, CPU 2)")
    p.add_argument("--variants", help="comma list of fast variants to run (default: all for the device)")
    args = p.parse_args(argv)
    device = pick_device(args.device)
    cuda = device.type == "cuda"
    args.width = args.width or (64 if cuda else 16)
    args.size = args.size or (128 if cuda else 64)
    args.steps = args.steps or (50 if cuda else 5)
    args.warmup = args.warmup or (5 if cuda else 2)
    variants = FAST_VARIANTS[device.type if device.type in FAST_VARIANTS else "cpu"]
    if args.variants:
        unknown = [name for name in args.variants.split(",") if name not in variants]
        if unknown:
            p.error(f"--variants: no {', '.join(unknown)} on {device.type}; known: {', '.join(variants)}")
        variants = {name: variants[name] for name in args.variants.split(",")}
    name = torch.cuda.get_device_name(device) if cuda else f"{platform.processor() or platform.machine()} CPU, " \
                                                             f"{torch.get_num_threads()} threads"
    result = {"benchmark": "train_step", "device": name, "torch": torch.__version__, "mode": args.mode,
              "width": args.width, "image_size": args.size, "batch": args.batch, "timed_steps": args.steps}
    result["eager_fp32"] = time_variant({}, args, device)
    fast = {}
    for variant, options in variants.items():
        try:
            fast[variant] = time_variant(options, args, device)
        except Exception as err:  # a variant this machine cannot run is reported, not fatal
            fast[variant] = {"error": f"{type(err).__name__}: {str(err).splitlines()[0][:300] if str(err) else ''}"}
    result["fast"] = fast
    timed = {k: v for k, v in fast.items() if "steps_per_s" in v}
    if timed:
        best = max(timed, key=lambda k: timed[k]["steps_per_s"])
        result["best_fast"] = best
        result["speedup"] = round(timed[best]["steps_per_s"] / result["eager_fp32"]["steps_per_s"], 3)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    sys.exit(exit_status(main))
