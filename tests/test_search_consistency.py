"""The consistency measurement (docs/method.md, *Consistency*): the derived network's inherited weights, the
measurement in a search and as ``python -m search consistency``, its records, and the search cost fields."""
from __future__ import annotations

import json
import re
import shutil
import sys

import pytest
import torch

import search.loop
from entrannas_timm.reports.records import search_cost_seconds
from search.cli import main, parse_config
from search.config import ConfigError, resolve_config
from search.consistency import (
    CONSISTENCY_FILE,
    STAGES,
    derived_network,
    inherit_weights,
    keep_consistency,
    read_consistency,
)
from search.derive import cell_edges
from search.loop import load_checkpoint_arch, run
from search.supernet import SearchNetwork

TINY = ['--synthetic', '--subset', '16', '--image-size', '16', '--channels', '4', '--layers', '3', '--epochs', '2',
        '--batch-size', '8', '--workers', '0', '--device', 'cpu', '--threads', '1', '--eval-channels', '8',
        '--eval-layers', '3', '--quiet']
MEASURE = ['--consistency-batches', '2', '--consistency-steps', '2', '--consistency-images', '8']

# cells without pools (the super-net's pools carry a batch norm the derived network does not have)
TOP2 = {'normal': [[('sep_conv_3x3', 0), ('dil_conv_3x3', 1)], [('skip_connect', 0), ('sep_conv_5x5', 2)],
                   [('dil_conv_5x5', 1), ('sep_conv_3x3', 3)], [('skip_connect', 2), ('sep_conv_3x3', 0)]],
        'reduce': [[('skip_connect', 0), ('sep_conv_3x3', 1)], [('dil_conv_3x3', 0), ('skip_connect', 1)],
                   [('sep_conv_5x5', 2), ('skip_connect', 0)], [('dil_conv_5x5', 3), ('sep_conv_3x3', 1)]]}
# EnTranNAS-DST keeps any number of inputs per node
DST = {'normal': [[('sep_conv_3x3', 1)], [('skip_connect', 0), ('dil_conv_3x3', 1), ('sep_conv_5x5', 2)],
                  [('sep_conv_3x3', 0)], [('sep_conv_3x3', 0), ('skip_connect', 2), ('dil_conv_5x5', 4)]],
       'reduce': [[('skip_connect', 0), ('sep_conv_3x3', 1)], [('dil_conv_3x3', 0)],
                  [('skip_connect', 0), ('sep_conv_5x5', 2)], [('dil_conv_5x5', 3)]]}


def _make_discrete(net: SearchNetwork, cells) -> None:
    """Architecture weights one-hot on ``cells``: softmax of a 1e4 logit is exactly 1 (the rest exactly 0); edges
    outside the cells are one-hot on the zero op (DARTS family) or, for DST, uniform, so their ratio 1/7 is below
    the threshold 0.3 and they are cut."""
    edges = cell_edges(net.nodes)
    with torch.no_grad():
        for kind, nodes in cells.items():
            a = getattr(net, f'alphas_{kind}')
            a.zero_()
            if 'none' in net.ops:
                a[:, net.ops.index('none')] = 1e4
            for j, conns in enumerate(nodes):
                for op, i in conns:
                    e = edges.index((i, j + 2))
                    if 'none' in net.ops:
                        a[e, net.ops.index('none')] = 0.
                    a[e, net.ops.index(op)] = 1e4
    net.rederive()


@pytest.mark.parametrize('method,stem,cells', [('darts', 'cifar', TOP2), ('entrannas', 'imagenet', TOP2),
                                               ('entrannas-dst', 'cifar', DST)])
