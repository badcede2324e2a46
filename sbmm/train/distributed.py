"""Data-parallel training with PyTorch's own engine: DDP, launched by `torchrun`.

`fit` calls `setup()`: under `torchrun --nproc_per_node=N` (WORLD_SIZE > 1 in the
environment) it joins the process group (backend `nccl` on GPUs, `gloo` on CPUs) unless
the caller already did, and picks the rank's device. Each rank then takes its contiguous
share of every global batch; DDP all-reduces (averages) the gradients. Every loss's mean
divides by the global batch's count of admitted samples over the number of ranks
(`mean`), so N ranks with global batch B train like one process with batch B, masked and
weighted objectives included, however the batch splits.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["Context", "setup", "average", "broadcast", "mean"]


@dataclass(frozen=True)
class Context:
    rank: int = 0  # this process's rank
    world: int = 1  # number of processes

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that prints, and writes checkpoints and results."""
        return self.rank == 0


def setup(device: torch.device | None) -> tuple[Context, torch.device | None]:
    """Join the process group when launched by torchrun; return the context and the
    rank's device (`device` unchanged when given, or when not distributed)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 and not dist.is_initialized():
        return Context(), device
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    if device is None and torch.cuda.is_available():
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    elif device is None:
        device = torch.device("cpu")
    return Context(dist.get_rank(), dist.get_world_size()), device


def average(tensor: torch.Tensor, context: Context) -> torch.Tensor:
    """The mean of `tensor` over the ranks (in place; the tensor itself when not
    distributed)."""
    if context.active:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        tensor /= context.world
    return tensor


def broadcast(tensor: torch.Tensor, context: Context) -> torch.Tensor:
    """Rank 0's `tensor` on every rank (in place)."""
    if context.active:
        dist.broadcast(tensor, src=0)
    return tensor


def mean(statistic: torch.Tensor, context: Context) -> torch.Tensor:
    """The mean over the ranks of a batch statistic (a sum or a count), out of place:
    what every mean a loss takes divides by, so that DDP's average of the ranks'
    gradients of Σ_rank / mean_ranks(count) is the gradient of Σ_global / count_global,
    one process's."""
    total = statistic.clone()
    if context.active:
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total / context.world
