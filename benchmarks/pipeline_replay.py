"""Replay throughput: the pipeline (its processes joined by ZeroMQ, in each stage layout) against a
single-process loop running the same steps one after another, on the same frames, in one run.

    python -m benchmarks.pipeline_replay                    # demo video, default models, 300 frames
    python -m benchmarks.pipeline_replay --frames 600 --source drive.mp4

Both replay at --fast (no pacing) and both are lossless; `speedup` = median pipeline fps / median
sequential fps over --rounds rounds (each starting with the next contender; the last round's details
are printed too), for the first of --layouts (fused, the default); `speedup_by_layout` gives it for
each, `fused_over_staged` compares the two layouts' medians.
Both run their engines with --threads intra-op threads (default 1: on a 2-core machine shared with
other work, more threads spin against each other and slow the sequential loop down — try 2 on an
idle machine). Prints one JSON line.
"""
import argparse
import json
import os
import platform
import statistics
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.cli import exit_status, in_turn
from face.ranges import at_least
from pipeline.config import DEFAULT_CLASSIFIER, DEFAULT_GENERATOR, LAYOUTS, PipelineConfig
from pipeline.supervisor import run as run_pipeline
from pipeline.sequential import run_sequential

KEEP = ("frames", "fps", "latency_ms", "drops", "accuracy_published", "accuracy_translated", "accuracy_render",
        "accuracy_crop", "face_found_rate")


SEQUENTIAL = "sequential"


def run_one(name: str, args, common: dict) -> dict:
    """The summary of one replay: the pipeline in layout `name`, or the sequential loop."""
    if name == SEQUENTIAL:
        summary = run_sequential(PipelineConfig(threads=args.threads, **common))
        summary.pop("results")
        return summary
    return run_pipeline(PipelineConfig(publish=args.publish, threads=args.threads, layout=name, **common))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--source", default="demo")
    p.add_argument("--frames", type=at_least(1), default=300)
    p.add_argument("--generator", default=DEFAULT_GENERATOR)
    p.add_argument("--classifier", default=DEFAULT_CLASSIFIER)
    p.add_argument("--publish", default="tcp://127.0.0.1:5561")
    p.add_argument("--threads", type=at_least(0), default=1, help="engine intra-op threads, both runs")
    p.add_argument("--layouts", nargs="+", choices=LAYOUTS, default=list(LAYOUTS),
                   help="the pipeline's stage layouts run each round (default both, fused first); pipeline_fps "
                        "and speedup are the first's")
    p.add_argument("--rounds", type=at_least(1), default=3,
                   help="run every layout and the sequential loop this many times, each round starting with "
                        "the next of them; medians are reported (the machine's other load drifts)")
    args = p.parse_args(argv)
    cores = len(os.sched_getaffinity(0))
    common = dict(source=args.source, fast=True, max_frames=args.frames, generator=args.generator,
                  classifier=args.classifier)
    rounds, loads = [], []   # each round: {layout: summary}, and the sequential loop's
    contenders = [*args.layouts, SEQUENTIAL]
    for index in range(args.rounds):
        runs = {name: run_one(name, args, common) for name in in_turn(contenders, index)}
        sequential = runs.pop(SEQUENTIAL)
        rounds.append((runs, sequential))
        loads.append(os.getloadavg()[0])
    first = args.layouts[0]
    fps = {layout: statistics.median(r[0][layout]["fps"] for r in rounds) for layout in args.layouts}
    sequential_fps = statistics.median(r[1]["fps"] for r in rounds)
    runs, sequential = rounds[-1]
    last = runs[first]   # the first layout's last round, detailed below
    result = {
        "benchmark": "pipeline_replay", "source": args.source, "frames": args.frames, "cores": cores,
        "threads": args.threads, "rounds": args.rounds, "load_avg_1min": [round(x, 2) for x in loads],
        "cpu": platform.processor() or platform.machine(), "layout": first,
        "pipeline_fps": fps[first], "sequential_fps": sequential_fps,
        "speedup": round(fps[first] / sequential_fps, 3),
        "speedup_per_round": [round(a[first]["fps"] / b["fps"], 3) for a, b in rounds],
        "fps_by_layout": fps,
        "speedup_by_layout": {layout: round(value / sequential_fps, 3) for layout, value in fps.items()},
        "pipeline": {k: last.get(k) for k in KEEP}, "sequential": {k: sequential.get(k) for k in KEEP},
    }
    if {"staged", "fused"} <= set(fps):
        result["fused_over_staged"] = round(fps["fused"] / fps["staged"], 3)
    if last.get("error"):
        result["error"] = last["error"]
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(exit_status(main))
