"""One stage in its own process, fed by hand over its real socket: bad messages are dropped and
counted, the stage keeps working, and an end-of-stream message ends it cleanly."""
import multiprocessing
import os
import time

import numpy as np
import zmq

from pipeline import wire
from pipeline.config import PipelineConfig, resolve_models
from pipeline.messages import EndOfStream, Face, decode_report, encode, new_header
from pipeline.runner import stage_process
from pipeline.stages import TABLES, Worker
from pipeline.transport import endpoint

CLASSIFY = next(stage for stage in TABLES["staged"] if stage.name == "classify")

MAX_BYTES = 200_000


def wait_for(sock, timeout_s=30):
    assert sock.poll(int(timeout_s * 1000)), "nothing arrived"
    return sock.recv_multipart()


def latest_stats(stats, until, timeout_s=20):
    deadline, report = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        if stats.poll(200):
            report = decode_report(wire.unseal(stats.recv_multipart()))
            if until(report):
                return report
    raise AssertionError(f"stats never matched; last {report}")


def test_classify_stage_drops_and_counts_malformed_and_oversized_messages(models, tmp_path):
    generator, classifier = models
    config = resolve_models(PipelineConfig(generator=generator, classifier=classifier, max_bytes=MAX_BYTES,
                                           status_period_s=0.1, layout="staged"))
    run_dir = str(tmp_path)
    ctx = zmq.Context()
    stats, results, feed = ctx.socket(zmq.PULL), ctx.socket(zmq.PULL), ctx.socket(zmq.PUSH)
    stats.bind(endpoint(run_dir, "stats"))
    results.bind(endpoint(run_dir, "in-decide"))
    feed.connect(endpoint(run_dir, "in-classify"))
    process = multiprocessing.get_context("spawn").Process(target=stage_process,
                                                           args=(Worker(CLASSIFY), config, run_dir,
                                                                 os.getpid()))
    process.start()
    try:
        latest_stats(stats, lambda r: r.ready)
        size = config.image_size
        good = new_header(3, "test", time.monotonic_ns())
        good.face = Face(box=[0.0, 0.0, 10.0, 10.0], yaw=5.0, pitch=0.0, roll=0.0)   # pose mode pools by yaw
        image = np.full((size, size, 3), 200, np.uint8)
        old_version = new_header(3, "test", 1, v=1)
        bad = [
            [b"", b"\x00\x01 not json"],
            [b"", b'{"type": "frame", "frame_id": 1}'],
            [b"", encode(old_version)],
            [*wire.encode(good, {"translated": image})[:2], b"short"],
            [b"another run", *wire.encode(good, {"translated": image})[1:]],   # not this run's token
            wire.encode(good, {"translated": np.zeros((MAX_BYTES,), np.uint8)}),   # oversized
        ]
        for parts in bad:
            feed.send_multipart(parts)
        feed.send_multipart(wire.encode(good, {"translated": image, "frontal": image, "crop": image}))
        header, _ = wire.decode(wait_for(results))
        assert header.frame_id == 3 and len(header.probs) == 7 and "classify" in header.timing
        assert np.argmax(header.probs) == 3          # bright render → "happiness" by construction
        report = latest_stats(stats, lambda r: r.counters.malformed >= 6)
        assert report.counters.malformed == 6 and report.counters.frames_in == 1 and report.counters.errors == 0
        assert process.is_alive()
        feed.send_multipart(wire.encode(EndOfStream("test", 1)))
        header, _ = wire.decode(wait_for(results))
        assert isinstance(header, EndOfStream)
        process.join(0.5)
        assert process.is_alive()            # it keeps its sockets open until the supervisor stops the run
        process.terminate()
        process.join(15)
        assert process.exitcode == 0
    finally:
        if process.is_alive():
            process.kill()
        for sock in (stats, results, feed):
            sock.close(0)
        ctx.term()
