"""Search methods: one class per method, holding everything in which DARTS, PC-DARTS, EnTranNAS and
EnTranNAS-DST differ (docs/method.md, *Methods as classes*).

The super-net (:mod:`search.supernet`), the settings (:mod:`search.config`), the search step
(:mod:`search.searcher`) and the bench ask a method object instead of comparing method names. A method is a
dataclass whose fields are its own settings (with their defaults; ``__post_init__`` checks them) and whose
hooks say:

- which candidate ops it searches over (:meth:`SearchMethod.candidate_ops`);
- where its engine cells sit and whether features are shared (:meth:`~SearchMethod.engine_cells`,
  :meth:`~SearchMethod.feature_sharing`);
- which architecture parameters it adds to the alphas (:meth:`~SearchMethod.extra_arch_parameters`) and how
  Adam treats them (:meth:`~SearchMethod.arch_param_groups`);
- what its engine cells compute (:meth:`~SearchMethod.engine_inputs`: a :class:`WeightedPlan` or
  :class:`PartialChannels`) and the per-(edge, op) weights that stands for (:meth:`~SearchMethod.engine_weights`);
- its derivation rule (:meth:`~SearchMethod.derive`) and its architecture regulariser
  (:meth:`~SearchMethod.regularizer`).

The base class is DARTS's behaviour (softmax weights on every edge, the top-2 rule, no regulariser), so a new
method overrides only what it changes and registers itself with :func:`register_method`.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Dict, List, Optional, Protocol, Sequence, Tuple, Type, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from entrannas_timm.models.genotype import CellSpec
from entrannas_timm.models.ops import SPACES

from .derive import derive_dst, derive_top2, dst_weights, edge_normalisation, node_slices

__all__ = [
    'SearchMethod', 'Darts', 'PCDarts', 'EnTranNAS', 'EnTranNASDST', 'METHODS', 'register_method', 'create_method',
    'method_settings', 'SettingError', 'WeightedPlan', 'PartialChannels', 'CellInputs', 'Plan', 'Term',
    'ARCH_REGULARIZERS', 'ENGINE_PLACEMENTS', 'CELL_KINDS', 'parse_engine_cells', 'reduction_cells', 'SuperNet',
]

CELL_KINDS = ('normal', 'reduce')
ENGINE_PLACEMENTS = ('all', 'first', 'last')

# one term of a node's sum: (input state i, op group g, op index k, edge e)
Term = Tuple[int, int, int, int]
Plan = Tuple[Tuple[Term, ...], ...]
# weights[e][k]: the scalar weight of op k on edge e (unbound once per forward, see SearchNetwork.forward_features)
Weights = Sequence[Sequence[Tensor]]


class SuperNet(Protocol):
    """What a method reads of the super-net (:class:`search.supernet.SearchNetwork`), which builds itself from a
    method: a protocol, so that this module does not import the super-net that imports it. The architecture
    parameters (``alphas_normal``, ``betas_reduce``, ``threshold_logits_normal``, ...) are the ones the method's
    :meth:`~SearchMethod.extra_arch_parameters` adds, read by name."""
    nodes: int
    ops: Sequence[str]
    active_ops: Tuple[int, ...]
    temperature: float
    full_plan: Plan

    def arch_parameters(self) -> List[nn.Parameter]: ...

    def compile_plan(self, nodes: Sequence[Sequence[Tuple[int, int]]]) -> Plan: ...


class SettingError(ValueError):
    """A method setting is unknown, belongs to another method or is out of range.

    ``setting`` is the setting's name (``pc_k``); the command line shows it as its flag (``--pc-k``).
    """

    def __init__(self, setting: str, reason: str):
        self.setting, self.reason = setting, reason
        super().__init__(f'{setting}: {reason}')


# ---- what an engine cell computes ---------------------------------------------------------------------
@dataclass(frozen=True)
class WeightedPlan:
    """Node j = sum over its plan's terms ``(i, g, k, e)`` of ``weights[e][k] * ops[g][k](state i)``.

    Engine cells of DARTS, EnTranNAS and EnTranNAS-DST (whose plan holds only the uncut connections); with
    ``weights`` None the terms are summed unweighted, which is what a transit cell runs.
    """
    plan: Plan
    weights: Optional[Weights] = None


@dataclass(frozen=True)
class PartialChannels:
    """PC-DARTS engine cells: every ``active`` op on 1/K of each edge's channels, a channel shuffle, and node j
    summing its edges with ``edge_weights[e]``."""
    weights: Weights
    edge_weights: Sequence[Tensor]
    active: Tuple[int, ...]


CellInputs = Union[WeightedPlan, PartialChannels]


def _unbind(w: Tensor) -> List[Tuple[Tensor, ...]]:
    """``[E, K]`` weights as scalars, so autograd gathers their gradient in one place per forward."""
    return [row.unbind(0) for row in w.unbind(0)]


# ---- engine-cell placement ------------------------------------------------------------------------------
def reduction_cells(layers: int) -> Tuple[int, int]:
    """Reduction cells sit at 1/3 and 2/3 depth (DARTS)."""
    return layers // 3, 2 * layers // 3


def parse_engine_cells(value: Union[str, Sequence[int], None]) -> Optional[Union[str, List[int]]]:
    """'all' | 'first' | 'last' | 'default' (None) | cell indices, as a list or comma-separated ('0,5')."""
    if value is None or isinstance(value, list):
        return value
    if not isinstance(value, str):
        try:
            return [int(v) for v in value]
        except (TypeError, ValueError):
            raise SettingError('engine_cells', f'expected one of {ENGINE_PLACEMENTS} or a list of cell indices, '
                               f'got {value!r}') from None
    v = value.strip().lower()
    if v in ('', 'default'):
        return None
    if v in ENGINE_PLACEMENTS:
        return v
    try:
        cells = [int(x) for x in v.split(',') if x.strip()]
    except ValueError:
        raise SettingError('engine_cells', f"expected 'all', 'first', 'last', 'default' or comma-separated cell "
                           f'indices such as 2,5; got {value!r}') from None
    if not cells:
        raise SettingError('engine_cells', 'no cell index given')
    return cells


# ---- EnTranNAS-DST regularisers -------------------------------------------------------------------------
def _threshold_gap(thresholds: Tensor) -> Tensor:
    """``mean_j (1 - t_j)``: small when thresholds are high, so minimising it cuts connections."""
    return (1. - thresholds).mean()


# EnTranNAS-DST sparsity regularisers: name -> f(thresholds of all normal and reduction nodes) -> scalar.
# The paper's definition of its weight lambda is not available to us; L_arch = L_val + lambda * f(t) with
# f = 'threshold_gap' is our choice (docs/method.md, *EnTranNAS-DST*). Add an entry here to try another form.
ARCH_REGULARIZERS: Dict[str, Callable[[Tensor], Tensor]] = {
    'threshold_gap': _threshold_gap,
}


# ---- the methods --------------------------------------------------------------------------------------
@dataclass
class SearchMethod:
    """A search method; the hooks' defaults are DARTS's behaviour. Dataclass fields are the method's settings.

    Class attributes: ``name`` (what ``--method`` takes), ``summary`` (one line for ``--help``),
    ``transit_cells`` (engine cells are placed, every other cell is a transit cell and features are shared by
    default: the EnTranNAS family) and ``default_engine_cells`` (the placement used when none is given).
    """
    name: ClassVar[str] = ''
    summary: ClassVar[str] = ''
    transit_cells: ClassVar[bool] = False
    default_engine_cells: ClassVar[str] = 'all'

    @classmethod
    def settings(cls) -> Tuple[str, ...]:
        """The names of this method's own settings (its dataclass fields)."""
        return tuple(f.name for f in dataclasses.fields(cls))

    # ---- settings that depend on the super-net ---------------------------------------------------------
    def check_supernet(self, channels: int) -> None:
        """Reject settings that do not fit a super-net of ``channels`` initial channels (raise SettingError)."""

    def candidate_ops(self, space: str) -> Tuple[str, ...]:
        """The ops every edge chooses from, in the space's order (docs/method.md, *Search space*)."""
        if space not in SPACES:
            raise SettingError('space', f'expected one of {sorted(SPACES)}, got {space!r}')
        return SPACES[space]

    def engine_cells(self, value: Union[str, Sequence[int], None], layers: int) -> List[int]:
        """The indices of the engine cells for a placement ('all', 'first', 'last', indices; None: default)."""
        value = parse_engine_cells(value)
        if value is None:
            value = self.default_engine_cells
        reductions = reduction_cells(layers)
        normal = [i for i in range(layers) if i not in reductions]
        if value == 'all':
            cells = list(range(layers))
        elif value == 'first':
            cells = [normal[0], reductions[0]]
        elif value == 'last':
            cells = [reductions[1], normal[-1]]
        else:
            cells = sorted(set(value))
        bad = [c for c in cells if not 0 <= c < layers]
        if bad:
            raise SettingError('engine_cells', f'indices {bad} out of range for {layers} cells (0..{layers - 1})')
        if not self.transit_cells and cells != list(range(layers)):
            raise SettingError('engine_cells', f'{self.name} makes every cell an engine cell ("all"); only methods '
                               f'with transit cells place them, got {value!r}')
        if not any(c in reductions for c in cells) or all(c in reductions for c in cells):
            raise SettingError('engine_cells', f'{cells}: need at least one normal and one reduction cell '
                               f'(reductions are {list(reductions)}), or that cell type\'s architecture never learns')
        return cells

    def feature_sharing(self, value: Optional[bool]) -> bool:
        """Whether cells share features (docs/method.md, *Feature sharing*); None: the method's default."""
        if value and not self.transit_cells:
            raise SettingError('feature_sharing', f'{self.name} never shares features; for that ablation use '
                               'method "entrannas" with engine cells "all"')
        return self.transit_cells if value is None else bool(value)

    @property
    def skips_weights(self) -> bool:
        """Some weights get no gradient in a step (transit cells run only derived ops), so DDP must look for them."""
        return self.transit_cells

    @property
    def partial_k(self) -> int:
        """Ops run on ``C // partial_k`` channels (PC-DARTS's K; 1 = all channels)."""
        return 1

    # ---- architecture parameters -----------------------------------------------------------------------
    def extra_arch_parameters(self, num_edges: int, nodes: int, device=None, dtype=None) -> Dict[str, nn.Parameter]:
        """Architecture parameters besides ``alphas_normal`` / ``alphas_reduce``, by attribute name."""
        return {}

    def arch_param_groups(self, net: SuperNet, weight_decay: float) -> List[Dict[str, Any]]:
        """Adam parameter groups of the architecture parameters (DARTS: one group, one weight decay)."""
        return [{'params': net.arch_parameters(), 'weight_decay': weight_decay}]

    # ---- weights, engine cells, derivation, regulariser ------------------------------------------------
    def op_weights(self, net: SuperNet, kind: str) -> Tensor:
        """``p = softmax(alpha / tau)`` of ``kind`` ('normal' or 'reduce'), ``[num_edges, num_ops]``."""
        return F.softmax(getattr(net, f'alphas_{kind}') / net.temperature, dim=-1)

    def engine_weights(self, net: SuperNet, kind: str) -> Tensor:
        """The weight engine cells give each (edge, op), ``[num_edges, num_ops]`` (recorded in ``arch`` records)."""
        return self.op_weights(net, kind)

    def engine_inputs(self, net: SuperNet, kinds: Sequence[str]) -> Dict[str, CellInputs]:
        """What the engine cells of each cell kind run this forward: every non-zero op on every edge, weighted."""
        return {kind: WeightedPlan(net.full_plan, _unbind(self.op_weights(net, kind))) for kind in kinds}

    def derive(self, net: SuperNet, kind: str) -> CellSpec:
        """The derived cell (no gradient): the top-2 rule on :meth:`engine_weights`."""
        return derive_top2(self.engine_weights(net, kind), net.ops, net.nodes)

    def thresholds(self, net: SuperNet, kind: str) -> Optional[Tensor]:
        """Per-node thresholds, for methods that have them (EnTranNAS-DST); None otherwise."""
        return None

    def regularizer(self, net: SuperNet) -> Optional[Tensor]:
        """A term added to the architecture loss, or None."""
        return None


