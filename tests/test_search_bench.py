"""``python -m search.bench`` prints one JSON object per configuration: medians over rounds, with their spread."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DARTS_REPO = Path('/tmp/darts/cnn')  # the original code, when present (measurement only, never vendored)
REQUIRED = {'method', 'space', 'batch_size', 'step_s', 'peak_mem_mb'}


def _bench(*args: str, rounds: int = 1) -> list:
    proc = subprocess.run([sys.executable, '-m', 'search.bench', '--batch-size', '2', '--steps', '1', '--warmup', '0',
                           '--channels', '4', '--layers', '3', '--nodes', '2', '--image-size', '8', '--threads', '1',
                           '--rounds', str(rounds), *args], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def test_bench_prints_required_keys():
    recs = _bench('--methods', 'darts,entrannas-dst', '--engine-cells', 'default,all', '--space', 'standard',
                  '--dst-state', 'sparse')
    assert [r['method'] for r in recs] == ['darts', 'entrannas-dst', 'entrannas-dst']
    # the sparse DST state keeps two connections per node (2 nodes) in both cell types
    assert [r.get('dst_state') for r in recs] == [None, 'sparse', 'sparse']
    assert recs[1]['derived_connections'] == recs[2]['derived_connections'] == 2 * 2 * 2
    assert recs[0]['engine_cells'] == recs[2]['engine_cells'] == [0, 1, 2]  # darts and 'all': every cell
    assert set(recs[1]['engine_cells']) < {0, 1, 2}  # the default placement leaves transit cells
    for r in recs:
        assert REQUIRED <= set(r) and r['batch_size'] == 2 and r['space'] == 'standard'
        assert r['step_s'] > 0 and r['peak_mem_mb'] > 0 and r['peak_mem_kind'] == 'peak_rss_fresh_process'
        assert r['step_s'] >= r['arch_step_s'] and r['step_s'] >= r['weight_step_s']


def test_bench_reports_the_median_and_spread_of_interleaved_rounds():
    recs = _bench('--methods', 'entrannas', rounds=2)
    assert len(recs) == 1
    r = recs[0]
    times = r['step_s_rounds']
    assert r['rounds'] == len(times) == 2 and all(t > 0 for t in times)
    assert r['step_s'] == round((times[0] + times[1]) / 2, 5)  # the median of two rounds, not the faster one
    assert r['step_s_min'] == min(times) and r['step_s_max'] == max(times)
    assert r['peak_mem_mb_min'] <= r['peak_mem_mb'] <= r['peak_mem_mb_max']


def test_median_of_rounds_keeps_a_failed_round_visible():
    from search.bench import median_of_rounds
    ok = {'method': 'darts', 'step_s': 1.0, 'arch_step_s': 0.4, 'weight_step_s': 0.6, 'peak_mem_mb': 10.}
    rec = median_of_rounds([dict(ok, step_s=3.), ok, dict(ok, step_s=2., peak_mem_mb=30.)])
    assert (rec['step_s'], rec['step_s_min'], rec['step_s_max'], rec['peak_mem_mb']) == (2., 1., 3., 10.)
    failed = median_of_rounds([ok, {'method': 'darts', 'error': 'killed'}])
    assert failed['error'] == 'killed' and failed['failed_rounds'] == 1


@pytest.mark.skipif(not (DARTS_REPO / 'model_search.py').is_file(), reason=f'original DARTS code not at {DARTS_REPO}')
def test_bench_times_the_original_code():
    recs = _bench('--methods', 'darts', '--darts-repo', str(DARTS_REPO))
    assert [r['impl'] for r in recs] == ['entrannas-timm', 'original-darts']
    # same super-net: the same number of weights
    assert recs[0]['supernet_params'] == recs[1]['supernet_params']
    assert all(REQUIRED <= set(r) for r in recs)


def _dst_run(tmp_path: Path) -> Path:
    """A run directory whose metrics record two DST states: nothing cut, then one strong op per node."""
    import torch

    from search.supernet import SearchNetwork
    net = SearchNetwork(method='entrannas-dst', num_classes=10, channels=4, layers=3, nodes=2)
    records = [{'epoch': 1, 'arch': net.arch_snapshot()}]
    with torch.no_grad():
        for kind in ('normal', 'reduce'):
            getattr(net, f'alphas_{kind}').zero_()[:, 0] = 5.
            getattr(net, f'threshold_logits_{kind}').fill_(2.)
    net.rederive()
    records.append({'epoch': 2, 'arch': net.arch_snapshot()})
    (tmp_path / 'metrics.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in records))
    return tmp_path


def test_bench_replays_the_epochs_of_a_dst_run(tmp_path):
    run_dir = _dst_run(tmp_path)
    records = [json.loads(line) for line in (run_dir / 'metrics.jsonl').read_text().splitlines()]
    recs = _bench('--methods', 'entrannas-dst', '--dst-run', str(run_dir))
    assert [r['dst_state'] for r in recs] == ['epoch 1', 'epoch 2']
    for rec, rec_run in zip(recs, records):
        active = rec_run['arch']['active_connections']
        assert rec['derived_connections'] == sum(active['normal']) + sum(active['reduce'])
    assert recs[1]['derived_connections'] < recs[0]['derived_connections']
    assert all(REQUIRED <= set(r) and r['dst_run'] == str(run_dir) for r in recs)


def test_bench_rejects_unrecorded_epochs(tmp_path):
    run_dir = _dst_run(tmp_path)
    proc = subprocess.run([sys.executable, '-m', 'search.bench', '--methods', 'entrannas-dst', '--dst-run',
                           str(run_dir), '--dst-epochs', '1,7'], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode != 0 and '--dst-epochs: [7] not recorded' in proc.stderr
