"""The same stages one after another in one process, no sockets: the reference the pipeline's
throughput is measured against (benchmarks/pipeline_replay.py), and a simple way to check that
the staged pipeline computes exactly what a plain loop computes."""
from __future__ import annotations

import time

from pipeline import messages
from pipeline.config import PipelineConfig, resolve_models
from pipeline.decide import Decider, emotion_message, result_record
from pipeline.runner import resolve_source
from pipeline.sources import open_source
from pipeline.steps import ClassifyStep, FaceStep, TranslateStep
from pipeline.summary import summarize


def run_sequential(config: PipelineConfig) -> dict:
    """Every frame through capture → face → translate → classify → decide; returns the summary."""
    resolve_models(config)
    steps = [("face", FaceStep(config)), ("translate", TranslateStep(config)), ("classify", ClassifyStep(config))]
    decider = Decider(config.classes)
    source = open_source(resolve_source(config.source), fast=config.fast, pixel_format=config.pixel_format,
                         fps=config.folder_fps)
    records = []
    try:
        for captured in source.frames():
            if captured is None:
                continue
            header = messages.new_header(captured.index, source.name, captured.t_capture_ns, truth=captured.truth)
            messages.stamp(header, "capture", captured.t_capture_ns, time.monotonic_ns())
            arrays = {"frame": captured.frame}
            for name, step in steps:
                started = time.monotonic_ns()
                header, arrays = step(header, arrays)
                messages.stamp(header, name, started, time.monotonic_ns())
            started = time.monotonic_ns()
            smoothed = decider.update(header.get("probs") if header.get("valid") else None)
            messages.stamp(header, "decide", started, time.monotonic_ns())
            emotion = emotion_message(header, smoothed, config.classes, time.monotonic_ns())
            records.append(result_record(header, emotion, config.classes))
            if config.max_frames and len(records) >= config.max_frames:
                break
    finally:
        source.close()
        for _, step in steps:
            step.close()
    return summarize(records, {}, config.classes) | {"records": records}
