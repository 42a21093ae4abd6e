"""Second-order DARTS: the architecture gradient through one unrolled weight step (DARTS §2.3).

    grad_alpha L_val(w', alpha) - eta * grad^2_{alpha,w} L_train(w, alpha) . grad_{w'} L_val(w', alpha),
    w' = w - eta * (momentum buffer + grad_w L_train(w, alpha) + weight_decay * w)

The unrolled weights w' are never copied into a second network: the validation loss at w' is computed
with :func:`torch.func.functional_call`. The Hessian-vector product is the central finite difference
of the architecture gradient of the training loss at w +/- r * v / ||v||, with v = grad_{w'} L_val.
"""
from __future__ import annotations

from typing import Callable, List, Sequence

import torch
import torch.nn as nn
from torch.func import functional_call

__all__ = ['UnrolledArchitect']


class UnrolledArchitect:
    """Sets ``.grad`` of the architecture parameters to the second-order DARTS gradient."""

    def __init__(self, model: nn.Module, weight_optimizer: torch.optim.Optimizer, criterion: Callable,
                 momentum: float, weight_decay: float, r: float = 1e-2):
        self.model, self.weight_optimizer, self.criterion = model, weight_optimizer, criterion
        self.momentum, self.weight_decay, self.r = momentum, weight_decay, r
        arch_ids = {id(p) for p in model.arch_parameters()}
        self.weight_names: List[str] = [n for n, p in model.named_parameters() if id(p) not in arch_ids]
        self.weights: List[nn.Parameter] = [p for p in model.parameters() if id(p) not in arch_ids]
        self.arch: List[nn.Parameter] = list(model.arch_parameters())

    @staticmethod
    def _grads(outputs: torch.Tensor, inputs: Sequence[torch.Tensor]) -> List[torch.Tensor]:
        grads = torch.autograd.grad(outputs, inputs, allow_unused=True)
        return [torch.zeros_like(x) if g is None else g for x, g in zip(inputs, grads)]

    def backward(self, x_train: torch.Tensor, y_train: torch.Tensor, x_val: torch.Tensor, y_val: torch.Tensor,
                 eta: float) -> tuple:
        """Compute and store the architecture gradient; returns ``(val_loss, val_logits)`` at w'."""
        model, crit = self.model, self.criterion
        # one virtual SGD step of the weights (what the weight optimizer would do next)
        g_train = self._grads(crit(model(x_train), y_train), self.weights)
        with torch.no_grad():
            unrolled = []
            for w, g in zip(self.weights, g_train):
                buf = self.weight_optimizer.state.get(w, {}).get('momentum_buffer')
                step = g + self.weight_decay * w
                if buf is not None:
                    step = step + self.momentum * buf
                unrolled.append((w - eta * step).requires_grad_())
        # validation loss at w' (BN statistics of this virtual forward go to throw-away copies)
        state = {n: t for n, t in zip(self.weight_names, unrolled)}
        state.update({n: b.clone() for n, b in model.named_buffers()})
        logits = functional_call(model, state, (x_val,))
        val_loss = crit(logits, y_val)
        grads = self._grads(val_loss, self.arch + unrolled)
        d_alpha, v = grads[:len(self.arch)], grads[len(self.arch):]
        # finite-difference Hessian-vector product
        norm = torch.cat([x.reshape(-1) for x in v]).norm()
        R = self.r / norm.clamp_min(1e-12)
        saved = [w.detach().clone() for w in self.weights]  # restored exactly, not by subtracting again
        with torch.no_grad():
            torch._foreach_add_(self.weights, v, alpha=float(R))
        g_pos = self._grads(crit(model(x_train), y_train), self.arch)
        with torch.no_grad():
            torch._foreach_add_(self.weights, v, alpha=-2 * float(R))
        g_neg = self._grads(crit(model(x_train), y_train), self.arch)
        with torch.no_grad():
            torch._foreach_copy_(self.weights, saved)
            for a, da, gp, gn in zip(self.arch, d_alpha, g_pos, g_neg):
                a.grad = da - eta * (gp - gn) / (2 * R)
        return val_loss.detach(), logits.detach()
