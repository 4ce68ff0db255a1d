"""How a stage runs: in its own process (the default) or as a thread (--single-process).

Both give the supervisor the same handle: start, alive, exitcode, ident (pid or thread id),
terminate, kill, join. Processes are started with 'spawn': a fresh interpreter, no inherited
ZeroMQ context, no half-copied threads of mediapipe or ONNX Runtime.
"""
from __future__ import annotations

import multiprocessing
import os
import threading
import traceback

from pipeline import runner
from pipeline.stages import Worker


class ProcessWorker:
    def __init__(self, worker: Worker, config, run_dir, skip=0):
        spawn = multiprocessing.get_context("spawn")
        self.worker = worker
        self.proc = spawn.Process(target=runner.stage_process, name=f"exprada-{worker.name}", daemon=True,
                                  args=(worker, config, run_dir, os.getpid(), skip))

    def start(self):
        self.proc.start()

    @property
    def alive(self):
        return self.proc.is_alive()

    @property
    def exitcode(self):
        return self.proc.exitcode

    @property
    def ident(self):
        return self.proc.pid

    def terminate(self):
        if self.proc.is_alive():
            self.proc.terminate()

    def kill(self):
        if self.proc.is_alive():
            self.proc.kill()

    def join(self, timeout):
        self.proc.join(timeout)


class ThreadWorker:
    """--single-process: the stage's loop in a thread, sharing one context (inproc sockets)."""

    def __init__(self, worker: Worker, config, ctx, stop: threading.Event, go: threading.Event, skip=0):
        self.worker, self.code = worker, None
        self.thread = threading.Thread(target=self._run, name=f"exprada-{worker.name}", daemon=True,
                                       args=(worker, config, ctx, stop, go, skip))

    def _run(self, worker, config, ctx, stop, go, skip):
        try:
            self.code = runner.run_stage(worker, config, ctx, None, stop.is_set, skip, go=go.is_set)
        except Exception:
            traceback.print_exc()
            self.code = 1

    def start(self):
        self.thread.start()

    @property
    def alive(self):
        return self.thread.is_alive()

    @property
    def exitcode(self):
        return None if self.thread.is_alive() else self.code

    @property
    def ident(self):
        return self.thread.ident

    def terminate(self):
        pass   # the shared stop event does it

    kill = terminate

    def join(self, timeout):
        self.thread.join(timeout)
