"""Cells sampled uniformly from a search space: the random-search baseline a searched cell must beat.

Random search over the DARTS space (Li & Talwalkar 2019, arXiv:1902.07638; Yang et al. 2020, arXiv:1912.12522)
draws, for each intermediate node, its inputs uniformly among the earlier states (without repetition) and each
connection's op uniformly among the space's ops other than ``none``: the same cell shape every DARTS-family
method derives, so a trained random cell is the reference a searched cell is compared with.
"""
from __future__ import annotations

import random

from .genotype import CellSpec, Genotype
from .ops import SPACES

__all__ = ['sample_genotype', 'RANDOM_SEARCH_PAPER']

RANDOM_SEARCH_PAPER = ('Random Search and Reproducibility for Neural Architecture Search', 'arXiv:1902.07638')


def _cell(rng: random.Random, ops: list, nodes: int, inputs: int) -> CellSpec:
    cell = []
    for j in range(nodes):
        chosen = sorted(rng.sample(range(j + 2), min(inputs, j + 2)))
        cell.append(tuple((rng.choice(ops), i) for i in chosen))
    return CellSpec(tuple(cell), tuple(range(2, nodes + 2)))


def sample_genotype(seed: int, space: str = 'standard', nodes: int = 4, inputs_per_node: int = 2) -> Genotype:
    """The cell pair of ``seed``: the same seed gives the same cells on every machine and Python version."""
    if space not in SPACES:
        raise ValueError(f'space: expected one of {sorted(SPACES)}, got {space!r}')
    if nodes < 1 or inputs_per_node < 1:
        raise ValueError(f'nodes and inputs_per_node: expected >= 1, got {nodes} and {inputs_per_node}')
    # a string seed is hashed by sha512 (random.seed version 2): stable across platforms and Python versions
    rng = random.Random(f'entrannas-timm random cell: {space}, {nodes} nodes, {inputs_per_node} inputs, seed {seed}')
    ops = [o for o in SPACES[space] if o != 'none']
    normal, reduce = _cell(rng, ops, nodes, inputs_per_node), _cell(rng, ops, nodes, inputs_per_node)
    provenance = dict(
        method='random search (uniform over the space)', seed=seed, space=space, nodes=nodes,
        inputs_per_node=inputs_per_node, paper=RANDOM_SEARCH_PAPER[0], paper_id=RANDOM_SEARCH_PAPER[1],
        source='entrannas_timm.models.sampling.sample_genotype',
        command=f'entrannas genotype --random {seed} --space {space} --to-json random_s{seed}.json')
    return Genotype(normal, reduce, space, False, name=f'random_s{seed}', provenance=provenance)
