"""Image data for training, validation and search: data-set facts, offline readers of the small sets, and the
loaders (in-memory tensors augmented on the device, or timm's folder datasets and transforms).

May import :mod:`entrannas_timm.models` (data-set statistics) and :mod:`entrannas_timm.utils`.
"""
from .datasets import DATASET_SHAPES, DEBIAN_FASHION_MNIST, SMALL_DATASETS, DataError, read_small
from .loader import DATASETS, ImageData, load_data

__all__ = ['DATASET_SHAPES', 'DEBIAN_FASHION_MNIST', 'SMALL_DATASETS', 'DataError', 'read_small', 'DATASETS',
           'ImageData', 'load_data']
