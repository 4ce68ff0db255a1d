"""Classifier throughput (images/s) of every backbone at 128², one JSON line.

    python -m benchmarks.classifier_throughput                # this CPU, batch 8
    python -m benchmarks.classifier_throughput --batch 64     # e.g. on a GPU (fp32 and fp16 autocast)

Inference (eval mode, no grad) on random inputs through `train.classifier_nets`, each backbone
timed for at least --seconds after warm-up. `relative_to_small` divides each rate by the `small`
backbone's, measured in the same run, so figures from different machines compare as ratios.
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
from face.ranges import above, at_least
from train.classifier_nets import ARCHS, build_classifier, count_parameters


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def images_per_second(net, batch: int, size: int, device, seconds: float, fp16: bool = False) -> float:
    x = torch.rand(batch, 3, size, size, device=device) * 2 - 1
    if device.type == "cuda":
        net, x = net.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    autocast = torch.autocast("cuda", dtype=torch.float16) if fp16 else torch.autocast(device.type, enabled=False)
    with autocast:
        for _ in range(2):  # warm-up: allocator, kernels picked
            net(x)
        _sync(device)
        runs, start = 0, time.perf_counter()
        while True:
            net(x)
            runs += 1
            _sync(device)
            elapsed = time.perf_counter() - start
            if elapsed >= seconds and runs >= 3:
                return runs * batch / elapsed


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--batch", type=at_least(1), default=8)
    p.add_argument("--seconds", type=above(0), default=2.0, help="least timed time per backbone")
    p.add_argument("--backbones", default=",".join(ARCHS))
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    results = {}
    for arch in args.backbones.split(","):
        torch.manual_seed(0)
        net = build_classifier({"arch": arch, "image_size": args.size}).to(device).eval()
        entry = {"parameters": count_parameters(net),
                 "fp32_images_per_s": round(images_per_second(net, args.batch, args.size, device, args.seconds), 2)}
        if device.type == "cuda":
            entry["fp16_images_per_s"] = round(images_per_second(net, args.batch, args.size, device, args.seconds,
                                                                 fp16=True), 2)
        results[arch] = entry
        del net
    if "small" in results:
        for entry in results.values():
            entry["relative_to_small"] = round(entry["fp32_images_per_s"] / results["small"]["fp32_images_per_s"], 4)
    print(json.dumps({"benchmark": "classifier_throughput", "device": torch.cuda.get_device_name(device)
                      if device.type == "cuda" else f"cpu ({platform.processor() or platform.machine()}, "
                                                    f"{torch.get_num_threads()} threads)",
                      "image_size": args.size, "batch": args.batch, "torch": torch.__version__, "backbones": results}))
    return 0


if __name__ == "__main__":
    sys.exit(exit_status(main))
