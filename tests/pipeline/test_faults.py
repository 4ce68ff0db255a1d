"""Fault campaigns against a real run (run_pipeline.py, one process per stage, paced replay of an
encoded video): stages killed and hung at random, and hostile messages on every socket. A replay
must publish every frame exactly once, in order, whatever happens to its processes, and nothing a
peer sends may crash a stage, end the run or reach the stream."""
import glob
import json
import os
import random
import signal
import subprocess
import threading
import time

import pytest
import zmq

from pipeline.rundirs import default_parent
from pipeline_clips import drive_frames, write_clip
from pipeline_helpers import REPO, env, free_endpoint, pipeline_command
from test_pipeline_e2e import Stream, alive, summary_of

pytestmark = pytest.mark.slow
# layout → (its workers, how many kills, the worker hung at the end); at most 4 kills per worker:
# under the 5-a-minute restart limit
CAMPAIGNS = {"staged": (("capture", "face.0", "face.1", "translate", "classify", "decide"), 20, "classify"),
             "fused": (("capture", "perceive.0", "perceive.1", "decide"), 8, "perceive.1")}


@pytest.fixture(scope="module")
def replay_clip(tmp_path_factory):
    """600 frames, 20 s at 30 fps."""
    frames, truth = drive_frames((["bright"] * 10 + ["dark"] * 10) * 30)
    return write_clip(tmp_path_factory.mktemp("faults") / "drive.mp4", frames, truth), len(frames)


def drain(stream, quiet_s=1.0):
    """Take what the subscriber still holds once the run has ended."""
    while stream.sub.poll(int(quiet_s * 1000)):
        topic, payload = stream.sub.recv_multipart()
        (stream.emotions if topic == b"emotion" else stream.statuses).append(json.loads(payload))


def pid_of(stream, worker):
    stage, _, replica = worker.partition(".")
    status = stream.stage(stage)
    return status["pids"][int(replica)] if replica else status["pid"]


