"""Architecture derivation: from architecture weights to the cells a search yields (docs/method.md, *Derivation*).

Two rules share one edge layout, DARTS's order: node ``j`` (state ``j + 2``) reads inputs ``0 .. j + 1``,
and the edges of all nodes are listed node by node (:func:`cell_edges`).

- :func:`derive_top2`, the hand-made rule of DARTS and EnTranNAS: each node keeps the 2 incoming edges with the
  largest ``max_{k != none} w``, each kept edge its strongest non-zero op. PC-DARTS passes its normalised edge
  weights, so ``w = p * edge_weight``.
- :func:`dst_weights` / :func:`derive_dst`, EnTranNAS-DST's differentiable sparsification: per node threshold
  ``t_j``, ``q = ReLU(p / max_{i', k'} p - t_j)``; the derived set is every connection with ``q > 0``.

All functions are pure (tensors in, tensors or specs out), so the super-net, the tests and analysis tools use
the very same rules.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from entrannas_timm.models.genotype import CellSpec

__all__ = [
    'cell_edges', 'node_slices', 'edge_normalisation', 'derive_top2', 'dst_weights', 'derive_dst',
]


def cell_edges(nodes: int) -> List[Tuple[int, int]]:
    """``(input, node_state_index)`` for every edge, in DARTS order (node states are numbered from 2)."""
    return [(i, j + 2) for j in range(nodes) for i in range(j + 2)]


def node_slices(nodes: int) -> List[slice]:
    """The rows of node ``j``'s incoming edges in an ``[num_edges, ...]`` tensor."""
    out, start = [], 0
    for j in range(nodes):
        out.append(slice(start, start + j + 2))
        start += j + 2
    return out


def edge_normalisation(betas: Tensor, nodes: int) -> Tensor:
    """PC-DARTS edge weights: a softmax over the incoming edges of each node (``betas``: ``[num_edges]``)."""
    return torch.cat([F.softmax(betas[s], dim=-1) for s in node_slices(nodes)])


def _check(weights: Tensor, ops: Sequence[str], nodes: int) -> None:
    expected = (len(cell_edges(nodes)), len(ops))
    if tuple(weights.shape) != expected:
        raise ValueError(f'architecture weights: expected shape {list(expected)} (edges of {nodes} nodes x '
                         f'{len(ops)} ops), got {list(weights.shape)}')


def derive_top2(weights: Tensor, ops: Sequence[str], nodes: int, edge_weights: Optional[Tensor] = None) -> CellSpec:
    """The DARTS rule: per node the 2 edges with the largest non-zero op weight, each with its argmax op.

    ``weights`` is ``[num_edges, len(ops)]`` (``softmax(alpha / tau)``); PC-DARTS passes ``edge_weights``
    (``[num_edges]``) and ranks ``weights * edge_weights``. Ties go to the lower input / op index, as in the
    original code. Connections are listed strongest edge first (the DARTS text order).
    """
    _check(weights, ops, nodes)
    w = weights.detach().float()
    if edge_weights is not None:
        w = w * edge_weights.detach().float().reshape(-1, 1)
    candidates = [k for k, name in enumerate(ops) if name != 'none']
    if not candidates:
        raise ValueError(f'ops {list(ops)}: no non-zero operation to derive')
    rows = w[:, candidates].tolist()
    cell = []
    for j, s in enumerate(node_slices(nodes)):
        node_rows = rows[s]
        ranked = sorted(range(j + 2), key=lambda i: -max(node_rows[i]))[:2]
        conns = []
        for i in ranked:
            r = node_rows[i]
            best = max(range(len(r)), key=lambda c: (r[c], -c))  # first maximum, as the original loop
            conns.append((ops[candidates[best]], i))
        cell.append(tuple(conns))
    return CellSpec(tuple(cell), tuple(range(2, nodes + 2)))


def dst_weights(p: Tensor, thresholds: Tensor, nodes: int) -> Tuple[Tensor, Tensor]:
    """EnTranNAS-DST sparsified weights ``(q, q_hat)``, differentiable in ``p`` and the thresholds.

    ``p``: ``[num_edges, K]`` per-edge softmax over the K ops (no zero op); ``thresholds``: ``[nodes]``,
    ``t_j = sigmoid(beta_j)``. ``q = ReLU(p / max_{i'<j, k'} p - t_j)`` (the max over all of node j's
    candidates) and ``q_hat = q / sum_k q`` on every edge with some ``q > 0`` (0 on fully cut edges).
    The strongest candidate of a node has ratio 1, so with ``t_j < 1`` it is never cut.
    """
    if tuple(thresholds.shape) != (nodes,):
        raise ValueError(f'thresholds: expected shape [{nodes}], got {list(thresholds.shape)}')
    slices = node_slices(nodes)
    if p.shape[0] != slices[-1].stop:
        raise ValueError(f'p: expected {slices[-1].stop} edges for {nodes} nodes, got {p.shape[0]}')
    # node by node: each node's max and threshold apply to its own rows (no index tensors, any device)
    q = torch.cat([F.relu(p[s] / p[s].amax() - thresholds[j]) for j, s in enumerate(slices)])
    total = q.sum(dim=1, keepdim=True)
    q_hat = q / total.clamp_min(torch.finfo(q.dtype).tiny)  # cut edges: 0 / tiny = 0
    return q, q_hat


def derive_dst(q: Tensor, ops: Sequence[str], nodes: int) -> CellSpec:
    """The EnTranNAS-DST derived cell: ``S_j = {(i, k): q > 0}``, any number of inputs and ops per edge.

    Connections are listed by input, then by op order. ``q`` is ``[num_edges, K]`` (``q`` or ``q_hat``:
    they share their zeros).
    """
    _check(q, ops, nodes)
    if 'none' in ops:
        raise ValueError("EnTranNAS-DST has no zero op; 'none' must not be in its op list")
    keep = (q.detach() > 0).tolist()
    cell = []
    for j, s in enumerate(node_slices(nodes)):
        conns = tuple((ops[k], i) for i, row in enumerate(keep[s]) for k, on in enumerate(row) if on)
        if not conns:
            raise ValueError(f'node {j} lost every input; thresholds must stay below 1')
        cell.append(conns)
    return CellSpec(tuple(cell), tuple(range(2, nodes + 2)))
