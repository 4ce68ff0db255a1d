"""One hop of a 640×480 frame between two processes, as the stages send it: made in a slot of a
shared-memory ring before it is sent, as capture decodes each frame (pipeline/shared_frames.py,
`Ring.lease`), so that only the header travels on the ZeroMQ socket and nothing is copied; copied into
a slot as it is sent (any other large array a stage sends); and inside the ZeroMQ message (header
JSON + raw pixels, zero-copy) — all through the stages' own Outlet and Inlet; against pickling it, and
against a multiprocessing.Queue hop (which pickles); what the typed, checked frame header costs to
encode and decode against plain json on the same fields; and the floor under a stage's header hop:
the same header between bare pyzmq sockets, echoed as bytes and decoded and encoded again on each
side (what a stage's own Outlet and Inlet add lies above these two).

    python -m benchmarks.pipeline_zmq_hop [--repeats 300] [--rounds 3] [--transport ipc|tcp] [--same-core]

A hop is half of a round trip: process A sends the frame to process B, B sends one straight back
(decoded and re-encoded, as a stage would: through its own ring for the shared-memory hops; made in
its slot before A's message comes, for the made-in-slot hop); medians over the repeats. The three
frame hops run --rounds times, each round started by the next of them, their medians taken over all
the rounds' hops. The copied shared-memory hop includes copying the frame into the ring's slot; that
copy alone, in one process, is `ring_put_median_us`. `--same-core` pins the benchmark and every process it
starts (and so their ZeroMQ I/O threads) to the first core it may use: what a hop costs without a wake-up
across cores, against the scheduler's placement by default. Prints one JSON line.
"""
import argparse
import json
import multiprocessing
import os
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

from benchmarks.cli import exit_status, in_turn
from face.ranges import at_least
from pipeline import wire
from pipeline.messages import Counters, Face, new_header, to_builtins
from pipeline.rundirs import default_parent
from pipeline.shared_frames import Ring, RingReader
from pipeline.transport import REPLAY, Inlet, Outlet, endpoint


def frame():
    return np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)


def zmq_echo(address_in, address_out, count, codec):
    ctx = zmq.Context()
    pull, push = ctx.socket(zmq.PULL), ctx.socket(zmq.PUSH)
    pull.connect(address_out)
    push.connect(address_in)
    for _ in range(count):
        parts = pull.recv_multipart(copy=False)
        push.send_multipart(wire.encode(*wire.decode(parts)) if codec else parts, copy=False)
    pull.close(0)
    push.close(1000)
    ctx.term()


HOWS = ("in_slot", "shared", "inline")   # how a stage hop carries the frame (see stage_hop)


def stage_echo(folder, count, how, report):
    """The peer of `stage_hop`: receives each frame on a stage's Inlet and sends one back on its Outlet
    (through its own ring unless `how` is "inline"; "in_slot": a frame of its own, made in a leased
    slot before the message comes, as capture decodes its next frame); reports the CPU time it spent."""
    ctx = zmq.Context()
    shared = how != "inline"
    inlet = Inlet(ctx, endpoint(folder, "peer"), REPLAY, Counters(), rings=RingReader(folder) if shared else None)
    out = Outlet(ctx, endpoint(folder, "main"), REPLAY, Counters(),
                 ring=Ring(folder, "peer", "main", live=False) if shared else None)
    cpu, own = 0.0, frame()
    for i in range(count):
        # Its reply before last has been read by now (A sent this frame after reading it).
        reply = made_in_slot(out, i, own, done=i - 2) if how == "in_slot" else None
        while (message := inlet.receive(1000)) is None:
            pass
        start = time.process_time()
        out.send(message[0], {"frame": reply} if reply is not None else message[1])
        if i >= WARMUP:
            cpu += time.process_time() - start
    report.put(cpu)
    inlet.close()
    out.close(1000)
    ctx.term()


def made_in_slot(out: Outlet, frame_id: int, image: np.ndarray, done: int) -> np.ndarray:
    """`image` made in a slot leased from `out`'s ring for frame `frame_id`, as a camera or decoder
    writes a captured frame; the frames up to `done` are through (as if published: their slots come free)."""
    out.reclaim(done)
    leased = out.lease(frame_id, image.shape, image.dtype)
    np.copyto(leased, image)
    return leased


