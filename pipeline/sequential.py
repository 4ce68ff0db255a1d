"""The same steps one after another in one process, no sockets: the reference the pipeline's
throughput is measured against (benchmarks/pipeline_replay.py), and a simple way to check that
the staged pipeline computes exactly what a plain loop computes. The steps are the same
(pipeline/steps.py), decide is the same DecideStep."""
from __future__ import annotations

import time

from pipeline.config import PipelineConfig, resolve_models
from pipeline.decide import DecideStep
from pipeline.messages import new_header
from pipeline.runner import resolve_source
from pipeline.sources import open_source
from pipeline.stages import CAPTURE
from pipeline.steps import STEPS, run_steps
from pipeline.summary import summarize


class SequentialPipeline:
    """The pipeline's steps and a DecideStep, built once (models loaded, the face stage
    started) and run over one source after another: each `run` starts a new drive (a new driver for
    the face stage and the driver monitor). A fleet worker keeps one for all its drives."""

    def __init__(self, config: PipelineConfig):
        self.config = resolve_models(config)
        self.steps = [step(config) for step in STEPS]

    def run(self, source_path: str, max_frames: int | None = None) -> dict:
        """Every frame of the source through each transform and decide; the summary, with "results":
        every frame's Result."""
        config = self.config
        for step in self.steps:
            if hasattr(step, "reset"):
                step.reset()
        decide = DecideStep(config.classes, config.dms)
        source = open_source(resolve_source(source_path), fast=config.fast, pixel_format=config.pixel_format,
                             fps=config.folder_fps)
        results = []
        try:
            for captured in source.frames():
                if captured is None:
                    continue
                header = new_header(captured.index, source.name, captured.t_capture_ns, truth=captured.truth,
                                    t_media_ns=captured.media_ns)
                header.stamp(CAPTURE.name, captured.t_capture_ns, time.monotonic_ns())
                header, _, _ = run_steps(self.steps, header, {"frame": captured.frame})
                results.append(decide(header))
                if max_frames and len(results) >= max_frames:
                    break
        finally:
            source.close()
        return summarize(results, {}, config.classes, source.status.skipped) | {"results": results}

    def close(self):
        for step in self.steps:
            step.close()


def run_sequential(config: PipelineConfig) -> dict:
    """Every frame of config.source through each transform and decide; returns the summary, with
    "results": every frame's Result."""
    pipeline = SequentialPipeline(config)
    try:
        return pipeline.run(config.source, config.max_frames)
    finally:
        pipeline.close()
