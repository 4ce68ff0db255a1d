import socket

import torch.multiprocessing as mp

from train import distributed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, port, queue):
    import os
    os.environ.update(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    ctx = distributed.setup("cpu")
    try:
        mean = distributed.mean_over_processes({"loss": float(rank)}, ctx)
        total = distributed.sum_over_processes(rank + 1, ctx)
        anyone = distributed.any_process(rank == 1, ctx)
        queue.put((rank, ctx.is_main, mean["loss"], total, anyone))
    finally:
        distributed.cleanup()


def test_two_gloo_processes_agree_on_averages_counts_and_flags():
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    mp.start_processes(_worker, args=(_free_port(), queue), nprocs=2, start_method="spawn")
    results = sorted(queue.get(timeout=60) for _ in range(2))
    assert results == [(0, True, 0.5, 3, True), (1, False, 0.5, 3, True)]


def test_a_world_of_one_needs_no_process_group():
    ctx = distributed.setup("cpu")
    assert ctx.world_size == 1 and ctx.is_main and not ctx.distributed
    assert distributed.mean_over_processes({"a": 2.0}, ctx) == {"a": 2.0}
