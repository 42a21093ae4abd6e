"""torch.distributed plumbing: set-up from torchrun's environment, and keeping architecture params in sync.

Weights train under DistributedDataParallel; architecture parameters are kept out of DDP (frozen when it
is built, see :class:`search.searcher.Searcher`) and kept identical by hand: rank 0's initial values are
broadcast, their gradients are averaged over ranks before every architecture step, so every rank runs the
same Adam update and derives the same genotype.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable, List, Optional

import torch
import torch.distributed as dist

from .config import ConfigError

__all__ = ['DistInfo', 'resolve_device', 'init_distributed', 'shutdown_distributed', 'broadcast_tensors',
           'average_gradients', 'all_equal']


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialized_here: bool = False

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_type: str) -> DistInfo:
    """Join the process group described by torchrun's environment (WORLD_SIZE > 1), else run alone."""
    world = int(os.environ.get('WORLD_SIZE', '1'))
    if world <= 1:
        return DistInfo()
    local_rank = int(os.environ.get('LOCAL_RANK', '0'))
    if dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, False)
    backend = 'nccl' if device_type == 'cuda' and dist.is_nccl_available() else 'gloo'
    if device_type == 'cuda':
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend=backend)
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, True)


def shutdown_distributed(info: DistInfo) -> None:
    if info.initialized_here and dist.is_initialized():
        dist.destroy_process_group()


def broadcast_tensors(tensors: Iterable[torch.Tensor], src: int = 0) -> None:
    if dist.is_available() and dist.is_initialized():
        for t in tensors:
            dist.broadcast(t.data, src)


def average_gradients(params: Iterable[torch.nn.Parameter]) -> None:
    """All-reduce (mean) the gradients of ``params``; a missing gradient counts as zero."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    params = list(params)
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    flat = torch.cat([p.grad.reshape(-1) for p in params])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for p in params:
        n = p.numel()
        p.grad.copy_(flat[offset:offset + n].view_as(p.grad))
        offset += n


def all_equal(tensors: List[torch.Tensor]) -> bool:
    """True when every rank holds bit-identical ``tensors`` (checked against rank 0's copy)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return True
    flat = torch.cat([t.detach().reshape(-1).float() for t in tensors])
    ref = flat.clone()
    dist.broadcast(ref, 0)
    same = torch.tensor([int(torch.equal(ref, flat))], device=flat.device)
    dist.all_reduce(same, op=dist.ReduceOp.MIN)
    return bool(same.item())


def resolve_device(name: Optional[str], local_rank: int = 0) -> torch.device:
    """The device a ``--device`` value names on this machine (None: CUDA when there is one); ``cuda`` alone means
    this rank's GPU."""
    name = name or ('cuda' if torch.cuda.is_available() else 'cpu')
    dev = torch.device(name)  # the form was checked with the settings (cpu, cuda, cuda:N)
    if dev.type == 'cuda':
        if not torch.cuda.is_available():
            raise ConfigError(f'--device {name}: CUDA is not available on this machine')
        if dev.index is None:
            dev = torch.device('cuda', local_rank)
        if dev.index >= torch.cuda.device_count():
            raise ConfigError(f'--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)')
    return dev
