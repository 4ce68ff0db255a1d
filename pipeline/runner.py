"""One worker's loop between its sockets (pipeline/stages.py): the source stage makes frames
(capture), each transform stage maps a frame to a frame through its steps (face, translate,
classify: one each, or all three), the sink stage publishes (decide).

Each worker binds its own input (a restarted worker takes up the same address; upstream PUSH sockets
reconnect by themselves) and reports its counters to the supervisor four times per status period. A
frame whose processing raises is forwarded as `valid: false` with the reason, and counted; a crash of
the whole process is the supervisor's business. In a replay, capture keeps what it sent until it is
published and sends it again when the supervisor restarts a stage (pipeline/progress.py), and decide
publishes in capture's order, each frame once.
"""
from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from collections import OrderedDict
from pathlib import Path

import zmq

from pipeline import progress, wire
from pipeline.config import PipelineConfig
from pipeline.messages import (Counters, EndOfStream, FrameHeader, ResultsEnd, SourceStatus, StageReport, encode,
                               new_header)
from pipeline.sources import SourceError
from pipeline.stages import SINK, SOURCE, Worker, ends_expected, fan_out, outlets
from pipeline.steps import run_steps
from pipeline.transport import LIVE, Ticker, endpoint, open_inlet, open_outlet, send_waiting

FATAL = 3            # exit code: a setup error (bad model, port taken) that a restart cannot fix
FLUSH_MS = 2000      # at end of stream, how long a closing socket may take to deliver what it holds
GO_FILE = "go"       # the supervisor writes it when every stage is ready; capture waits for it


class Reporter:
    """The worker's counters to the supervisor, a few times a status period, never blocking."""

    def __init__(self, ctx, run_dir, worker: Worker, counters: Counters, period: float, token: bytes):
        self.report = StageReport(stage=worker.stage.name, replica=worker.replica, pid=os.getpid(),
                                  thread=threading.get_ident(), t_ns=0, counters=counters)
        self.token = token
        self.sock = ctx.socket(zmq.PUSH)
        self.sock.setsockopt(zmq.SNDHWM, 16)
        self.sock.setsockopt(zmq.LINGER, 200)
        self.sock.connect(endpoint(run_dir, "stats"))
        self.tick = Ticker(period)

    def send(self, force=False, *, ready: bool | None = None, fatal: str | None = None,
             source: SourceStatus | None = None):
        if ready is not None:
            self.report.ready = ready
        if fatal is not None:
            self.report.fatal = fatal
        if source is not None:
            self.report.source = source
        if not (force or self.tick()):
            return
        self.report.t_ns = time.monotonic_ns()
        try:
            self.sock.send_multipart(wire.seal(encode(self.report), self.token), zmq.NOBLOCK)
        except zmq.Again:
            pass

    def close(self):
        self.sock.close()


def run_stage(worker: Worker, config: PipelineConfig, ctx: zmq.Context, run_dir, should_stop, skip: int = 0,
              go=lambda: True) -> int:
    """Run one worker until `should_stop()`; the source starts when `go()` says so, at frame `skip`."""
    counters = Counters()
    # Reports come 4× per status period so the status compares counters of about the same moment.
    reporter = Reporter(ctx, run_dir, worker, counters, config.status_period_s / 4, config.token)
    try:
        if worker.stage.role == SOURCE:
            return run_capture(worker, config, ctx, run_dir, should_stop, counters, reporter, skip, go)
        if worker.stage.role == SINK:
            return run_decide(worker, config, ctx, run_dir, should_stop, counters, reporter)
        return run_transform(worker, config, ctx, run_dir, should_stop, counters, reporter)
    except (OSError, ValueError, zmq.ZMQError, SourceError) as error:
        # Setup went wrong (model file, port in use, unwritable output, source gone): say what, do not retry.
        print(f"exprada pipeline: stage {worker.name}: {error}", file=sys.stderr, flush=True)
        reporter.send(force=True, fatal=str(error))
        return FATAL
    finally:
        reporter.close()


