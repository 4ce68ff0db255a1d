"""The supervisor: starts one process per worker of the stage table (pipeline/stages.py; or one thread
each, --single-process; see pipeline/workers.py), restarts a worker that crashes or hangs, publishes
the status once per status period (default 1 s),
collects every published frame for the summary and --record, and on Ctrl-C / SIGTERM stops every
stage within 2 s. Stage processes die with the supervisor (PR_SET_PDEATHSIG, pipeline/runner.py).
"""
from __future__ import annotations

import secrets
import shutil
import signal
import sys
import threading
import time
from collections import defaultdict, deque
from pathlib import Path

import zmq

import msgspec

from pipeline import progress, rundirs, runner, wire
from pipeline.config import PipelineConfig, resolve_models
from pipeline.curve import check_publish_address, server_keys
from pipeline.messages import (COUNTERS, DecodeError, Result, SourceStatus, StageStatus, Status, decode_report,
                               decode_result, encode)
from pipeline.record import JsonLines
from pipeline.stages import SINK, SOURCE, Worker, stage_table, workers
from pipeline.summary import Tally
from pipeline.transport import LIVE, Ticker, endpoint
from pipeline.workers import ProcessWorker, ThreadWorker

STOP_GRACE_S = 1.5    # SIGTERM, then SIGKILL: everything is gone within 2 s of Ctrl-C
SUBSCRIBER_GRACE_S = 0.5  # after the PUB socket is up, time for subscribers to connect before frame 0
END_GRACE_S = 0.2    # after the last status: time for decide (polling every 20–100 ms) to publish it


