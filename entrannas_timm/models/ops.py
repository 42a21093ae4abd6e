"""The operation library: every candidate operation of both search spaces, built one way.

``OPS[name](C, stride, affine)`` builds an operation that maps ``C`` channels to ``C`` channels with
the given stride, with DARTS's exact layouts (``cnn/operations.py`` of the original code). The search
super-net and the evaluation networks both call :func:`make_op`; the search form differs only in
``affine=False`` batch norms and a batch norm after each pooling (docs/method.md, *Search space*).
"""
from __future__ import annotations

from typing import Callable, Dict, Tuple

import torch
import torch.nn as nn
from timm.layers import register_notrace_module

__all__ = [
    'OPS', 'SPACES', 'STANDARD_OPS', 'EXTENDED_OPS',
    'make_op', 'ReLUConvBN', 'SepConv', 'DilConv', 'FactorizedReduce', 'Zero', 'op_family',
]


class ReLUConvBN(nn.Sequential):
    """ReLU -> conv -> BN: the cell preprocessing and the plain convolutions of the extended space."""

    def __init__(self, C_in: int, C_out: int, kernel_size: int, stride: int, padding: int,
                 affine: bool = True, device=None, dtype=None):
        dd = dict(device=device, dtype=dtype)
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_out, kernel_size, stride=stride, padding=padding, bias=False, **dd),
            nn.BatchNorm2d(C_out, affine=affine, **dd),
        )


class DilConv(nn.Sequential):
    """ReLU -> dilated depthwise conv -> pointwise conv -> BN (one stack)."""

    def __init__(self, C_in: int, C_out: int, kernel_size: int, stride: int, padding: int, dilation: int,
                 affine: bool = True, device=None, dtype=None):
        dd = dict(device=device, dtype=dtype)
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, kernel_size, stride=stride, padding=padding, dilation=dilation,
                      groups=C_in, bias=False, **dd),
            nn.Conv2d(C_in, C_out, 1, bias=False, **dd),
            nn.BatchNorm2d(C_out, affine=affine, **dd),
        )


class SepConv(nn.Sequential):
    """Two stacked ReLU -> depthwise -> pointwise -> BN; only the first depthwise conv strides."""

    def __init__(self, C_in: int, C_out: int, kernel_size: int, stride: int, padding: int,
                 affine: bool = True, device=None, dtype=None):
        dd = dict(device=device, dtype=dtype)
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, kernel_size, stride=stride, padding=padding, groups=C_in, bias=False, **dd),
            nn.Conv2d(C_in, C_in, 1, bias=False, **dd),
            nn.BatchNorm2d(C_in, affine=affine, **dd),
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, kernel_size, stride=1, padding=padding, groups=C_in, bias=False, **dd),
            nn.Conv2d(C_in, C_out, 1, bias=False, **dd),
            nn.BatchNorm2d(C_out, affine=affine, **dd),
        )


class FactorizedConv(nn.Sequential):
    """ReLU -> 1xk conv (strided) -> kx1 conv -> BN: the factorized convolutions of the extended space.

    Our choice of layout (docs/method.md, *Search space*): the whole stride sits on the first conv, so the
    second conv runs at the output resolution (DARTS's unused ``conv_7x1_1x7`` splits it, ``(1, s)`` then
    ``(s, 1)``).
    """

    def __init__(self, C: int, k: int, stride: int, affine: bool = True, device=None, dtype=None):
        dd = dict(device=device, dtype=dtype)
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C, C, (1, k), stride=stride, padding=(0, k // 2), bias=False, **dd),
            nn.Conv2d(C, C, (k, 1), stride=1, padding=(k // 2, 0), bias=False, **dd),
            nn.BatchNorm2d(C, affine=affine, **dd),
        )


@register_notrace_module  # shape-dependent padding: a leaf for FX tracing
class FactorizedReduce(nn.Module):
    """Halves resolution with two 1x1 stride-2 convs offset by one pixel, concatenated (DARTS)."""

    def __init__(self, C_in: int, C_out: int, affine: bool = True, device=None, dtype=None):
        super().__init__()
        if C_out % 2:
            raise ValueError(f'FactorizedReduce needs an even number of output channels, got {C_out}')
        dd = dict(device=device, dtype=dtype)
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, bias=False, **dd)
        self.conv_2 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, bias=False, **dd)
        self.bn = nn.BatchNorm2d(C_out, affine=affine, **dd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        # odd sizes: the shifted branch is one pixel short; pad it so both halves agree (DARTS assumes even)
        z = self.conv_1(x)
        y = self.conv_2(x[:, :, 1:, 1:])
        if y.shape[-2:] != z.shape[-2:]:
            y = nn.functional.pad(y, (0, z.shape[-1] - y.shape[-1], 0, z.shape[-2] - y.shape[-2]))
        return self.bn(torch.cat([z, y], dim=1))


class Zero(nn.Module):
    """The `none` operation: zeros of the output shape (search only; never in a derived cell)."""

    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.)
        return x[:, :, ::self.stride, ::self.stride].mul(0.)


