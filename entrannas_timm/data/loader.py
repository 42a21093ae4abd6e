"""Training and validation input: batches of augmented images, the same on one process or many.

Every random draw of the augmentation is a function of ``(seed, epoch, sample index)``, never of a process's
random stream. So a run resumed from a checkpoint, a run with another worker count, and a ``torchrun`` run whose
ranks share a global batch all see exactly the images the single-process run sees.

- Small data sets (CIFAR, MNIST, Fashion-MNIST; one uint8 tensor in memory) are augmented a whole batch at a
  time on the training device: DARTS's random crop with 4-pixel zero padding, horizontal flip (not for digits),
  normalisation, and Cutout. Nothing per image runs in Python, so no loader workers are needed.
- Folder data sets (ImageNet, any ImageFolder) are read by timm's :class:`~timm.data.ImageDataset` and
  transformed by timm's :func:`~timm.data.create_transform` in DataLoader workers; each sample seeds the
  transform's random generators from its own ``(seed, epoch, index)``.

Shuffling and sharding are torch's :class:`~torch.utils.data.DistributedSampler` (one replica when running
alone), whose order depends only on ``(seed, epoch)``: rank ``r`` of ``W`` takes positions ``r, r + W, ...`` of
the permutation, and gradient accumulation splits a batch the same way (``x[a::A]``), so every split of a global
batch over ranks and accumulation steps holds the same images.
"""
from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from ..models.constants import DATASET_STATS
from .datasets import DATASET_SHAPES, SMALL_DATASETS, DataError, read_small

__all__ = ['DATASETS', 'Augment', 'ImageData', 'load_data', 'cutout_', 'default_workers', 'train_batches',
           'eval_batches', 'calibration_batches', 'split_micro', 'steps_per_epoch']

DATASETS: Tuple[str, ...] = (*SMALL_DATASETS, 'imagenet', 'imagefolder')
"""Data sets the trainer and ``entrannas validate`` read."""

_NO_FLIP = ('mnist',)  # a mirrored digit is another symbol


def _sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed for one sample of one epoch (splitmix-style mixing, so nearby inputs give unrelated seeds)."""
    z = (seed * 0x9E3779B97F4A7C15 + epoch * 0xBF58476D1CE4E5B9 + index * 0x94D049BB133111EB) & (2 ** 64 - 1)
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & (2 ** 64 - 1)
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & (2 ** 64 - 1)
    return (z ^ (z >> 31)) >> 1


@dataclass(frozen=True)
class Augment:
    """Training augmentation settings (the presets of ``entrannas train`` fill these)."""
    crop_padding: int = 4                 # small data sets: random crop after zero padding (0 = off)
    hflip: bool = True                    # horizontal flip with probability 1/2 (never for MNIST)
    cutout: int = 0                       # Cutout square side in pixels (0 = off)
    scale: Tuple[float, float] = (0.08, 1.0)                  # folder data: RandomResizedCrop area range
    color_jitter: Tuple[float, ...] = (0.4, 0.4, 0.4, 0.2)    # folder data: brightness, contrast, saturation, hue


def cutout_(x: torch.Tensor, centres: torch.Tensor, length: int) -> torch.Tensor:
    """Zero one ``length`` x ``length`` square per image of the normalised batch ``x`` (in place), as DARTS's Cutout.

    The square is centred at ``centres[i] = (y, x)``, which may be anywhere in the image, and clipped at the
    borders, so squares near an edge are partly outside (DeVries & Taylor 2017; DARTS ``utils.Cutout``).
    torchvision's and timm's ``RandomErasing`` keep the whole rectangle inside the image and draw its area and
    aspect, so they are not this augmentation.
    """
    if length <= 0:
        return x
    h, w = x.shape[-2:]
    half = length // 2
    ys = torch.arange(h, device=x.device)
    xs = torch.arange(w, device=x.device)
    cy, cx = centres[:, 0:1].to(x.device), centres[:, 1:2].to(x.device)
    rows = (ys >= cy - half) & (ys < cy + half)          # [B, H]
    cols = (xs >= cx - half) & (xs < cx + half)          # [B, W]
    keep = ~(rows[:, :, None] & cols[:, None, :])       # [B, H, W]
    return x.mul_(keep[:, None].to(x.dtype))


@dataclass
class ImageData:
    """One split of a data set as the trainer and validator read it."""
    name: str
    split: str
    in_chans: int
    num_classes: int
    image_size: int
    mean: Tuple[float, ...]
    std: Tuple[float, ...]
    images: Optional[torch.Tensor] = None     # small data sets: uint8 [N, C, H, W]
    labels: Optional[torch.Tensor] = None
    folder: Optional[Dataset] = None          # folder data sets: a timm ImageDataset
    crop_pct: float = 1.0
    interpolation: str = 'bilinear'
    root: str = ''
    extra: Dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels) if self.labels is not None else len(self.folder)  # type: ignore[arg-type]

    @property
    def small(self) -> bool:
        return self.images is not None

    def data_config(self) -> Dict[str, Any]:
        """timm's preprocessing description of this data (``pretrained_cfg`` fields)."""
        return dict(input_size=(self.in_chans, self.image_size, self.image_size), mean=tuple(self.mean),
                    std=tuple(self.std), crop_pct=self.crop_pct, interpolation=self.interpolation)