class Unpublished:
    """Replay: the frames capture sent that decide has not published yet, in the order sent, to send
    again when the supervisor asks (a stage that held some of them was restarted). Threads
    (--single-process, no run folder) are not restarted one by one: there only the order is kept."""

    LIMIT = 256   # frames; capture waits for decide beyond it (back-pressure keeps far fewer in flight)

    def __init__(self, run_dir):
        self.keep = run_dir is not None
        self.frames: OrderedDict[int, tuple[FrameHeader, dict]] = OrderedDict()
        self.published, self.resends = progress.published(run_dir), progress.resends(run_dir)
        self.resends_seen = self.resends.read()
        self.last_sent = self.published.read()   # a restarted capture chains on from what was published

    def sent(self, header: FrameHeader, arrays: dict):
        if self.keep:
            self.frames[header.frame_id] = (header, arrays)
        self.last_sent = header.frame_id

    def trim(self) -> int:
        """Forget what decide has published; returns the last published frame's id."""
        published = self.published.read()
        while self.frames and next(iter(self.frames)) <= published:
            self.frames.popitem(last=False)
        return published

    def resend_asked(self) -> bool:
        asked = self.resends.read()
        if asked == self.resends_seen:
            return False
        self.resends_seen = asked
        return True

    def resend_pending(self) -> bool:
        """A resend is asked and not yet done (resend_asked() takes it)."""
        return self.resends.read() != self.resends_seen

    def close(self):
        self.published.close()
        self.resends.close()


def run_capture(worker, config, ctx, run_dir, should_stop, counters, reporter, skip, go) -> int:
    from pipeline.record import FrameRecorder
    from pipeline.sources import open_source

    outs = [open_outlet(ctx, run_dir, worker.name, address, config, counters) for address in outlets(worker, config)]
    unpublished = Unpublished(run_dir) if config.mode != LIVE else None
    source = None

    def waiting():
        """Called while pacing or waiting for room downstream: keep reporting, so a stage that is
        only waiting is not taken for hung. Replay: the slots of frames decide has published come
        free (the frames made in their slots are kept there until then). A stage restarted after a
        hang may have died with every slot of its ring, and no slot comes back before its frames are
        published, which waits for the resend this wait holds up: once a resend is asked, every slot
        comes back now (the resend that follows sends all unpublished frames again anyway)."""
        reporter.send(source=source.status if source else None)
        if unpublished:
            published = unpublished.trim()
            for out in outs:
                out.reclaim(published)
            if unpublished.resend_pending():
                for out in outs:
                    out.reclaim()
        return should_stop()

    def keep_up(end: EndOfStream | None = None):
        """Replay: forget what is published; send the rest again if asked (and the end, once sent);
        wait while too much is unpublished."""
        while True:
            published = unpublished.trim()
            for out in outs:
                out.reclaim(published)
            if unpublished.resend_asked():
                for out in outs:   # whatever the frames' slots were, every one of them comes again
                    out.reclaim()
                for header, arrays in list(unpublished.frames.values()):
                    outs[header.replica].send(header, arrays, waiting)
                    counters.resent += 1
                if end is not None:
                    send_end(end)
            if len(unpublished.frames) < Unpublished.LIMIT or should_stop():
                return
            waiting()
            time.sleep(0.01)

    def send_end(end: EndOfStream):
        for replica, out in enumerate(outs):   # every replica must hear the end
            end.replica = replica
            out.send(end, should_stop=should_stop)

    source = open_source(resolve_source(config.source), fast=config.fast, skip=skip,
                         pixel_format=config.pixel_format, fps=config.folder_fps, should_stop=waiting)
    recorder = FrameRecorder(config.record, run=config.run_id) if config.record else None
    while not go() and not should_stop():
        time.sleep(0.02)

    def buffer_for(index, shape, dtype):
        """Frame `index` decoded straight into a slot of the outlet it will leave by (the first choice
        of send_to_replicas; a live frame that goes elsewhere is copied there)."""
        return outs[index % len(outs)].lease(index, shape, dtype)

    try:
        for captured in source.frames(buffer_for):
            if captured is None:   # the camera is reconnecting: say so on the status stream
                reporter.send(source=source.status)
                continue
            header = new_header(captured.index, source.name, captured.t_capture_ns, truth=captured.truth,
                                t_media_ns=captured.media_ns)
            if recorder:
                recorder.write(captured)
            header.stamp("capture", captured.t_capture_ns, time.monotonic_ns())
            arrays = {"frame": captured.frame}
            if unpublished:
                header.previous_id = unpublished.last_sent
            send_to_replicas(outs, header, arrays, config.mode, counters, waiting)
            if unpublished:
                unpublished.sent(header, arrays)
                keep_up()
            reporter.send(source=source.status)
            if config.max_frames and captured.index + 1 >= config.max_frames:
                source.status.state = "ended"
                break
        if not should_stop():
            note = source.status.note
            if note:
                print(f"exprada pipeline: {note}", file=sys.stderr, flush=True)
            end = EndOfStream(source.name, counters.frames_out, note or "end of source",
                              last_id=unpublished.last_sent if unpublished else -1)
            reporter.send(force=True, source=source.status)   # the final counts (skipped) before the run can end
            send_end(end)
            while not should_stop():   # until the supervisor stops the run, resend on request
                reporter.send()
                if unpublished:
                    keep_up(end)
                time.sleep(0.02)
    finally:
        reporter.send(force=True, source=source.status)
        source.close()
        if recorder:
            recorder.close()
        if unpublished:
            unpublished.close()
        for out in outs:
            out.close(0 if should_stop() else FLUSH_MS)
    return 0