def test_inherited_weights_give_the_logits_of_an_already_discrete_supernet(one_thread, method, stem, cells):
    torch.manual_seed(0)
    size = 32 if stem == 'imagenet' else 16
    net = SearchNetwork(method=method, num_classes=5, in_chans=3, channels=4, layers=5, stem=stem)
    _make_discrete(net, cells)
    g = net.genotype()
    for kind in ('normal', 'reduce'):
        assert [sorted(node) for node in getattr(g, kind).nodes] == [sorted(node) for node in cells[kind]]
    with torch.no_grad():  # running statistics away from their initial 0 / 1
        for _ in range(3):
            net(3 * torch.randn(8, 3, size, size) + 1)
    derived = derived_network(net)
    assert type(derived).__name__ == 'CellNetwork' and derived.genotype.feature_sharing is net.feature_sharing
    x = torch.randn(4, 3, size, size)
    net.eval()
    derived.eval()
    with torch.no_grad():
        fresh = derived(x)
        report = inherit_weights(net, derived)
        expected, got = net(x), derived(x)
    assert not torch.allclose(fresh, expected, atol=1e-3)  # the mapping is what makes them agree
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    assert report.initialised == [] and report.dropped == 0 and report.copied > 0
    assert report.affine_identity > 0 and report.copied + report.affine_identity == report.total


def test_pc_darts_partial_channel_ops_stay_initialised(one_thread):
    net = SearchNetwork(method='pc-darts', num_classes=5, in_chans=3, channels=8, layers=3, pc_k=4)
    derived = derived_network(net)
    report = inherit_weights(net, derived).to_dict()
    assert report['initialised'] > 0 and report['copied'] > 0
    assert all('.ops.' in name for name in report['initialised_names'])  # stem, preprocessing, classifier mapped


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_search_records_its_consistency_the_command_adds_to_it_and_the_report_shows_it(tmp_path, one_thread, capsys,
                                                                                        monkeypatch):
    plain, measured = tmp_path / 'plain', tmp_path / 'measured'
    a = run(parse_config(['--method', 'entrannas-dst', *TINY, '--output', str(plain)]))
    b = run(parse_config(['--method', 'entrannas-dst', *TINY, *MEASURE, '--consistency-epochs', '1,end',
                          '--output', str(measured)]))
    # the measurement runs on its own random streams: the search is exactly the unmeasured one
    assert b.genotype == a.genotype and all(torch.equal(x, y) for x, y in zip(a.arch_parameters, b.arch_parameters))
    assert [r['train_loss'] for r in _lines(plain / 'metrics.jsonl')] == \
        [r['train_loss'] for r in _lines(measured / 'metrics.jsonl')]
    assert not (plain / CONSISTENCY_FILE).exists()

    recs = read_consistency(measured)
    assert [(r['epoch'], r['source']) for r in recs] == [(1, 'search'), (2, 'search')]
    rec = recs[-1]
    assert set(rec['acc']) == set(STAGES) and all(0 <= v <= 1 for v in rec['acc'].values())
    assert rec['heldout'] == {'split': 'synthetic held-out', 'images': 8, 'transform': 'none (random images)'}
    assert rec['settings']['batches'] == 2 and rec['settings']['steps'] == 2
    assert rec['network']['entrypoint'] == 'cellnet_cifar' and rec['network']['channels'] == 4
    assert rec['genotype']['normal'] == json.loads((measured / 'genotype.json').read_text())['normal']

    cost = json.loads((measured / 'genotype.json').read_text())['provenance']['search_cost']
    epochs = _lines(measured / 'metrics.jsonl')
    assert cost['cpu_s'] == pytest.approx(sum(r['epoch_cpu_s'] for r in epochs), abs=0.01)
    assert cost['wall_s'] == pytest.approx(sum(r['epoch_time_s'] for r in epochs), abs=0.01)
    assert cost['consistency_cpu_s'] == pytest.approx(sum(r['cpu_s'] for r in recs), abs=0.01)
    assert len(cost['load_avg_start']) == 3 and 'cpu_hours' not in cost
    plain_cost = json.loads((plain / 'genotype.json').read_text())['provenance']['search_cost']
    assert 'consistency_cpu_s' not in plain_cost and plain_cost['cpu_s'] > 0

    capsys.readouterr()
    assert main(['consistency', str(measured), '--batches', '1', '--steps', '1', '--images', '4']) == 0
    out, err = capsys.readouterr()
    assert out.startswith('consistency after epoch 2 (synthetic held-out, 4 images): supernet ')
    assert 'inherited' in err and 'scratch' in err  # not a terminal: plain lines, no bar
    recs = read_consistency(measured)
    assert [(r['epoch'], r['source']) for r in recs] == [(1, 'search'), (2, 'search'), (2, 'command')]
    assert recs[-1]['heldout']['images'] == 4 and recs[-1]['settings']['steps'] == 1
    # on a terminal: a progress bar instead of the plain lines
    monkeypatch.setattr(sys.stderr, 'isatty', lambda: True)
    assert main(['consistency', str(measured), '--batches', '1', '--steps', '1', '--images', '4', '--json']) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)['source'] == 'command' and 'consistency epoch 2' in err and 'acc' not in err
    # measuring leaves the checkpoint as it was
    assert all(torch.equal(load_checkpoint_arch(measured / 'checkpoint.pt')[k], v)
               for k, v in load_checkpoint_arch(plain / 'checkpoint.pt').items())

    # entrannas report shows every measurement: a curve and a table of the recorded accuracies
    if shutil.which('dot') is None:
        pytest.skip('Graphviz `dot` not installed (the report draws cells)')
    from entrannas_timm.reports.report import build_report
    page = build_report(measured).read_text()
    assert (measured / 'report' / 'consistency.png').stat().st_size > 0
    section = page[page.index('<h2>Consistency</h2>'):]
    rows = re.findall(r'<tr><td>(\d+)</td><td>(\w+)</td><td>\d+</td>((?:<td>[^<]*</td>){7})</tr>', section)
    assert [(int(e), s) for e, s, _ in rows] == [(r['epoch'], r['source']) for r in read_consistency(measured)]
    for (_, _, cells), r in zip(rows, read_consistency(measured)):
        values = re.findall(r'<td>([^<]*)</td>', cells)
        assert values[:5] == [f'{100 * r["acc"][s]:.2f}' for s in STAGES]
        assert float(values[5]) == pytest.approx(100 * (r['acc']['supernet'] - r['acc']['inherited']), abs=0.006)
    assert '<h2>Consistency</h2>' not in build_report(plain).read_text()
    assert not (plain / 'report' / 'consistency.png').exists()
    # a malformed measurement file is a note naming the bad line; the rest of the report stands
    bad_line = len(read_consistency(measured)) + 1
    with (measured / CONSISTENCY_FILE).open('a') as f:
        f.write('{"epoch": 1, "source": "elsewhere"}\n')
    page = build_report(measured).read_text()
    assert 'the consistency measurements could not be read' in page and f'consistency.jsonl:{bad_line}' in page
    assert '<h2>Consistency</h2>' not in page and '<h2>Curves</h2>' in page


