"""Live latency: capture-to-publish time per frame with the source paced at its frame rate (30 fps)
and run latest-frame-wins, as a camera would be; p50/p99 and how many frames were dropped.

    python -m benchmarks.pipeline_latency                   # demo video at 30 fps, 20 s
    python -m benchmarks.pipeline_latency --seconds 30 --source drive.mp4

The latency is `t_publish - t_capture` of each published message, both on the monotonic clock
every process shares. Prints one JSON line.
"""
import argparse
import json
import os
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2

from benchmarks.cli import exit_status
from face.ranges import above
from pipeline.config import DEFAULT_CLASSIFIER, DEFAULT_GENERATOR, PipelineConfig
from pipeline.runner import resolve_source
from pipeline.supervisor import run as run_pipeline


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--source", default="demo")
    p.add_argument("--seconds", type=above(0), default=20.0)
    p.add_argument("--generator", default=DEFAULT_GENERATOR)
    p.add_argument("--classifier", default=DEFAULT_CLASSIFIER)
    p.add_argument("--publish", default="tcp://127.0.0.1:5562")
    args = p.parse_args(argv)
    video = resolve_source(args.source)
    fps = cv2.VideoCapture(video).get(cv2.CAP_PROP_FPS) or 30.0
    frames = int(args.seconds * fps)
    summary = run_pipeline(PipelineConfig(source=video, live=True, max_frames=frames, publish=args.publish,
                                          generator=args.generator, classifier=args.classifier))
    result = {"benchmark": "pipeline_latency", "source": args.source, "input_fps": round(fps, 2),
              "cores": len(os.sched_getaffinity(0)), "frames_in": frames, "frames_published": summary["frames"],
              "output_fps": summary["fps"], "latency_ms": summary["latency_ms"], "drops": summary["drops"],
              "drop_rate": round(1 - summary["frames"] / frames, 4) if frames else None}
    if summary.get("error"):
        result["error"] = summary["error"]
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(exit_status(main))