def send_to_replicas(outs, header: FrameHeader, arrays, mode, counters, waiting):
    """Frame i goes to replica i mod N (each replica tracks every Nth frame). Live: if that one is
    busy, to any replica with room; if none has, the frame is dropped (counted)."""
    first = header.frame_id % len(outs)
    if mode != LIVE:
        header.replica = first
        outs[first].send(header, arrays, waiting)
        return
    for k in range(len(outs)):
        header.replica = (first + k) % len(outs)
        if outs[header.replica].offer(header, arrays):
            return
    counters.drops += 1


def resolve_source(spec: str) -> str:
    if spec == "demo":
        from pipeline.demo import demo_video
        return str(demo_video())
    return spec


def run_transform(worker, config, ctx, run_dir, should_stop, counters, reporter) -> int:
    inlet = open_inlet(ctx, run_dir, worker.inlet, config, counters)
    (address,) = outlets(worker, config)
    out = open_outlet(ctx, run_dir, worker.name, address, config, counters)
    steps = [step(config) for step in worker.stage.steps]
    reporter.send(force=True, ready=True)
    finished = False
    ends, expected = set(), ends_expected(worker.stage, config)

    def waiting():   # blocked on a full queue downstream: still alive, say so
        reporter.send()
        return should_stop()

    try:
        # Runs until stopped, also after the end of stream: frames sent again after a restart
        # downstream, and the end with them, still pass through (and the sockets stay open, so
        # nothing sent is dropped by a disconnect).
        while not should_stop():
            reporter.send()
            message = inlet.receive()
            if message is None:
                continue
            header, arrays = message
            if isinstance(header, EndOfStream):
                ends.add(header.replica)
                if len(ends) >= expected:   # one from each worker before this stage
                    header.replica = worker.replica
                    out.send(header, should_stop=should_stop)
                    ends.clear()
                    finished = True
                continue
            header, arrays, failed = run_steps(steps, header, arrays)
            counters.errors += failed
            if not inlet.intact():   # its frame's memory was taken back meanwhile: never publish that
                counters.stale += 1
                counters.drops += config.mode == LIVE   # replay: the resend brings the frame again
                continue
            out.send(header, arrays, waiting)
    finally:
        reporter.send(force=True)
        for step in steps:
            step.close()
        inlet.close()
        out.close(FLUSH_MS if finished else 0)
    return 0


