"""The search super-net: DARTS, PC-DARTS, EnTranNAS and EnTranNAS-DST on one cell implementation.

A :class:`SearchCell` owns every candidate op of the space (built by :func:`entrannas_timm.ops.make_op` with
``search=True``) and runs in one of three ways:

- **engine, weighted** (DARTS, EnTranNAS engine-cells, EnTranNAS-DST engine-cells): node ``j`` is
  ``sum_{i, k} w_ijk o_k(x_i)`` with ``w = softmax(alpha / tau)`` (DST: ``q_hat``). The zero op contributes
  exactly nothing and is skipped; DST's cut connections (``q = 0``) are skipped too.
- **engine, partial channels** (PC-DARTS): ``1 / K`` of the channels go through the mixed op, the rest bypass it
  (max-pooled on strided edges), the result is channel-shuffled with ``K`` groups and node ``j`` sums its edges
  with the normalised edge weights.
- **transit** (EnTranNAS transit-cells, METHOD.md §3): only the currently derived set ``S_j`` is computed and
  summed without weights; no architecture gradient reaches these cells.

With **feature sharing** (METHOD.md §4) a cell holds one op instance per (source state, op) instead of one per
(edge, op), and each one is evaluated once per forward for every node it feeds; without it the layout is
DARTS's, so ``entrannas`` with every cell an engine and sharing off holds exactly ``darts``' parameters and
computes exactly its output.

The derivation rules live in :mod:`search.derive`; :meth:`SearchNetwork.rederive` applies them to the current
architecture parameters and recompiles what transit cells run (call it after every architecture step).
"""
from __future__ import annotations

import math
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from entrannas_timm.genotype import CellSpec, Genotype
from entrannas_timm.network import make_stem
from entrannas_timm.ops import SPACES, FactorizedReduce, ReLUConvBN, make_op

from .derive import cell_edges, derive_dst, derive_top2, dst_weights, edge_normalisation, node_slices

__all__ = [
    'METHODS', 'ENGINE_PLACEMENTS', 'DEFAULT_ENGINE_CELLS', 'ARCH_REGULARIZERS', 'SearchCell', 'SearchNetwork',
    'channel_shuffle', 'method_ops',
]

METHODS = ('darts', 'pc-darts', 'entrannas', 'entrannas-dst')
STEMS = ('cifar', 'imagenet')
ENGINE_PLACEMENTS = ('all', 'first', 'last')
# Our choice (METHOD.md §3): the engine cells sit where the feature maps are smallest, so the cells that store
# every candidate path are the cheapest ones. search/bench.py measures the alternatives.
DEFAULT_ENGINE_CELLS = 'last'
CELL_KINDS = ('normal', 'reduce')


def _threshold_gap(thresholds: Tensor) -> Tensor:
    """``mean_j (1 - t_j)``: small when thresholds are high, so minimising it cuts connections."""
    return (1. - thresholds).mean()


# EnTranNAS-DST sparsity regularisers: name -> f(thresholds of all normal and reduction nodes) -> scalar.
# The paper's definition of its weight lambda is not available to us; L_arch = L_val + lambda * f(t) with
# f = 'threshold_gap' is our choice (METHOD.md §5). Add an entry here to try another form.
ARCH_REGULARIZERS: Dict[str, Callable[[Tensor], Tensor]] = {
    'threshold_gap': _threshold_gap,
}

# one term of a node's sum: (input state i, op group g, op index k, edge e)
Term = Tuple[int, int, int, int]
Plan = Tuple[Tuple[Term, ...], ...]


