"""Facts about data sets that pretrained configs and data loaders both need (the zoo core owns them)."""
from __future__ import annotations

from typing import Dict, Tuple

__all__ = ['DATASET_STATS']

DATASET_STATS: Dict[str, Tuple[Tuple[float, ...], Tuple[float, ...]]] = {
    'cifar10': ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    'cifar100': ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    'mnist': ((0.1307,), (0.3081,)),
    'fashion-mnist': ((0.2860,), (0.3530,)),
    'imagenet': ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}
"""Per-channel mean and std of each training set (ImageFolder data uses ImageNet's)."""