METHODS: Dict[str, Type[SearchMethod]] = {}


def register_method(cls: Type[SearchMethod]) -> Type[SearchMethod]:
    """Class decorator: make ``cls`` a search method under ``cls.name`` (``--method``, the super-net, bench)."""
    if not cls.name or cls.name in METHODS:
        raise ValueError(f'method name {cls.name!r}: expected a new, non-empty name')
    METHODS[cls.name] = cls
    return cls


def method_settings() -> Tuple[str, ...]:
    """Every setting some registered method owns (the method-specific settings)."""
    return tuple(dict.fromkeys(name for cls in METHODS.values() for name in cls.settings()))


def create_method(name: str, **settings: Any) -> SearchMethod:
    """The method ``name`` with ``settings`` (the rest default); a setting of another method is refused."""
    cls = METHODS.get(name)
    if cls is None:
        raise SettingError('method', f'expected one of {", ".join(METHODS)}, got {name!r}')
    own = cls.settings()
    for key in settings:
        if key not in own:
            owners = [m for m, c in METHODS.items() if key in c.settings()]
            raise SettingError(key, f'a setting of {" and ".join(owners)} only, not of {name}' if owners
                               else f'not a setting of any method (those of {name}: {list(own)})')
    return cls(**settings)


@register_method
@dataclass
class Darts(SearchMethod):
    """DARTS: every cell an engine cell, ``p = softmax(alpha / tau)`` on every edge, the top-2 rule."""
    name: ClassVar[str] = 'darts'
    summary: ClassVar[str] = 'first order; second order with --unrolled'
    unrolled: bool = False  # second order: the architecture gradient through one unrolled weight step

    def __post_init__(self):
        if not isinstance(self.unrolled, bool):
            raise SettingError('unrolled', f'expected true or false, got {self.unrolled!r}')


