"""The stage table: which stages a run has, in which order, what each one does, and how many copies
of it run. The process layout (one worker per stage replica), the socket names between them and the
status's stages all derive from it. Two layouts run the same steps (pipeline/steps.py):

    fused   capture ─► perceive = face, translate, classify (N replicas, frame i on replica i mod N) ─► decide
    staged  capture ─► face (N replicas) ─► translate ─► classify ─► decide

Fused, the default, saves two hops and two wake-ups a frame: on a 2-core machine at 30 fps its
capture-to-publish p50 is 0.84–0.92× staged's, and a --fast replay 1.05–1.10× staged's throughput
(benchmarks/pipeline_latency.py, pipeline_replay.py). Staged gives each step its own process, status
and restart, and one process per model (a GPU engine: one context, not one per replica).
"""
from __future__ import annotations

from dataclasses import dataclass

from pipeline.config import PipelineConfig
from pipeline.steps import STEPS, ClassifyStep, FaceStep, TranslateStep

SOURCE, TRANSFORM, SINK = "source", "transform", "sink"


@dataclass(frozen=True)
class Stage:
    name: str
    role: str                        # SOURCE makes frames, TRANSFORM maps one to one, SINK publishes
    steps: tuple[type, ...] = ()     # a TRANSFORM's per-frame work, run in this order (pipeline/steps.py)
    replicated: bool = False         # runs as `config.face_workers` replicas on alternate frames

    def replicas(self, config: PipelineConfig) -> int:
        return config.face_workers if self.replicated else 1


CAPTURE, DECIDE = Stage("capture", SOURCE), Stage("decide", SINK)
TABLES = {   # one per config.LAYOUTS
    "fused": (CAPTURE, Stage("perceive", TRANSFORM, STEPS, replicated=True), DECIDE),
    "staged": (CAPTURE, Stage("face", TRANSFORM, (FaceStep,), replicated=True),
               Stage("translate", TRANSFORM, (TranslateStep,)), Stage("classify", TRANSFORM, (ClassifyStep,)), DECIDE),
}
# The names a frame's `timing` carries whatever the layout: the source, each step, the sink.
TIMED = (CAPTURE.name, *(step.name for step in STEPS), DECIDE.name)


def stage_table(config: PipelineConfig) -> tuple[Stage, ...]:
    return TABLES[config.layout]


def next_stage(stage: Stage, config: PipelineConfig) -> Stage | None:
    table = stage_table(config)
    position = table.index(stage)
    return table[position + 1] if position + 1 < len(table) else None


def previous_stage(stage: Stage, config: PipelineConfig) -> Stage | None:
    table = stage_table(config)
    position = table.index(stage)
    return table[position - 1] if position else None


@dataclass(frozen=True)
class Worker:
    """One process (or thread) of a run: a stage, or one replica of a replicated stage."""

    stage: Stage
    replica: int = 0

    @property
    def name(self) -> str:
        return f"{self.stage.name}.{self.replica}" if self.stage.replicated else self.stage.name

    @property
    def inlet(self) -> str:
        """The socket name this worker binds for its input."""
        return f"in-{self.name}"


def workers(config: PipelineConfig, stage: Stage | None = None) -> list[Worker]:
    """Every worker of a run in table order, or those of one stage."""
    stages = stage_table(config) if stage is None else (stage,)
    return [Worker(s, r) for s in stages for r in range(s.replicas(config))]


def outlets(worker: Worker, config: PipelineConfig) -> list[str]:
    """The socket names a worker sends to: every worker of the next stage."""
    following = next_stage(worker.stage, config)
    return [] if following is None else [w.inlet for w in workers(config, following)]


def ends_expected(stage: Stage, config: PipelineConfig) -> int:
    """How many end-of-stream messages a stage waits for: one from each worker before it."""
    before = previous_stage(stage, config)
    return 1 if before is None else before.replicas(config)


def fan_out(config: PipelineConfig) -> int:
    """How many parallel replicas the frames passed through: decide puts them back in order."""
    return max(stage.replicas(config) for stage in stage_table(config))