def test_a_resumed_search_measures_again_what_its_checkpoint_lacks(tmp_path, one_thread, ctrl_c_before):
    out = tmp_path / 'run'
    argv = ['--method', 'darts', *TINY, *MEASURE, '--consistency-epochs', '1,2', '--output', str(out)]
    with ctrl_c_before(search.loop, '_checkpoint', 2), \
            pytest.raises(KeyboardInterrupt, match='during epoch 2; the checkpoint of epoch 1'):
        run(parse_config(argv))  # stopped after measuring epoch 2, before its checkpoint
    assert [r['epoch'] for r in read_consistency(out)] == [1, 2]
    run(parse_config([*argv, '--resume']))
    recs = read_consistency(out)
    assert [(r['epoch'], r['source']) for r in recs] == [(1, 'search'), (2, 'search')]
    cost = json.loads((out / 'genotype.json').read_text())['provenance']['search_cost']
    assert cost['consistency_cpu_s'] == pytest.approx(sum(r['cpu_s'] for r in recs), abs=0.01)


def test_resume_drops_the_search_measurements_past_its_checkpoint(tmp_path):
    src = tmp_path / 'src'
    lines = []
    for epoch, source in ((1, 'search'), (2, 'search'), (2, 'command')):
        lines.append(json.dumps({'epoch': epoch, 'epochs': 2, 'source': source, 'heldout': {'split': 'test'},
                                 'acc': dict.fromkeys(STAGES, 0.5), 'loss': dict.fromkeys(STAGES, None),
                                 'cpu_s': 1.0, 'wall_s': 1.0}))
    src.mkdir()
    (src / CONSISTENCY_FILE).write_text('\n'.join(lines) + '\n')
    kept = keep_consistency(src, 1)
    assert [(r['epoch'], r['source']) for r in kept] == [(1, 'search')]
    assert [(r['epoch'], r['source']) for r in read_consistency(src)] == [(1, 'search'), (2, 'command')]
    (src / CONSISTENCY_FILE).write_text(lines[0].replace('"acc": {"supernet": 0.5', '"acc": {"supernet": 1.5') + '\n')
    with pytest.raises(ValueError, match=r'consistency.jsonl:1: field "acc"'):
        read_consistency(src)