def method_ops(method: str, space: str) -> Tuple[str, ...]:
    """The candidate ops of ``method`` in ``space`` (EnTranNAS-DST drops the zero op)."""
    if space not in SPACES:
        raise ValueError(f'space: expected one of {sorted(SPACES)}, got {space!r}')
    ops = SPACES[space]
    return tuple(o for o in ops if o != 'none') if method == 'entrannas-dst' else ops


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """Interleave ``groups`` channel groups (ShuffleNet), so PC-DARTS's processed channels rotate every cell."""
    b, c, h, w = x.shape
    return x.reshape(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class SearchCell(nn.Module):
    """A super-net cell holding every candidate op; engine or transit behaviour is chosen per forward.

    ``ops[g][k]`` is op ``k`` of group ``g``: a group per edge (DARTS layout) or, with ``feature_sharing``,
    per source state. ``partial_k > 1`` builds the ops at ``C // partial_k`` channels (PC-DARTS).
    """

    def __init__(self, ops: Sequence[str], nodes: int, C_prev_prev: int, C_prev: int, C: int, reduction: bool,
                 reduction_prev: bool, feature_sharing: bool = False, partial_k: int = 1, engine: bool = True,
                 device=None, dtype=None):
        super().__init__()
        dd = dict(device=device, dtype=dtype)
        self.reduction = reduction
        self.engine = engine
        self.nodes = nodes
        self.partial_k = partial_k
        if reduction_prev:
            self.preprocess0 = FactorizedReduce(C_prev_prev, C, affine=False, **dd)
        else:
            self.preprocess0 = ReLUConvBN(C_prev_prev, C, 1, 1, 0, affine=False, **dd)
        self.preprocess1 = ReLUConvBN(C_prev, C, 1, 1, 0, affine=False, **dd)
        sources = [i for i, _ in cell_edges(nodes)] if not feature_sharing else list(range(nodes + 1))
        C_op = C // partial_k
        self.ops = nn.ModuleList([
            nn.ModuleList([make_op(name, C_op, 2 if reduction and i < 2 else 1, search=True, **dd) for name in ops])
            for i in sources
        ])
        # Every op of a group reads the same input, and most begin with ReLU: compute it once per group and run
        # the ops' remaining layers on it (same result, one stored activation instead of one per op).
        # Plain lists, not submodules: the tails share the ops' layers and add nothing to the state dict.
        self._tails: List[List[Optional[nn.Module]]] = [
            [nn.Sequential(*list(op)[1:]) if isinstance(op, nn.Sequential) and isinstance(op[0], nn.ReLU) else None
             for op in group]
            for group in self.ops
        ]

    def _op(self, g: int, k: int, x: Tensor, relu_cache: Dict[int, Tensor]) -> Tensor:
        """Op ``k`` of group ``g`` on ``x``, reusing the group's ReLU(x) when the op starts with one."""
        tail = self._tails[g][k]
        if tail is None:
            return self.ops[g][k](x)
        r = relu_cache.get(g)
        if r is None:
            r = relu_cache[g] = F.relu(x)
        return tail(r)

    def forward(self, s0: Tensor, s1: Tensor, weights: Optional[Sequence[Sequence[Tensor]]] = None,
                plan: Optional[Plan] = None, edge_weights: Optional[Sequence[Tensor]] = None,
                active: Sequence[int] = ()) -> Tensor:
        """Transit (``weights`` None: run ``plan`` unweighted), PC-DARTS engine (``edge_weights`` given: all
        ``active`` ops on every edge) or weighted engine (``weights`` with ``plan``)."""
        if weights is not None and edge_weights is not None:
            return self.forward_partial(s0, s1, weights, edge_weights, active)
        assert plan is not None
        return self.forward_plan(s0, s1, plan, weights)

    def forward_plan(self, s0: Tensor, s1: Tensor, plan: Plan,
                     weights: Optional[Sequence[Sequence[Tensor]]] = None) -> Tensor:
        """Node j = sum over its plan's terms of ``ops[g][k](state i)``, scaled by ``weights[e][k]`` when given.

        Engine cells pass their weights; transit cells pass none and sum the derived ops unweighted. Each
        ``(g, k)`` is evaluated once even when several nodes read it (feature sharing).
        """
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        outs: Dict[Tuple[int, int], Tensor] = {}
        relus: Dict[int, Tensor] = {}
        for node_terms in plan:
            acc: Optional[Tensor] = None
            for i, g, k, e in node_terms:
                o = outs.get((g, k))
                if o is None:
                    o = outs[(g, k)] = self._op(g, k, states[i], relus)
                if weights is None:
                    acc = o if acc is None else acc + o
                else:
                    w = weights[e][k]
                    acc = o * w if acc is None else torch.addcmul(acc, o, w)
            assert acc is not None
            states.append(acc)
        return torch.cat(states[2:], dim=1)

    def forward_partial(self, s0: Tensor, s1: Tensor, weights: Sequence[Sequence[Tensor]],
                        edge_weights: Sequence[Tensor], active: Sequence[int]) -> Tensor:
        """PC-DARTS engine cell: partial-channel mixed op per edge, channel shuffle, edge-weighted node sum."""
        K = self.partial_k
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        e = 0
        for j in range(self.nodes):
            acc: Optional[Tensor] = None
            for i in range(j + 2):
                x = states[i]
                c = x.shape[1] // K
                xa, xb = x[:, :c], x[:, c:]
                mix: Optional[Tensor] = None
                relus: Dict[int, Tensor] = {}
                for k in active:
                    o = self._op(e, k, xa, relus)
                    mix = o * weights[e][k] if mix is None else torch.addcmul(mix, o, weights[e][k])
                assert mix is not None
                if self.reduction and i < 2:
                    xb = F.max_pool2d(xb, 2, 2, ceil_mode=True)
                y = channel_shuffle(torch.cat([mix, xb], dim=1), K)
                acc = y * edge_weights[e] if acc is None else torch.addcmul(acc, y, edge_weights[e])
                e += 1
            assert acc is not None
            states.append(acc)
        return torch.cat(states[2:], dim=1)

    def extra_repr(self) -> str:
        return f'engine={self.engine}, reduction={self.reduction}'


def _resolve_engine_cells(value: Union[str, Sequence[int], None], method: str, layers: int,
                          reductions: Tuple[int, int]) -> List[int]:
    if value is None:
        value = 'all' if method in ('darts', 'pc-darts') else DEFAULT_ENGINE_CELLS
    normal_cells = [i for i in range(layers) if i not in reductions]
    if isinstance(value, str):
        key = value.strip().lower()
        if key == 'all':
            cells = list(range(layers))
        elif key == 'first':
            cells = [normal_cells[0], reductions[0]]
        elif key == 'last':
            cells = [reductions[1], normal_cells[-1]]
        else:
            try:
                cells = [int(v) for v in key.replace(' ', '').split(',') if v]
            except ValueError:
                raise ValueError(f'engine_cells: expected one of {ENGINE_PLACEMENTS} or cell indices like '
                                 f'"2,5", got {value!r}') from None
    else:
        try:
            cells = [int(v) for v in value]
        except (TypeError, ValueError):
            raise ValueError(f'engine_cells: expected one of {ENGINE_PLACEMENTS} or a list of cell indices, '
                             f'got {value!r}') from None
    cells = sorted(set(cells))
    bad = [c for c in cells if not 0 <= c < layers]
    if bad:
        raise ValueError(f'engine_cells: indices {bad} out of range for {layers} cells (0..{layers - 1})')
    if not any(c in reductions for c in cells) or all(c in reductions for c in cells):
        raise ValueError(f'engine_cells {cells}: need at least one normal and one reduction cell (reductions '
                         f'are {list(reductions)}), or that cell type\'s architecture never learns')
    if method in ('darts', 'pc-darts') and cells != list(range(layers)):
        raise ValueError(f'engine_cells: {method} makes every cell an engine cell ("all"), got {value!r}')
    return cells


class SearchNetwork(nn.Module):
    """The super-net of every search method (METHOD.md §2-5); see the module docstring.

    Architecture parameters (all ``nn.Parameter`` of this module, listed by :meth:`arch_parameters`):
    ``alphas_normal`` / ``alphas_reduce`` (``[num_edges, num_ops]``, edges in DARTS order), PC-DARTS's edge
    ``betas_normal`` / ``betas_reduce`` (``[num_edges]``) and EnTranNAS-DST's ``threshold_logits_normal`` /
    ``threshold_logits_reduce`` (``[nodes]``, ``t_j = sigmoid(beta_j)``, initialised at ``init_threshold``).

    Engine cells default to ``'last'`` for EnTranNAS (the second reduction cell and the last normal cell, where
    maps are smallest); darts and pc-darts always use ``'all'``. ``dst_regularizer`` names the entry of
    :data:`ARCH_REGULARIZERS` used by :meth:`arch_regularizer`.
    """

    def __init__(self, *, method: str, num_classes: int, in_chans: int = 3, channels: int = 16, layers: int = 8,
                 nodes: int = 4, space: str = 'standard', stem: str = 'cifar',
                 engine_cells: Union[str, Sequence[int], None] = None, feature_sharing: Optional[bool] = None,
                 temperature: float = 1.0, pc_k: int = 4, init_threshold: float = 0.3, stem_multiplier: int = 3,
                 dst_regularizer: str = 'threshold_gap', device=None, dtype=None):
        super().__init__()
        dd = dict(device=device, dtype=dtype)
        if method not in METHODS:
            raise ValueError(f'method: expected one of {METHODS}, got {method!r}')
        if stem not in STEMS:
            raise ValueError(f'stem: expected one of {STEMS}, got {stem!r}')
        if layers < 3:
            raise ValueError(f'layers: a search net needs at least 3 cells (normal, reduce, reduce), got {layers}')
        if nodes < 1:
            raise ValueError(f'nodes: expected at least 1 intermediate node, got {nodes}')
        if channels < 2 or channels % 2:
            raise ValueError(f'channels: expected an even number >= 2, got {channels}')
        if num_classes < 0 or in_chans < 1:
            raise ValueError(f'num_classes must be >= 0 and in_chans >= 1, got {num_classes} and {in_chans}')
        if not temperature > 0:
            raise ValueError(f'temperature: expected > 0, got {temperature}')
        if method == 'pc-darts' and (pc_k < 1 or channels % pc_k):
            raise ValueError(f'pc_k: expected a divisor of channels={channels}, got {pc_k}')
        if method == 'entrannas-dst' and not 0. < init_threshold < 1.:
            raise ValueError(f'init_threshold: expected a value in (0, 1), got {init_threshold}')
        if dst_regularizer not in ARCH_REGULARIZERS:
            raise ValueError(f'dst_regularizer: expected one of {sorted(ARCH_REGULARIZERS)}, got {dst_regularizer!r}')
        entrannas = method.startswith('entrannas')
        if feature_sharing is None:
            feature_sharing = entrannas
        if feature_sharing and not entrannas:
            raise ValueError(f'feature_sharing: {method} never shares features; for that ablation use method '
                             '"entrannas" with engine_cells="all"')
        self.method, self.space, self.nodes, self.layers = method, space, nodes, layers
        self.ops: Tuple[str, ...] = method_ops(method, space)
        self.feature_sharing = bool(feature_sharing)
        self.temperature = float(temperature)
        self.pc_k = pc_k
        self.stem_type = stem
        self.num_classes = num_classes
        self.dst_regularizer = dst_regularizer
        self.reduction_indices = (layers // 3, 2 * layers // 3)
        self.engine_cell_indices: List[int] = _resolve_engine_cells(engine_cells, method, layers,
                                                                    self.reduction_indices)
        self.edges = cell_edges(nodes)
        self._edge_index = {edge: e for e, edge in enumerate(self.edges)}
        self._active = tuple(k for k, name in enumerate(self.ops) if name != 'none')

        C = channels
        C_stem = stem_multiplier * C
        # CIFAR: a 3x3 conv; ImageNet: PC-DARTS's search stem, three stride-2 3x3 convs to 1/8 resolution
        self.stem0, self.stem1 = make_stem(stem, in_chans, C_stem, **dd)
        reduction_prev = stem == 'imagenet'
        C_prev_prev, C_prev, C_curr = C_stem, C_stem, C
        self.cells = nn.ModuleList()
        partial_k = pc_k if method == 'pc-darts' else 1
        for i in range(layers):
            reduction = i in self.reduction_indices
            if reduction:
                C_curr *= 2
            self.cells.append(SearchCell(self.ops, nodes, C_prev_prev, C_prev, C_curr, reduction, reduction_prev,
                                         self.feature_sharing, partial_k, i in self.engine_cell_indices, **dd))
            reduction_prev = reduction
            C_prev_prev, C_prev = C_prev, nodes * C_curr
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.num_features = C_prev
        self.classifier = nn.Linear(C_prev, num_classes, **dd) if num_classes > 0 else nn.Identity()

        E, K = len(self.edges), len(self.ops)
        self.alphas_normal = nn.Parameter(1e-3 * torch.randn(E, K, **dd))
        self.alphas_reduce = nn.Parameter(1e-3 * torch.randn(E, K, **dd))
        self._arch_names = ['alphas_normal', 'alphas_reduce']
        if method == 'pc-darts':
            self.betas_normal = nn.Parameter(1e-3 * torch.randn(E, **dd))
            self.betas_reduce = nn.Parameter(1e-3 * torch.randn(E, **dd))
            self._arch_names += ['betas_normal', 'betas_reduce']
        if method == 'entrannas-dst':
            logit = math.log(init_threshold / (1. - init_threshold))
            self.threshold_logits_normal = nn.Parameter(torch.full((nodes,), logit, **dd))
            self.threshold_logits_reduce = nn.Parameter(torch.full((nodes,), logit, **dd))
            self._arch_names += ['threshold_logits_normal', 'threshold_logits_reduce']

        # the engine plan of non-DST methods never changes: every non-zero op on every edge
        self._full_plan = self._plan([[(i, k) for i in range(j + 2) for k in self._active] for j in range(nodes)])
        self._transit_plans: Dict[str, Plan] = {}
        self.derived: Dict[str, CellSpec] = {}
        self.rederive()
        # a loaded checkpoint carries new architecture parameters: transit cells must follow them
        self.register_load_state_dict_post_hook(lambda module, incompatible: module.rederive())

    # ---- architecture parameters -------------------------------------------------------------------
    def arch_parameters(self) -> List[nn.Parameter]:
        """Alphas (normal, reduce), then PC-DARTS edge betas or EnTranNAS-DST threshold logits."""
        return [getattr(self, n) for n in self._arch_names]

    def arch_parameter_names(self) -> List[str]:
        """Attribute (and state_dict) names of :meth:`arch_parameters`, in the same order."""
        return list(self._arch_names)

    def weight_parameters(self) -> List[nn.Parameter]:
        """Every parameter that is not an architecture parameter."""
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    def thresholds(self, kind: str) -> Tensor:
        """EnTranNAS-DST thresholds ``t_j = sigmoid(beta_j)`` of ``kind`` ('normal' or 'reduce')."""
        if self.method != 'entrannas-dst':
            raise ValueError(f'thresholds exist only for entrannas-dst, not {self.method}')
        return torch.sigmoid(getattr(self, f'threshold_logits_{kind}'))

    def op_weights(self, kind: str) -> Tensor:
        """``p = softmax(alpha / tau)`` of ``kind``, ``[num_edges, num_ops]`` (differentiable)."""
        return F.softmax(getattr(self, f'alphas_{kind}') / self.temperature, dim=-1)

    def edge_weights(self, kind: str) -> Tensor:
        """PC-DARTS normalised edge weights of ``kind``, ``[num_edges]`` (softmax over each node's inputs)."""
        return edge_normalisation(getattr(self, f'betas_{kind}'), self.nodes)

    def dst_weights(self, kind: str) -> Tuple[Tensor, Tensor]:
        """EnTranNAS-DST ``(q, q_hat)`` of ``kind`` (differentiable); see :func:`search.derive.dst_weights`."""
        return dst_weights(self.op_weights(kind), self.thresholds(kind), self.nodes)

    def engine_weights(self, kind: str) -> Tensor:
        """The per-(edge, op) weights engine cells actually use: ``p``; DST ``q_hat``; PC-DARTS ``p * edge``."""
        if self.method == 'entrannas-dst':
            return self.dst_weights(kind)[1]
        if self.method == 'pc-darts':
            return self.op_weights(kind) * self.edge_weights(kind).unsqueeze(1)
        return self.op_weights(kind)

    def arch_regularizer(self, lam: float) -> Tensor:
        """EnTranNAS-DST: ``lam * ARCH_REGULARIZERS[dst_regularizer](t)`` over all normal and reduction nodes,
        by default ``lam * mean_j(1 - t_j)`` (our choice of form, METHOD.md §5); other methods: 0."""
        if self.method != 'entrannas-dst':
            return self.alphas_normal.new_zeros(())
        t = torch.cat([self.thresholds('normal'), self.thresholds('reduce')])
        return lam * ARCH_REGULARIZERS[self.dst_regularizer](t)

    # ---- derivation ---------------------------------------------------------------------------------
    def _plan(self, nodes: Sequence[Sequence[Tuple[int, int]]]) -> Plan:
        """Compile per-node ``(input, op index)`` lists into forward terms ``(i, group, k, edge)``."""
        out = []
        for j, conns in enumerate(nodes):
            terms = []
            for i, k in conns:
                e = self._edge_index[(i, j + 2)]
                terms.append((i, i if self.feature_sharing else e, k, e))
            out.append(tuple(terms))
        return tuple(out)

    def _derive(self, kind: str) -> CellSpec:
        with torch.no_grad():
            if self.method == 'entrannas-dst':
                return derive_dst(self.dst_weights(kind)[0], self.ops, self.nodes)
            edge_w = self.edge_weights(kind) if self.method == 'pc-darts' else None
            return derive_top2(self.op_weights(kind), self.ops, self.nodes, edge_w)

    def rederive(self) -> None:
        """Derive the architecture from the current parameters; transit cells run it from now on."""
        for kind in CELL_KINDS:
            spec = self._derive(kind)
            self.derived[kind] = spec
            self._transit_plans[kind] = self._plan(
                [[(i, self.ops.index(op)) for op, i in node] for node in spec.nodes])

    def genotype(self) -> Genotype:
        """The architecture derived from the current parameters (no name or provenance)."""
        sharing = self.feature_sharing if self.method.startswith('entrannas') else False
        return Genotype(self._derive('normal'), self._derive('reduce'), self.space, sharing)

    def arch_snapshot(self) -> dict:
        """JSON-able view of the architecture state (the ``arch`` record of ``metrics.jsonl``).

        ``parameters`` holds the raw architecture parameters, so :meth:`load_arch_snapshot` can put a super-net
        back into any recorded epoch's state (``python -m search.bench --dst-run`` times them).
        """
        geno = self.genotype()
        with torch.no_grad():
            params = {name: getattr(self, name).float().cpu().tolist() for name in self._arch_names}
            weights = {kind: self.engine_weights(kind).float().cpu().tolist() for kind in CELL_KINDS}
            thresholds = None
            if self.method == 'entrannas-dst':
                thresholds = {kind: self.thresholds(kind).float().cpu().tolist() for kind in CELL_KINDS}
        cells = {'normal': geno.normal, 'reduce': geno.reduce}
        return {
            'ops': list(self.ops),
            'edges': [[i, j] for i, j in self.edges],
            'weights': weights,
            'thresholds': thresholds,
            'active_connections': {kind: [len(node) for node in cell.nodes] for kind, cell in cells.items()},
            'skip_connect': {kind: sum(op == 'skip_connect' for _, op, _ in cell.connections())
                             for kind, cell in cells.items()},
            'parameters': params,
        }

    def load_arch_snapshot(self, snapshot: dict) -> None:
        """Set the architecture parameters from an :meth:`arch_snapshot` (a ``metrics.jsonl`` record's ``arch``)
        of the same method, space and node count, then re-derive."""
        params = snapshot.get('parameters') if isinstance(snapshot, dict) else None
        if not isinstance(params, dict):
            raise ValueError('arch snapshot: no "parameters" object (records written before it was added cannot '
                             'be replayed)')
        if list(snapshot.get('ops', self.ops)) != list(self.ops):
            raise ValueError(f'arch snapshot: ops {snapshot.get("ops")} differ from this super-net\'s {list(self.ops)}')
        missing = [n for n in self._arch_names if n not in params]
        if missing:
            raise ValueError(f'arch snapshot: "parameters" lacks {missing} (a {self.method} super-net needs '
                             f'{self._arch_names})')
        with torch.no_grad():
            for name in self._arch_names:
                p = getattr(self, name)
                value = torch.as_tensor(params[name], dtype=p.dtype)
                if value.shape != p.shape:
                    raise ValueError(f'arch snapshot: parameters.{name} has shape {list(value.shape)}, expected '
                                     f'{list(p.shape)}')
                p.copy_(value)
        self.rederive()

    # ---- forward ------------------------------------------------------------------------------------
    def _engine_inputs(self) -> Dict[str, tuple]:
        """Per cell type, what engine cells need this forward: weights as scalars, plan or edge weights.

        Weights are unbound into scalars once per forward (not per cell), so autograd gathers their gradient
        in one place. DST compiles its plan from the current ``q > 0`` (one host sync per forward).
        """
        kinds = sorted({'reduce' if self.cells[i].reduction else 'normal' for i in self.engine_cell_indices})
        out: Dict[str, tuple] = {}
        if self.method == 'entrannas-dst':
            qs = {kind: self.dst_weights(kind) for kind in kinds}
            keep = torch.stack([qs[kind][0] > 0 for kind in kinds]).tolist()
            for kind, mask in zip(kinds, keep):
                plan = self._plan([[(i, k) for i, row in enumerate(mask[s]) for k, on in enumerate(row) if on]
                                   for s in node_slices(self.nodes)])
                out[kind] = ([row.unbind(0) for row in qs[kind][1].unbind(0)], plan)
        elif self.method == 'pc-darts':
            for kind in kinds:
                p = self.op_weights(kind)
                out[kind] = ([row.unbind(0) for row in p.unbind(0)], self.edge_weights(kind).unbind(0))
        else:
            for kind in kinds:
                p = self.op_weights(kind)
                out[kind] = ([row.unbind(0) for row in p.unbind(0)], self._full_plan)
        return out

    def forward_features(self, x: Tensor) -> Tensor:
        s0 = self.stem0(x)
        s1 = self.stem1(s0)
        engine = self._engine_inputs()
        for cell in self.cells:
            kind = 'reduce' if cell.reduction else 'normal'
            if not cell.engine:
                out = cell(s0, s1, plan=self._transit_plans[kind])
            elif self.method == 'pc-darts':
                out = cell(s0, s1, engine[kind][0], edge_weights=engine[kind][1], active=self._active)
            else:
                out = cell(s0, s1, engine[kind][0], engine[kind][1])
            s0, s1 = s1, out
        return s1

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``[batch, num_classes]``."""
        return self.classifier(self.global_pool(self.forward_features(x)).flatten(1))

    def extra_repr(self) -> str:
        return (f'method={self.method}, space={self.space}, ops={len(self.ops)}, engine_cells='
                f'{self.engine_cell_indices}, feature_sharing={self.feature_sharing}')
