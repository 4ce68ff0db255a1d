"""One stage's loop between its sockets: capture (source → frames), face / translate / classify
(frame → frame), decide (frame → emotion message on the PUB socket).

Each stage binds its own input (a restarted stage takes up the same address; upstream PUSH sockets
reconnect by themselves) and reports its counters to the supervisor once a second. A frame whose
processing raises is forwarded as `valid: false` with the reason, and counted; a crash of the whole
process is the supervisor's business.
"""
from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

import zmq

from pipeline import messages
from pipeline.config import STAGES, PipelineConfig
from pipeline.sources import SourceError
from pipeline.transport import LIVE, Counters, Inlet, Outlet, Ticker, endpoint, send_waiting

NEXT = dict(zip(STAGES, STAGES[1:]))
FATAL = 3            # exit code: a setup error (bad model, port taken) that a restart cannot fix
FLUSH_MS = 2000      # at end of stream, how long a closing socket may take to deliver what it holds
GO_FILE = "go"       # the supervisor writes it when every stage is ready; capture waits for it


class Stats:
    """The stage's counters to the supervisor, a few times a second, never blocking."""

    def __init__(self, ctx, run_dir, name, counters: Counters, period: float, replica: int = 0):
        self.name, self.counters, self.extra = name, counters, {"replica": replica}
        self.sock = ctx.socket(zmq.PUSH)
        self.sock.setsockopt(zmq.SNDHWM, 16)
        self.sock.setsockopt(zmq.LINGER, 200)
        self.sock.connect(endpoint(run_dir, "stats"))
        self.tick = Ticker(period)

    def send(self, force=False, **fields):
        self.extra.update(fields)
        if not (force or self.tick()):
            return
        report = {"stage": self.name, "pid": os.getpid(), "thread": threading.get_ident(),
                  "t_ns": time.monotonic_ns(), **asdict(self.counters), **self.extra}
        try:
            self.sock.send_json(report, zmq.NOBLOCK)
        except zmq.Again:
            pass

    def close(self):
        self.sock.close()


def run_stage(name: str, config: PipelineConfig, ctx: zmq.Context, run_dir, should_stop, skip: int = 0,
              go=lambda: True) -> int:
    """Run one stage until end of stream or `should_stop()`; capture starts when `go()` says so.
    name: a stage, or face.R for the face stage's replica R."""
    stage, _, replica = name.partition(".")
    replica = int(replica or 0)
    counters = Counters()
    # Reports come 4× per status period so the status compares counters of about the same moment.
    stats = Stats(ctx, run_dir, stage, counters, config.status_period_s / 4, replica)
    try:
        if stage == "capture":
            return run_capture(config, ctx, run_dir, should_stop, counters, stats, skip, go)
        if stage == "decide":
            return run_decide(config, ctx, run_dir, should_stop, counters, stats)
        return run_transform(stage, replica, config, ctx, run_dir, should_stop, counters, stats)
    except (OSError, ValueError, zmq.ZMQError, SourceError) as error:
        # Setup went wrong (model file, port in use, unwritable output, source gone): say what, do not retry.
        print(f"exprada pipeline: stage {name}: {error}", file=sys.stderr, flush=True)
        stats.send(force=True, fatal=str(error))
        return FATAL
    finally:
        stats.close()


def run_capture(config, ctx, run_dir, should_stop, counters, stats, skip, go) -> int:
    from pipeline.record import FrameRecorder
    from pipeline.sources import open_source

    outlets = [Outlet(ctx, endpoint(run_dir, f"in-face.{r}"), config.mode, counters)
               for r in range(config.face_workers)]
    source = None

    def waiting():
        """Called while pacing or waiting for room downstream: keep reporting, so a stage that is
        only waiting is not taken for hung."""
        stats.send(source=source.status.as_dict() if source else None)
        return should_stop()

    source = open_source(resolve_source(config.source), fast=config.fast, skip=skip,
                         pixel_format=config.pixel_format, fps=config.folder_fps, should_stop=waiting)
    recorder = FrameRecorder(config.record) if config.record else None
    while not go() and not should_stop():
        time.sleep(0.02)
    try:
        for captured in source.frames():
            if captured is None:   # the camera is reconnecting: say so on the status stream
                stats.send(source=source.status.as_dict())
                continue
            header = messages.new_header(captured.index, source.name, captured.t_capture_ns, truth=captured.truth)
            if recorder:
                recorder.write(captured)
            messages.stamp(header, "capture", captured.t_capture_ns, time.monotonic_ns())
            send_to_face(outlets, captured.index, header, {"frame": captured.frame}, config.mode, counters, waiting)
            stats.send(source=source.status.as_dict())
            if config.max_frames and captured.index + 1 >= config.max_frames:
                source.status.state = "ended"
                break
        if not should_stop():
            note = source.status.note
            if note:
                print(f"exprada pipeline: {note}", file=sys.stderr, flush=True)
            for out in outlets:   # every face replica must hear the end
                out.send(messages.end_of_stream(source.name, counters.frames_out, note or "end of source"),
                         should_stop=should_stop)
            linger_until_stopped(stats, should_stop)
    finally:
        stats.send(force=True, source=source.status.as_dict())
        source.close()
        if recorder:
            recorder.close()
        for out in outlets:
            out.close(0 if should_stop() else FLUSH_MS)
    return 0