class Supervisor:
    def __init__(self, config: PipelineConfig, on_message=None):
        self.config = config
        self.on_message = on_message        # called with each collected record (tests, tools)
        self.stop = threading.Event()
        self.go = threading.Event()           # single-process mode; processes look for runner.GO_FILE
        self.tally = None   # made once the models' class names are known
        self.stats_in = self.results_in = self.status_out = None
        self.published = self.resends = None    # the replay's progress (pipeline/progress.py)
        self.emotion_log = self.status_log = self.event_log = None
        self.stages = stage_table(config)      # the run's layout (pipeline/stages.py)
        self.reports = {stage.name: {} for stage in self.stages}  # stage → {(pid, thread): latest StageReport}
        self.restarts = defaultdict(deque)      # worker → times of its recent restarts
        self.restart_count = defaultdict(int)   # worker → restarts so far
        self.workers = {}                       # Worker → its handle (process or thread)
        self.finished = set()                   # workers that ended cleanly
        self.error = None
        self.interrupted = None                 # the signal that stopped the run: SIGINT | SIGTERM
        self.end_note = None
        self.ready_since = None
        self.eos_seen = False
        self.heard = {}     # (stage, pid) → when its last report came

    # ---- lifecycle ---------------------------------------------------------------------------

    def run(self) -> dict:
        """Run to the end of the source (replay), max_frames, or a stop request; return the summary."""
        check_source(self.config)
        resolve_models(self.config)
        warning = check_publish_address(self.config.publish, self.config.allow_remote)
        if self.config.curve_secret_key:
            server_keys(self.config.curve_secret_key, self.config.curve_clients)
        if warning:
            print(f"exprada pipeline: warning: {warning}"
                  f"{'' if self.config.curve_secret_key else ', unencrypted and open to anyone (no --curve-secret-key)'}",
                  file=sys.stderr, flush=True)
        self.tally = Tally(self.config.classes)
        self.config.run_token = secrets.token_hex(16)   # the stages get it with their config, no one else
        rundirs.remove_stale_run_dirs()   # left by a supervisor killed outright (SIGKILL)
        self.run_dir = None if self.config.single_process else rundirs.make_run_dir()
        self.malformed = 0   # junk refused on the supervisor's own sockets
        previous = self._install_signals()
        self.ctx = zmq.Context()
        try:
            self._open_sockets()
            for worker in workers(self.config):
                self._start(worker)
            self._loop()
            self._publish_end()
        finally:
            self._shutdown()
            self._restore_signals(previous)
        summary = self.tally.summary(self.run_totals(), self.skipped())
        if self.end_note:
            summary["note"] = self.end_note
        if self.error:
            summary["error"] = self.error
        if self.interrupted:
            summary["interrupted"] = self.interrupted
        return summary

    def _install_signals(self):
        if threading.current_thread() is not threading.main_thread():
            return None

        def handler(signum, _frame):
            self.interrupted = self.interrupted or signal.Signals(signum).name
            self.stop.set()

        return {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}

    def _restore_signals(self, previous):
        for sig, handler in (previous or {}).items():
            signal.signal(sig, handler)

    def _open_sockets(self):
        self.stats_in = self.ctx.socket(zmq.PULL)
        self.stats_in.setsockopt(zmq.MAXMSGSIZE, wire.MAX_CONTROL_BYTES)
        self.stats_in.bind(endpoint(self.run_dir, "stats"))
        self.results_in = self.ctx.socket(zmq.PULL)
        self.results_in.setsockopt(zmq.RCVHWM, 1000)
        self.results_in.setsockopt(zmq.MAXMSGSIZE, wire.MAX_CONTROL_BYTES)
        self.results_in.bind(endpoint(self.run_dir, "results"))
        self.published = progress.published(self.run_dir)
        self.resends = progress.resends(self.run_dir)
        self.status_out = self.ctx.socket(zmq.PUSH)
        self.status_out.setsockopt(zmq.SNDHWM, 2)
        self.status_out.setsockopt(zmq.LINGER, 0)
        self.status_out.connect(endpoint(self.run_dir, "status-in"))
        record = Path(self.config.record) if self.config.record else None
        self.emotion_log = JsonLines(record / "emotion.jsonl") if record else None
        self.status_log = JsonLines(record / "status.jsonl") if record else None
        self.event_log = JsonLines(record / "event.jsonl") if record else None

    def _start(self, worker: Worker, skip=0):
        if self.config.single_process:
            handle = ThreadWorker(worker, self.config, self.ctx, self.stop, self.go, skip)
        else:
            handle = ProcessWorker(worker, self.config, self.run_dir, skip)
        handle.start()
        self.workers[worker] = handle

    def _loop(self):
        poller = zmq.Poller()
        poller.register(self.stats_in, zmq.POLLIN)
        poller.register(self.results_in, zmq.POLLIN)
        status_tick = Ticker(self.config.status_period_s)
        self.last_status = (time.monotonic(), {})
        go_sent = False
        done = False
        while not self.stop.is_set() and not done:
            ready = dict(poller.poll(100))
            if self.stats_in in ready:
                self._drain_stats()
            if self.results_in in ready:
                done = self._drain_results()
            if not go_sent and self._all_ready():
                go_sent = True
                self.go.set()
                if self.run_dir:
                    (Path(self.run_dir) / runner.GO_FILE).touch()
            done = self._check_workers() or done
            if status_tick():
                self._publish_status()
                if self.config.progress:   # rewritten in place: \r, then clear to the end of the line
                    print(f"\r{self.tally.progress_line()}\x1b[K", end="", file=sys.stderr, flush=True)
        if done and not self.eos_seen:
            self._finish_results()
        if self.config.progress:
            print(file=sys.stderr, flush=True)   # the summary starts on a line of its own

    def _all_ready(self):
        ready = all(sum(1 for r in self.reports[stage.name].values() if r.ready) >= stage.replicas(self.config)
                    for stage in self.stages if stage.role != SOURCE)
        if ready and self.ready_since is None:
            self.ready_since = time.monotonic()
        return ready and time.monotonic() - self.ready_since >= SUBSCRIBER_GRACE_S

    def _shutdown(self):
        self.stop.set()
        deadline = time.monotonic() + STOP_GRACE_S
        for worker in self.workers.values():
            worker.terminate()
        for worker in self.workers.values():
            worker.join(max(0.0, deadline - time.monotonic()))
        for worker in self.workers.values():
            if worker.alive:
                worker.kill()
                worker.join(0.3)
        # Stopped by a signal (or an error), decide may have published frames whose results are still
        # on their way: take them until the socket falls quiet, so the summary counts those frames too.
        while self.results_in is not None and not self.eos_seen and self.results_in.poll(50):
            if self._drain_results():
                break
        for sock in (self.stats_in, self.results_in, self.status_out):
            if sock is not None:
                sock.close(0)
        for counter in (self.published, self.resends):
            if counter is not None:
                counter.close()
        for log in (self.emotion_log, self.status_log, self.event_log):
            if log:
                log.close()
        self.ctx.term()
        if self.run_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)

    # ---- what the stages say -----------------------------------------------------------------

    def _receive(self, sock):
        """The payload of the next sealed message on one of the supervisor's sockets, None when there
        is none; junk (no token, wrong parts, oversized) is counted and skipped."""
        while True:
            try:
                parts = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return None
            try:
                return wire.unseal(parts, self.config.token)
            except wire.BadMessage:
                self.malformed += 1

    def _drain_stats(self):
        while (payload := self._receive(self.stats_in)) is not None:
            try:
                report = decode_report(payload)
            except DecodeError:
                self.malformed += 1
                continue
            name = report.stage
            if name in self.reports:
                self.reports[name][(report.pid, report.thread)] = report
                self.heard[(name, report.pid)] = time.monotonic()
                if report.fatal and not self.error:
                    self.error = f"stage {name}: {report.fatal}"

    def _drain_results(self) -> bool:
        while (payload := self._receive(self.results_in)) is not None:
            try:
                message = decode_result(payload)
            except DecodeError:
                self.malformed += 1
                continue
            if not isinstance(message, Result):   # the end of the results
                self.eos_seen = True
                self.end_note = message.reason if message.reason != "end of source" else None
                return True
            self.tally.add(message)
            if self.emotion_log:
                self.emotion_log.write(message.emotion)
                for event in message.events:
                    self.event_log.write(event)
            if self.on_message:
                self.on_message(message)
        return False

    def _finish_results(self, timeout_s: float = 1.0):
        """The run ended without the end-of-stream record yet: take what is still on its way."""
        deadline = time.monotonic() + timeout_s
        while not self.eos_seen and time.monotonic() < deadline:
            if self.results_in.poll(50):
                self._drain_results()
            elif not any(w.stage.role == SINK for w in self.finished):
                return   # decide did not finish cleanly: nothing more is coming

    def _kill_stalled(self):
        """A stage process that has reported before and then falls silent for stall_timeout_s is hung
        (a stuck driver read, a deadlocked library): kill it, and the crash path restarts it."""
        if self.config.single_process or not self.config.stall_timeout_s:
            return
        now = time.monotonic()
        for worker, handle in self.workers.items():
            last = self.heard.get((worker.stage.name, handle.ident))
            if handle.alive and last is not None and now - last > self.config.stall_timeout_s:
                print(f"exprada pipeline: stage {worker.name} silent for {now - last:.0f} s; killing it",
                      file=sys.stderr, flush=True)
                self.heard.pop((worker.stage.name, handle.ident))
                handle.kill()

    def _check_workers(self) -> bool:
        """Restart crashed stages; True when the run is over (decide finished, or a fatal error)."""
        self._kill_stalled()
        for worker, handle in list(self.workers.items()):
            code = handle.exitcode
            if code is None or worker in self.finished or self.stop.is_set():
                continue
            if code == 0:
                self.finished.add(worker)
                if worker.stage.role == SINK:   # decide finished: every result is in
                    return True
                continue
            if code == runner.FATAL:
                self.error = self.error or f"stage {worker.name} could not start (exit code {code})"
                return True
            if not self._may_restart(worker):
                self.error = (f"stage {worker.name} keeps crashing ({self.config.max_restarts} restarts within "
                              f"{self.config.restart_window_s:.0f} s); stopping")
                return True
            skip = self._resume_point(worker)
            print(f"exprada pipeline: stage {worker.name} exited with code {code}; restarting "
                  f"(restart {self.restart_count[worker]})", file=sys.stderr, flush=True)
            self._start(worker, skip)
            if self.config.mode != LIVE and worker.stage.role != SOURCE:
                # It may have died holding frames: capture sends every unpublished frame again
                # (decide drops the copies of those that were not lost).
                self.resends.write(self.resends.read() + 1)
        return False

    def _may_restart(self, worker: Worker) -> bool:
        now = time.monotonic()
        window = self.restarts[worker]
        while window and now - window[0] > self.config.restart_window_s:
            window.popleft()
        if len(window) >= self.config.max_restarts:
            return False
        window.append(now)
        self.restart_count[worker] += 1
        return True

    def _resume_point(self, worker: Worker) -> int:
        """Where a restarted source goes on. Replay: after the last published frame (what it had sent
        beyond that may have died with it). Live: after the last frame it reported sending (a camera
        numbers on from there, so frame ids keep increasing)."""
        if worker.stage.role != SOURCE:
            return 0
        if self.config.mode != LIVE:
            return self.published.read() + 1
        sent = [r.counters.last_frame_id for r in self.reports[worker.stage.name].values()]
        return max(sent, default=-1) + 1

    # ---- status ------------------------------------------------------------------------------

    def stage_totals(self) -> dict:
        """Counters per stage, summed over every incarnation of it (restarts start at zero)."""
        totals = {}
        for stage in self.stages:
            reports = self.reports[stage.name].values()
            total = {key: sum(getattr(r.counters, key) for r in reports) for key in COUNTERS}
            total["restarts"] = sum(self.restart_count[w] for w in workers(self.config, stage))
            totals[stage.name] = total
        return totals

    def run_totals(self) -> dict:
        """The stages' totals and the supervisor's own (junk refused on its sockets), for the summary."""
        return {**self.stage_totals(), "supervisor": {"malformed": self.malformed}}

    def skipped(self) -> int:
        """The frames or files the source skipped, over every incarnation of capture."""
        return sum(r.source.skipped for r in self.reports[self.stages[0].name].values() if r.source)

    def status(self) -> Status:
        now = time.monotonic()
        then, before = self.last_status
        totals = self.stage_totals()
        stages, upstream = {}, None
        for stage in self.stages:
            total = totals[stage.name]
            handles = [self.workers[w] for w in workers(self.config, stage) if w in self.workers]
            fps = (total["frames_out"] - before.get(stage.name, {}).get("frames_out", 0)) / max(now - then, 1e-6)
            queue = 0 if upstream is None else max(
                0, upstream["frames_out"] - total["frames_in"] - total["superseded"])
            stages[stage.name] = StageStatus(
                fps=round(fps, 2), frames=total["frames_out"], drops=total["drops"], malformed=total["malformed"],
                errors=total["errors"], queue=queue, restarts=total["restarts"],
                alive=bool(handles) and all(h.alive for h in handles), pid=handles[0].ident if handles else None,
                pids=[h.ident for h in handles] if len(handles) > 1 else None)
            upstream = total
        self.last_status = (now, totals)
        source = SourceStatus()
        for report in self.reports[self.stages[0].name].values():
            source = report.source or source
        return Status(t_ns=time.monotonic_ns(), mode=self.config.mode,
                      source=msgspec.structs.replace(source, name=self.config.source), stages=stages,
                      error=self.error)

    def _publish_end(self):
        """The run's last status message, saying why it ended, so a subscriber knows nothing follows;
        given decide a moment to pass it on before the stages are stopped."""
        status = self.status()
        if self.error:
            status.ended = f"error: {self.error}"
        elif self.interrupted:
            status.ended = f"stopped by {self.interrupted}"
        else:
            status.ended = self.end_note or ("max frames" if self.config.max_frames and self.eos_seen
                                             and self.tally.frames >= self.config.max_frames else "end of source")
        if self._publish_status(status):
            time.sleep(END_GRACE_S)

    def _publish_status(self, status: Status | None = None) -> bool:
        """Log a status (now's, by default) and send it to decide for the stream; False when the
        socket would block (decide not reading)."""
        status = status or self.status()
        if self.status_log:
            self.status_log.write(status)
        try:
            self.status_out.send_multipart(wire.seal(encode(status), self.config.token), zmq.NOBLOCK)
        except zmq.Again:
            return False
        return True


def check_source(config: PipelineConfig):
    """Open the source once before any process starts: a missing camera or a corrupt file fails
    here, with its own message, instead of as a stage that keeps crashing."""
    from pipeline.sources import open_source

    source = open_source(runner.resolve_source(config.source), fast=True, pixel_format=config.pixel_format)
    source.close()


def run(config: PipelineConfig, on_message=None) -> dict:
    return Supervisor(config, on_message).run()
