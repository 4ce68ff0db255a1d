"""Every message of the pipeline, typed: what travels between stages (the frame header, the end of
stream), what stages tell the supervisor (reports, results) and what the pipeline publishes
(`emotion`, `status`). One place for each field's name, type and meaning.

The published topics have JSON Schemas made from these types (`published_schemas`), shipped in
`schemas/` for subscribers in any language; a test keeps the files, the types and the README's
tables in step. A change of a published field's meaning bumps the schema's version (the `schema`
tag); added optional fields do not.

msgspec (not json + dicts) because it checks a message's types while it decodes it, in C: a header
from another process is refused with the field named, at no cost to the frame rate.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import msgspec
from msgspec import Meta, Struct

from pipeline.shared_frames import SlotRef

HEADER_VERSION = 3
EMOTION_SCHEMA = "exprada.emotion/2"   # /2 added `t_media_ns` and `driver`; every /1 field is unchanged
EMOTION_SCHEMA_V1 = "exprada.emotion/1"
STATUS_SCHEMA = "exprada.status/1"
EVENT_SCHEMA = "exprada.event/1"
TOPICS = ("emotion", "status", "event")
SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"

Probabilities = dict[str, float]   # {class name: probability}, every class of the classifier


def _doc(text: str):
    return Meta(description=text)


# ---- between stages ------------------------------------------------------------------------------

class Face(Struct, omit_defaults=True):
    """Where the driver's face is and how the head is turned."""

    box: Annotated[list[float], _doc("[x0, y0, x1, y1] in frame pixels")]
    yaw: Annotated[float, _doc("degrees, positive: the driver turns to their left")]
    pitch: Annotated[float, _doc("degrees")]
    roll: Annotated[float, _doc("degrees")]
    fit_residual: Annotated[float | None, _doc("mean landmark error of the 3D fit, in box-relative units")] = None
    yaw_std: Annotated[float | None, _doc("standard deviation of `yaw` from the fit, degrees")] = None
    pitch_std: Annotated[float | None, _doc("standard deviation of `pitch`, degrees")] = None
    roll_std: Annotated[float | None, _doc("standard deviation of `roll`, degrees")] = None


class Eyes(Struct, omit_defaults=True):
    """The eyes on one frame, from the face stage's landmarks (face/eyes.py); decide adds `closed_prob`."""

    openness_left: Annotated[float, _doc("lid gap over eye width, head-pose foreshortening undone; "
                                         "about 0.2–0.35 open, near 0 closed")]
    openness_right: float
    left_visible: Annotated[bool, _doc("false when the head is turned so far that this eye is unreliable")]
    right_visible: bool
    gaze_yaw: Annotated[float | None, _doc("eye-in-head gaze from the irises, degrees (as the head's yaw); "
                                           "null with both eyes closed")] = None
    gaze_pitch: float | None = None
    camera_gaze_yaw: Annotated[float | None, _doc("the gaze in camera terms: head pose and eyes together")] = None
    camera_gaze_pitch: float | None = None
    closed_prob: Annotated[float | None, _doc("probability that the eyes are closed, against this driver's "
                                              "open eyes (decide)")] = None


class ArraySpec(Struct, frozen=True, omit_defaults=True):
    """One array of a frame message: the next data part, or, with `shm`, a slot in shared memory
    (pipeline/shared_frames.py) where its bytes lie instead."""

    name: str
    dtype: str
    shape: list[int]
    shm: SlotRef | None = None


