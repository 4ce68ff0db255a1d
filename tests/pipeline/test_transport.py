"""Real sockets (ipc, two contexts as two processes would have) for the two delivery modes."""
import threading
import time

import numpy as np
import zmq

from pipeline.messages import Counters, EndOfStream, new_header
from pipeline.transport import LIVE, REPLAY, Inlet, Outlet, endpoint


def pair(tmp_path, mode):
    rx_ctx, tx_ctx = zmq.Context(), zmq.Context()
    rx, tx = Counters(), Counters()
    inlet = Inlet(rx_ctx, endpoint(str(tmp_path), "in"), mode, rx)
    outlet = Outlet(tx_ctx, endpoint(str(tmp_path), "in"), mode, tx)
    for _ in range(200):   # until the connection is up (a loaded machine may take a while), then count afresh
        outlet.send(*frame(10_000))
        if inlet.receive(50) is not None:
            break
    while inlet.receive(50) is not None:
        pass
    for counters in (rx, tx):
        for name in Counters.__struct_fields__:
            setattr(counters, name, getattr(Counters(), name))
    return inlet, outlet, rx, tx, (rx_ctx, tx_ctx)


def close(inlet, outlet, contexts):
    inlet.close()
    outlet.close()
    for ctx in contexts:
        ctx.term()


def frame(i):
    return new_header(i, "test", i), {"frame": np.full((48, 64), i % 256, np.uint8)}


def test_replay_is_lossless_and_in_order_under_back_pressure(tmp_path):
    inlet, outlet, rx, tx, contexts = pair(tmp_path, REPLAY)
    sender = threading.Thread(target=lambda: [outlet.send(*frame(i)) for i in range(60)])
    sender.start()   # the receiver is slower than the sender: sends wait, none is lost
    got = []
    while len(got) < 60:
        message = inlet.receive(2000)
        assert message is not None, f"stalled after {len(got)} frames"
        got.append(message)
    sender.join()
    assert [h.frame_id for h, _ in got] == list(range(60))
    assert all(int(a["frame"][0, 0]) == h.frame_id for h, a in got)
    assert tx.drops == rx.drops == 0 and rx.frames_in == tx.frames_out == 60
    close(inlet, outlet, contexts)


def test_live_receiver_keeps_the_newest_frame_and_counts_the_rest(tmp_path):
    inlet, outlet, rx, tx, contexts = pair(tmp_path, LIVE)
    for i in range(20):
        outlet.send(*frame(i))
    time.sleep(0.3)   # let what the queues accept arrive
    got = []          # a frame still in the sender's queue moves over only once the receiver reads: take all
    while (message := inlet.receive(300)) is not None:
        got.append(message[0].frame_id)
    assert got[-1] == tx.last_frame_id                       # the newest one that was sent wins
    assert got == sorted(got) and len(got) <= 2              # no backlog of old frames
    assert tx.frames_out + tx.drops == 20                    # every frame either sent or counted as dropped
    assert rx.frames_in == len(got) and rx.frames_in + rx.superseded == tx.frames_out
    close(inlet, outlet, contexts)


def test_malformed_messages_are_dropped_and_counted(tmp_path):
    inlet, outlet, rx, _, contexts = pair(tmp_path, REPLAY)
    outlet.sock.send_multipart([b"garbage"])
    outlet.sock.send_multipart([b'{"v": 1}', b"x" * 10])
    outlet.send(*frame(5))
    header, _ = inlet.receive(1000)
    assert header.frame_id == 5 and rx.malformed == 2
    close(inlet, outlet, contexts)


def test_live_end_of_stream_comes_after_the_newest_frame(tmp_path):
    inlet, outlet, rx, tx, contexts = pair(tmp_path, LIVE)
    outlet.send(*frame(1))
    outlet.send(EndOfStream("test", 1))
    time.sleep(0.3)
    header, _ = inlet.receive(1000)
    assert header.frame_id == 1                 # not lost behind the end of stream
    assert isinstance(inlet.receive(1000)[0], EndOfStream)
    close(inlet, outlet, contexts)


def test_a_stalled_subscriber_never_blocks_the_publisher():
    from pipeline_helpers import free_endpoint
    from pipeline.runner import Publisher

    address = free_endpoint()
    ctx = zmq.Context()
    publisher = Publisher(ctx, address)
    stalled = ctx.socket(zmq.SUB)                 # subscribes, then never reads
    stalled.setsockopt(zmq.RCVHWM, 1)
    stalled.setsockopt(zmq.SUBSCRIBE, b"")
    stalled.connect(address)
    time.sleep(0.3)                               # the subscription reaches the publisher
    payload = b"x" * 20_000
    for _ in range(5 * Publisher.HWM):                  # far beyond what the subscriber's queues hold
        publisher.publish(b"emotion", payload)
    # Every publish returned; the subscriber got at most what its queues hold, the rest was dropped.
    got = 0
    while stalled.poll(100):
        stalled.recv_multipart()
        got += 1
    assert 0 < got < 5 * Publisher.HWM
    publisher.close()
    stalled.close(0)
    ctx.term()


def test_a_receive_waits_for_a_frame_sent_meanwhile_and_otherwise_ends_at_its_timeout(tmp_path):
    inlet, outlet, rx, _, contexts = pair(tmp_path, REPLAY)
    start = time.monotonic()
    assert inlet.receive(200) is None
    assert time.monotonic() - start >= 0.19          # waited its whole timeout, not less
    threading.Timer(0.1, lambda: outlet.send(*frame(7))).start()
    header, arrays = inlet.receive(5000)              # arrives while the receive waits
    assert header.frame_id == 7 and int(arrays["frame"][0, 0]) == 7
    start = time.monotonic()
    assert inlet.receive(100) is None                 # a shorter wait after a longer one is its own
    assert time.monotonic() - start < 2.5
    assert inlet.receive(0) is None and rx.frames_in == 1
    close(inlet, outlet, contexts)
