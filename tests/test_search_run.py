"""End-to-end search runs on tiny synthetic data, real Fashion-MNIST loading, and the error cases."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch

from entrannas_timm import CellNetwork, Genotype
from entrannas_timm.reports.records import EPOCH_FIELDS, read_metrics
from search.cli import main, parse_config
from search.config import ConfigError, resolve_config
from search.data import DataError, build_search_data, read_idx
from search.loop import ResumeError, Searcher, SearchError, run

ROOT = Path(__file__).resolve().parents[1]
# 16x16 synthetic images, 4 channels, 5 cells: one epoch of 2 steps per split
TINY = ['--synthetic', '--subset', '16', '--image-size', '16', '--channels', '4', '--layers', '5', '--epochs', '1',
        '--batch-size', '8', '--workers', '0', '--device', 'cpu', '--threads', '1', '--eval-channels', '8',
        '--eval-layers', '5', '--quiet']
ARCH_KEYS = {'ops', 'edges', 'weights', 'thresholds', 'active_connections', 'skip_connect'}
FAST = [a if a != '5' else '3' for a in TINY]  # 3 cells and a 3-cell evaluation network: the smallest run


def _builds_both_families(g: Genotype) -> None:
    for stem, size in (('cifar', 16), ('imagenet', 32)):
        net = CellNetwork(g, stem_type=stem, num_classes=10, channels=8, layers=5).eval()
        with torch.no_grad():
            assert net(torch.randn(1, 3, size, size)).shape == (1, 10)


@pytest.mark.parametrize('method,extra', [
    ('darts', []), ('darts', ['--unrolled']), ('pc-darts', []), ('entrannas', []), ('entrannas-dst', []),
])
def test_method_runs_end_to_end(tmp_path, method, extra):
    out = tmp_path / 'run'
    res = run(parse_config(['--method', method, *extra, *TINY, '--output', str(out)]))
    g = Genotype.load(out / 'genotype.json')
    assert g == res.genotype
    assert g.feature_sharing is (method.startswith('entrannas'))
    if method == 'entrannas-dst':
        assert 'none' not in json.loads((out / 'metrics.jsonl').read_text().splitlines()[0])['arch']['ops']
    else:
        assert all(len(node) == 2 for node in g.normal.nodes + g.reduce.nodes)  # top-2 rule
    prov = g.provenance
    assert prov['method'] == method and prov['seed'] == 0 and prov['epochs'] == 1 and prov['arch_update_epochs'] == 1
    assert prov['search_settings']['unrolled'] is bool(extra)
    assert list(prov['engine_cells']) == ([0, 1, 2, 3, 4] if method in ('darts', 'pc-darts') else [3, 4])
    assert prov['search_cost']['wall_s'] > 0 and 'cpu_hours' not in prov['search_cost']  # it held wall time
    assert {'date', 'code_version', 'metrics', 'dataset'} <= set(prov)
    _builds_both_families(g)

    lines = (out / 'metrics.jsonl').read_text().splitlines()
    assert len(lines) == 1
    rec = json.loads(lines[0])
    assert set(rec) == set(EPOCH_FIELDS) and ARCH_KEYS <= set(rec['arch'])
    assert read_metrics(out).records[0].data == rec  # the record module reads what the loop wrote
    assert rec['epoch'] == 1 and rec['params'] > 0 and rec['macs'] > 0
    assert rec['epoch_cpu_s'] > 0
    assert prov['search_cost']['cpu_s'] == pytest.approx(rec['epoch_cpu_s'], abs=0.01)
    assert prov['search_cost']['wall_s'] == pytest.approx(rec['epoch_time_s'], abs=0.01)
    assert Genotype.from_dict(rec['genotype']).normal == g.normal
    ckpt = torch.load(out / 'checkpoint.pt', weights_only=True)
    assert ckpt['epoch'] == 1 and json.loads((out / 'config.json').read_text())['method'] == method


def test_cosine_architecture_lr_is_what_the_optimizer_steps_with(tmp_path):
    out = tmp_path / 'run'
    run(parse_config(['--method', 'entrannas-dst', *FAST, '--epochs', '3', '--arch-lr', '0.01',
                      '--arch-lr-schedule', 'cosine', '--output', str(out)]))
    recs = [json.loads(line) for line in (out / 'metrics.jsonl').read_text().splitlines()]
    assert [r['arch_lr'] for r in recs] == pytest.approx([0.01, 0.0075, 0.0025])  # (1 + cos(pi e / 3)) / 2
    assert all(r['epoch_cpu_s'] > 0 for r in recs)
    groups = torch.load(out / 'checkpoint.pt', weights_only=True)['arch_optimizer']['param_groups']
    assert len(groups) == 2 and all(g['lr'] == pytest.approx(0.0025) for g in groups)  # alphas and thresholds
    constant = run(parse_config(['--method', 'entrannas-dst', *FAST, '--epochs', '1', '--output', str(tmp_path / 'c')]))
    assert constant.records[0]['arch_lr'] == parse_config([]).arch_lr
    with pytest.raises(ConfigError, match="--arch-lr-schedule: expected one of constant, cosine, got 'step'"):
        resolve_config({'arch_lr_schedule': 'step'})


def test_export_genotype_builds_with_timm(tmp_path, monkeypatch):
    zoo = tmp_path / 'zoo'
    monkeypatch.setenv('ENTRANNAS_GENOTYPE_PATH', str(zoo))
    run(parse_config(['--method', 'entrannas', *TINY, '--output', str(tmp_path / 'run'),
                      '--export-genotype', str(zoo / 'tiny_search_test.json')]))
    model = timm.create_model('darts_v2_cifar10', genotype='tiny_search_test', channels=8, layers=5).eval()
    assert model.genotype.name == 'tiny_search_test' and model.genotype.feature_sharing
    with torch.no_grad():
        assert model(torch.randn(1, 3, 16, 16)).shape == (1, 10)
    # a second export under the same name is refused before anything runs
    with pytest.raises(ConfigError, match='already exists'):
        run(parse_config(['--method', 'entrannas', *TINY, '--output', str(tmp_path / 'run2'),
                          '--export-genotype', str(zoo / 'tiny_search_test.json')]))
    assert not (tmp_path / 'run2').exists()


@pytest.mark.fashion_mnist
def test_fashion_mnist_real_data(tmp_path):
    cfg = parse_config(['--dataset', 'fashion-mnist', '--data-dir', str(tmp_path / 'empty')])
    data = build_search_data(cfg)
    assert (data.in_chans, data.num_classes, data.image_size) == (1, 10, 28)
    assert len(data.train) == len(data.val) == 30000  # half / half of the 60k training images
    x, y = data.train[0]
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32 and 0 <= y < 10
    assert -1 < float(x.mean()) < 2  # normalised
    out = tmp_path / 'fm'
    res = run(parse_config(['--method', 'entrannas-dst', '--dataset', 'fashion-mnist', '--subset', '16',
                            '--channels', '4', '--layers', '5', '--epochs', '1', '--batch-size', '8', '--workers', '0',
                            '--device', 'cpu', '--threads', '1', '--eval-channels', '8', '--eval-layers', '5',
                            '--quiet', '--data-dir', str(tmp_path / 'empty'), '--output', str(out)]))
    assert res.genotype.provenance['dataset'] == 'fashion-mnist'
    assert json.loads((out / 'metrics.jsonl').read_text())['arch']['ops'][0] != 'none'


def test_read_idx_rejects_bad_files(tmp_path):
    bad = tmp_path / 'train-images-idx3-ubyte'
    bad.write_bytes(b'\x00\x00\x08\x03' + (2).to_bytes(4, 'big') * 3 + b'\x00' * 5)
    with pytest.raises(DataError, match='truncated'):
        read_idx(bad)
    bad.write_bytes(b'not an idx file')
    with pytest.raises(DataError, match='magic'):
        read_idx(bad)


@pytest.mark.parametrize('argv,match', [
    (['--method', 'entrannas', '--unrolled'], '--unrolled'),
    (['--method', 'entrannas', '--lam', '0.1'], '--lam'),
    (['--method', 'darts', '--init-threshold', '0.2'], '--init-threshold'),
    (['--method', 'darts', '--engine-cells', 'last'], '--engine-cells'),
    (['--method', 'pc-darts', '--feature-sharing'], '--feature-sharing'),
    (['--method', 'entrannas', '--pc-k', '2'], '--pc-k'),
    (['--in-chans', '1'], '--in-chans'),
    (['--preset', 'darts', '--method', 'entrannas'], 'contradicts'),
    (['--method', 'entrannas', '--engine-cells', 'middle'], '--engine-cells'),
    (['--quiet', '--json'], '--quiet'),
    (['--epochs', '2', '--arch-warmup-epochs', '2'], 'never be updated'),
    # a preset's warm-up counts as much as a flag's
    (['--preset', 'pc-darts', '--epochs', '10'], r'--arch-warmup-epochs 15 \(from --preset pc-darts\) is not smaller '
                                                  'than --epochs 10'),
    (['--preset', 'imagenet', '--epochs', '35'], r'\(from --preset imagenet\)'),
])
def test_contradictory_flags(argv, match):
    with pytest.raises(ConfigError, match=match):
        parse_config(argv)


def test_presets_fill_protocols():
    pc = parse_config(['--preset', 'pc-darts'])
    assert (pc.method, pc.batch_size, pc.lr, pc.arch_warmup_epochs, pc.pc_k) == ('pc-darts', 256, 0.1, 15, 4)
    dst = parse_config(['--preset', 'cifar10', '--method', 'entrannas-dst', '--batch-size', '96'])
    assert (dst.batch_size, dst.lr, dst.epochs, dst.lam, dst.init_threshold) == (96, 0.025, 50, 0.1, 0.3)
    inet = parse_config(['--preset', 'imagenet', '--method', 'entrannas'])
    assert (inet.stem, inet.batch_size, inet.arch_warmup_epochs, inet.image_size) == ('imagenet', 1024, 35, 224)


def test_cli_errors_overwrite_nothing(tmp_path, capsys):
    out = tmp_path / 'run'
    assert main(['--method', 'darts', *TINY, '--output', str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    # a second run into the same directory without --resume
    assert main(['--method', 'darts', *TINY, '--output', str(out)]) == 2
    assert 'already holds a run' in capsys.readouterr().err
    # resume with other settings
    assert main(['--method', 'darts', *TINY, '--channels', '6', '--output', str(out), '--resume']) == 1
    assert 'channels' in capsys.readouterr().err
    # a corrupt checkpoint
    bad = tmp_path / 'bad.pt'
    bad.write_bytes(b'garbage')
    with pytest.raises(ResumeError, match='not a readable checkpoint'):
        run(parse_config(['--method', 'darts', *TINY, '--output', str(out), '--resume', str(bad)]))
    # a missing one
    with pytest.raises(ResumeError, match='not found'):
        run(parse_config(['--method', 'darts', *TINY, '--output', str(tmp_path / 'new'), '--resume']))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not (tmp_path / 'new').exists()


def test_python_m_search_unknown_method():
    proc = subprocess.run([sys.executable, '-m', 'search', '--method', 'enas'], cwd=ROOT, capture_output=True,
                          text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 2 and "invalid choice: 'enas'" in proc.stderr


# ---- settings that are out of range, and runs that would silently go wrong -------------------------
@pytest.mark.parametrize('argv, message', [
    (['--lr', 'nan'], '--lr: expected a finite number, got nan'),
    (['--lr', 'inf'], '--lr: expected a finite number, got inf'),
    (['--arch-lr=-1e-3'], '--arch-lr: expected a number > 0'),
    (['--min-lr', '-1'], '--min-lr: expected a number >= 0'),
    (['--temperature', 'nan'], '--temperature: expected a finite number'),
    (['--method', 'entrannas-dst', '--lam', 'inf'], '--lam: expected a finite number'),
    (['--arch-betas', '2', '2'], '--arch-betas: expected two numbers in [0, 1)'),
    (['--arch-betas', '0.5', 'nan'], '--arch-betas: expected two numbers in [0, 1)'),
    (['--weight-decay', '-1'], '--weight-decay: expected a number >= 0'),
    (['--arch-weight-decay', '-1'], '--arch-weight-decay: expected a number >= 0'),
    (['--grad-clip', '-5'], '--grad-clip: expected a number >= 0'),
    (['--momentum', '1.5'], '--momentum: expected a number in [0, 1)'),
    (['--momentum=-0.1'], '--momentum: expected a number in [0, 1)'),
    (['--train-portion', '1'], '--train-portion: expected a fraction in (0, 1)'),
    (['--train-portion', 'nan'], '--train-portion: expected a finite number'),
    (['--imagenet-portion', '0.9'], '--imagenet-portion: expected a fraction in (0, 0.5]'),
    (['--image-size', '2'], '--image-size: expected at least 3 pixels'),
    (['--dataset', 'imagenet', '--image-size', '16'], '--image-size: expected at least 17 pixels'),
    (['--epochs', '0'], '--epochs: expected a positive integer'),
    (['--layers', '2'], '--layers: expected at least 3 cells'),
    (['--workers', '-1'], '--workers: expected an integer >= 0'),
    (['--device', 'tpu'], "--device: expected cpu, cuda or cuda:N (N = GPU index), got 'tpu'"),
    (['--device', 'cpu:banana'], "got 'cpu:banana'"),
    (['--device', 'cuda:x'], "got 'cuda:x'"),
])
def test_out_of_range_settings_are_one_clear_line(tmp_path, capsys, argv, message):
    with pytest.raises(ConfigError) as info:
        parse_config(argv)
    assert message in str(info.value)
    # on the command line: exit code 2, one line, nothing written
    assert main([*FAST, *argv, '--output', str(tmp_path / 'run')]) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and message in err and 'Traceback' not in err
    assert not (tmp_path / 'run').exists()


def test_output_naming_a_file(tmp_path, capsys):
    (tmp_path / 'file').write_text('keep me')
    for out in (tmp_path / 'file', tmp_path / 'file' / 'run'):
        assert main(['--method', 'darts', *FAST, '--output', str(out)]) == 2
        assert f'--output: {tmp_path / "file"} is a file, not a directory' in capsys.readouterr().err
    assert (tmp_path / 'file').read_text() == 'keep me'


def test_unsearched_architecture_writes_no_genotype_unless_asked(tmp_path):
    out = tmp_path / 'run'
    # settings built in Python skip the flag checks; the loop still refuses a genotype nothing was searched for
    cfg = dataclasses.replace(parse_config(['--method', 'darts', *FAST, '--output', str(out)]), arch_warmup_epochs=1)
    with pytest.raises(SearchError, match='the architecture was never updated') as info:
        run(cfg)
    assert '--allow-unsearched-genotype' in str(info.value)
    assert not (out / 'genotype.json').exists() and (out / 'checkpoint.pt').is_file()
    assert [r.get('arch_updates') for r in read_metrics(out).records] == [False]
    # asked for explicitly: resuming the finished run writes the initial architecture's genotype, labelled so
    res = run(parse_config(['--method', 'darts', *FAST, '--arch-warmup-epochs', '1', '--allow-unsearched-genotype',
                            '--output', str(out), '--resume']))
    assert res.genotype.provenance['arch_update_epochs'] == 0
    assert Genotype.load(out / 'genotype.json') == res.genotype


def test_diverging_run_records_and_keeps_nothing_non_finite(tmp_path, capsys):
    # --lr 1e5 without clipping: non-finite values in epoch 1 (issue: once recorded as NaN with a bad checkpoint)
    out = tmp_path / 'run'
    assert main(['--method', 'entrannas', *FAST, '--lr', '1e5', '--grad-clip', '0', '--output', str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith('error: non-finite ') and 'in epoch 1; stopped, and no checkpoint was written' in err
    assert 'Traceback' not in err and 'epoch 0' not in err
    assert sorted(p.name for p in out.iterdir()) == ['config.json']


def test_ctrl_c_before_any_checkpoint_claims_none(tmp_path, capsys, ctrl_c_before):
    import search.loop
    with ctrl_c_before(search.loop, 'build_search_data'):
        assert main(['--method', 'darts', *FAST, '--output', str(tmp_path / 'a')]) == 130
    err = capsys.readouterr().err
    assert err == 'interrupted during start-up; no checkpoint was written (nothing to resume: start again)\n'

    with ctrl_c_before(Searcher, 'weight_step', call=2):  # epoch 1 has 2 steps
        assert main(['--method', 'darts', *FAST, '--output', str(tmp_path / 'b')]) == 130
    assert capsys.readouterr().err == ('interrupted during epoch 1; no checkpoint was written (nothing to resume: '
                                       'start again)\n')
    assert not (tmp_path / 'b' / 'checkpoint.pt').exists() and not list((tmp_path / 'b').glob('.*'))
