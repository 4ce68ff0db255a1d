"""One ZeroMQ hop for a 640×480 frame, as the stages send it (header JSON + raw pixels, zero-copy),
against pickling the same frame, and against a multiprocessing.Queue hop (which pickles); and what
the typed, checked frame header costs to encode and decode against plain json on the same fields.

    python -m benchmarks.pipeline_zmq_hop [--repeats 300] [--transport ipc|tcp]

A hop is half of a round trip: process A sends the frame to process B, B sends it straight back
(decoded and re-encoded, as a stage would); medians over the repeats. Prints one JSON line.
"""
import argparse
import json
import multiprocessing
import pickle
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import zmq

from pipeline import wire
from pipeline.messages import Face, new_header, to_builtins


def frame():
    return np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)


def zmq_echo(address_in, address_out, count):
    ctx = zmq.Context()
    pull, push = ctx.socket(zmq.PULL), ctx.socket(zmq.PUSH)
    pull.connect(address_out)
    push.connect(address_in)
    for _ in range(count):
        header, arrays = wire.decode(pull.recv_multipart(copy=False))
        push.send_multipart(wire.encode(header, arrays), copy=False)
    pull.close(0)
    push.close(1000)
    ctx.term()


def queue_echo(q_in, q_out, count):
    for _ in range(count):
        q_out.put(q_in.get())


def zmq_hops(repeats, transport):
    with tempfile.TemporaryDirectory(prefix="exprada-hop-") as folder:   # the ipc socket files: gone after
        return timed_zmq_hops(repeats, transport, folder)


def timed_zmq_hops(repeats, transport, tmp):
    ctx = zmq.Context()
    push, pull = ctx.socket(zmq.PUSH), ctx.socket(zmq.PULL)
    if transport == "ipc":
        out_addr, in_addr = f"ipc://{tmp}/out", f"ipc://{tmp}/in"
        push.bind(out_addr)
        pull.bind(in_addr)
    else:
        out_port, in_port = push.bind_to_random_port("tcp://127.0.0.1"), pull.bind_to_random_port("tcp://127.0.0.1")
        out_addr, in_addr = f"tcp://127.0.0.1:{out_port}", f"tcp://127.0.0.1:{in_port}"
    spawn = multiprocessing.get_context("spawn")
    peer = spawn.Process(target=zmq_echo, args=(in_addr, out_addr, repeats + 20))
    peer.start()
    times = []
    for i in range(repeats + 20):
        image = frame() if i == 0 else image.copy()   # a fresh buffer for every send: never reuse a sent one
        header = new_header(i, "bench", time.monotonic_ns())
        start = time.perf_counter_ns()
        push.send_multipart(wire.encode(header, {"frame": image}), copy=False)
        back, arrays = wire.decode(pull.recv_multipart(copy=False))
        if i >= 20:
            times.append((time.perf_counter_ns() - start) / 2)
        assert back.frame_id == i and arrays["frame"].shape == image.shape
    peer.join(5)
    push.close(0)
    pull.close(0)
    ctx.term()
    return statistics.median(times) / 1e3


def queue_hops(repeats):
    spawn = multiprocessing.get_context("spawn")
    q_in, q_out = spawn.Queue(), spawn.Queue()
    peer = spawn.Process(target=queue_echo, args=(q_out, q_in, repeats + 20))
    peer.start()
    image, times = frame(), []
    for i in range(repeats + 20):
        start = time.perf_counter_ns()
        q_out.put(image)
        back = q_in.get()
        if i >= 20:
            times.append((time.perf_counter_ns() - start) / 2)
        assert back.shape == image.shape
    peer.join(5)
    return statistics.median(times) / 1e3


def classified_header():
    """A header as it leaves classify: face, three paths, the published choice, five stage timings."""
    header = new_header(7, "/dev/video0", time.monotonic_ns(), truth=3)
    for stage in ("capture", "face", "translate", "classify"):
        header.stamp(stage, 1_000_000, 2_000_000)
    header.face = Face(box=[100.5, 80.0, 300.2, 320.9], yaw=12.5, pitch=-3.1, roll=0.7, fit_residual=0.0123)
    header.paths = {path: [0.14286] * 7 for path in ("translated", "render", "crop")}
    header.probs, header.published_from = [0.14286] * 7, "fusion"
    return header


def header_codec(repeats):
    """Median µs to encode and decode one header, typed and checked (wire.py), and the same fields as
    a plain dict through the json module with no checks: what the typed messages cost per hop."""
    header, parts = classified_header(), None
    typed, plain = [], []
    as_dict = to_builtins(header)
    for _ in range(repeats):
        start = time.perf_counter_ns()
        parts = wire.encode(header)
        wire.decode(parts)
        typed.append(time.perf_counter_ns() - start)
        start = time.perf_counter_ns()
        json.loads(json.dumps(as_dict, separators=(",", ":")).encode())
        plain.append(time.perf_counter_ns() - start)
    return statistics.median(typed) / 1e3, statistics.median(plain) / 1e3


def pickle_round(repeats):
    image, times = frame(), []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        pickle.loads(pickle.dumps(image, protocol=pickle.HIGHEST_PROTOCOL))
        times.append(time.perf_counter_ns() - start)
    return statistics.median(times) / 1e3


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=300)
    p.add_argument("--transport", choices=("ipc", "tcp"), default="ipc")
    args = p.parse_args(argv)
    zmq_us = zmq_hops(args.repeats, args.transport)
    pickle_us = pickle_round(args.repeats)
    queue_us = queue_hops(args.repeats)
    typed_us, plain_us = header_codec(max(args.repeats, 1000))
    print(json.dumps({
        "benchmark": "pipeline_zmq_hop", "frame": "640x480x3 uint8", "bytes": 640 * 480 * 3,
        "transport": args.transport, "repeats": args.repeats,
        "zmq_hop_median_us": round(zmq_us, 1), "pickle_dumps_loads_median_us": round(pickle_us, 1),
        "mp_queue_hop_median_us": round(queue_us, 1),
        "zmq_hop_vs_pickle": round(zmq_us / pickle_us, 3), "zmq_hop_vs_mp_queue": round(zmq_us / queue_us, 3),
        "header_typed_codec_median_us": round(typed_us, 2), "header_plain_json_median_us": round(plain_us, 2),
        "header_typed_vs_plain_json": round(typed_us / plain_us, 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
