"""The stage table: which stages a run has, in which order, what each one does, and how many copies
of it run. The process layout (one worker per stage replica), the socket names between them and the
summary's per-stage figures all derive from it.

    capture ─► face (N replicas, frame i on replica i mod N) ─► translate ─► classify ─► decide
"""
from __future__ import annotations

from dataclasses import dataclass

from pipeline.config import PipelineConfig
from pipeline.steps import ClassifyStep, FaceStep, TranslateStep

SOURCE, TRANSFORM, SINK = "source", "transform", "sink"


@dataclass(frozen=True)
class Stage:
    name: str
    role: str                        # SOURCE makes frames, TRANSFORM maps one to one, SINK publishes
    step: type | None = None         # a TRANSFORM's per-frame work (pipeline/steps.py)
    replicated: bool = False         # runs as `config.face_workers` replicas on alternate frames

    def replicas(self, config: PipelineConfig) -> int:
        return config.face_workers if self.replicated else 1


STAGES = (
    Stage("capture", SOURCE),
    Stage("face", TRANSFORM, FaceStep, replicated=True),
    Stage("translate", TRANSFORM, TranslateStep),
    Stage("classify", TRANSFORM, ClassifyStep),
    Stage("decide", SINK),
)
STAGE_NAMES = tuple(stage.name for stage in STAGES)
BY_NAME = {stage.name: stage for stage in STAGES}


def next_stage(stage: Stage) -> Stage | None:
    position = STAGES.index(stage)
    return STAGES[position + 1] if position + 1 < len(STAGES) else None


def previous_stage(stage: Stage) -> Stage | None:
    position = STAGES.index(stage)
    return STAGES[position - 1] if position else None


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
    stages = STAGES if stage is None else (stage,)
    return [Worker(s, r) for s in stages for r in range(s.replicas(config))]


def outlets(worker: Worker, config: PipelineConfig) -> list[str]:
    """The socket names a worker sends to: every worker of the next stage."""
    following = next_stage(worker.stage)
    return [] if following is None else [w.inlet for w in workers(config, following)]


def ends_expected(stage: Stage, config: PipelineConfig) -> int:
    """How many end-of-stream messages a stage waits for: one from each worker before it."""
    before = previous_stage(stage)
    return 1 if before is None else before.replicas(config)


def fan_out(config: PipelineConfig) -> int:
    """How many parallel replicas the frames passed through: decide puts them back in order."""
    return max(stage.replicas(config) for stage in STAGES)