class FrameHeader(Struct, tag_field="type", tag="frame", omit_defaults=True):
    """The first part of a frame message; the arrays it describes follow as raw parts.

    Perception fills it in stage by stage: face (`face`, or `valid` false with a `reason`), classify
    (`paths`: each classified path's probabilities; `probs`: the published choice, `published_from`:
    the publish mode)."""

    frame_id: int
    source: str
    t_capture_ns: int                      # CLOCK_MONOTONIC, the same clock in every process
    v: int = HEADER_VERSION
    t_media_ns: int | None = None          # the frame's time on the source's clock (a file's timestamp)
    timing: dict[str, list[int]] = {}      # stage → [start, end] monotonic ns
    valid: bool = True
    reason: str | None = None              # why the frame is not valid
    truth: int | None = None               # ground-truth label index, -1: no face; never published
    replica: int = 0                       # the face replica that worked on it
    previous_id: int = -1                  # replay: the frame capture sent before this one (decide's order)
    face: Face | None = None
    eyes: Eyes | None = None
    identity: list[float] | None = None    # the fit's identity weights in units of the population's spread
    paths: dict[str, list[float]] = {}     # path (translated | render | crop) → probabilities
    probs: list[float] | None = None       # the published probabilities
    published_from: str | None = None
    arrays: list[ArraySpec] = []           # filled by wire.encode

    def stamp(self, stage: str, t_start_ns: int, t_end_ns: int) -> FrameHeader:
        """Record one stage's [start, end] monotonic times."""
        self.timing[stage] = [int(t_start_ns), int(t_end_ns)]
        return self

    def invalidate(self, reason: str) -> FrameHeader:
        self.valid, self.reason = False, reason
        return self

    def fail(self, stage: str, error: Exception) -> FrameHeader:
        """A stage raised on this frame: invalid, and the reason says which stage and why."""
        return self.invalidate(f"{stage}{FAILED} {error}")


FAILED = " failed:"   # in a reason: a stage raised (not a frame without a face, which is no failure)


def is_failure(reason: str | None) -> bool:
    return bool(reason) and FAILED in reason


class EndOfStream(Struct, tag_field="type", tag="eos"):
    """The source is finished (replay): every stage passes it on once it has one from each worker
    before it, then waits to be stopped; decide ends once it has published up to `last_id`."""

    source: str
    frames: int
    reason: str = "end of source"
    last_id: int = -1                      # the last frame capture sent (-1: none)
    replica: int = 0                       # the worker it came through, of a replicated stage
    v: int = HEADER_VERSION


StageMessage = FrameHeader | EndOfStream


def new_header(frame_id: int, source: str, t_capture_ns: int, **fields) -> FrameHeader:
    return FrameHeader(frame_id=int(frame_id), source=str(source), t_capture_ns=int(t_capture_ns), **fields)


# ---- published -----------------------------------------------------------------------------------

class Blink(Struct):
    """A blink that has just ended (eyes closed for less than the long-closure threshold)."""

    t_start_ns: Annotated[int, _doc("the eyes began to close, on the source's clock (`t_media_ns`)")]
    t_end_ns: Annotated[int, _doc("they were open again")]
    duration_ms: float


class Driver(Struct, omit_defaults=True):
    """What a driver monitor says about the driver on one frame (pipeline/dms/)."""

    state: Annotated[str, _doc("calibrating (learning this driver's neutral gaze and open eyes; "
                               "population defaults meanwhile) | calibrated")]
    calibration: Annotated[float, _doc("how much of the calibration time has been seen, 0–1")]
    present: Annotated[bool, _doc("a face is in the frame")]
    eyes: Eyes | None = None
    on_road: Annotated[bool | None, _doc("the gaze (or, when the eyes cannot be read, the head) is in the "
                                         "road zone around this driver's neutral; null without a face")] = None
    gaze_from: Annotated[str | None, _doc("what `on_road` was judged from: eyes | head")] = None
    off_road_s: Annotated[float, _doc("how long the gaze has been off the road, seconds")] = 0.0
    perclos: Annotated[float | None, _doc("share of the last minute's readable time with the eyes closed")] = None
    blink: Annotated[Blink | None, _doc("on the frame a blink ends: the blink")] = None
    events: Annotated[list[str], _doc("kinds of the events in progress (topic `event`)")] = []


