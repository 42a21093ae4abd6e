"""Search data: the two disjoint splits of a training set (weights / architecture), METHOD.md §6.

CIFAR-like sets split their training images ``train_portion`` / rest (half / half by default, as DARTS);
ImageNet and other large folders use two disjoint random ``imagenet_portion`` samples per seed. Small
image sets (CIFAR, MNIST, Fashion-MNIST) are held as one uint8 tensor and augmented on tensors, so no
per-image files or PIL objects are created.
"""
from __future__ import annotations

import gzip
import socket
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple, Union

import torch
from torch.utils.data import Dataset, Subset
from torchvision.transforms import v2

from .config import ConfigError, SearchConfig

__all__ = ['SearchData', 'DataError', 'build_search_data', 'read_idx', 'read_mnist_like', 'DEBIAN_FASHION_MNIST']

DEBIAN_FASHION_MNIST = Path('/usr/share/datasets/fashion-mnist')

# per-channel statistics of each training set
_STATS = {
    'cifar10': ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    'cifar100': ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    'mnist': ((0.1307,), (0.3081,)),
    'fashion-mnist': ((0.2860,), (0.3530,)),
    'imagenet': ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}
# synthetic data mimics the configured dataset's shape: (channels, size, classes)
_SHAPES = {
    'cifar10': (3, 32, 10), 'cifar100': (3, 32, 100), 'mnist': (1, 28, 10), 'fashion-mnist': (1, 28, 10),
    'imagenet': (3, 224, 1000), 'imagefolder': (3, 224, 10),
}


class DataError(RuntimeError):
    """A data set cannot be found or read; the message says where the files should be."""


@dataclass
class SearchData:
    """The weight split, the architecture split and what the network needs to know about them."""
    train: Dataset
    val: Dataset
    in_chans: int
    num_classes: int
    image_size: int
    name: str


class TensorImages(Dataset):
    """Images held as one uint8 tensor (N, C, H, W) with labels, augmented per item on tensors."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform: Optional[Callable] = None):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> Tuple[torch.Tensor, int]:
        x = self.images[i]
        return (self.transform(x) if self.transform is not None else x), int(self.labels[i])


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


# ---- readers ----------------------------------------------------------------------------------------
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


def _cifar(cfg: SearchConfig) -> Tuple[torch.Tensor, torch.Tensor]:
    from torchvision import datasets
    cls = datasets.CIFAR10 if cfg.dataset == 'cifar10' else datasets.CIFAR100
    root = Path(cfg.data_dir).expanduser()
    try:
        ds = cls(str(root), train=True, download=False)
    except RuntimeError:
        folder = cls.base_folder
        _download(lambda: cls(str(root), train=True, download=True), cfg.dataset, root,
                  f'{root}/{folder}/ (extract {cls.filename} there, or put the archive in {root})')
        ds = cls(str(root), train=True, download=False)
    return torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous(), torch.tensor(ds.targets, dtype=torch.long)


def _small_transform(dataset: str, size: int, native: int) -> Callable:
    """Random crop with 4-pixel padding + flip (not for digits), as DARTS trains CIFAR."""
    mean, std = _STATS[dataset]
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
    mean, std = _STATS['imagenet']
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
        c, native, k = _SHAPES[cfg.dataset]
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
        if cfg.dataset in ('cifar10', 'cifar100'):
            x, y = _cifar(cfg)
        else:
            x, y = read_mnist_like(cfg.dataset, cfg.data_dir)
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

