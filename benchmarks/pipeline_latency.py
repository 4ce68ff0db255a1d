"""Live latency: capture-to-publish time per frame with the source paced at its frame rate (30 fps)
and run latest-frame-wins, as a camera would be; p50/p99 and how many frames were dropped, for each
stage layout (fused, the default: face, translate and classify in one process; staged: each in its
own), alternating (each round starts with the next layout), in one run.

    python -m benchmarks.pipeline_latency                   # demo video at 30 fps, 20 s, 2 rounds
    python -m benchmarks.pipeline_latency --seconds 30 --source drive.mp4 --layouts fused

The latency is `t_publish - t_capture` of each published message, both on the monotonic clock
every process shares; `between_p50` is what is not inside a step (the hops, each process waking
for its frame). `fused_over_staged_p50`: the medians' ratio over the rounds. Prints one JSON line.
"""
import argparse
import json
import os
import statistics
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2

from benchmarks.cli import exit_status, in_turn
from face.ranges import above, at_least
from pipeline.config import DEFAULT_CLASSIFIER, DEFAULT_GENERATOR, LAYOUTS, PipelineConfig
from pipeline.runner import resolve_source
from pipeline.supervisor import run as run_pipeline


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--source", default="demo")
    p.add_argument("--seconds", type=above(0), default=20.0)
    p.add_argument("--layouts", nargs="+", choices=LAYOUTS, default=list(LAYOUTS))
    p.add_argument("--rounds", type=at_least(1), default=2,
                   help="runs of each layout, alternating, each round starting with the next (default 2)")
    p.add_argument("--generator", default=DEFAULT_GENERATOR)
    p.add_argument("--classifier", default=DEFAULT_CLASSIFIER)
    p.add_argument("--publish", default="tcp://127.0.0.1:5562")
    args = p.parse_args(argv)
    video = resolve_source(args.source)
    fps = cv2.VideoCapture(video).get(cv2.CAP_PROP_FPS) or 30.0
    frames = int(args.seconds * fps)
    runs = {layout: [] for layout in args.layouts}
    for index in range(args.rounds):
        for layout in in_turn(args.layouts, index):
            summary = run_pipeline(PipelineConfig(source=video, live=True, max_frames=frames, publish=args.publish,
                                                  generator=args.generator, classifier=args.classifier,
                                                  layout=layout))
            runs[layout].append({"frames_published": summary["frames"], "output_fps": summary["fps"],
                                 "latency_ms": summary["latency_ms"], "drops": summary["drops"],
                                 **({"error": summary["error"]} if summary.get("error") else {})})
    p50 = {layout: statistics.median(r["latency_ms"]["p50"] for r in rs) for layout, rs in runs.items()}
    result = {"benchmark": "pipeline_latency", "source": args.source, "input_fps": round(fps, 2),
              "cores": len(os.sched_getaffinity(0)), "frames_in": frames, "rounds": args.rounds,
              "p50_ms": {layout: round(v, 2) for layout, v in p50.items()}, "runs": runs}
    if {"staged", "fused"} <= set(p50):
        result["fused_over_staged_p50"] = round(p50["fused"] / p50["staged"], 3)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(exit_status(main))
