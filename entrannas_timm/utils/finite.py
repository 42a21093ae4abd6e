"""Finiteness checks: nothing saved or recorded may hold a NaN or an infinity."""
from __future__ import annotations

import math
from typing import Any, List, Mapping

import torch

__all__ = ['non_finite']

def non_finite(obj: Any, prefix: str = '') -> List[str]:
    """Names of the non-finite tensors and numbers in a nested structure (state dicts, metrics)."""
    bad: List[str] = []
    if isinstance(obj, torch.Tensor):
        if obj.is_floating_point() and not bool(torch.isfinite(obj).all()):
            bad.append(prefix or '<tensor>')
    elif isinstance(obj, float):
        if not math.isfinite(obj):
            bad.append(prefix or '<number>')
    elif isinstance(obj, Mapping):
        for k, v in obj.items():
            bad += non_finite(v, f'{prefix}.{k}' if prefix else str(k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            bad += non_finite(v, f'{prefix}[{i}]')
    return bad
