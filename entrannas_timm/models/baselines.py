"""Reference networks trained under the same budget as the cells: a linear classifier and a small plain CNN.

A searched cell is only shown to be good when it beats simple models and random cells trained the same way
(docs/method.md, "Baselines"). These two are timm models so that ``entrannas train baseline_cnn ...`` trains them
with exactly the loader, optimizer, schedule and evaluation the cells get.
"""
from __future__ import annotations

from typing import Any, Dict, Sequence

import torch
from timm.layers import ClassifierHead
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import nn

from .constants import DATASET_STATS

__all__ = ['BASELINE_MODELS', 'LinearClassifier', 'SmallCNN']

BASELINE_MODELS = ('baseline_linear', 'baseline_cnn')
"""The reference entrypoints ``entrannas train`` accepts as MODEL besides the zoo's cell networks."""


class _Reference(nn.Module):
    """What the training loop asks of a network beyond ``forward``: no auxiliary head, no drop path."""
    aux_head = None

    def set_drop_path(self, prob: float) -> None:
        if prob:
            raise ValueError(f'{type(self).__name__} has no drop path; train it with drop path 0 (got {prob})')

    def get_classifier(self) -> nn.Module:
        return self.head.fc

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head(x, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class LinearClassifier(_Reference):
    """Logits as one affine map of the pixels (multinomial logistic regression)."""

    def __init__(self, num_classes: int = 10, in_chans: int = 1, img_size: int = 28, drop_rate: float = 0.):
        super().__init__()
        self.num_classes, self.img_size = num_classes, img_size
        self.num_features = self.head_hidden_size = in_chans * img_size * img_size
        self.head = ClassifierHead(self.num_features, num_classes, pool_type='', drop_rate=drop_rate)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.img_size or x.shape[-2] != self.img_size:
            raise ValueError(f'input: expected {self.img_size}x{self.img_size} images (img_size), got '
                             f'{tuple(x.shape[-2:])}')
        return x.flatten(1)

    def reset_classifier(self, num_classes: int, global_pool: str = '') -> None:
        self.num_classes = num_classes
        self.head.reset(num_classes)


class SmallCNN(_Reference):
    """Conv 3x3 - BN - ReLU stages (stride 1, then 2 at each width change), global average pool, linear."""

    def __init__(self, num_classes: int = 10, in_chans: int = 1, widths: Sequence[int] = (16, 32, 64),
                 global_pool: str = 'avg', drop_rate: float = 0., img_size: Any = None):
        super().__init__()  # img_size: accepted for a uniform call; any size works
        self.num_classes = num_classes
        layers: list = []
        for i, (c_in, c_out) in enumerate(zip((in_chans, *widths[:-1]), widths)):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=1 if i == 0 else 2, padding=1, bias=False),
                       nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.num_features = self.head_hidden_size = widths[-1]
        self.head = ClassifierHead(self.num_features, num_classes, pool_type=global_pool, drop_rate=drop_rate)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def reset_classifier(self, num_classes: int, global_pool: str = 'avg') -> None:
        self.num_classes = num_classes
        self.head.reset(num_classes, global_pool)


def _cfg(**kwargs) -> Dict[str, Any]:
    mean, std = DATASET_STATS['fashion-mnist']
    return {**dict(num_classes=10, input_size=(1, 28, 28), pool_size=None, crop_pct=1.0, interpolation='bilinear',
                   mean=mean, std=std, first_conv='', classifier='head.fc'), **kwargs}


default_cfgs = generate_default_cfgs({
    'baseline_linear': _cfg(),
    'baseline_cnn': _cfg(first_conv='features.0', pool_size=(7, 7)),
})


@register_model
def baseline_linear(pretrained: bool = False, **kwargs) -> LinearClassifier:
    """Linear classifier on the pixels: the floor a searched network must clear under the same budget."""
    return build_model_with_cfg(LinearClassifier, 'baseline_linear', pretrained, **kwargs)


@register_model
def baseline_cnn(pretrained: bool = False, **kwargs) -> SmallCNN:
    """Three-stage plain CNN (16-32-64 channels, 24k parameters at 10 classes): the hand-designed reference."""
    return build_model_with_cfg(SmallCNN, 'baseline_cnn', pretrained, **kwargs)