def _folder_root(data_dir: Path, split: str, dataset: str) -> Path:
    names = ('train',) if split == 'train' else ('val', 'validation', 'test')
    for n in names:
        if (data_dir / n).is_dir():
            return data_dir / n
    if split == 'train' and data_dir.is_dir() and dataset == 'imagefolder':
        return data_dir  # a plain ImageFolder root (one sub-folder per class) trains on everything
    raise DataError(f'{dataset}: no {"/".join(names)} folder under {data_dir}; expected an ImageFolder root with '
                    f'{names[0]}/ (one sub-folder per class), given by --data-dir')


def load_data(dataset: str, data_dir: str, split: str = 'train', subset: Optional[int] = None,
              image_size: Optional[int] = None, seed: int = 0, interpolation: Optional[str] = None,
              crop_pct: Optional[float] = None) -> ImageData:
    """Read ``split`` ('train' or 'test'; folder data: 'train' or 'val') of ``dataset`` from ``data_dir``.

    ``subset`` keeps the first N images of a small data set (they are stored shuffled) or a random N (per
    ``seed``) of a folder. ``image_size`` defaults to the native size (224 for folders).
    """
    if dataset not in DATASETS:
        raise DataError(f'--dataset: unknown data set {dataset!r}; expected one of {", ".join(DATASETS)}')
    stats = DATASET_STATS.get(dataset, DATASET_STATS['imagenet'])
    if dataset in SMALL_DATASETS:
        x, y = read_small(dataset, data_dir, 'test' if split in ('test', 'val') else 'train')
        if subset is not None:
            x, y = x[:subset], y[:subset]
        native_c, native_size, classes = DATASET_SHAPES[dataset]
        return ImageData(dataset, split, x.shape[1], classes, image_size or x.shape[-1], stats[0], stats[1],
                         images=x, labels=y, root=str(data_dir))
    from timm.data import ImageDataset
    root = _folder_root(Path(data_dir).expanduser(), split, dataset)
    try:
        ds = ImageDataset(str(root))
    except (OSError, RuntimeError) as e:
        raise DataError(f'{dataset}: cannot read the ImageFolder {root}: {e}') from None
    if len(ds) == 0:
        raise DataError(f'{dataset}: {root} holds no images')
    num_classes = len(ds.reader.class_to_idx) if hasattr(ds.reader, 'class_to_idx') else DATASET_SHAPES[dataset][2]
    if subset is not None and subset < len(ds):
        keep = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed))[:subset].sort().values
        ds = torch.utils.data.Subset(ds, keep.tolist())
    return ImageData(dataset, split, 3, num_classes, image_size or 224, stats[0], stats[1], folder=ds,
                     crop_pct=0.875 if crop_pct is None else crop_pct, interpolation=interpolation or 'bilinear',
                     root=str(root))