@register_method
@dataclass
class PCDarts(SearchMethod):
    """PC-DARTS: 1/K of each edge's channels through the mixed op, channel shuffle, edge normalisation."""
    name: ClassVar[str] = 'pc-darts'
    summary: ClassVar[str] = 'partial channels + edge normalisation'
    pc_k: int = 4

    def __post_init__(self):
        if not isinstance(self.pc_k, int) or isinstance(self.pc_k, bool) or self.pc_k < 1:
            raise SettingError('pc_k', f'expected a positive integer, got {self.pc_k!r}')

    def check_supernet(self, channels: int) -> None:
        if channels % self.pc_k:
            raise SettingError('pc_k', f'expected a divisor of channels={channels}, got {self.pc_k}')

    @property
    def partial_k(self) -> int:
        return self.pc_k

    def extra_arch_parameters(self, num_edges: int, nodes: int, device=None, dtype=None) -> Dict[str, nn.Parameter]:
        dd = dict(device=device, dtype=dtype)
        return {'betas_normal': nn.Parameter(1e-3 * torch.randn(num_edges, **dd)),
                'betas_reduce': nn.Parameter(1e-3 * torch.randn(num_edges, **dd))}

    def edge_weights(self, net: SuperNet, kind: str) -> Tensor:
        """Normalised edge weights of ``kind``, ``[num_edges]`` (a softmax over each node's inputs)."""
        return edge_normalisation(getattr(net, f'betas_{kind}'), net.nodes)

    def engine_weights(self, net: SuperNet, kind: str) -> Tensor:
        return self.op_weights(net, kind) * self.edge_weights(net, kind).unsqueeze(1)

    def engine_inputs(self, net: SuperNet, kinds: Sequence[str]) -> Dict[str, CellInputs]:
        return {kind: PartialChannels(_unbind(self.op_weights(net, kind)), self.edge_weights(net, kind).unbind(0),
                                      net.active_ops) for kind in kinds}

    def derive(self, net: SuperNet, kind: str) -> CellSpec:
        return derive_top2(self.op_weights(net, kind), net.ops, net.nodes, self.edge_weights(net, kind))