def test_bad_input_is_one_line_naming_the_file_or_flag(tmp_path, one_thread, capsys):
    out = tmp_path / 'run'
    run(parse_config(['--method', 'darts', *TINY, '--epochs', '1', '--output', str(out)]))
    bare = tmp_path / 'bare'
    bare.mkdir()
    nockpt = tmp_path / 'nockpt'
    nockpt.mkdir()
    shutil.copy(out / 'config.json', nockpt / 'config.json')
    cases = [
        ([str(tmp_path / 'missing')], 1, f'{tmp_path / "missing"}: not a directory'),
        ([str(bare)], 1, f'{bare}: not a search run directory (no config.json)'),
        ([str(nockpt)], 1, f'{nockpt / "checkpoint.pt"}: no checkpoint'),
        ([str(out), '--checkpoint', str(tmp_path / 'x.pt')], 1, f'--checkpoint: {tmp_path / "x.pt"} not found'),
        ([str(out), '--checkpoint', str(out / 'config.json')], 1, 'is not a readable checkpoint'),
        ([str(out), '--steps', '0'], 2, "argument --steps: expected a positive integer, got '0'"),
        ([str(out), '--batches', 'many'], 2, "argument --batches: expected a positive integer, got 'many'"),
        ([str(out), '--lr', '-1'], 2, "argument --lr: expected a finite number > 0, got '-1'"),
        ([str(out), '--device', 'tpu'], 2, "argument --device: expected cpu, cuda or cuda:N"),
    ]
    for argv, code, message in cases:
        assert main(['consistency', *argv]) == code, argv
        err = capsys.readouterr().err
        assert err.startswith('error: ') and message in err and err.count('\n') == 1, (argv, err)
    assert not (out / CONSISTENCY_FILE).exists()
    for value in ('0', '3', '1,x', ','):
        with pytest.raises(ConfigError, match=re.escape("--consistency-epochs: expected comma-separated epochs in "
                                                        f"1..2 (--epochs) or 'end', such as 10,25,end; got {value!r}")):
            resolve_config({'epochs': 2, 'consistency_epochs': value})
    assert resolve_config({'epochs': 5, 'consistency_epochs': '4,end,1'}).consistency_epochs == [1, 4, 5]
    assert resolve_config({'consistency_epochs': 'off'}).consistency_epochs is None
    with pytest.raises(ConfigError, match='--consistency-steps: expected a positive integer'):
        resolve_config({'consistency_steps': 0})


def test_search_cost_reader_reads_both_forms():
    new = {'wall_s': 90.0, 'cpu_s': 170.0, 'consistency_cpu_s': 12.0, 'devices': 1}
    assert search_cost_seconds(new) == {'wall_s': 90.0, 'cpu_s': 170.0, 'consistency_cpu_s': 12.0}
    old = {'wall_time_s': 3600.0, 'devices': 1, 'device': 'cpu', 'cpu_hours': 1.0, 'process_cpu_s': 2000.0}
    assert search_cost_seconds(old) == {'wall_s': 3600.0, 'cpu_s': 2000.0, 'consistency_cpu_s': None}
    # cpu_hours was wall time x processes
    assert search_cost_seconds({'cpu_hours': 2.0, 'devices': 2}) == {'wall_s': 3600.0, 'cpu_s': None,
                                                                      'consistency_cpu_s': None}