def default_workers(data: ImageData) -> int:
    """Small data sets need no loader workers (batches are augmented on the device); folders use the cores."""
    if data.small:
        return 0
    return max(1, min(8, (len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count() or 1)))


# ---- small data sets: whole-batch augmentation ------------------------------------------------------------
class _Plan:
    """Per-sample random draws of one epoch for a small data set: crop offset, flip, Cutout centre."""

    def __init__(self, n: int, size: int, aug: Augment, seed: int, epoch: int, flip: bool):
        g = torch.Generator().manual_seed(_sample_seed(seed, epoch, 0x5EED))
        span = 2 * aug.crop_padding + 1
        self.offsets = torch.randint(0, span, (n, 2), generator=g)
        self.flips = torch.rand(n, generator=g) < 0.5 if flip else torch.zeros(n, dtype=torch.bool)
        self.centres = torch.randint(0, size, (n, 2), generator=g)


def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    return F.interpolate(x, size=(size, size), mode='bilinear', antialias=True, align_corners=False)


def _normalise(x: torch.Tensor, data: ImageData) -> torch.Tensor:
    mean = torch.tensor(data.mean, device=x.device).view(1, -1, 1, 1)
    std = torch.tensor(data.std, device=x.device).view(1, -1, 1, 1)
    return (x - mean) / std


def _small_train_batch(x: torch.Tensor, idx: torch.Tensor, plan: _Plan, data: ImageData,
                       aug: Augment) -> torch.Tensor:
    """uint8 batch -> resized, padded-and-cropped, flipped, normalised float batch with Cutout."""
    x = _resize(x.float(), data.image_size)  # pixel values 0..255: padding is black, as torchvision pads
    size, p = data.image_size, aug.crop_padding
    if p > 0:
        x = F.pad(x, (p, p, p, p))
        off = plan.offsets[idx].to(x.device)
        ar = torch.arange(size, device=x.device)
        rows = (off[:, 0:1] + ar)[:, None, :, None]                 # [B, 1, S, 1]
        cols = (off[:, 1:2] + ar)[:, None, None, :]                 # [B, 1, 1, S]
        b = torch.arange(len(x), device=x.device)[:, None, None, None]
        c = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
        x = x[b, c, rows, cols]
    flips = plan.flips[idx].to(x.device)
    if bool(flips.any()):
        x = torch.where(flips[:, None, None, None], x.flip(-1), x)
    x = _normalise(x / 255., data)
    return cutout_(x, plan.centres[idx], aug.cutout)


def _small_eval_batch(x: torch.Tensor, data: ImageData) -> torch.Tensor:
    return _normalise(_resize(x.float(), data.image_size) / 255., data)


# ---- folder data sets: timm transforms per sample, seeded per sample ----------------------------------------
class _SeededFolder(Dataset):
    """A folder data set whose transform draws its randomness from ``(seed, epoch, index)``; returns the index."""

    def __init__(self, ds: Dataset, transform, seed: int):
        self.ds, self.transform, self.seed, self.epoch = ds, transform, seed, 0

    def __len__(self) -> int:
        return len(self.ds)  # type: ignore[arg-type]

    def __getitem__(self, i: int):
        img, target = self.ds[i]
        s = _sample_seed(self.seed, self.epoch, i)
        random.seed(s)
        torch.manual_seed(s)
        return self.transform(img), target, i


def _folder_transform(data: ImageData, training: bool, aug: Augment):
    from timm.data import create_transform
    if training:
        return create_transform(data.data_config()['input_size'], is_training=True, scale=aug.scale,
                                hflip=0.5 if aug.hflip else 0., color_jitter=aug.color_jitter,
                                interpolation=data.interpolation, mean=data.mean, std=data.std)
    return create_transform(data.data_config()['input_size'], is_training=False, crop_pct=data.crop_pct,
                            interpolation=data.interpolation, mean=data.mean, std=data.std)


def _base(ds: Dataset) -> Dataset:
    return ds.dataset if isinstance(ds, torch.utils.data.Subset) else ds