@register_method
@dataclass
class EnTranNAS(SearchMethod):
    """EnTranNAS: placed engine cells, transit cells that run the derived cell, feature sharing, the top-2 rule."""
    name: ClassVar[str] = 'entrannas'
    summary: ClassVar[str] = 'engine + transit cells, feature sharing'
    transit_cells: ClassVar[bool] = True
    # Our choice (docs/method.md, *Engine-cells and Transit-cells*): the engine cells sit where the feature
    # maps are smallest, so the cells that store every candidate path are the cheapest ones.
    default_engine_cells: ClassVar[str] = 'last'


@register_method
@dataclass
class EnTranNASDST(EnTranNAS):
    """EnTranNAS-DST: per-node thresholds ``t_j = sigmoid(beta_j)`` cut weak connections (no zero op); the derived
    cell is every connection with ``q > 0``, so nodes keep any number of inputs."""
    name: ClassVar[str] = 'entrannas-dst'
    summary: ClassVar[str] = 'learned per-node thresholds, no zero op'
    lam: float = 0.1                          # weight of the sparsity regulariser
    init_threshold: float = 0.3               # t_j at initialisation
    dst_regularizer: str = 'threshold_gap'    # form of the lam term, a key of ARCH_REGULARIZERS
    threshold_decay: float = 0.               # Adam weight decay of the threshold logits beta (docs/method.md)

    def __post_init__(self):
        if not isinstance(self.lam, (int, float)) or not self.lam >= 0:
            raise SettingError('lam', f'expected >= 0, got {self.lam!r}')
        if not isinstance(self.init_threshold, (int, float)) or not 0. < self.init_threshold < 1.:
            raise SettingError('init_threshold', f'expected a value in (0, 1), got {self.init_threshold!r}')
        if self.dst_regularizer not in ARCH_REGULARIZERS:
            raise SettingError('dst_regularizer', f'expected one of {sorted(ARCH_REGULARIZERS)}, got '
                               f'{self.dst_regularizer!r}')
        if not isinstance(self.threshold_decay, (int, float)) or not self.threshold_decay >= 0:
            raise SettingError('threshold_decay', f'expected >= 0, got {self.threshold_decay!r}')

    def candidate_ops(self, space: str) -> Tuple[str, ...]:
        """The space without the zero op: DST learns the topology through its thresholds instead."""
        return tuple(o for o in super().candidate_ops(space) if o != 'none')

    def extra_arch_parameters(self, num_edges: int, nodes: int, device=None, dtype=None) -> Dict[str, nn.Parameter]:
        dd = dict(device=device, dtype=dtype)
        logit = math.log(self.init_threshold / (1. - self.init_threshold))
        return {'threshold_logits_normal': nn.Parameter(torch.full((nodes,), logit, **dd)),
                'threshold_logits_reduce': nn.Parameter(torch.full((nodes,), logit, **dd))}

    def arch_param_groups(self, net: SuperNet, weight_decay: float) -> List[Dict[str, Any]]:
        """Alphas decay with ``weight_decay`` (``--arch-weight-decay``), threshold logits with ``threshold_decay``."""
        return [{'params': [net.alphas_normal, net.alphas_reduce], 'weight_decay': weight_decay},
                {'params': [net.threshold_logits_normal, net.threshold_logits_reduce],
                 'weight_decay': self.threshold_decay}]

    def thresholds(self, net: SuperNet, kind: str) -> Tensor:
        return torch.sigmoid(getattr(net, f'threshold_logits_{kind}'))

    def sparsified(self, net: SuperNet, kind: str) -> Tuple[Tensor, Tensor]:
        """``(q, q_hat)`` of ``kind`` (differentiable); see :func:`search.derive.dst_weights`."""
        return dst_weights(self.op_weights(net, kind), self.thresholds(net, kind), net.nodes)

    def engine_weights(self, net: SuperNet, kind: str) -> Tensor:
        return self.sparsified(net, kind)[1]

    def engine_inputs(self, net: SuperNet, kinds: Sequence[str]) -> Dict[str, CellInputs]:
        """``q_hat`` weights on a plan of the uncut connections, compiled from the current ``q > 0`` (one host
        sync per forward for all kinds)."""
        qs = {kind: self.sparsified(net, kind) for kind in kinds}
        keep = torch.stack([qs[kind][0] > 0 for kind in kinds]).tolist()
        out: Dict[str, CellInputs] = {}
        for kind, mask in zip(kinds, keep):
            plan = net.compile_plan([[(i, k) for i, row in enumerate(mask[s]) for k, on in enumerate(row) if on]
                                     for s in node_slices(net.nodes)])
            out[kind] = WeightedPlan(plan, _unbind(qs[kind][1]))
        return out

    def derive(self, net: SuperNet, kind: str) -> CellSpec:
        return derive_dst(self.sparsified(net, kind)[0], net.ops, net.nodes)

    def regularizer(self, net: SuperNet) -> Tensor:
        """``lam * ARCH_REGULARIZERS[dst_regularizer](t)`` over all normal and reduction nodes, by default
        ``lam * mean_j(1 - t_j)`` (our choice of form, docs/method.md, *EnTranNAS-DST*)."""
        t = torch.cat([self.thresholds(net, kind) for kind in CELL_KINDS])
        return self.lam * ARCH_REGULARIZERS[self.dst_regularizer](t)
