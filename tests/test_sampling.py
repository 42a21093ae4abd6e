"""Random cells (the random-search baseline): seeded, uniform over the space, loadable like any genotype."""
from __future__ import annotations

import collections
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch

from entrannas_timm import SPACES, Genotype
from entrannas_timm.models.sampling import sample_genotype

ROOT = Path(__file__).resolve().parents[1]


def test_a_seed_gives_one_cell_pair_and_seeds_differ():
    assert sample_genotype(3) == sample_genotype(3)
    cells = {(g.normal, g.reduce) for g in map(sample_genotype, range(20))}
    assert len(cells) == 20


@pytest.mark.parametrize('space', ['standard', 'extended'])
def test_inputs_and_ops_are_drawn_uniformly(space):
    ops = [o for o in SPACES[space] if o != 'none']
    op_count: collections.Counter = collections.Counter()
    first_node_inputs: collections.Counter = collections.Counter()
    n = 600
    for seed in range(n):
        g = sample_genotype(seed, space)
        for cell in (g.normal, g.reduce):
            for j, node in enumerate(cell.nodes):
                inputs = [i for _, i in node]
                assert len(inputs) == 2 and len(set(inputs)) == 2 and all(0 <= i < j + 2 for i in inputs)
                op_count.update(op for op, _ in node)
            first_node_inputs.update(i for _, i in cell.nodes[3])
    assert set(op_count) == set(ops)
    expected = sum(op_count.values()) / len(ops)
    assert all(abs(c - expected) < 0.15 * expected for c in op_count.values()), op_count
    # the last node chooses 2 of its 5 earlier states: each with probability 2/5
    assert all(abs(first_node_inputs[i] - 2 * n * 2 / 5) < 0.15 * (2 * n * 2 / 5) for i in range(5))


def test_a_random_cell_builds_and_round_trips_with_its_provenance(tmp_path):
    g = sample_genotype(7)
    assert g.provenance['seed'] == 7 and g.provenance['paper_id'] == 'arXiv:1902.07638'
    path = g.save(tmp_path / 'r.json')
    back = Genotype.load(path)
    assert back == g and back.provenance['seed'] == 7
    with torch.device('meta'):
        model = timm.create_model('cellnet_cifar', genotype=path)
    assert model.genotype == g


def test_command_writes_the_sampled_cell(tmp_path):
    out = tmp_path / 'random_s5.json'
    proc = subprocess.run([sys.executable, '-m', 'entrannas_timm', 'genotype', '--random', '5', '--to-json', str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert Genotype.load(out) == sample_genotype(5)
    proc = subprocess.run([sys.executable, '-m', 'entrannas_timm', 'genotype', 'darts_v2', '--random', '5'],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and 'one of them' in proc.stderr