# ---- batches ----------------------------------------------------------------------------------------------------
def steps_per_epoch(n: int, batch_size: int) -> int:
    """Optimizer steps per epoch for ``n`` training images at global ``batch_size`` (a last partial batch is
    dropped, as timm does: a batch of one image breaks batch norm)."""
    return n // batch_size


def _sampler(n: int, rank: int, world: int, seed: int, epoch: int, shuffle: bool) -> DistributedSampler:
    s = DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=shuffle, seed=seed, drop_last=False)
    s.set_epoch(epoch)
    return s


def train_batches(data: ImageData, batch_size: int, epoch: int, seed: int, aug: Augment,
                  device: torch.device, rank: int = 0, world: int = 1, workers: int = 0
                  ) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
    """This rank's share (``batch_size // world`` images) of every global batch of ``epoch``, augmented."""
    per_rank = batch_size // world
    steps = steps_per_epoch(len(data), batch_size)
    order = list(_sampler(len(data), rank, world, seed, epoch, True))[:steps * per_rank]
    if data.small:
        assert data.images is not None and data.labels is not None
        plan = _Plan(len(data), data.image_size, aug, seed, epoch, aug.hflip and data.name not in _NO_FLIP)
        for k in range(steps):
            idx = torch.tensor(order[k * per_rank:(k + 1) * per_rank])
            x = data.images[idx].to(device, non_blocking=True)
            yield _small_train_batch(x, idx, plan, data, aug), data.labels[idx].to(device, non_blocking=True)
        return
    ds = _SeededFolder(data.folder, _folder_transform(data, True, aug), seed)  # type: ignore[arg-type]
    ds.epoch = epoch
    loader = DataLoader(ds, batch_size=per_rank, sampler=order, num_workers=workers, drop_last=True,
                        pin_memory=device.type == 'cuda', persistent_workers=False)
    g = torch.Generator().manual_seed(_sample_seed(seed, epoch, 0xC0FFEE))
    centres_all = torch.randint(0, data.image_size, (len(data), 2), generator=g) if aug.cutout else None
    for x, y, idx in loader:
        x = x.to(device, non_blocking=True)
        if centres_all is not None:
            x = cutout_(x, centres_all[idx], aug.cutout)
        yield x, y.to(device, non_blocking=True)


def eval_batches(data: ImageData, batch_size: int, device: torch.device, rank: int = 0, world: int = 1,
                 workers: int = 0, indices: Optional[Sequence[int]] = None
                 ) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
    """This rank's shard (every ``world``-th image, none twice) of ``data`` (or of its ``indices``) in order,
    without augmentation."""
    idx_all = list(range(len(data)) if indices is None else indices)[rank::world]
    if data.small:
        assert data.images is not None and data.labels is not None
        for k in range(0, len(idx_all), batch_size):
            idx = torch.tensor(idx_all[k:k + batch_size])
            yield (_small_eval_batch(data.images[idx].to(device, non_blocking=True), data),
                   data.labels[idx].to(device, non_blocking=True))
        return
    ds = _SeededFolder(data.folder, _folder_transform(data, False, Augment()), 0)  # type: ignore[arg-type]
    loader = DataLoader(ds, batch_size=batch_size, sampler=idx_all, num_workers=workers,
                        pin_memory=device.type == 'cuda')
    for x, y, _ in loader:
        yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)


def calibration_batches(data: ImageData, batch_size: int, count: int, seed: int, device: torch.device,
                        rank: int = 0, world: int = 1, workers: int = 0) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
    """``count`` batches of a seeded random sample of ``data`` without augmentation (what inference sees), for
    re-estimating batch-norm statistics; each rank reads its shard of the sample. A random sample, because a
    folder's images come ordered by class."""
    n = min(len(data), count * batch_size * world)
    sample = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:n].tolist()
    return eval_batches(data, batch_size, device, rank, world, workers, indices=sample)


def split_micro(x: torch.Tensor, parts: int) -> List[torch.Tensor]:
    """A batch as ``parts`` interleaved micro-batches (``x[a::parts]``), the split ranks make of a global batch."""
    return [x[a::parts] for a in range(parts)] if parts > 1 else [x]
