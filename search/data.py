"""Search data: the two disjoint splits of a training set (weights / architecture) (docs/method.md, *Protocols*),
and the held-out split the consistency measurement evaluates on (docs/method.md, *Consistency*).

CIFAR-like sets split their training images ``train_portion`` / rest (half / half by default, as DARTS);
ImageNet and other large folders use two disjoint random ``imagenet_portion`` samples per seed. Small
image sets (CIFAR, MNIST, Fashion-MNIST) are held as one uint8 tensor and augmented on tensors, so no
per-image files or PIL objects are created.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Tuple

import torch
from torch.utils.data import Dataset, Subset
from torchvision.transforms import v2

from entrannas_timm.data.datasets import (
    DATASET_SHAPES,
    DEBIAN_FASHION_MNIST,
    DataError,
    TensorImages,
    read_idx,
    read_mnist_like,
    read_small,
)
from entrannas_timm.models.constants import DATASET_STATS

from .config import ConfigError, SearchConfig

__all__ = ['SearchData', 'HeldOut', 'DataError', 'build_search_data', 'build_heldout_data', 'read_idx',
           'read_mnist_like', 'DEBIAN_FASHION_MNIST']

@dataclass
class SearchData:
    """The weight split, the architecture split and what the network needs to know about them."""
    train: Dataset
    val: Dataset
    in_chans: int
    num_classes: int
    image_size: int
    name: str


class SyntheticImages(Dataset):
    """Fixed random images (per seed) of the configured shape: benchmarks and tests, never the default."""

    def __init__(self, n: int, in_chans: int, size: int, num_classes: int, seed: int):
        g = torch.Generator().manual_seed(seed)
        self.images = torch.randn(n, in_chans, size, size, generator=g)
        self.labels = torch.randint(0, num_classes, (n,), generator=g)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> Tuple[torch.Tensor, int]:
        return self.images[i], int(self.labels[i])


@dataclass
class HeldOut:
    """A held-out split with evaluation transforms: ``split`` names it in the records, ``transform`` says how
    its images are prepared."""
    data: Dataset
    split: str
    transform: str


def _small_transform(dataset: str, size: int, native: int) -> Callable:
    """Random crop with 4-pixel padding + flip (not for digits), as DARTS trains CIFAR."""
    mean, std = DATASET_STATS[dataset]
    ops: List[Callable] = []
    if size != native:
        ops.append(v2.Resize(size, antialias=True))
    ops.append(v2.RandomCrop(size, padding=4))
    if dataset != 'mnist':  # a mirrored digit is another symbol
        ops.append(v2.RandomHorizontalFlip())
    ops += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)]
    return v2.Compose(ops)


def _folder(cfg: SearchConfig) -> Tuple[Dataset, Dataset, int, int]:
    """ImageNet (or any ImageFolder): two disjoint random samples, RandomResizedCrop + flip."""
    from torchvision import datasets
    root = Path(cfg.data_dir).expanduser()
    if (root / 'train').is_dir():
        root = root / 'train'
    if not root.is_dir():
        raise DataError(f'{cfg.dataset}: {root} is not a directory; expected an ImageFolder root '
                        '(one sub-folder per class, or a train/ folder holding them) given by --data-dir')
    size = cfg.image_size or 224
    mean, std = DATASET_STATS['imagenet']
    transform = v2.Compose([v2.PILToTensor(), v2.RandomResizedCrop(size, antialias=True), v2.RandomHorizontalFlip(),
                            v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)])
    try:
        ds = datasets.ImageFolder(str(root), transform=transform)
    except (FileNotFoundError, OSError) as e:
        raise DataError(f'{cfg.dataset}: cannot read ImageFolder {root}: {e}') from None
    n = len(ds)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed)).tolist()
    if cfg.dataset == 'imagenet':
        k = int(n * cfg.imagenet_portion)
        train_idx, val_idx = perm[:k], perm[k:2 * k]
    else:
        k = int(n * cfg.train_portion)
        train_idx, val_idx = perm[:k], perm[k:]
    return Subset(ds, train_idx), Subset(ds, val_idx), 3, len(ds.classes)


def build_search_data(cfg: SearchConfig) -> SearchData:
    """The weight and architecture splits of ``cfg.dataset`` (or synthetic data of its shape)."""
    if cfg.synthetic:
        c, native, k = DATASET_SHAPES[cfg.dataset]
        c, k = cfg.in_chans or c, cfg.num_classes or k
        size = cfg.image_size or native
        n = cfg.subset or 256
        train = SyntheticImages(n, c, size, k, seed=cfg.seed * 2 + 1)
        val = SyntheticImages(n, c, size, k, seed=cfg.seed * 2 + 2)
        return SearchData(train, val, c, k, size, f'synthetic-{cfg.dataset}')
    if cfg.dataset in ('imagenet', 'imagefolder'):
        train, val, c, k = _folder(cfg)
        size = cfg.image_size or 224
    else:
        x, y = read_small(cfg.dataset, cfg.data_dir)
        native = x.shape[-1]
        size = cfg.image_size or native
        c, k = x.shape[1], int(y.max()) + 1
        data = TensorImages(x, y, _small_transform(cfg.dataset, size, native))
        split = int(len(data) * cfg.train_portion)
        # DARTS: the first portion of the training set trains weights, the rest the architecture
        train, val = Subset(data, range(split)), Subset(data, range(split, len(data)))
    if cfg.subset is not None:
        train = Subset(train, range(min(cfg.subset, len(train))))
        val = Subset(val, range(min(cfg.subset, len(val))))
    if len(train) == 0 or len(val) == 0:
        raise ConfigError(f'{cfg.dataset}: an empty split (weights {len(train)}, architecture {len(val)} images)')
    return SearchData(train, val, c, k, size, cfg.dataset)



def build_heldout_data(cfg: SearchConfig, images: Optional[int] = None) -> HeldOut:
    """The held-out split of ``cfg.dataset`` with evaluation transforms, its first ``images`` images (all: None).

    Neither search split: CIFAR, MNIST and Fashion-MNIST use their test set, ImageNet and ImageFolder data the
    ``val/`` folder next to ``train/``, synthetic data a third fixed random set. Evaluation transforms: the
    small sets are resized to the search's image size (when it differs) and normalised, folders resized to
    8/7 of it and centre-cropped; no augmentation.
    """
    size = cfg.image_size
    if cfg.synthetic:
        c, native, k = DATASET_SHAPES[cfg.dataset]
        c, k = cfg.in_chans or c, cfg.num_classes or k
        n = images or cfg.subset or 256
        data: Dataset = SyntheticImages(n, c, size or native, k, seed=1_000_003 + cfg.seed)
        return HeldOut(data, 'synthetic held-out', 'none (random images)')
    if cfg.dataset in ('imagenet', 'imagefolder'):
        from torchvision import datasets
        root = Path(cfg.data_dir).expanduser() / 'val'
        if not root.is_dir():
            raise DataError(f'{cfg.dataset}: no held-out split: {root} is not a directory (an ImageFolder of the '
                            'held-out images next to train/, given by --data-dir)')
        size = size or 224
        mean, std = DATASET_STATS['imagenet']
        resize = round(size * 8 / 7)
        transform = v2.Compose([v2.PILToTensor(), v2.Resize(resize, antialias=True), v2.CenterCrop(size),
                                v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)])
        try:
            data = datasets.ImageFolder(str(root), transform=transform)
        except (FileNotFoundError, OSError) as e:
            raise DataError(f'{cfg.dataset}: cannot read ImageFolder {root}: {e}') from None
        split, how = 'val', f'resize {resize}, centre crop {size}, normalise'
    else:
        x, y = read_small(cfg.dataset, cfg.data_dir, 'test')
        native = x.shape[-1]
        size = size or native
        mean, std = DATASET_STATS[cfg.dataset]
        ops: List[Callable] = [v2.Resize(size, antialias=True)] if size != native else []
        data = TensorImages(x, y, v2.Compose(ops + [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)]))
        split, how = 'test', (f'resize {size}, ' if size != native else '') + 'normalise'
    if images is not None:
        data = Subset(data, range(min(images, len(data))))
    if len(data) == 0:
        raise DataError(f'{cfg.dataset}: the held-out split ({split}) is empty')
    return HeldOut(data, split, how)
