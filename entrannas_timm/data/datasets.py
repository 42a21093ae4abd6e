"""Image data sets as the zoo's search and training read them: statistics, shapes and offline readers.

One home for what both ``python -m search`` and ``entrannas train`` need to know about a data set: its
per-channel mean/std, its native shape, and how to read the small sets (CIFAR-10/100, MNIST, Fashion-MNIST)
into one uint8 tensor without a download when the files are already on disk (the torchvision layout, or the
Debian ``dataset-fashion-mnist`` package's files).
"""
from __future__ import annotations

import gzip
import socket
import struct
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence, Tuple, Union

import torch
from torch.utils.data import Dataset

__all__ = [
    'DataError', 'DATASET_SHAPES', 'SMALL_DATASETS', 'DEBIAN_FASHION_MNIST', 'TensorImages',
    'read_idx', 'read_mnist_like', 'read_cifar', 'read_small',
]

DEBIAN_FASHION_MNIST = Path('/usr/share/datasets/fashion-mnist')


DATASET_SHAPES: Dict[str, Tuple[int, int, int]] = {
    'cifar10': (3, 32, 10), 'cifar100': (3, 32, 100), 'mnist': (1, 28, 10), 'fashion-mnist': (1, 28, 10),
    'imagenet': (3, 224, 1000), 'imagefolder': (3, 224, 10),
}
"""``(channels, native size, classes)`` per data set (an ImageFolder's classes are whatever it holds)."""

SMALL_DATASETS = ('cifar10', 'cifar100', 'mnist', 'fashion-mnist')
"""Data sets held in memory as one uint8 tensor."""


class DataError(RuntimeError):
    """A data set cannot be found or read; the message says where the files should be."""


class TensorImages(Dataset):
    """Images held as one uint8 tensor (N, C, H, W) with labels, transformed per item on tensors."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform: Optional[Callable] = None):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> Tuple[torch.Tensor, int]:
        x = self.images[i]
        return (self.transform(x) if self.transform is not None else x), int(self.labels[i])


def read_idx(path: Path) -> torch.Tensor:
    """Read an IDX file (MNIST format, optionally gzipped) into a uint8 tensor."""
    opener = gzip.open if path.suffix == '.gz' else open
    try:
        with opener(path, 'rb') as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f'{path}: cannot read IDX file ({e})') from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DataError(f'{path}: not an unsigned-byte IDX file (bad magic number)')
    ndim = data[3]
    if len(data) < 4 + 4 * ndim:
        raise DataError(f'{path}: truncated IDX header')
    shape = struct.unpack(f'>{ndim}I', data[4:4 + 4 * ndim])
    body = data[4 + 4 * ndim:]
    expected = 1
    for s in shape:
        expected *= s
    if len(body) != expected:
        raise DataError(f'{path}: truncated IDX file ({len(body)} bytes of data, header says {expected})')
    return torch.frombuffer(bytearray(body), dtype=torch.uint8).reshape(shape)


def _find_idx(dirs: Sequence[Path], stem: str) -> Optional[Path]:
    for d in dirs:
        for name in (stem, stem + '.gz'):
            p = d / name
            if p.is_file():
                return p
    return None


def _download(fn: Callable, name: str, root: Path, where: str) -> None:
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(30)
    try:
        fn()
    except Exception as e:  # network errors come in many types (URLError, socket.timeout, RuntimeError ...)
        raise DataError(f'{name}: not found under {root} and the download failed ({type(e).__name__}: {e}). '
                        f'Offline? Put the files at {where}, or pass --data-dir DIR where they are.') from None
    finally:
        socket.setdefaulttimeout(old)


def read_mnist_like(dataset: str, data_dir: Union[str, Path],
                    split: str = 'train') -> Tuple[torch.Tensor, torch.Tensor]:
    """MNIST / Fashion-MNIST images ``[N, 1, 28, 28]`` (uint8) and labels of ``split`` ('train' or 'test'), from
    the torchvision layout, the Debian package, or a download."""
    folder = 'FashionMNIST' if dataset == 'fashion-mnist' else 'MNIST'
    if split not in ('train', 'test'):
        raise ValueError(f"split: expected 'train' or 'test', got {split!r}")
    prefix = 'train' if split == 'train' else 't10k'
    root = Path(data_dir).expanduser()
    dirs = [root / folder / 'raw', root / folder, root]
    if dataset == 'fashion-mnist':
        dirs.append(DEBIAN_FASHION_MNIST)
    stems = f'{prefix}-images-idx3-ubyte', f'{prefix}-labels-idx1-ubyte'
    images, labels = _find_idx(dirs, stems[0]), _find_idx(dirs, stems[1])
    if images is None or labels is None:
        _download(lambda: getattr(__import__('torchvision.datasets', fromlist=[folder]), folder)(
            str(root), train=split == 'train', download=True), dataset, root,
            f'{root / folder / "raw"}/{stems[0]}.gz and {stems[1]}.gz'
            + (f' (or install the Debian package that provides {DEBIAN_FASHION_MNIST})'
               if dataset == 'fashion-mnist' else ''))
        images, labels = _find_idx(dirs, stems[0]), _find_idx(dirs, stems[1])
        assert images is not None and labels is not None
    x, y = read_idx(images), read_idx(labels)
    if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
        raise DataError(f'{images}, {labels}: expected N images of HxW and N labels, got {tuple(x.shape)} and '
                        f'{tuple(y.shape)}')
    return x.unsqueeze(1), y.long()


def read_cifar(dataset: str, data_dir: Union[str, Path], split: str = 'train') -> Tuple[torch.Tensor, torch.Tensor]:
    """CIFAR-10 / CIFAR-100 images ``[N, 3, 32, 32]`` (uint8) and labels of ``split`` ('train' or 'test'), from
    torchvision's layout under ``data_dir`` (downloaded there if missing and the network allows)."""
    from torchvision import datasets
    if split not in ('train', 'test'):
        raise ValueError(f"split: expected 'train' or 'test', got {split!r}")
    cls = datasets.CIFAR10 if dataset == 'cifar10' else datasets.CIFAR100
    root = Path(data_dir).expanduser()
    train = split == 'train'
    try:
        ds = cls(str(root), train=train, download=False)
    except RuntimeError:
        _download(lambda: cls(str(root), train=train, download=True), dataset, root,
                  f'{root}/{cls.base_folder}/ (extract {cls.filename} there, or put the archive in {root})')
        ds = cls(str(root), train=train, download=False)
    return torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous(), torch.tensor(ds.targets, dtype=torch.long)


def read_small(dataset: str, data_dir: Union[str, Path], split: str = 'train') -> Tuple[torch.Tensor, torch.Tensor]:
    """Any of :data:`SMALL_DATASETS` as ``(uint8 images [N, C, H, W], labels)``."""
    if dataset in ('cifar10', 'cifar100'):
        return read_cifar(dataset, data_dir, split)
    if dataset in ('mnist', 'fashion-mnist'):
        return read_mnist_like(dataset, data_dir, split)
    raise ValueError(f'dataset: expected one of {SMALL_DATASETS}, got {dataset!r}')
