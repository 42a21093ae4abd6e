"""The search super-net: DARTS, PC-DARTS, EnTranNAS and EnTranNAS-DST on one cell implementation.

A :class:`SearchCell` owns every candidate op of the space (built by :func:`entrannas_timm.models.ops.make_op` with
``search=True``) and runs what it is given:

- a weighted :class:`~search.methods.WeightedPlan` (DARTS, EnTranNAS and EnTranNAS-DST engine-cells): node ``j``
  is ``sum_{i, k} w_ijk o_k(x_i)`` over the plan's connections, ``w = softmax(alpha / tau)`` (DST: ``q_hat``).
  The zero op contributes exactly nothing and is never in a plan; DST's cut connections (``q = 0``) are not
  either.
- :class:`~search.methods.PartialChannels` (PC-DARTS engine-cells): ``1 / K`` of the channels go through the
  mixed op, the rest bypass it (max-pooled on strided edges), the result is channel-shuffled with ``K`` groups
  and node ``j`` sums its edges with the normalised edge weights.
- an unweighted plan (EnTranNAS transit-cells, docs/method.md, *Engine-cells and Transit-cells*): only the
  currently derived set ``S_j`` is computed and summed; no architecture gradient reaches these cells.

With **feature sharing** (docs/method.md, *Feature sharing*) a cell holds one op instance per (source state, op)
instead of one per (edge, op), and each one is evaluated once per forward for every node it feeds; without it
the layout is DARTS's, so ``entrannas`` with every cell an engine and sharing off holds exactly ``darts``'
parameters and computes exactly its output.

Everything in which the methods differ (candidate ops, architecture parameters, engine-cell inputs, derivation
rule, regulariser) is asked of the network's :class:`~search.methods.SearchMethod`; :meth:`SearchNetwork.rederive`
applies its derivation rule to the current architecture parameters and recompiles what transit cells run (call
it after every architecture step).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from entrannas_timm.models.genotype import CellSpec, Genotype
from entrannas_timm.models.network import make_stem
from entrannas_timm.models.ops import FactorizedReduce, ReLUConvBN, make_op

from .derive import cell_edges
from .methods import (
    CELL_KINDS,
    CellInputs,
    PartialChannels,
    Plan,
    SearchMethod,
    WeightedPlan,
    Weights,
    create_method,
    reduction_cells,
)

__all__ = ['STEMS', 'SearchCell', 'SearchNetwork', 'channel_shuffle']

STEMS = ('cifar', 'imagenet')


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

    def forward(self, s0: Tensor, s1: Tensor, inputs: CellInputs) -> Tensor:
        """Run ``inputs``: a weighted plan (engine), an unweighted one (transit) or PC-DARTS's partial channels."""
        if isinstance(inputs, PartialChannels):
            return self.forward_partial(s0, s1, inputs.weights, inputs.edge_weights, inputs.active)
        return self.forward_plan(s0, s1, inputs.plan, inputs.weights)

    def forward_plan(self, s0: Tensor, s1: Tensor, plan: Plan, weights: Optional[Weights] = None) -> Tensor:
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

    def forward_partial(self, s0: Tensor, s1: Tensor, weights: Weights, edge_weights: Sequence[Tensor],
                        active: Sequence[int]) -> Tensor:
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
                    # ceil_mode: odd maps too (docs/method.md, *Differences from the original code*)
                    xb = F.max_pool2d(xb, 2, 2, ceil_mode=True)
                y = channel_shuffle(torch.cat([mix, xb], dim=1), K)
                acc = y * edge_weights[e] if acc is None else torch.addcmul(acc, y, edge_weights[e])
                e += 1
            assert acc is not None
            states.append(acc)
        return torch.cat(states[2:], dim=1)

    def extra_repr(self) -> str:
        return f'engine={self.engine}, reduction={self.reduction}'