WARMUP = 20


def stage_hop(repeats, size, how):
    """The stages' own Outlet → Inlet between two processes, a frame of `size` bytes sent back each
    time, `how`: "in_slot", each side's frame made in a slot of its ring before the clock starts
    (capture's way: no copy when sent); "shared", copied into a slot as it is sent; "inline", inside
    the message (a header alone when size is 0). Returns (µs of each half round trip, CPU µs summed
    over both sides)."""
    spawn = multiprocessing.get_context("spawn")
    report = spawn.Queue()
    shared = how != "inline"
    with tempfile.TemporaryDirectory(prefix="exprada-hop-", dir=default_parent()) as folder:
        ctx = zmq.Context()
        rings = RingReader(folder) if shared else None
        inlet = Inlet(ctx, endpoint(folder, "main"), REPLAY, Counters(), rings=rings)
        out = Outlet(ctx, endpoint(folder, "peer"), REPLAY, Counters(),
                     ring=Ring(folder, "main", "peer", live=False) if shared else None)
        peer = spawn.Process(target=stage_echo, args=(folder, repeats + WARMUP, how, report))
        peer.start()
        times, cpu, source = [], 0.0, frame()
        for i in range(repeats + WARMUP):
            if how == "in_slot":
                image = made_in_slot(out, i, source, done=i - 1)   # B has answered the frame before
            else:   # a fresh buffer for every send: never reuse a sent one
                image = frame() if i == 0 else image.copy()
            arrays = {"frame": image} if size else {}
            header = new_header(i, "bench", time.monotonic_ns())
            start, start_cpu = time.perf_counter_ns(), time.process_time()
            out.send(header, arrays)
            while (message := inlet.receive(1000)) is None:
                pass
            if i >= WARMUP:
                times.append((time.perf_counter_ns() - start) / 2e3)
                cpu += time.process_time() - start_cpu
            back, got = message
            assert back.frame_id == i and (not size or got["frame"].shape == image.shape)
        cpu += report.get(timeout=60)
        peer.join(5)
        inlet.close()
        out.close(0)
        ctx.term()
    return times, cpu * 1e6


def stage_hops(repeats, size, rounds):
    """stage_hop for each way to carry a frame, `rounds` times with `repeats` hops each, each round
    started by the next way (the first run after another's processes exit reads slower, so a fixed
    order would favour the later ways): {how: (median µs of all the half round trips, CPU µs a hop)}."""
    times, cpu = {how: [] for how in HOWS}, dict.fromkeys(HOWS, 0.0)
    for index in range(rounds):
        for how in in_turn(list(HOWS), index):
            hops, spent = stage_hop(repeats, size, how)
            times[how] += hops
            cpu[how] += spent
    return {how: (statistics.median(times[how]), cpu[how] / (2 * len(times[how]))) for how in HOWS}


def queue_echo(q_in, q_out, count):
    for _ in range(count):
        q_out.put(q_in.get())


def zmq_hops(repeats, transport, with_frame=True, codec=True):
    """Bare pyzmq PUSH → PULL, half a round trip: the frame inside the message (`with_frame`) or a
    header alone, decoded and encoded again on each side (`codec`: wire.py) or echoed as bytes."""
    with tempfile.TemporaryDirectory(prefix="exprada-hop-") as folder:   # the ipc socket files: gone after
        return timed_zmq_hops(repeats, transport, folder, with_frame, codec)


def timed_zmq_hops(repeats, transport, tmp, with_frame, codec):
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
    peer = spawn.Process(target=zmq_echo, args=(in_addr, out_addr, repeats + 20, codec))
    peer.start()
    times = []
    for i in range(repeats + 20):
        if with_frame:
            image = frame() if i == 0 else image.copy()   # a fresh buffer for every send: never reuse a sent one
        header, arrays = new_header(i, "bench", time.monotonic_ns()), {"frame": image} if with_frame else {}
        parts = None if codec else wire.encode(header, arrays)   # bare: encoded before the clock starts
        start = time.perf_counter_ns()
        push.send_multipart(wire.encode(header, arrays) if codec else parts, copy=False)
        got = pull.recv_multipart(copy=False)
        back, echoed = wire.decode(got) if codec else (header, arrays)
        if i >= 20:
            times.append((time.perf_counter_ns() - start) / 2)
        assert back.frame_id == i and len(got) == 2 + with_frame and echoed.keys() == arrays.keys()
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