LIVE_PATIENCE_S = 0.05     # live: how long decide holds a frame for an earlier one from another replica


class Publisher:
    """The PUB socket every subscriber reads: `emotion` from decide, `status` from the supervisor;
    with a CURVE key, encrypted and open only to the subscribers whose keys are known."""

    HWM = 1000   # messages queued per subscriber; beyond that a slow subscriber loses them

    def __init__(self, ctx: zmq.Context, address: str, curve_secret_key=None, curve_clients=None):
        from pipeline.curve import serve_curve

        self.sock = ctx.socket(zmq.PUB)
        self.sock.setsockopt(zmq.SNDHWM, self.HWM)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.auth = None
        try:
            if curve_secret_key:
                self.auth = serve_curve(ctx, self.sock, curve_secret_key, curve_clients)
            self.sock.bind(address)
        except zmq.ZMQError as error:
            self.close()
            raise OSError(f"cannot publish on {address}: {error}") from None
        except ValueError:
            self.close()
            raise

    def publish(self, topic: bytes, payload: bytes):
        """Never waits: PUB drops for a subscriber at its high-water mark instead of blocking us."""
        try:
            self.sock.send_multipart([topic, payload], zmq.NOBLOCK)
        except zmq.Again:
            pass

    def close(self):
        self.sock.close(0)
        if self.auth:
            self.auth.stop()


class ResultsOut:
    """Decide → supervisor: one Result per published frame, for the summary and --record. Live: never
    waits (a result the supervisor has no room for is lost to the summary only); replay: lossless."""

    def __init__(self, ctx, run_dir, mode, should_stop, token: bytes):
        self.mode, self.should_stop, self.token = mode, should_stop, token
        self.sock = ctx.socket(zmq.PUSH)
        self.sock.setsockopt(zmq.SNDHWM, 1000)
        self.sock.setsockopt(zmq.LINGER, FLUSH_MS)
        self.sock.connect(endpoint(run_dir, "results"))

    def send(self, message):
        parts = wire.seal(encode(message), self.token)
        if self.mode == LIVE and not isinstance(message, ResultsEnd):
            try:
                self.sock.send_multipart(parts, zmq.NOBLOCK)
            except zmq.Again:
                pass
        else:
            send_waiting(self.sock, parts, self.should_stop, copy=True)

    def close(self, flush_ms):
        self.sock.close(flush_ms)