class SearchNetwork(nn.Module):
    """The super-net of every search method (docs/method.md); see the module docstring.

    ``method`` is a :class:`~search.methods.SearchMethod` or a registered method name, in which case
    ``method_settings`` (``pc_k=2``, ``init_threshold=0.4``, ...) are that method's own settings.

    Architecture parameters (all ``nn.Parameter`` of this module, listed by :meth:`arch_parameters`):
    ``alphas_normal`` / ``alphas_reduce`` (``[num_edges, num_ops]``, edges in DARTS order), then those the method
    adds (PC-DARTS's edge ``betas_normal`` / ``betas_reduce``, EnTranNAS-DST's ``threshold_logits_normal`` /
    ``threshold_logits_reduce``).

    ``engine_cells`` defaults to the method's placement (EnTranNAS: ``'last'``, the second reduction cell and
    the last normal cell, where maps are smallest; DARTS and PC-DARTS: ``'all'``).
    """

    def __init__(self, *, method: Union[str, SearchMethod], num_classes: int, in_chans: int = 3, channels: int = 16,
                 layers: int = 8, nodes: int = 4, space: str = 'standard', stem: str = 'cifar',
                 engine_cells: Union[str, Sequence[int], None] = None, feature_sharing: Optional[bool] = None,
                 temperature: float = 1.0, stem_multiplier: int = 3, device=None, dtype=None,
                 **method_settings: Any):
        super().__init__()
        dd = dict(device=device, dtype=dtype)
        if isinstance(method, SearchMethod):
            if method_settings:
                raise ValueError(f'method settings {sorted(method_settings)} belong in the method object')
        else:
            method = create_method(method, **method_settings)
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
        method.check_supernet(channels)
        self.method = method
        self.space, self.nodes, self.layers = space, nodes, layers
        self.ops: Tuple[str, ...] = method.candidate_ops(space)
        self.feature_sharing = method.feature_sharing(feature_sharing)
        self.temperature = float(temperature)
        self.stem_type = stem
        self.num_classes, self.in_chans = num_classes, in_chans
        # what the derived network is built at (search.consistency.derived_network)
        self.channels, self.stem_multiplier = channels, stem_multiplier
        self.reduction_indices = reduction_cells(layers)
        self.engine_cell_indices: List[int] = method.engine_cells(engine_cells, layers)
        self.edges = cell_edges(nodes)
        self._edge_index = {edge: e for e, edge in enumerate(self.edges)}
        self.active_ops: Tuple[int, ...] = tuple(k for k, name in enumerate(self.ops) if name != 'none')

        C = channels
        C_stem = stem_multiplier * C
        # CIFAR: a 3x3 conv; ImageNet: PC-DARTS's search stem, three stride-2 3x3 convs to 1/8 resolution
        self.stem0, self.stem1 = make_stem(stem, in_chans, C_stem, **dd)
        reduction_prev = stem == 'imagenet'
        C_prev_prev, C_prev, C_curr = C_stem, C_stem, C
        self.cells = nn.ModuleList()
        for i in range(layers):
            reduction = i in self.reduction_indices
            if reduction:
                C_curr *= 2
            self.cells.append(SearchCell(self.ops, nodes, C_prev_prev, C_prev, C_curr, reduction, reduction_prev,
                                         self.feature_sharing, method.partial_k, i in self.engine_cell_indices, **dd))
            reduction_prev = reduction
            C_prev_prev, C_prev = C_prev, nodes * C_curr
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.num_features = C_prev
        self.classifier = nn.Linear(C_prev, num_classes, **dd) if num_classes > 0 else nn.Identity()

        E, K = len(self.edges), len(self.ops)
        self.alphas_normal = nn.Parameter(1e-3 * torch.randn(E, K, **dd))
        self.alphas_reduce = nn.Parameter(1e-3 * torch.randn(E, K, **dd))
        extra = method.extra_arch_parameters(E, nodes, **dd)
        for name, param in extra.items():
            setattr(self, name, param)
        self._arch_names = ['alphas_normal', 'alphas_reduce', *extra]

        # the plan of every non-zero op on every edge (what softmax-weighted engine cells run)
        self.full_plan = self.compile_plan([[(i, k) for i in range(j + 2) for k in self.active_ops]
                                            for j in range(nodes)])
        self._transit_plans: Dict[str, Plan] = {}
        self.derived: Dict[str, CellSpec] = {}
        self.rederive()
        # a loaded checkpoint carries new architecture parameters: transit cells must follow them
        self.register_load_state_dict_post_hook(lambda module, incompatible: module.rederive())

    # ---- architecture parameters -------------------------------------------------------------------
    def arch_parameters(self) -> List[nn.Parameter]:
        """Alphas (normal, reduce), then the method's own (PC-DARTS edge betas, EnTranNAS-DST threshold logits)."""
        return [getattr(self, n) for n in self._arch_names]

    def arch_parameter_names(self) -> List[str]:
        """Attribute (and state_dict) names of :meth:`arch_parameters`, in the same order."""
        return list(self._arch_names)

    def arch_param_groups(self, weight_decay: float) -> List[Dict[str, Any]]:
        """Adam parameter groups of the architecture parameters (the method decides their weight decays)."""
        return self.method.arch_param_groups(self, weight_decay)

    def weight_parameters(self) -> List[nn.Parameter]:
        """Every parameter that is not an architecture parameter."""
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    def thresholds(self, kind: str) -> Tensor:
        """EnTranNAS-DST thresholds ``t_j = sigmoid(beta_j)`` of ``kind`` ('normal' or 'reduce')."""
        t = self.method.thresholds(self, kind)
        if t is None:
            raise ValueError(f'{self.method.name} has no thresholds')
        return t

    def op_weights(self, kind: str) -> Tensor:
        """The method's op weights of ``kind`` (``softmax(alpha / tau)``), ``[num_edges, num_ops]``."""
        return self.method.op_weights(self, kind)

    def engine_weights(self, kind: str) -> Tensor:
        """The per-(edge, op) weights engine cells actually use: ``p``; DST ``q_hat``; PC-DARTS ``p * edge``."""
        return self.method.engine_weights(self, kind)

    def arch_regularizer(self) -> Tensor:
        """The method's term of the architecture loss (EnTranNAS-DST: ``lam * mean_j(1 - t_j)``); others: 0."""
        reg = self.method.regularizer(self)
        return self.alphas_normal.new_zeros(()) if reg is None else reg

    # ---- derivation ---------------------------------------------------------------------------------
    def compile_plan(self, nodes: Sequence[Sequence[Tuple[int, int]]]) -> Plan:
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
            return self.method.derive(self, kind)

    def rederive(self) -> None:
        """Derive the architecture from the current parameters; transit cells run it from now on."""
        for kind in CELL_KINDS:
            spec = self._derive(kind)
            self.derived[kind] = spec
            self._transit_plans[kind] = self.compile_plan(
                [[(i, self.ops.index(op)) for op, i in node] for node in spec.nodes])

    def genotype(self) -> Genotype:
        """The architecture derived from the current parameters (no name or provenance)."""
        return Genotype(self._derive('normal'), self._derive('reduce'), self.space, self.feature_sharing)

    def arch_snapshot(self) -> dict:
        """JSON-able view of the architecture state (the ``arch`` record of ``metrics.jsonl``).

        ``parameters`` holds the raw architecture parameters, so :meth:`load_arch_snapshot` can put a super-net
        back into any recorded epoch's state (``python -m search.bench --dst-run`` times them).
        """
        geno = self.genotype()
        with torch.no_grad():
            params = {name: getattr(self, name).float().cpu().tolist() for name in self._arch_names}
            weights = {kind: self.engine_weights(kind).float().cpu().tolist() for kind in CELL_KINDS}
            thresholds = {kind: self.method.thresholds(self, kind) for kind in CELL_KINDS}
            thresholds = (None if any(t is None for t in thresholds.values()) else
                          {kind: t.float().cpu().tolist() for kind, t in thresholds.items()})
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
            raise ValueError(f'arch snapshot: "parameters" lacks {missing} (a {self.method.name} super-net needs '
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
    def forward_features(self, x: Tensor) -> Tensor:
        s0 = self.stem0(x)
        s1 = self.stem1(s0)
        kinds = sorted({'reduce' if self.cells[i].reduction else 'normal' for i in self.engine_cell_indices})
        engine = self.method.engine_inputs(self, kinds)
        for cell in self.cells:
            kind = 'reduce' if cell.reduction else 'normal'
            s0, s1 = s1, cell(s0, s1, engine[kind] if cell.engine else WeightedPlan(self._transit_plans[kind]))
        return s1

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``[batch, num_classes]``."""
        return self.classifier(self.global_pool(self.forward_features(x)).flatten(1))

    def extra_repr(self) -> str:
        return (f'method={self.method}, space={self.space}, ops={len(self.ops)}, engine_cells='
                f'{self.engine_cell_indices}, feature_sharing={self.feature_sharing}')
