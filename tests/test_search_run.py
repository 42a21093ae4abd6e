"""End-to-end search runs on tiny synthetic data, real Fashion-MNIST loading, and the error cases."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch

from entrannas_timm import CellNetwork, Genotype
from search.cli import main, parse_config
from search.config import ConfigError
from search.data import DEBIAN_FASHION_MNIST, DataError, build_search_data, read_idx
from search.loop import ResumeError, run

ROOT = Path(__file__).resolve().parents[1]
# 16x16 synthetic images, 4 channels, 5 cells: one epoch of 2 steps per split
TINY = ['--synthetic', '--subset', '16', '--image-size', '16', '--channels', '4', '--layers', '5', '--epochs', '1',
        '--batch-size', '8', '--workers', '0', '--device', 'cpu', '--threads', '1', '--eval-channels', '8',
        '--eval-layers', '5', '--quiet']
RECORD_KEYS = {'epoch', 'epochs', 'lr', 'train_loss', 'train_acc', 'val_loss', 'val_acc', 'genotype', 'arch',
               'params', 'macs', 'epoch_time_s', 'peak_mem_mb'}
ARCH_KEYS = {'ops', 'edges', 'weights', 'thresholds', 'active_connections', 'skip_connect'}


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
    assert prov['method'] == method and prov['seed'] == 0 and prov['epochs'] == 1
    assert prov['search_settings']['unrolled'] is bool(extra)
    assert list(prov['engine_cells']) == ([0, 1, 2, 3, 4] if method in ('darts', 'pc-darts') else [3, 4])
    assert prov['search_cost']['wall_time_s'] > 0 and 'cpu_hours' in prov['search_cost']
    assert {'date', 'code_version', 'metrics', 'dataset'} <= set(prov)
    _builds_both_families(g)

    lines = (out / 'metrics.jsonl').read_text().splitlines()
    assert len(lines) == 1
    rec = json.loads(lines[0])
    assert RECORD_KEYS <= set(rec) and ARCH_KEYS <= set(rec['arch'])
    assert rec['epoch'] == 1 and rec['params'] > 0 and rec['macs'] > 0
    assert Genotype.from_dict(rec['genotype']).normal == g.normal
    ckpt = torch.load(out / 'checkpoint.pt', weights_only=True)
    assert ckpt['epoch'] == 1 and json.loads((out / 'config.json').read_text())['method'] == method


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


@pytest.mark.skipif(not DEBIAN_FASHION_MNIST.is_dir(), reason=f'{DEBIAN_FASHION_MNIST} not installed '
                    '(Debian package with the Fashion-MNIST idx files)')
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