class Emotion(Struct, tag_field="schema", tag=EMOTION_SCHEMA, omit_defaults=True):
    """Topic `emotion`: one message per processed frame, `valid: false` when there is no face."""

    frame_id: Annotated[int, _doc("the frame's index in the source")]
    source: Annotated[str, _doc("the source's name: device path, file or folder")]
    t_capture_ns: Annotated[int, _doc("capture time, CLOCK_MONOTONIC ns")]
    t_publish_ns: Annotated[int, _doc("publish time, CLOCK_MONOTONIC ns")]
    valid: Annotated[bool, _doc("a face was found and classified")]
    label: Annotated[str | None, _doc("the most probable class of `probs`")]
    probs: Annotated[Probabilities | None, _doc("the published probabilities of every class")]
    smoothed_label: Annotated[str | None, _doc("the decision: moving average + hysteresis")]
    face: Face | None
    latency_ms: Annotated[dict[str, float], _doc("time inside each stage, and `total`: capture → publish")]
    published_from: Annotated[str | None, _doc("valid frames: the publish mode `probs` came from")] = None
    paths: Annotated[dict[str, Probabilities] | None,
                     _doc("valid frames with two or more classified paths: each path's probabilities")] = None
    reason: Annotated[str | None, _doc("frames that are not valid: why")] = None
    t_media_ns: Annotated[int | None, _doc("the frame's time on the source's clock: a file's timestamp "
                                           "from its start, a camera's capture time")] = None
    driver: Annotated[Driver | None, _doc("the driver monitor's per-frame signals")] = None


class EmotionV1(Emotion, tag=EMOTION_SCHEMA_V1):
    """An emotion message of schema version 1 (recorded before /2): read as an Emotion without the
    /2 fields."""


class Event(Struct, tag_field="schema", tag=EVENT_SCHEMA, omit_defaults=True):
    """Topic `event`: a driver-monitor decision starts or ends (pipeline/dms/). Times are on the
    source's clock (`t_media_ns` of the emotion messages)."""

    event_id: Annotated[int, _doc("pairs an event's start with its end; unique within a run")]
    kind: Annotated[str, _doc("distraction | time_sharing | microsleep | drowsiness | no_face | eyes_unseen")]
    state: Annotated[str, _doc("start | end")]
    source: str
    frame_id: Annotated[int, _doc("the frame on which it was decided")]
    t_ns: Annotated[int, _doc("that frame's time")]
    t_start_ns: Annotated[int, _doc("when what the event is about began (e.g. the gaze left the road)")]
    confidence: Annotated[float, _doc("0–1: how much of the evidence agreed (see README)")]
    cause: Annotated[str | None, _doc("drowsiness: perclos | blink_duration; distraction: eyes | head")] = None
    value: Annotated[float | None, _doc("the measure that crossed its threshold (PERCLOS, seconds, ms)")] = None
    t_end_ns: Annotated[int | None, _doc("end: when it ended")] = None
    duration_s: Annotated[float | None, _doc("end: t_end − t_start, seconds")] = None


class SourceStatus(Struct):
    """What the capture stage says about its source (every field always sent, the defaults too: a
    first status says `starting` and 0 reconnects)."""

    name: str = ""
    state: Annotated[str, _doc("starting | running | reconnecting | ended")] = "starting"
    reconnects: int = 0
    skipped: Annotated[int, _doc("unreadable frames or images, skipped and counted")] = 0
    note: str = ""


class StageStatus(Struct, omit_defaults=True):
    """One stage in the status message; counters summed over its replicas and restarts."""

    fps: float
    frames: int
    drops: int
    malformed: int
    errors: int
    queue: Annotated[int, _doc("frames sent by the stage before and not yet taken by this one")]
    restarts: int
    alive: bool
    pid: int | None
    pids: Annotated[list[int] | None, _doc("every replica's process, for a replicated stage")] = None


class Status(Struct, tag_field="schema", tag=STATUS_SCHEMA):
    """Topic `status`: the pipeline's health, once per status period (default 1 s)."""

    t_ns: int
    mode: Annotated[str, _doc("live (latest frame wins) | replay (lossless)")]
    source: SourceStatus
    stages: Annotated[dict[str, StageStatus], _doc("each stage of the run's layout: capture, face, translate, "
                                                   "classify, decide (staged) or capture, perceive, decide (fused)")]
    error: str | None
    ended: Annotated[str | None, _doc("only in a run's last message: why it ended (end of source, "
                                      "max frames, stopped by SIGINT or SIGTERM, error); nothing follows")] = None


