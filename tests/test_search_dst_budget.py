"""``python -m search dst-budget``: a DST run's cells re-derived at other thresholds, costed as a user builds them."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from entrannas_timm import Genotype
from entrannas_timm.models import CellSpec
from search.cli import main
from search.dst_budget import derive_at, read_epoch_arch, sweep
from search.supernet import SearchNetwork


def test_cell_in_degree_counts_input_nodes_and_ops_per_edge_apart():
    g = Genotype(CellSpec(((('sep_conv_3x3', 0), ('max_pool_3x3', 0)),
                           (('skip_connect', 1), ('sep_conv_3x3', 2), ('dil_conv_3x3', 1))), (2, 3)),
                 CellSpec(((('max_pool_3x3', 1),), (('skip_connect', 2),)), (2, 3)))
    assert g.normal.in_degree() == (1, 2) and g.normal.ops_per_edge() == ((2,), (2, 1))
    assert g.reduce.in_degree() == (1, 1) and g.reduce.ops_per_edge() == ((1,), (1,))


def _dst_run(tmp_path: Path, seed: int = 0) -> tuple[Path, SearchNetwork]:
    """A recorded DST state with distinct alphas and thresholds, as a search writes it."""
    torch.manual_seed(seed)
    net = SearchNetwork(method='entrannas-dst', num_classes=10, channels=4, layers=3, nodes=3)
    with torch.no_grad():
        for kind in ('normal', 'reduce'):
            getattr(net, f'alphas_{kind}').normal_(0., 1.)
            getattr(net, f'threshold_logits_{kind}').copy_(torch.tensor([0.2, 0.6, 1.0]))
    net.rederive()
    (tmp_path / 'config.json').write_text(json.dumps({'method': 'entrannas-dst', 'space': 'standard', 'nodes': 3,
                                                      'lam': 0.1, 'temperature': 1.0}))
    rows = [{'epoch': 1, 'arch': net.arch_snapshot()}]
    (tmp_path / 'metrics.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in rows))
    return tmp_path, net


def test_learned_thresholds_give_the_cells_the_search_derived(tmp_path):
    run, net = _dst_run(tmp_path)
    cells = derive_at(read_epoch_arch(str(run)), None)
    searched = net.genotype()
    assert (cells['normal'], cells['reduce']) == (searched.normal, searched.reduce)


def test_higher_thresholds_cut_more_and_cost_less(tmp_path):
    run, _ = _dst_run(tmp_path)
    arch = read_epoch_arch(str(run))
    costs = sweep(arch, [0.2, 0.5, 0.8, 0.99], network='cifar', channels=8, layers=3)
    uniform = costs[1:]
    totals = [c.connections['normal'] + c.connections['reduce'] for c in uniform]
    assert totals == sorted(totals, reverse=True) and totals[0] > totals[-1]
    assert [c.macs for c in uniform] == sorted((c.macs for c in uniform), reverse=True)
    # at 0.99 each node keeps only what ties its strongest candidate: one input, one op
    assert uniform[-1].in_degree == {'normal': [1, 1, 1], 'reduce': [1, 1, 1]}
    for c in costs:
        for kind in ('normal', 'reduce'):
            assert [len(e) for e in c.ops_per_edge[kind]] == c.in_degree[kind]
            assert sum(map(sum, c.ops_per_edge[kind])) == c.connections[kind]


def test_command_prints_the_table_and_rejects_other_records(tmp_path, capsys):
    run, _ = _dst_run(tmp_path)
    assert main(['dst-budget', str(run), '--thresholds', '0.9', '--network', 'cifar', '--channels', '8',
                 '--layers', '3', '--budget', '1e12']) == 0
    out = capsys.readouterr().out
    assert '| learned |' in out and '| 0.90 |' in out and 'yes' in out
    (run / 'config.json').write_text(json.dumps({'method': 'darts', 'space': 'standard'}))
    assert main(['dst-budget', str(run)]) == 1
    assert "method 'darts'" in capsys.readouterr().err
    (run / 'config.json').write_text(json.dumps({'method': 'entrannas-dst', 'space': 'standard', 'nodes': 3}))
    rows = [json.loads(line) for line in (run / 'metrics.jsonl').read_text().splitlines()]
    rows[0]['arch']['parameters']['alphas_reduce'] = [[1.0]]
    (run / 'metrics.jsonl').write_text(json.dumps(rows[0]) + '\n')
    assert main(['dst-budget', str(run)]) == 1
    assert 'arch.parameters.alphas_reduce: expected a finite [9, 7]' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(['dst-budget', str(run), '--thresholds', '1.5'])
