"""Frames through shared memory: real ring files, real ipc sockets, a real second process; lossless in
a replay, latest-wins live, slots taken back from a receiver that died, hostile references refused."""
import multiprocessing
import os

import numpy as np
import pytest
import zmq

from pipeline import wire
from pipeline.messages import Counters, new_header
from pipeline.shared_frames import GEN, RELEASED, SLOTS, Placed, Ring, RingReader, SlotRef
from pipeline.transport import LIVE, REPLAY, Inlet, Outlet, endpoint
from test_transport import close

FRAME = (480, 640, 3)   # 921,600 bytes: well over MIN_BYTES


def frame(i):
    return new_header(i, "test", i), {"frame": np.full(FRAME, i % 251, np.uint8),
                                      "small": np.full((8, 8), i % 251, np.uint8)}


def connected(tmp_path, mode):
    """An inlet and an outlet with their rings, each with its own context as two processes have."""
    rx_ctx, tx_ctx = zmq.Context(), zmq.Context()
    rx, tx = Counters(), Counters()
    inlet = Inlet(rx_ctx, endpoint(str(tmp_path), "in"), mode, rx, rings=RingReader(str(tmp_path)))
    outlet = Outlet(tx_ctx, endpoint(str(tmp_path), "in"), mode, tx,
                    ring=Ring(str(tmp_path), "test", "in", live=mode == LIVE))
    return inlet, outlet, rx, tx, (rx_ctx, tx_ctx)


def test_large_arrays_travel_as_slot_references_and_small_ones_inline(tmp_path):
    ring = Ring(str(tmp_path), "capture", "in-face.0", live=False)
    header, arrays = frame(3)
    placed = {"frame": ring.put(arrays["frame"], 3), "small": arrays["small"]}
    parts = wire.encode(header, placed)
    assert len(parts) == 3                                   # token, header, the small array only
    assert sum(len(bytes(p)) for p in parts[:2]) < 2000       # the frame's bytes are not in the message
    back, got = wire.decode(parts, rings=(reader := RingReader(str(tmp_path))))
    assert back.arrays[0].shm == placed["frame"].ref and back.arrays[1].shm is None
    assert np.array_equal(got["frame"], arrays["frame"]) and np.array_equal(got["small"], arrays["small"])
    assert not got["frame"].flags.writeable                  # a view of the slot: no copy, no writes
    with pytest.raises(wire.BadMessage, match="where none is shared"):
        wire.decode(parts)                                    # shared memory only where the receiver has it
    reader.close()
    ring.close()
    assert not list(tmp_path.glob("ring-*"))                  # the sender removes its files


def test_a_slot_is_reused_only_when_given_back_or_published(tmp_path):
    ring, reader = Ring(str(tmp_path), "s", "r", live=False), RingReader(str(tmp_path))
    image = np.zeros(FRAME, np.uint8)
    held = [ring.put(image, i) for i in range(SLOTS)]
    assert ring.put(image, SLOTS) is None                     # all taken: a replay waits
    for placed in held[:2]:
        reader.view(placed.ref, placed.dtype, placed.shape, image.nbytes)
    reader.release()                                          # the receiver is done with two
    assert ring.put(image, SLOTS) is not None and ring.put(image, SLOTS + 1) is not None
    assert ring.put(image, SLOTS + 2) is None
    ring.reclaim(published=4)                                 # decide published frames 0–4 (their holder died)
    assert ring.put(image, SLOTS + 2) is not None
    ring.reclaim()                                            # a resend: every slot is free, every old ref refused
    with pytest.raises(ValueError, match="reused"):
        reader.view(held[-1].ref, held[-1].dtype, held[-1].shape, image.nbytes)
    assert all(ring.put(image, 100 + i) is not None for i in range(SLOTS))
    reader.close()
    ring.close()


def test_a_frame_made_in_its_slot_is_sent_without_a_copy(tmp_path):
    ring, reader = Ring(str(tmp_path), "s", "r", live=True), RingReader(str(tmp_path))
    leased = ring.lease(FRAME, np.uint8, 0)
    leased[:] = 7                                             # the decoder writes the frame in place
    blocker = ring.put(np.zeros(FRAME, np.uint8), 1)         # a copied frame takes another slot
    placed = ring.put(leased, 0)
    assert placed.ref.slot != blocker.ref.slot
    view = reader.view(placed.ref, placed.dtype, placed.shape, leased.nbytes)
    assert (view == 7).all() and view.shape == FRAME
    leased[0, 0, 0] = 9                                       # (never done to a sent frame: here, the proof)
    assert view[0, 0, 0] == 9                                 # the receiver reads the very memory leased: no copy
    reader.release()
    assert ring.lease(FRAME, np.uint8, 2) is not None         # given back: live, its slot is free again
    # A lease never sent is given back by the next one: every slot can still be leased in turn.
    assert all(ring.lease(FRAME, np.uint8, 3 + i) is not None for i in range(3 * SLOTS))
    assert ring.lease((4, 4), np.uint8, 9) is not None and ring.lease((0, 3), np.uint8, 9) is None
    reader.close()
    ring.close()