def ring_put(repeats):
    """Median µs to copy the frame into a free slot of a ring (Ring.put, the slot given back each time)."""
    image, times = frame(), []
    with tempfile.TemporaryDirectory(prefix="exprada-hop-", dir=default_parent()) as folder:
        ring = Ring(folder, "main", "peer", live=False)
        try:
            for i in range(repeats + WARMUP):
                start = time.perf_counter_ns()
                placed = ring.put(image, i)
                elapsed = time.perf_counter_ns() - start
                ring.cancel({"frame": placed})
                if i >= WARMUP:
                    times.append(elapsed)
        finally:
            ring.close()
    return statistics.median(times) / 1e3


def pickle_round(repeats):
    image, times = frame(), []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        pickle.loads(pickle.dumps(image, protocol=pickle.HIGHEST_PROTOCOL))
        times.append(time.perf_counter_ns() - start)
    return statistics.median(times) / 1e3


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=at_least(1), default=300)
    p.add_argument("--transport", choices=("ipc", "tcp"), default="ipc")
    p.add_argument("--rounds", type=at_least(1), default=3,
                   help="rounds of the three frame hops, --repeats each, each round started by the next "
                        "(default: %(default)s)")
    p.add_argument("--same-core", action="store_true",
                   help="pin this process and every process it starts (threads and children inherit it) to one core")
    args = p.parse_args(argv)
    if args.same_core:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    framed = stage_hops(args.repeats, 640 * 480 * 3, args.rounds)
    (slot_us, slot_cpu), (shared_us, shared_cpu), (inline_us, inline_cpu) = (framed[how] for how in HOWS)
    header_hops, header_cpu = stage_hop(args.repeats, 0, "inline")
    header_us, header_cpu = statistics.median(header_hops), header_cpu / (2 * len(header_hops))
    zmq_us = zmq_hops(args.repeats, args.transport)
    bare_header_us = zmq_hops(args.repeats, args.transport, with_frame=False, codec=False)
    codec_header_us = zmq_hops(args.repeats, args.transport, with_frame=False)
    pickle_us = pickle_round(args.repeats)
    put_us = ring_put(args.repeats)
    queue_us = queue_hops(args.repeats)
    typed_us, plain_us = header_codec(max(args.repeats, 1000))
    print(json.dumps({
        "benchmark": "pipeline_zmq_hop", "frame": "640x480x3 uint8", "bytes": 640 * 480 * 3,
        "transport": args.transport, "repeats": args.repeats, "rounds": args.rounds,
        "cores": sorted(os.sched_getaffinity(0)),
        "stage_hop_made_in_slot_median_us": round(slot_us, 1), "stage_hop_made_in_slot_cpu_us": round(slot_cpu, 1),
        "stage_hop_shared_memory_median_us": round(shared_us, 1), "stage_hop_in_message_median_us": round(inline_us, 1),
        "stage_hop_header_only_median_us": round(header_us, 1),
        "shared_memory_vs_in_message": round(shared_us / inline_us, 3), "ring_put_median_us": round(put_us, 1),
        "stage_hop_shared_memory_cpu_us": round(shared_cpu, 1), "stage_hop_in_message_cpu_us": round(inline_cpu, 1),
        "stage_hop_header_only_cpu_us": round(header_cpu, 1),
        "shared_memory_vs_in_message_cpu": round(shared_cpu / inline_cpu, 3),
        "zmq_hop_median_us": round(zmq_us, 1), "zmq_header_hop_bare_median_us": round(bare_header_us, 1),
        "zmq_header_hop_codec_median_us": round(codec_header_us, 1), "pickle_dumps_loads_median_us": round(pickle_us, 1),
        "mp_queue_hop_median_us": round(queue_us, 1),
        "zmq_hop_vs_pickle": round(zmq_us / pickle_us, 3), "zmq_hop_vs_mp_queue": round(zmq_us / queue_us, 3),
        "header_typed_codec_median_us": round(typed_us, 2), "header_plain_json_median_us": round(plain_us, 2),
        "header_typed_vs_plain_json": round(typed_us / plain_us, 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(exit_status(main))