Published = Emotion | EmotionV1 | Status | Event


# ---- stages → supervisor -------------------------------------------------------------------------

class Counters(Struct):
    """A stage's running counts; summed over replicas and restarts by the supervisor."""

    frames_in: int = 0
    frames_out: int = 0
    drops: int = 0        # frames thrown away: live queue overflow or superseded by a newer frame
    superseded: int = 0   # the part of `drops` received and then replaced by a newer frame (live)
    malformed: int = 0    # messages refused by wire.decode (bad header, sizes, oversized)
    errors: int = 0       # frames whose processing raised; forwarded as valid: false
    duplicates: int = 0   # replay: copies of a frame already published (resent after a crash), dropped
    resent: int = 0       # replay: frames capture sent again after a stage's restart
    stale: int = 0        # frames whose shared-memory slot was reused before they were read: live, a
                          # part of `drops`; replay, copies the resend after a restart brings again
    last_frame_id: int = -1


COUNTERS = tuple(name for name in Counters.__struct_fields__ if name != "last_frame_id")


class StageReport(Struct, omit_defaults=True):
    """A stage's report to the supervisor, a few times per status period."""

    stage: str
    replica: int
    pid: int
    thread: int
    t_ns: int
    counters: Counters
    ready: bool = False
    fatal: str | None = None       # a setup error a restart cannot fix
    source: SourceStatus | None = None


class Result(Struct, tag_field="type", tag="result"):
    """What decide hands the supervisor for each published frame (and the sequential loop returns):
    the message, the ground truth and each classified path's own label, for the summary."""

    emotion: Emotion
    truth: int | None = None
    path_labels: dict[str, str | None] = {}
    events: list[Event] = []      # driver-monitor events decided on this frame (topic `event`)


class ResultsEnd(Struct, tag_field="type", tag="end"):
    source: str
    frames: int
    reason: str = "end of source"


# ---- codecs --------------------------------------------------------------------------------------

_encoder = msgspec.json.Encoder()
_header_decoder = msgspec.json.Decoder(StageMessage)
_published_decoder = msgspec.json.Decoder(Published)
_report_decoder = msgspec.json.Decoder(StageReport)
_result_decoder = msgspec.json.Decoder(Result | ResultsEnd)


def encode(message: Struct) -> bytes:
    return _encoder.encode(message)


def to_builtins(message: Struct) -> dict:
    """A message as plain dicts and lists (what a JSON parser in any language gives)."""
    return msgspec.to_builtins(message)


def decode_header(data) -> StageMessage:
    return _header_decoder.decode(data)


def decode_published(data) -> Published:
    return _published_decoder.decode(data)


def decode_report(data) -> StageReport:
    return _report_decoder.decode(data)


def decode_result(data) -> Result | ResultsEnd:
    return _result_decoder.decode(data)


DecodeError = (msgspec.ValidationError, msgspec.DecodeError)


def published_schemas() -> dict[str, dict]:
    """{topic: JSON Schema} of the published topics, as shipped in schemas/."""
    schemas = {}
    for topic, kind in (("emotion", Emotion), ("status", Status), ("event", Event)):
        schema = msgspec.json.schema(kind)
        schema = {"$schema": "https://json-schema.org/draft/2020-12/schema",
                  "$id": f"{kind.__struct_config__.tag}", "title": f"exprada {topic} message", **schema}
        schemas[topic] = schema
    return schemas


def schema_file(topic: str) -> Path:
    return SCHEMA_DIR / f"{topic}.schema.json"


def write_schemas() -> list[Path]:
    written = []
    for topic, schema in published_schemas().items():
        path = schema_file(topic)
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(schema, indent=2) + "\n")
        written.append(path)
    return written


if __name__ == "__main__":
    import argparse
    argparse.ArgumentParser(prog="python -m pipeline.messages",
                            description="rewrite schemas/ (the published topics' JSON Schemas) from the message "
                                        "types in pipeline/messages.py").parse_args()
    for written in write_schemas():
        print(written)