def send_to_face(outlets, index, header, arrays, mode, counters, waiting):
    """Frame i goes to face replica i mod N (each replica tracks every Nth frame). Live: if that one is
    busy, to any replica with room; if none has, the frame is dropped (counted)."""
    first = index % len(outlets)
    if mode != LIVE:
        header["replica"] = first
        outlets[first].send(header, arrays, waiting)
        return
    for k in range(len(outlets)):
        header["replica"] = (first + k) % len(outlets)
        if outlets[header["replica"]].offer(header, arrays):
            return
    counters.drops += 1


def resolve_source(spec: str) -> str:
    if spec == "demo":
        from pipeline.demo import demo_video
        return str(demo_video())
    return spec


def run_transform(name, replica, config, ctx, run_dir, should_stop, counters, stats) -> int:
    from pipeline.steps import STEPS

    address = f"in-face.{replica}" if name == "face" else f"in-{name}"
    inlet = Inlet(ctx, endpoint(run_dir, address), config.mode, counters, config.max_bytes)
    out = Outlet(ctx, endpoint(run_dir, f"in-{NEXT[name]}"), config.mode, counters)
    step = STEPS[name](config)
    stats.send(force=True, ready=True)
    finished = False
    ends_expected = config.face_workers if name == "translate" else 1   # one end of stream per face replica
    ends = 0

    def waiting():   # blocked on a full queue downstream: still alive, say so
        stats.send()
        return should_stop()

    try:
        while not should_stop():
            stats.send()
            message = inlet.receive()
            if message is None:
                continue
            header, arrays = message
            if header.get("eos"):
                ends += 1
                if ends < ends_expected:
                    continue
                out.send(header, should_stop=should_stop)
                finished = True
                linger_until_stopped(stats, should_stop)
                break
            started = time.monotonic_ns()
            try:
                header, arrays = step(header, arrays)
            except Exception as error:  # a bad frame must not take the stage down: publish why instead
                counters.errors += 1
                header["valid"], header["reason"], arrays = False, f"{name} failed: {error}", {}
            messages.stamp(header, name, started, time.monotonic_ns())
            out.send(header, arrays, waiting)
    finally:
        stats.send(force=True)
        step.close()
        inlet.close()
        out.close(FLUSH_MS if finished else 0)
    return 0


LIVE_PATIENCE_S = 0.05     # live: how long decide holds a frame for an earlier one from another replica
REPLAY_PATIENCE_S = 5.0    # replay: long enough for a crashed face replica to come back


