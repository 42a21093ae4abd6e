"""Evaluation networks built from a genotype: the cell, the CIFAR and ImageNet networks, timm's contract.

A :class:`Cell` compiles its genotype once into per-source operation lists; ``forward`` is a short loop
over source nodes. With ``feature_sharing`` an op applied to the same source is computed once for all
the nodes it feeds (docs/method.md, *Feature sharing*); without it, every connection owns its op, exactly as DARTS.
:class:`CellNetwork` stacks cells (reductions at 1/3 and 2/3 depth) behind a CIFAR or ImageNet stem and
implements the full timm model API.
"""
import numbers
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from timm.layers import ClassifierHead, drop_path, get_device_dtype, register_notrace_module
from timm.models import checkpoint
from timm.models._features import FeatureGetterNet, feature_take_indices  # used by timm's models, not exported

from .genotype import CellSpec, Genotype, GenotypeLike
from .genotype_format import STEM_TYPES
from .ops import FactorizedReduce, ReLUConvBN, make_op

__all__ = ['make_stem', 'Cell', 'CellNetwork', 'AuxiliaryHead', 'CellFeatureGetter', 'check_drop_rate',
           'DEFAULT_STEM_MULTIPLIER', 'size_from_weights']


DEFAULT_STEM_MULTIPLIER = {'cifar': 3, 'imagenet': 1}
"""Stem width over ``channels`` by stem type (DARTS's); a genotype's ``network`` settings may change it."""


def size_from_weights(stem_type: str, stem_weight: torch.Tensor, channels: int, layers: int,
                      num_classes: int) -> Dict[str, int]:
    """The size arguments of the network whose weights have this first stem conv, ``channels`` (a cell's
    preprocessing width), cells and classes: ``stem_multiplier`` only where a CIFAR stem is not the default."""
    size = dict(channels=int(channels), layers=int(layers), in_chans=int(stem_weight.shape[1]),
                num_classes=int(num_classes))
    if stem_type == 'cifar' and stem_weight.shape[0] != DEFAULT_STEM_MULTIPLIER['cifar'] * channels:
        size['stem_multiplier'] = int(stem_weight.shape[0]) // int(channels)
    return size


