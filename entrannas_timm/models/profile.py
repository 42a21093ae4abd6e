"""Model cost: parameters (as the papers count them), multiply-adds via torch's FlopCounterMode, peak memory."""
from __future__ import annotations

import resource
from typing import Dict, Sequence

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ['count_params', 'count_macs', 'model_cost', 'peak_memory_mb']


def count_params(model: nn.Module, exclude: Sequence[str] = ('aux_head',)) -> int:
    """Parameter count without the auxiliary head (training only), as DARTS and timm report models."""
    return sum(p.numel() for n, p in model.named_parameters() if not any(e in n for e in exclude))


@torch.no_grad()
def count_macs(model: nn.Module, input_size: Sequence[int]) -> int:
    """Multiply-adds of one eval-mode forward pass at ``input_size`` (C, H, W), batch 1.

    FlopCounterMode counts 2 FLOPs per multiply-add of convolutions and matmuls; we report MACs
    (= FLOPs / 2), the unit the NAS papers call "FLOPs" or "multiply-adds".
    """
    was_training = model.training
    model.eval()
    p = next(model.parameters())
    x = torch.zeros(1, *input_size, device=p.device, dtype=p.dtype)
    try:
        with FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    return counter.get_total_flops() // 2


def model_cost(model: nn.Module, input_size: Sequence[int]) -> Dict[str, int]:
    return {'params': count_params(model), 'macs': count_macs(model, input_size)}


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory so far: allocated tensors on a CUDA device, else the process's peak resident set (MiB)."""
    if device.type == 'cuda':
        return torch.cuda.max_memory_allocated(device) / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