@pytest.mark.parametrize("layout", CAMPAIGNS)
def test_a_replay_publishes_every_frame_once_through_kills_and_a_hang(models, replay_clip, tmp_path, layout):
    workers, kills, hung = CAMPAIGNS[layout]
    clip, frames = replay_clip
    endpoint = free_endpoint()
    record = tmp_path / "record"
    run = subprocess.Popen(pipeline_command(clip, models, "--publish", endpoint, "--stall-timeout", 3, "--json",
                                            "--record", record, "--layout", layout),
                           cwd=REPO, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stream = Stream(endpoint, run)
    plan = [w for w in workers for _ in range(4)][:kills]
    random.Random(7).shuffle(plan)
    victims = []
    try:
        stream.wait_until(lambda: len(stream.emotions) >= 10 and stream.statuses, "the first frames")
        for worker in plan + [hung]:                       # the last one hangs instead of dying
            stream.wait_until(lambda: all(s["alive"] for s in stream.statuses[-1]["stages"].values()),
                              "every stage up", timeout_s=60)
            pid = pid_of(stream, worker)
            os.kill(pid, signal.SIGSTOP if len(victims) == len(plan) else signal.SIGKILL)
            victims.append(pid)
            stream.wait_until(lambda: pid_of(stream, worker) != pid, f"{worker} restarted", timeout_s=60)
        out, err = run.communicate(timeout=180)
        drain(stream)
    finally:
        if run.poll() is None:
            run.kill()
        for pid in victims:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        stream.close()
    assert run.returncode == 0, err
    ids = [m["frame_id"] for m in stream.emotions]
    assert ids == list(range(frames)), f"lost {sorted(set(range(frames)) - set(ids))[:20]}, " \
                                       f"repeated {len(ids) - len(set(ids))}"
    summary = summary_of(out)
    assert summary["frames"] == frames and summary["restarts"] == kills + 1 and summary["drops"] == 0
    assert f"stage {hung} silent for" in err
    # --record keeps each frame once, through the capture restarts too.
    assert len(list((record / "frames").glob("*.png"))) == frames
    recorded = [json.loads(line)["frame_id"] for line in (record / "emotion.jsonl").read_text().splitlines()]
    assert recorded == list(range(frames))


def hostile_messages(rng: random.Random, count: int):
    """Every kind of junk a peer could send: noise, the wrong number of parts, well-formed messages
    of another run (a frame, an end of stream, a status), mistyped and oversized-shape headers."""
    header = (b'{"type":"frame","frame_id":%d,"source":"x","t_capture_ns":1,"v":2,"arrays":'
              b'[{"name":"frame","dtype":"uint8","shape":[4294967296,4294967296]}]}')
    kinds = [
        lambda i: [rng.randbytes(rng.randint(0, 64))],
        lambda i: [rng.randbytes(8), rng.randbytes(32), rng.randbytes(16)],
        lambda i: [b"not the token", header % i, b""],
        lambda i: [b"not the token", b'{"type":"eos","source":"x","frames":1,"last_id":-1,"v":2}'],
        lambda i: [b"", b'{"type":"frame","frame_id":99999999,"source":"x","t_capture_ns":1,"probs":"abc"}'],
        lambda i: [b"not the token", b'{"schema":"exprada.status/1","t_ns":1,"mode":"live","source":{},'
                                     b'"stages":{},"error":"injected"}'],
        lambda i: [b"", b"[" * 5000],
    ]
    return [rng.choice(kinds)(i) for i in range(count)]


def test_ten_thousand_hostile_messages_on_every_socket_change_nothing(models, replay_clip):
    clip, frames = replay_clip
    before = set(glob.glob(os.path.join(default_parent(), "exprada-*")))
    endpoint = free_endpoint()
    # Staged: the layout with the most sockets (every stage's input reads messages the same way).
    run = subprocess.Popen(pipeline_command(clip, models, "--publish", endpoint, "--json", "--layout", "staged"),
                           cwd=REPO, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stream = Stream(endpoint, run)
    ctx = zmq.Context()
    sent = 0
    try:
        stream.wait_until(lambda: len(stream.emotions) >= 10, "the first frames")
        (run_dir,) = set(glob.glob(os.path.join(default_parent(), "exprada-*"))) - before
        sockets = sorted(glob.glob(os.path.join(run_dir, "*.sock")))
        assert len(sockets) == 8, sockets      # 5 stage inputs (face twice), stats, results, status-in
        rings = sorted(os.path.basename(p) for p in glob.glob(os.path.join(run_dir, "ring-*")))
        assert [r.split("-")[1:4] for r in rings] == [["capture", "in", "face.0"], ["capture", "in", "face.1"]], rings
        rng = random.Random(11)
        # The supervisor's sockets take more: the stages read theirs between frames.
        supervisor = [os.path.basename(p) in ("stats.sock", "results.sock") for p in sockets]
        batches = [hostile_messages(rng, 3500 if own else 500) for own in supervisor]

        pushers = []

        def attack(path, batch):
            """Blocking sends through a one-message queue. The socket stays open until the counts are
            in: ZeroMQ may drop what a peer that hung up had sent but the stage had not yet read."""
            push = ctx.socket(zmq.PUSH)
            push.setsockopt(zmq.SNDHWM, 1)
            push.setsockopt(zmq.LINGER, 0)
            push.connect(f"ipc://{path}")
            for parts in batch:
                push.send_multipart(parts)
            pushers.append(push)

        attackers = [threading.Thread(target=attack, args=job) for job in zip(sockets, batches)]
        for thread in attackers:
            thread.start()
        for thread in attackers:
            thread.join(timeout=60)
        sent = sum(len(batch) for batch in batches)
        at_stages = sum(len(batch) for batch, own in zip(batches, supervisor) if not own)
        assert run.poll() is None, "the run ended before the attack did: make the clip longer"
        stream.wait_until(lambda: sum(s["malformed"] for s in stream.statuses[-1]["stages"].values()) >= at_stages,
                          "every stage's count of what it refused", timeout_s=30)
        time.sleep(0.5)   # the supervisor's own sockets, read every 0.1 s
        for push in pushers:
            push.close()
        out, err = run.communicate(timeout=120)
        drain(stream)
    finally:
        if run.poll() is None:
            run.kill()
        stream.close()
        ctx.term()
    assert run.returncode == 0, err
    assert sent == 10_000
    summary = summary_of(out)
    assert [m["frame_id"] for m in stream.emotions] == list(range(frames))
    assert summary["frames"] == frames and summary["restarts"] == 0 and summary["errors"] == 0
    assert summary["malformed"] == sent
    assert not any(s.get("error") for s in stream.statuses)   # no injected status reached the stream