def run_decide(worker, config, ctx, run_dir, should_stop, counters, reporter) -> int:
    from pipeline.decide import DecideStep, Merger, ReplayOrder
    from pipeline.overlay import OverlayWriter

    inlet = open_inlet(ctx, run_dir, worker.inlet, config, counters)
    status_in = ctx.socket(zmq.PULL)
    status_in.setsockopt(zmq.LINGER, 0)
    status_in.setsockopt(zmq.MAXMSGSIZE, wire.MAX_CONTROL_BYTES)
    status_in.bind(endpoint(run_dir, "status-in"))
    publisher = Publisher(ctx, config.publish, config.curve_secret_key, config.curve_clients)
    results = ResultsOut(ctx, run_dir, config.mode, should_stop, config.token)
    decide = DecideStep(config.classes, config.dms)
    published = progress.published(run_dir)   # a restarted decide takes up where the last one stopped
    last_id = published.read()
    # Replay: capture's order, each frame once, however late a frame comes. Live: frames from the
    # replicas put back in order, waiting a little for a late one (a dropped frame never comes).
    order = Merger(fan_out(config), LIVE_PATIENCE_S) if config.mode == LIVE else ReplayOrder(last_id)
    overlay = OverlayWriter(config.save_video, config.display, config.classes) if config.overlay else None
    poller = zmq.Poller()
    poller.register(inlet.sock, zmq.POLLIN)
    poller.register(status_in, zmq.POLLIN)
    end, ends, expected = None, set(), ends_expected(worker.stage, config)

    def publish_frame(header, arrays):
        nonlocal last_id
        if header.frame_id <= last_id:
            counters.drops += 1   # live: too late, a later frame has gone
            return
        last_id = header.frame_id
        result = decide(header)
        publisher.publish(b"emotion", encode(result.emotion))
        for event in result.events:
            publisher.publish(b"event", encode(event))
        published.write(last_id)
        counters.frames_out += 1
        counters.last_frame_id = last_id
        results.send(result)
        if overlay:
            overlay.write(arrays, result.emotion, result.truth)

    reporter.send(force=True, ready=True)
    try:
        while not should_stop():
            reporter.send()
            ready = dict(poller.poll(10 if order.waiting else 100))
            if status_in in ready:
                forward_status(status_in, publisher, config.token, counters)
            message = inlet.receive(0) if inlet.sock in ready or inlet.pending is not None else None
            if message is not None and message[1]:
                # the overlay's images: decide may hold them past its next receive (putting frames
                # back in order), when shared-memory slots go back to their senders: its own copies
                message = message[0], {name: array.copy() for name, array in message[1].items()}
            if message is not None and isinstance(message[0], EndOfStream):
                ends.add(message[0].replica)
                if len(ends) >= expected:   # one from each worker before this stage (fused: each replica)
                    end = message[0]
            elif message is not None and not order.push(*message):
                counters.duplicates += 1   # replay: a copy of a frame already published
            for header, arrays in order.pop(flush=end is not None and config.mode == LIVE):
                publish_frame(header, arrays)
            if end is not None and (config.mode == LIVE or last_id >= end.last_id):
                results.send(ResultsEnd(end.source, end.frames, end.reason))
                # the supervisor's last status (the run's end) still goes out while decide waits
                linger_until_stopped(reporter, should_stop,
                                     lambda: forward_status(status_in, publisher, config.token, counters))
                break
    finally:
        reporter.send(force=True)
        if overlay:
            overlay.close()
        published.close()
        inlet.close()
        status_in.close(0)
        publisher.close()
        results.close(0 if should_stop() else FLUSH_MS)
    return 0


def forward_status(status_in, publisher: Publisher, token: bytes, counters: Counters):
    """The supervisor's status messages onto the PUB socket; anything else on the socket is counted
    and dropped, so no peer can put words in the status stream."""
    while True:
        try:
            parts = status_in.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return
        try:
            publisher.publish(b"status", wire.unseal(parts, token))
        except wire.BadMessage:
            counters.malformed += 1


def linger_until_stopped(reporter, should_stop, meanwhile=None):
    """After the end of stream: keep every socket open until the supervisor stops the run. A stage
    that left at once would disconnect from the next one, and ZeroMQ may drop what the next stage had
    received from it but not yet read (seen: the last frames of one face replica). `meanwhile`: what
    the stage still does while it waits."""
    while not should_stop():
        reporter.send()
        if meanwhile:
            meanwhile()
        time.sleep(0.02)


# ---- process entry -----------------------------------------------------------------------------

def die_with_parent():
    """Linux: the kernel sends SIGTERM to this process when its parent dies, so no stage is orphaned."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def stage_process(worker: Worker, config: PipelineConfig, run_dir: str, parent_pid: int, skip: int = 0):
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
        code = run_stage(worker, config, ctx, run_dir, lambda: stop.is_set() or os.getppid() != parent_pid, skip,
                         go=go_file.exists)
    finally:
        ctx.destroy(linger=0)
    sys.exit(code)
