"""One search step: an architecture step on a validation batch, then a weight step on a training batch.

:class:`Searcher` holds both optimisers, AMP and DDP for a super-net and is shared by the search loop
(:mod:`search.loop`) and ``search.bench``; :func:`build_model` makes the super-net of a :class:`SearchConfig`.
"""
from __future__ import annotations

import contextlib
import math
from typing import Any, Callable, Dict, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.optim import create_optimizer_v2
from timm.utils import dispatch_clip_grad

from .architect import UnrolledArchitect
from .config import ConfigError, SearchConfig
from .distributed import DistInfo, average_gradients
from .methods import create_method
from .supernet import SearchNetwork

__all__ = ['SearchError', 'NonFiniteLossError', 'Searcher', 'build_model', 'lr_warmup', 'CHECKPOINT_FORMAT',
           'CHECKPOINT_VERSION']

# a search run's checkpoint (the searcher's state plus the loop's epoch): written by the loop, read by the
# loop's resume and by the consistency measurement
CHECKPOINT_FORMAT = 'entrannas-search-checkpoint'
CHECKPOINT_VERSION = 1


class SearchError(RuntimeError):
    """A search cannot continue; the message says why and what was kept."""


class NonFiniteLossError(SearchError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def build_model(cfg: SearchConfig, in_chans: int, num_classes: int, device: torch.device) -> SearchNetwork:
    """The super-net of ``cfg``, with the method's own settings as resolved in ``cfg``."""
    try:
        return SearchNetwork(
            method=create_method(cfg.method, **cfg.method_settings()), num_classes=num_classes, in_chans=in_chans,
            channels=cfg.channels, layers=cfg.layers, nodes=cfg.nodes, space=cfg.space, stem=cfg.stem or 'cifar',
            engine_cells=cfg.engine_cells, feature_sharing=cfg.feature_sharing, temperature=cfg.temperature,
            stem_multiplier=cfg.stem_multiplier, device=device)
    except ValueError as e:
        raise ConfigError(f'super-net settings: {e}') from None


def lr_warmup(cfg: SearchConfig) -> Dict[str, Any]:
    """timm scheduler arguments for ``cfg.lr_warmup_epochs`` = N: epoch ``e < N - 1`` trains at ``lr * (e + 1) / N``
    (PC-DARTS's ImageNet warm-up), epoch ``N - 1`` at the cosine schedule's value (docs/method.md, *Protocols*)."""
    n = cfg.lr_warmup_epochs
    return dict(warmup_epochs=n - 1, warmup_lr=cfg.lr / n) if n > 1 else {}


def arch_lr_at(cfg: SearchConfig, epoch: int) -> float:
    """The architecture learning rate of ``epoch`` (0-based): ``cfg.arch_lr`` throughout (the DARTS family), or with
    ``arch_lr_schedule='cosine'`` decayed as the weights' cosine, ``arch_lr * (1 + cos(pi * epoch / epochs)) / 2``,
    so that late architecture steps are small and the derived cell settles (docs/method.md, *EnTranNAS-DST*)."""
    if cfg.arch_lr_schedule == 'cosine':
        return cfg.arch_lr * (1. + math.cos(math.pi * epoch / cfg.epochs)) / 2.
    return cfg.arch_lr


class Searcher:
    """One search step of a super-net: ``arch_step`` (validation batch) then ``weight_step`` (training batch).

    Architecture parameters require gradients only inside ``arch_step``, whose backward is restricted to
    them (no weight gradients are computed there); weight steps never build the architecture graph.
    Under DDP, weights are reduced by DDP and architecture gradients are averaged by hand.
    """

    def __init__(self, model: SearchNetwork, cfg: SearchConfig, device: torch.device, dist_info: DistInfo = DistInfo()):
        self.model, self.cfg, self.device = model, cfg, device
        self.arch_params = model.arch_parameters()
        self.weight_params = model.weight_parameters()
        self.criterion = nn.CrossEntropyLoss()
        self.weight_optimizer = create_optimizer_v2(
            self.weight_params, opt='momentum', lr=cfg.lr, weight_decay=cfg.weight_decay, momentum=cfg.momentum)
        self.arch_optimizer = create_optimizer_v2(
            model.arch_param_groups(cfg.arch_weight_decay), opt='adam', lr=cfg.arch_lr,
            weight_decay=cfg.arch_weight_decay, betas=tuple(cfg.arch_betas))
        # DDP reduces only the parameters that require gradients when it is built: with the architecture
        # parameters frozen here, it leaves them to average_gradients in arch_step
        self._set_arch_grad(False)
        self.net: nn.Module = model
        if dist_info.enabled:
            self.net = nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == 'cuda' else None,
                find_unused_parameters=model.method.skips_weights)
        self.architect = (UnrolledArchitect(model, self.weight_optimizer, self.criterion, cfg.momentum,
                                            cfg.weight_decay) if cfg.unrolled else None)
        self.use_amp = cfg.amp and device.type == 'cuda'

    def _set_arch_grad(self, on: bool) -> None:
        for p in self.arch_params:
            p.requires_grad_(on)

    def _autocast(self):
        return torch.autocast('cuda', dtype=torch.bfloat16) if self.use_amp else contextlib.nullcontext()

    def arch_step(self, x_val: torch.Tensor, y_val: torch.Tensor, x_train: Optional[torch.Tensor] = None,
                  y_train: Optional[torch.Tensor] = None, eta: float = 0.) -> Tuple[torch.Tensor, torch.Tensor]:
        """One Adam step of the architecture on a validation batch; re-derives the architecture after it."""
        self._set_arch_grad(True)
        try:
            self.arch_optimizer.zero_grad(set_to_none=True)
            if self.architect is not None:
                assert x_train is not None and y_train is not None
                with self._autocast():
                    loss, logits = self.architect.backward(x_train, y_train, x_val, y_val, eta)
                    reg = self.model.arch_regularizer()
                if reg.requires_grad:
                    reg.backward()
            else:
                with self._autocast():
                    logits = self.model(x_val)
                    loss = self.criterion(logits, y_val) + self.model.arch_regularizer()
                loss.backward(inputs=self.arch_params)
            average_gradients(self.arch_params)
            # a NaN step would poison alpha (and derivation) for good; averaged gradients agree on every rank
            if not bool(torch.stack([torch.isfinite(p.grad).all() for p in self.arch_params if p.grad is not None]
                                    + [torch.isfinite(loss)]).all()):
                raise NonFiniteLossError('non-finite architecture loss')
            if self.cfg.arch_grad_clip > 0:
                dispatch_clip_grad(self.arch_params, self.cfg.arch_grad_clip, mode='norm')
            self.arch_optimizer.step()
        finally:
            self._set_arch_grad(False)
        self.model.rederive()
        return loss.detach(), logits.detach()

    def weight_step(self, x: torch.Tensor, y: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """One SGD step of the weights on a training batch, gradient norm clipped."""
        self.weight_optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            logits = self.net(x)
            loss = self.criterion(logits, y)
        loss.backward()
        if self.cfg.grad_clip > 0:
            dispatch_clip_grad(self.weight_params, self.cfg.grad_clip, mode='norm')
        self.weight_optimizer.step()
        return loss.detach(), logits.detach()

    @torch.no_grad()
    def evaluate(self, loader, to_device: Callable) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Summed loss, correct count and count over ``loader`` in eval mode (as DARTS's ``infer``)."""
        self.model.eval()
        loss_sum = torch.zeros((), device=self.device, dtype=torch.float64)
        correct = torch.zeros((), device=self.device, dtype=torch.float64)
        n = torch.zeros((), device=self.device, dtype=torch.float64)
        try:
            for x, y in loader:
                x, y = to_device(x, y)
                with self._autocast():
                    logits = self.model(x)
                loss_sum += F.cross_entropy(logits.float(), y, reduction='sum')
                correct += (logits.argmax(1) == y).sum()
                n += y.numel()
        finally:
            self.model.train()
        return loss_sum, correct, n

    def set_arch_lr(self, lr: float) -> None:
        """Every architecture parameter group (alphas and DST's thresholds alike) steps with ``lr`` from now on."""
        for group in self.arch_optimizer.param_groups:
            group['lr'] = lr

    # ---- state ---------------------------------------------------------------------------------------
    def state_dict(self) -> Dict[str, Any]:
        return {'model': self.model.state_dict(), 'weight_optimizer': self.weight_optimizer.state_dict(),
                'arch_optimizer': self.arch_optimizer.state_dict()}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.model.load_state_dict(state['model'])  # SearchNetwork re-derives on load (a post hook)
        self.weight_optimizer.load_state_dict(state['weight_optimizer'])
        self.arch_optimizer.load_state_dict(state['arch_optimizer'])