def run_decide(config, ctx, run_dir, should_stop, counters, stats) -> int:
    from pipeline.decide import Decider, Merger, emotion_message, result_record
    from pipeline.overlay import OverlayWriter

    inlet = Inlet(ctx, endpoint(run_dir, "in-decide"), config.mode, counters, config.max_bytes)
    status_in = ctx.socket(zmq.PULL)
    status_in.setsockopt(zmq.LINGER, 0)
    status_in.bind(endpoint(run_dir, "status-in"))
    publisher = open_publisher(ctx, config.publish)
    results = ctx.socket(zmq.PUSH)
    results.setsockopt(zmq.SNDHWM, 1000)
    results.setsockopt(zmq.LINGER, FLUSH_MS)
    results.connect(endpoint(run_dir, "results"))
    decider = Decider(config.classes)
    merger = Merger(config.face_workers, LIVE_PATIENCE_S if config.mode == LIVE else REPLAY_PATIENCE_S)
    overlay = OverlayWriter(config.save_video, config.display, config.classes) if config.overlay else None
    poller = zmq.Poller()
    poller.register(inlet.sock, zmq.POLLIN)
    poller.register(status_in, zmq.POLLIN)
    last_id = -1

    def publish_frame(header, arrays):
        nonlocal last_id
        if header["frame_id"] <= last_id:
            counters.drops += 1   # too late (live) or a repeat after a capture restart: results leave in order
            return
        last_id = header["frame_id"]
        started = time.monotonic_ns()
        smoothed = decider.update(header.get("probs") if header.get("valid") else None)
        messages.stamp(header, "decide", started, time.monotonic_ns())
        emotion = emotion_message(header, smoothed, config.classes, time.monotonic_ns())
        publish(publisher, b"emotion", json.dumps(emotion, separators=(",", ":")).encode())
        counters.frames_out += 1
        counters.last_frame_id = last_id
        record = json.dumps(result_record(header, emotion, config.classes)).encode()
        if config.mode == LIVE:
            try:
                results.send(record, zmq.NOBLOCK)
            except zmq.Again:
                pass
        else:
            send_waiting(results, [record], should_stop, copy=True)
        if overlay:
            overlay.write(arrays, emotion)

    stats.send(force=True, ready=True)
    try:
        while not should_stop():
            stats.send()
            ready = dict(poller.poll(10 if merger.waiting else 100))
            if status_in in ready:
                forward_status(status_in, publisher)
            message = inlet.receive(0) if inlet.sock in ready or inlet.pending is not None else None
            if message is not None and message[0].get("eos"):
                for header, arrays in merger.pop(flush=True):
                    publish_frame(header, arrays)
                send_waiting(results, [json.dumps({"eos": True, **message[0]}).encode()], should_stop, copy=True)
                linger_until_stopped(stats, should_stop)
                break
            if message is not None:
                merger.push(*message)
            for header, arrays in merger.pop():
                publish_frame(header, arrays)
    finally:
        stats.send(force=True)
        if overlay:
            overlay.close()
        inlet.close()
        status_in.close(0)
        publisher.close(0)
        results.close(0 if should_stop() else FLUSH_MS)
    return 0


def linger_until_stopped(stats, should_stop):
    """After the end of stream: keep every socket open until the supervisor stops the run. A stage
    that left at once would disconnect from the next one, and ZeroMQ may drop what the next stage had
    received from it but not yet read (seen: the last frames of one face replica)."""
    while not should_stop():
        stats.send()
        time.sleep(0.02)


PUB_HWM = 1000   # messages queued per subscriber; beyond that a slow subscriber loses them


def open_publisher(ctx: zmq.Context, address: str) -> zmq.Socket:
    publisher = ctx.socket(zmq.PUB)
    publisher.setsockopt(zmq.SNDHWM, PUB_HWM)
    publisher.setsockopt(zmq.LINGER, 0)
    try:
        publisher.bind(address)
    except zmq.ZMQError as error:
        raise OSError(f"cannot publish on {address}: {error}") from None
    return publisher


def publish(publisher: zmq.Socket, topic: bytes, payload: bytes):
    """Never waits: PUB drops for a subscriber at its high-water mark instead of blocking us."""
    try:
        publisher.send_multipart([topic, payload], zmq.NOBLOCK)
    except zmq.Again:
        pass


def forward_status(status_in, publisher):
    while True:
        try:
            payload = status_in.recv(zmq.NOBLOCK)
        except zmq.Again:
            return
        publish(publisher, b"status", payload)


# ---- process entry -----------------------------------------------------------------------------

def die_with_parent():
    """Linux: the kernel sends SIGTERM to this process when its parent dies, so no stage is orphaned."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def stage_process(name: str, config: PipelineConfig, run_dir: str, parent_pid: int, skip: int = 0):
    """Entry point of a stage process (multiprocessing 'spawn': nothing inherited but arguments)."""
    die_with_parent()
    if os.getppid() != parent_pid:   # the parent died before prctl took effect
        sys.exit(0)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    ctx = zmq.Context()   # made here, after the process started: contexts never cross a fork
    try:
        go_file = Path(run_dir) / GO_FILE
        code = run_stage(name, config, ctx, run_dir, lambda: stop.is_set() or os.getppid() != parent_pid, skip,
                         go=go_file.exists)
    finally:
        ctx.destroy(linger=0)
    sys.exit(code)