def test_replay_keeps_a_leased_frame_until_published_and_resends_it_in_place(tmp_path):
    ring, reader = Ring(str(tmp_path), "s", "r", live=False), RingReader(str(tmp_path))
    kept = []
    for i in range(SLOTS // 2):
        leased = ring.lease(FRAME, np.uint8, i)
        leased[:] = i
        placed = ring.put(leased, i)
        reader.view(placed.ref, placed.dtype, placed.shape, leased.nbytes)
        kept.append((leased, placed))
    assert ring.lease(FRAME, np.uint8, SLOTS) is None         # half the slots kept: the rest are for copies
    copied = [ring.put(np.zeros(FRAME, np.uint8), SLOTS + i) for i in range(SLOTS // 2)]
    for placed in copied:
        reader.view(placed.ref, placed.dtype, placed.shape, int(np.prod(FRAME)))
    reader.release()                                          # the receiver is done with every one of them…
    assert ring.put(np.zeros(FRAME, np.uint8), 2 * SLOTS) is not None   # …a copied frame's slot comes free…
    assert ring.lease(FRAME, np.uint8, 2 * SLOTS) is None     # …but capture keeps the leased until published
    ring.reclaim()                                            # a restart downstream: everything is sent again
    old = kept[3][1]
    again = ring.put(kept[3][0], 3)                           # the kept frame, from its own slot
    assert again.ref.slot == old.ref.slot and again.ref.gen != old.ref.gen
    with pytest.raises(ValueError, match="reused"):
        reader.view(old.ref, old.dtype, old.shape, kept[3][0].nbytes)   # the first send is refused now
    assert (reader.view(again.ref, again.dtype, again.shape, kept[3][0].nbytes) == 3).all()
    assert all(ring.put(np.zeros(FRAME, np.uint8), 3 * SLOTS + i) is not None for i in range(SLOTS // 2))
    assert ring.put(np.zeros(FRAME, np.uint8), 4 * SLOTS) is None   # the kept four are still kept
    ring.reclaim(published=1)                                 # frames 0 and 1 published: their slots free
    assert ring.lease(FRAME, np.uint8, 4 * SLOTS) is not None
    assert ring.put(np.zeros(FRAME, np.uint8), 4 * SLOTS + 1) is not None
    assert ring.put(np.zeros(FRAME, np.uint8), 4 * SLOTS + 2) is None
    reader.close()
    ring.close()


def test_a_frame_overwritten_while_in_use_is_noticed(tmp_path):
    ring, reader = Ring(str(tmp_path), "s", "r", live=True), RingReader(str(tmp_path))
    placed = ring.put(np.ones(FRAME, np.uint8), 0)
    reader.view(placed.ref, placed.dtype, placed.shape, int(np.prod(FRAME)))
    assert reader.intact()
    ring.reclaim()   # e.g. a live slot taken back after STALE_S from a stage that hung
    assert not reader.intact()
    reader.close()
    ring.close()


@pytest.mark.parametrize("ref, message", [
    (SlotRef("../../etc/passwd", 0, 1), "bad ring name"),
    (SlotRef("ring-nosuch", 0, 1), "No such file"),
    (SlotRef("RING", 0, 1), "bad ring name"),
    ("slot", "no slot"),
    ("gen", "reused"),
    ("size", "do not fit"),
])
def test_hostile_references_are_refused_with_a_reason(tmp_path, ref, message):
    ring, reader = Ring(str(tmp_path), "s", "r", live=False), RingReader(str(tmp_path))
    placed = ring.put(np.ones(FRAME, np.uint8), 0)
    (tmp_path / "ring-link").symlink_to("/etc/passwd")
    nbytes = int(np.prod(FRAME))
    if ref == "slot":
        ref = SlotRef(placed.ref.ring, SLOTS + 1, placed.ref.gen)
    elif ref == "gen":
        ref = SlotRef(placed.ref.ring, placed.ref.slot, placed.ref.gen + 7)
    elif ref == "size":
        ref, nbytes = placed.ref, nbytes * 4
    header = new_header(0, "x", 0)
    parts = wire.encode(header, {"frame": Placed(ref, "uint8", (nbytes,))})
    with pytest.raises(wire.BadMessage, match=message):
        wire.decode(parts, rings=reader)
    with pytest.raises(wire.BadMessage, match="Too many levels|bad ring name|not a ring"):
        wire.decode(wire.encode(header, {"frame": Placed(SlotRef("ring-link", 0, 1), "uint8", (4,))}), rings=reader)
    reader.close()
    ring.close()


def test_replay_through_the_ring_is_lossless_and_in_order(tmp_path):
    inlet, outlet, rx, tx, contexts = connected(tmp_path, REPLAY)
    count = 40   # five times the ring's slots: the sender waits for slots as for queue room
    ctx = multiprocessing.get_context("spawn")
    sender = ctx.Process(target=send_frames, args=(str(tmp_path), count))
    sender.start()
    got = []
    while len(got) < count:
        message = inlet.receive(5000)
        assert message is not None, f"stalled after {len(got)} frames"
        header, arrays = message
        got.append((header.frame_id, int(arrays["frame"][0, 0, 0]), int(arrays["frame"][-1, -1, -1]),
                    int(arrays["small"][0, 0])))
    sender.join(10)
    assert sender.exitcode == 0
    assert got == [(i, i % 251, i % 251, i % 251) for i in range(count)]
    assert rx.malformed == rx.stale == 0
    close(inlet, outlet, contexts)


def send_frames(folder, count):
    """Another process, as capture is: its own context, its own ring."""
    ctx = zmq.Context()
    out = Outlet(ctx, endpoint(folder, "in"), REPLAY, Counters(), ring=Ring(folder, "capture", "in", live=False))
    for i in range(count):
        assert out.send(*frame(i))
    out.close(2000)
    ctx.term()


def test_live_keeps_the_newest_frame_and_leaks_no_slot(tmp_path):
    inlet, outlet, rx, tx, contexts = connected(tmp_path, LIVE)
    sent, read = 0, 0
    for i in range(6 * SLOTS):   # dropped at a full queue, superseded in the inlet, read: every slot comes back
        sent += outlet.send(*frame(i))
        if i % 3 == 2 and (message := inlet.receive(20)) is not None:
            read += 1
            assert int(message[1]["frame"][0, 0, 0]) == message[0].frame_id % 251
    while inlet.receive(100) is not None:
        read += 1
    inlet.receive(0)   # gives back the last one read
    ring = outlet.ring.current
    assert all(ring.read(k, GEN) == ring.read(k, RELEASED) for k in range(ring.slots))   # every slot free again
    assert read >= 2 and sent == tx.frames_out and tx.drops + sent == 6 * SLOTS
    assert rx.malformed == rx.stale == 0
    close(inlet, outlet, contexts)


def test_the_pipeline_uses_shared_memory_between_processes_and_not_in_one(tmp_path):
    from pipeline.config import PipelineConfig
    from pipeline.transport import open_inlet, open_outlet

    config = PipelineConfig(fast=True)   # a replay
    ctx = zmq.Context()
    staged = open_outlet(ctx, str(tmp_path), "capture", "in-face.0", config, Counters())
    threads = open_outlet(ctx, None, "capture", "in-face.0", config, Counters())
    reader = open_inlet(ctx, str(tmp_path), "in-face.0", config, Counters())
    assert staged.ring is not None and threads.ring is None and reader.rings is not None
    for part in (staged, threads, reader):
        part.close()
    ctx.term()


def test_a_restarted_sender_removes_its_dead_predecessors_rings(tmp_path):
    import subprocess

    dead = subprocess.Popen(["true"])
    dead.wait()
    left = tmp_path / f"ring-capture-in-face.0-{dead.pid}-921600"      # what a killed capture left
    alive = tmp_path / f"ring-capture-in-face.0-{os.getppid()}-921600"  # a live process's: not ours to judge
    other = tmp_path / f"ring-capture-in-face.1-{dead.pid}-921600"      # another pair's
    for path in (left, alive, other):
        path.write_bytes(b"x")
    ring = Ring(str(tmp_path), "capture", "in-face.0", live=False)
    assert not left.exists() and alive.exists() and other.exists()
    ring.close()


def test_a_frame_without_arrays_still_goes(tmp_path):
    for mode in (REPLAY, LIVE):
        (tmp_path / mode).mkdir()
        inlet, outlet, rx, tx, contexts = connected(tmp_path / mode, mode)
        header = new_header(1, "test", 1)
        header.invalidate("no face found")
        assert outlet.send(header)   # an invalid frame: a header and nothing else
        message = inlet.receive(2000)
        assert message is not None and message[0].frame_id == 1 and message[1] == {}
        close(inlet, outlet, contexts)


def test_no_room_for_a_ring_sends_frames_inside_the_messages(tmp_path, monkeypatch, capsys):
    """A container's /dev/shm too small for a ring: said once, and every frame still arrives."""
    def full(fd, offset, length):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("pipeline.shared_frames.os.posix_fallocate", full)
    inlet, outlet, rx, tx, contexts = connected(tmp_path, REPLAY)
    for i in range(3):
        assert outlet.send(*frame(i))
        header, arrays = inlet.receive(2000)
        assert header.frame_id == i and int(arrays["frame"][0, 0, 0]) == i and header.arrays[0].shm is None
    err = capsys.readouterr().err
    assert err.count("no room for a") == 1 and "--shm-size" in err
    assert not list(tmp_path.glob("ring-*"))
    close(inlet, outlet, contexts)