OpFactory = Callable[..., nn.Module]

OPS: Dict[str, OpFactory] = {
    'none': lambda C, stride, affine, **dd: Zero(stride),
    'sep_conv_3x3': lambda C, stride, affine, **dd: SepConv(C, C, 3, stride, 1, affine, **dd),
    'sep_conv_5x5': lambda C, stride, affine, **dd: SepConv(C, C, 5, stride, 2, affine, **dd),
    'dil_conv_3x3': lambda C, stride, affine, **dd: DilConv(C, C, 3, stride, 2, 2, affine, **dd),
    'dil_conv_5x5': lambda C, stride, affine, **dd: DilConv(C, C, 5, stride, 4, 2, affine, **dd),
    'max_pool_3x3': lambda C, stride, affine, **dd: nn.MaxPool2d(3, stride=stride, padding=1),
    'avg_pool_3x3': lambda C, stride, affine, **dd: nn.AvgPool2d(
        3, stride=stride, padding=1, count_include_pad=False),
    'skip_connect': lambda C, stride, affine, **dd: (
        nn.Identity() if stride == 1 else FactorizedReduce(C, C, affine, **dd)),
    'conv_1x1': lambda C, stride, affine, **dd: ReLUConvBN(C, C, 1, stride, 0, affine, **dd),
    'conv_3x3': lambda C, stride, affine, **dd: ReLUConvBN(C, C, 3, stride, 1, affine, **dd),
    'conv_1x3_3x1': lambda C, stride, affine, **dd: FactorizedConv(C, 3, stride, affine, **dd),
    'conv_1x5_5x1': lambda C, stride, affine, **dd: FactorizedConv(C, 5, stride, affine, **dd),
    'conv_1x7_7x1': lambda C, stride, affine, **dd: FactorizedConv(C, 7, stride, affine, **dd),
}

STANDARD_OPS: Tuple[str, ...] = (
    'none', 'sep_conv_3x3', 'sep_conv_5x5', 'dil_conv_3x3', 'dil_conv_5x5',
    'max_pool_3x3', 'avg_pool_3x3', 'skip_connect',
)
EXTENDED_OPS: Tuple[str, ...] = STANDARD_OPS + (
    'conv_1x1', 'conv_3x3', 'conv_1x3_3x1', 'conv_1x5_5x1', 'conv_1x7_7x1',
)
SPACES: Dict[str, Tuple[str, ...]] = {'standard': STANDARD_OPS, 'extended': EXTENDED_OPS}


def make_op(name: str, C: int, stride: int, search: bool = False, device=None, dtype=None) -> nn.Module:
    """Build operation ``name``; ``search=True`` gives the super-net form (BN affine=False, BN after pools)."""
    if name not in OPS:
        raise ValueError(f'unknown operation {name!r}; expected one of {sorted(OPS)}')
    dd = dict(device=device, dtype=dtype)
    op = OPS[name](C, stride, not search, **dd)
    if search and 'pool' in name:
        op = nn.Sequential(op, nn.BatchNorm2d(C, affine=False, **dd))
    return op


def op_family(name: str) -> str:
    """Coarse family of an op (for colours in plots and summaries)."""
    if name.startswith('sep_conv'):
        return 'sep_conv'
    if name.startswith('dil_conv'):
        return 'dil_conv'
    if name.startswith('conv_'):
        return 'conv'
    if 'pool' in name:
        return 'pool'
    return name
