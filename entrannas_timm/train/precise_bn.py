"""Batch-norm running statistics re-estimated for the weights at hand ("precise BN").

A network whose weights still move fast (the first epochs, or a run of a few dozen steps) leaves BN running
averages that describe the weights of several steps ago: with momentum 0.1 they weight the last ~10 steps. In eval
mode such a network can score at chance while its train-mode (batch statistics) forwards are far better
(docs/method.md, *Precise BN*). Re-estimating the statistics as a plain average over a few training batches with
the final weights removes the lag; it changes no weight and costs only forward passes.
"""
from __future__ import annotations

from typing import Callable, Iterable, Optional, Tuple

import torch
import torch.nn as nn


def is_batch_norm(m: nn.Module) -> bool:
    """A batch-norm layer (1d/2d/3d, sync BN included): torch's shared base class is the one test for all."""
    return isinstance(m, nn.modules.batchnorm._BatchNorm)


@torch.no_grad()
def recalibrate_bn(model: nn.Module, batches: Iterable[Tuple[torch.Tensor, torch.Tensor]],
                   on_batch: Optional[Callable[[], None]] = None) -> int:
    """Re-estimate every batch norm's running statistics as the plain average over ``batches`` (train-mode
    forwards, no gradient; ``on_batch`` after each). Momenta, ``num_batches_tracked`` (a count of training steps,
    which this is not) and the model's train/eval mode are restored; returns the number of batches seen (0 leaves
    the statistics as they were)."""
    norms = [m for m in model.modules() if is_batch_norm(m) and m.track_running_stats]
    saved = [(m.momentum, m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone())
             for m in norms]
    was_training = model.training
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: every batch counts alike
    model.train()
    seen = 0
    try:
        for x, _ in batches:
            model(x)
            seen += 1
            if on_batch is not None:
                on_batch()
    finally:
        for m, (momentum, mean, var, tracked) in zip(norms, saved):
            m.momentum = momentum
            m.num_batches_tracked.copy_(tracked)
            if seen == 0:
                m.running_mean.copy_(mean)
                m.running_var.copy_(var)
        model.train(was_training)
    return seen