def check_drop_rate(name: str, value: float) -> float:
    """A drop probability ``0 <= p < 1`` (``p = 1`` drops everything), checked when set, not at the first step."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0. <= value < 1.:
        raise ValueError(f'{name}: expected a probability 0 <= p < 1, got {value!r}')
    return float(value)


def make_stem(stem_type: str, in_chans: int, C_out: int, device=None, dtype=None) -> Tuple[nn.Module, nn.Module]:
    """The stem as two parts (``stem0``, ``stem1``), shared by evaluation networks and the search super-net.

    ``cifar``: a 3x3 conv + BN to ``C_out`` (``stem1`` is the identity; both cell inputs are its output).
    ``imagenet``: DARTS's stride-8 stem, ``stem0`` two stride-2 convs to ``C_out`` at 1/4 resolution, ``stem1``
    one more to 1/8; the first cell reads both.
    """
    dd = dict(device=device, dtype=dtype)
    if stem_type == 'cifar':
        return nn.Sequential(nn.Conv2d(in_chans, C_out, 3, padding=1, bias=False, **dd),
                             nn.BatchNorm2d(C_out, **dd)), nn.Identity()
    if stem_type != 'imagenet':
        raise ValueError(f'stem_type: expected one of {STEM_TYPES}, got {stem_type!r}')
    stem0 = nn.Sequential(
        nn.Conv2d(in_chans, C_out // 2, 3, stride=2, padding=1, bias=False, **dd),
        nn.BatchNorm2d(C_out // 2, **dd),
        nn.ReLU(inplace=True),
        nn.Conv2d(C_out // 2, C_out, 3, stride=2, padding=1, bias=False, **dd),
        nn.BatchNorm2d(C_out, **dd),
    )
    stem1 = nn.Sequential(
        nn.ReLU(inplace=False),  # not in place: stem0's output is also a feature tap and a cell input
        nn.Conv2d(C_out, C_out, 3, stride=2, padding=1, bias=False, **dd),
        nn.BatchNorm2d(C_out, **dd),
    )
    return stem0, stem1


class Cell(nn.Module):
    """One cell of a derived network; ``ops[s]`` holds the operations applied to source state ``s``.

    Absent nodes (no connections) are left out when the cell is compiled: sources are the two inputs and the
    nodes that have connections, in order. ``drop_path='path'`` drops each connection whose op is not an
    identity (DARTS); ``'node'`` drops each node's sum (FairDARTS). An affine BatchNorm follows each op named in
    ``bn_after`` where the op has no parameters (SNAS's pools; ISTA-NAS one-stage's pools and identities).
    """

    def __init__(self, spec: CellSpec, C_prev_prev: int, C_prev: int, C: int, reduction: bool,
                 reduction_prev: bool, feature_sharing: bool = False, drop_prob: float = 0.,
                 drop_path: str = 'path', bn_after: Sequence[str] = (), device=None, dtype=None):
        super().__init__()
        dd = dict(device=device, dtype=dtype)
        self.reduction = reduction
        self.drop_prob = drop_prob
        self.drop_node = drop_path == 'node'
        # an input no node reads (a learned topology may leave one out) gets no preprocessing: its weights would
        # never train, nor change the output
        read = {inp for _, _, inp in spec.connections()} | set(spec.concat)
        self.unused_inputs: List[int] = [i for i in (0, 1) if i not in read]
        if 0 in self.unused_inputs:
            self.preprocess0: nn.Module = nn.Identity()
        elif reduction_prev:
            self.preprocess0 = FactorizedReduce(C_prev_prev, C, **dd)
        else:
            self.preprocess0 = ReLUConvBN(C_prev_prev, C, 1, 1, 0, **dd)
        self.preprocess1: nn.Module = nn.Identity() if 1 in self.unused_inputs else ReLUConvBN(C_prev, C, 1, 1, 0, **dd)

        # compile: one op instance per connection, or per (source, op) when features are shared
        present = spec.present
        source_of = {0: 0, 1: 1, **{state: k + 2 for k, state in enumerate(present)}}
        num_sources = len(present) + 1  # the last node is never an input
        per_source: List[List[str]] = [[] for _ in range(num_sources)]
        slots: List[List[Tuple[int, int]]] = [[] for _ in present]
        for k, state in enumerate(present):
            for op_name, inp in spec.nodes[state - 2]:
                src, names = source_of[inp], per_source[source_of[inp]]
                if not (feature_sharing and op_name in names):
                    names.append(op_name)
                slots[k].append((src, names.index(op_name) if feature_sharing else len(names) - 1))
        self.ops = nn.ModuleList([
            nn.ModuleList([self._make_op(n, C, 2 if reduction and s < 2 else 1, bn_after, dd)
                           for n in names])
            for s, names in enumerate(per_source)
        ])
        # ops run source by source, so a connection reads its op's output at this flat position
        offsets = [sum(len(n) for n in per_source[:s]) for s in range(num_sources)]
        self.node_inputs: List[List[int]] = [[offsets[s] + i for s, i in node] for node in slots]
        # DARTS drops every path but identities (a strided skip is a FactorizedReduce)
        self.node_drop: List[List[bool]] = [
            [not self.drop_node and not isinstance(self.ops[s][i], nn.Identity) for s, i in node] for node in slots]
        self.concat: List[int] = [source_of[c] for c in spec.concat]
        self.multiplier = len(spec.concat)

    @staticmethod
    def _make_op(name: str, C: int, stride: int, bn_after: Sequence[str], dd: Dict) -> nn.Module:
        op = make_op(name, C, stride, **dd)
        if name in bn_after and not any(True for _ in op.parameters()):  # a strided skip has its own BN
            op = nn.Sequential(op, nn.BatchNorm2d(C, **dd))
        return op

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        outs: List[torch.Tensor] = []
        for src, group in enumerate(self.ops):
            x = states[src]
            for op in group:
                outs.append(op(x))
            if src >= 1:  # every input of node src - 1 is now computed
                j = src - 1
                node: Optional[torch.Tensor] = None
                for k, idx in enumerate(self.node_inputs[j]):
                    h = outs[idx]
                    if self.drop_prob > 0. and self.training and self.node_drop[j][k]:
                        h = drop_path(h, self.drop_prob, self.training)
                    node = h if node is None else node + h
                assert node is not None
                if self.drop_node and self.drop_prob > 0. and self.training:
                    node = drop_path(node, self.drop_prob, self.training)
                states.append(node)
        return torch.cat([states[i] for i in self.concat], dim=1)


@register_notrace_module  # size-dependent pooling: a leaf for FX tracing
class AuxiliaryHead(nn.Module):
    """DARTS's auxiliary classifier (training only), robust to feature maps of other sizes than DARTS assumed.

    ``stride=3`` is the CIFAR head (8x8 maps), ``stride=2`` the ImageNet head (7x7 maps): DARTS's 5x5 average
    pool leaves the 2x2 map its 2x2 conv reduces to 1x1. Maps too small for that pool (e.g. 7x7 from 28x28
    Fashion-MNIST in the CIFAR family) are pooled adaptively to 2x2 instead; larger maps end with an adaptive
    pool. At DARTS's sizes both are no-ops and the head is exactly DARTS's.
    """

    def __init__(self, C: int, num_classes: int, stride: int, final_bn: bool, device=None, dtype=None):
        super().__init__()
        dd = dict(device=device, dtype=dtype)
        self.stride = stride
        # not in place: the input is the main path's tensor
        self.pool = nn.Sequential(nn.ReLU(inplace=False),
                                  nn.AvgPool2d(5, stride=stride, padding=0, count_include_pad=False))
        layers = [
            nn.Conv2d(C, 128, 1, bias=False, **dd),
            nn.BatchNorm2d(128, **dd),
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False, **dd),
        ]
        if final_bn:  # DARTS's ImageNet head has no BN here (see its model.py); kept for parity
            layers.append(nn.BatchNorm2d(768, **dd))
        layers += [nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten(1)]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(768, num_classes, **dd) if num_classes > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if min(x.shape[-2], x.shape[-1]) >= 5 + self.stride:
            x = self.pool(x)
        else:
            x = nn.functional.adaptive_avg_pool2d(nn.functional.relu(x), 2)
        return self.classifier(self.features(x))


class CellNetwork(nn.Module):
    """A DARTS-family evaluation network for any genotype (CIFAR or ImageNet stem), with timm's API.

    Cells are stacked with reductions at 1/3 and 2/3 depth, doubling channels at each. The CIFAR stem
    is a 3x3 conv to ``stem_multiplier * channels`` (default 3); the ImageNet stem is DARTS's two-part stride-8
    stem to ``stem_multiplier * channels`` (default 1, as DARTS; CDARTS uses 3). In training mode with
    ``auxiliary=True``, ``forward`` returns ``(logits, aux_logits)``.
    ``drop_path_rate`` is DARTS's per-path drop probability; trainers ramp it with :meth:`set_drop_path`.
    """

    def __init__(
            self,
            genotype: GenotypeLike,
            stem_type: str = 'cifar',
            num_classes: int = 10,
            in_chans: int = 3,
            channels: int = 36,
            layers: int = 20,
            auxiliary: bool = False,
            drop_rate: float = 0.,
            drop_path_rate: float = 0.,
            global_pool: str = 'avg',
            stem_multiplier: Optional[int] = None,
            device=None,
            dtype=None,
    ):
        super().__init__()
        dd = dict(device=device, dtype=dtype)
        if stem_type not in STEM_TYPES:
            raise ValueError(f'stem_type: expected one of {STEM_TYPES}, got {stem_type!r}')
        if layers < 3:
            raise ValueError(f'layers: a network needs at least 3 cells (normal/reduce/reduce), got {layers}')
        if channels < 2 or channels % 2:
            raise ValueError(f'channels: expected an even number >= 2, got {channels}')
        drop_rate = check_drop_rate('drop_rate', drop_rate)
        drop_path_rate = check_drop_rate('drop_path_rate', drop_path_rate)
        self.genotype = Genotype.coerce(genotype)
        self.stem_type = stem_type
        stem_multiplier = stem_multiplier or DEFAULT_STEM_MULTIPLIER[stem_type]
        self.channels, self.layers, self.stem_multiplier = channels, layers, stem_multiplier
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.drop_rate = drop_rate
        self.grad_checkpointing = False

        C = channels
        if stem_type == 'cifar':
            C_stem = stem_multiplier * C
            self.stem0, self.stem1 = make_stem('cifar', in_chans, C_stem, **dd)
            C_prev_prev = C_prev = C_stem
            reduction_prev, stem_reduction = False, 1
            self.feature_info: List[Dict] = []
        else:
            C_stem = stem_multiplier * C
            self.stem0, self.stem1 = make_stem('imagenet', in_chans, C_stem, **dd)
            C_prev_prev = C_prev = C_stem
            reduction_prev, stem_reduction = True, 8
            self.feature_info = [dict(num_chs=C_stem, reduction=4, module='stem0')]

        self.reduction_indices = (layers // 3, 2 * layers // 3)
        self.aux_index = self.reduction_indices[1]
        self.cells = nn.ModuleList()
        C_curr, reduction_factor, C_aux = C, stem_reduction, 0
        for i in range(layers):
            reduction = i in self.reduction_indices
            if reduction:
                C_curr *= 2
                reduction_factor *= 2
            spec = self.genotype.reduce if reduction else self.genotype.normal
            cell = Cell(spec, C_prev_prev, C_prev, C_curr, reduction, reduction_prev, self.genotype.feature_sharing,
                        drop_path_rate, self.genotype.drop_path, self.genotype.bn_after, **dd)
            self.cells.append(cell)
            reduction_prev = reduction
            C_prev_prev, C_prev = C_prev, cell.multiplier * C_curr
            if i == self.aux_index:
                C_aux = C_prev
            if i + 1 in self.reduction_indices or i == layers - 1:
                self.feature_info.append(dict(num_chs=C_prev, reduction=reduction_factor, module=f'cells.{i}'))
        self.feature_ends: List[int] = [int(f['module'].split('.')[1]) if '.' in f['module'] else -1
                                        for f in self.feature_info]

        self.aux_head: Optional[AuxiliaryHead] = None
        if auxiliary:
            self.aux_head = AuxiliaryHead(C_aux, num_classes, stride=3 if stem_type == 'cifar' else 2,
                                          final_bn=stem_type == 'cifar', **dd)
        self.num_features = C_prev
        self.head = ClassifierHead(C_prev, num_classes, pool_type=global_pool, drop_rate=drop_rate, **dd)
        self.head_hidden_size = self.head.num_features  # pooled width (x2 for catavgmax)

    # ---- timm API -------------------------------------------------------------------------------
    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> Dict:
        return dict(stem=r'^stem', blocks=r'^cells\.(\d+)' if coarse else [(r'^cells\.(\d+)', None),
                                                                             (r'^aux_head', (99999,))])

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    @torch.jit.ignore
    def no_weight_decay(self) -> set:
        return set()

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head.fc

    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None, device=None, dtype=None):
        dd = get_device_dtype(self, device=device, dtype=dtype)
        self.num_classes = num_classes
        self.head.reset(num_classes, pool_type=global_pool, **dd)
        self.head.train(self.training)
        self.head_hidden_size = self.head.num_features
        if self.aux_head is not None:
            self.aux_head.classifier = (nn.Linear(768, num_classes, **dd) if num_classes > 0 else nn.Identity())
            self.aux_head.classifier.train(self.training)

    @torch.jit.ignore
    def set_drop_path(self, prob: float) -> None:
        """Set the drop-path probability of every cell (DARTS ramps it linearly over the epochs)."""
        prob = check_drop_rate('set_drop_path(prob)', prob)
        for cell in self.cells:
            cell.drop_prob = prob

    # ---- forward --------------------------------------------------------------------------------
    def _run_cells(self, x: torch.Tensor) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """The final feature map and the auxiliary head's input (after cell ``aux_index``)."""
        s0 = self.stem0(x)
        s1 = self.stem1(s0)  # the identity for the CIFAR stem: both cell inputs are the stem output
        aux_in: Optional[torch.Tensor] = None
        for i, cell in enumerate(self.cells):
            if self.grad_checkpointing and not torch.jit.is_scripting():
                s0, s1 = s1, checkpoint(cell, s0, s1)
            else:
                s0, s1 = s1, cell(s0, s1)
            if i == self.aux_index:
                aux_in = s1
        return s1, aux_in

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self._run_cells(x)[0]

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head(x, pre_logits=True) if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor):
        x, aux_in = self._run_cells(x)
        logits = self.forward_head(x)
        if self.aux_head is not None and self.training and aux_in is not None:
            return logits, self.aux_head(aux_in)
        return logits

    def forward_intermediates(
            self,
            x: torch.Tensor,
            indices: Optional[Union[int, List[int]]] = None,
            norm: bool = False,
            stop_early: bool = False,
            output_fmt: str = 'NCHW',
            intermediates_only: bool = False,
    ) -> Union[List[torch.Tensor], Tuple[torch.Tensor, List[torch.Tensor]]]:
        """Forward returning the features listed in ``feature_info`` (stage ends; ImageNet: stem too).

        Args:
            x: Input image tensor.
            indices: Take last n features if int, all if None, select matching indices if sequence.
            norm: Unused (the network has no final norm).
            stop_early: Stop running cells after the last requested feature.
            output_fmt: Only 'NCHW'.
            intermediates_only: Return only the intermediate features.
        """
        assert output_fmt == 'NCHW', 'Output format must be NCHW.'
        take_indices, max_index = feature_take_indices(len(self.feature_ends), indices)
        intermediates: List[torch.Tensor] = []
        s0 = self.stem0(x)
        s1 = self.stem1(s0)
        if self.feature_ends[0] < 0 and 0 in take_indices:
            intermediates.append(s0)
        last = self.feature_ends[max_index] if stop_early else len(self.cells) - 1
        for i, cell in enumerate(self.cells):
            if i <= last:
                if self.grad_checkpointing and not torch.jit.is_scripting():
                    s0, s1 = s1, checkpoint(cell, s0, s1)
                else:
                    s0, s1 = s1, cell(s0, s1)
                for f, end in enumerate(self.feature_ends):
                    if end == i and f in take_indices:
                        intermediates.append(s1)
        if intermediates_only:
            return intermediates
        if stop_early and self.feature_ends[max_index] < 0:
            s1 = s0  # stopped at the stem feature
        return s1, intermediates

    def prune_intermediate_layers(
            self,
            indices: Union[int, List[int]] = 1,
            prune_norm: bool = False,
            prune_head: bool = True,
    ) -> List[int]:
        """Drop the cells after the last requested feature; the head goes with them (or when ``prune_head``).

        As timm's NASNet: a head sized for the final features cannot follow a shorter network, so pruning
        cells also resets the classifier to none with no pooling (``reset_classifier`` adds one back).
        """
        take_indices, max_index = feature_take_indices(len(self.feature_ends), indices)
        end = self.feature_ends[max_index]
        prune_end = end < len(self.cells) - 1
        if prune_end:
            self.cells = self.cells[:end + 1]
            if end < 0:
                self.stem1 = nn.Identity()  # the features end at stem0
            self.num_features = self.feature_info[max_index]['num_chs']
            self.head.reset(0, in_features=self.num_features)
        if self.aux_head is not None and (prune_head or self.aux_index > end):
            self.aux_head = None
        if prune_head or prune_end:
            self.reset_classifier(0, '')
        return take_indices


class CellFeatureGetter(FeatureGetterNet):
    """timm's ``forward_intermediates`` feature wrapper, plus ``set_grad_checkpointing`` for backbone training."""

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.model.set_grad_checkpointing(enable)
