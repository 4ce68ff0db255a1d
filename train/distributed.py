"""One process or many: the same trainer code runs alone, under torchrun, or spawned.

`torchrun --nproc_per_node N -m train exprada ...` sets RANK / WORLD_SIZE / LOCAL_RANK /
MASTER_ADDR / MASTER_PORT; `setup()` reads them, joins the process group (NCCL on CUDA, gloo on
CPU) and picks this process's device. Without them it is a world of one and nothing is initialised.
"""
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass
class Context:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def pick_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """'auto' → this process's GPU when there is one, else CPU; 'cuda' without a GPU is an error."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError("--device cuda asked for, but torch sees no CUDA GPU")
        device = torch.device(name if ":" in name else f"cuda:{local_rank % torch.cuda.device_count()}")
        torch.cuda.set_device(device)
        return device
    return torch.device(name)


def setup(device: str = "auto") -> Context:
    """Join the process group torchrun describes (if any) and choose the device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    torch_device = pick_device(device, local_rank)
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if torch_device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size,
                                device_id=torch_device if backend == "nccl" else None)
    return Context(rank=rank, world_size=world_size, local_rank=local_rank, device=torch_device)


def cleanup(wait: bool = True) -> None:
    """Leave the process group. After a normal finish all processes first meet at a barrier, so
    none tears its connections down while another is still talking (gloo aborts on that);
    after an error nobody waits for peers that may never come."""
    if dist.is_available() and dist.is_initialized():
        if wait:
            dist.barrier()
        dist.destroy_process_group()


def wrap(model: nn.Module, ctx: Context, **ddp_options) -> nn.Module:
    """DistributedDataParallel around `model` in a multi-process run, the model itself otherwise."""
    if not ctx.distributed:
        return model
    device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids, **ddp_options)


def barrier(ctx: Context) -> None:
    if ctx.distributed:
        dist.barrier()


def mean_over_processes(values: dict[str, float], ctx: Context) -> dict[str, float]:
    """Average logged scalars over all processes (each saw a different part of the data)."""
    if not ctx.distributed or not values:
        return dict(values)
    keys = sorted(values)
    device = ctx.device if ctx.device.type == "cuda" else torch.device("cpu")
    tensor = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return dict(zip(keys, (tensor / ctx.world_size).tolist()))


def sum_over_processes(value: int, ctx: Context) -> int:
    """Total of a count (bad files, skipped steps) over all processes."""
    if not ctx.distributed:
        return int(value)
    device = ctx.device if ctx.device.type == "cuda" else torch.device("cpu")
    tensor = torch.tensor([int(value)], dtype=torch.int64, device=device)
    dist.all_reduce(tensor)
    return int(tensor.item())


def any_process(flag: bool, ctx: Context) -> bool:
    """True on every process when it is true on one (so all stop, or all skip, together)."""
    return sum_over_processes(int(bool(flag)), ctx) > 0


def weights_fingerprint(modules) -> torch.Tensor:
    """Per-tensor (sum, sum of squares) of every parameter, float64: equal iff replicas match (in practice)."""
    values = []
    for module in modules:
        for p in module.parameters():
            data = p.detach().double()
            values += [data.sum(), (data * data).sum()]
    return torch.stack(values).cpu()


def replicas_agree(modules, ctx: Context) -> bool:
    """True when every process holds bit-identical weight fingerprints (DDP keeps replicas in step)."""
    mine = weights_fingerprint(modules)
    if not ctx.distributed:
        return True
    device = ctx.device if ctx.device.type == "cuda" else torch.device("cpu")
    gathered = [torch.empty_like(mine, device=device) for _ in range(ctx.world_size)]
    dist.all_gather(gathered, mine.to(device))
    return all(torch.equal(gathered[0], other) for other in gathered[1:])
