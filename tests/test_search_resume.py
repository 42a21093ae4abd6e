"""Exact resumption: a search killed (SIGKILL) mid-run and resumed ends where an uninterrupted run ends."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from search.cli import parse_config
from search.loop import NonFiniteLossError, load_checkpoint_arch, run

ROOT = Path(__file__).resolve().parents[1]
ARGS = ['--method', 'entrannas-dst', '--synthetic', '--subset', '32', '--image-size', '16', '--channels', '4',
        '--layers', '5', '--epochs', '3', '--batch-size', '8', '--workers', '0', '--device', 'cpu', '--threads', '1',
        '--eval-channels', '8', '--eval-layers', '5', '--deterministic', '--seed', '3', '--json']


def _search(out: Path, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1')
    return subprocess.Popen([sys.executable, '-m', 'search', *ARGS, '--output', str(out), *extra], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _epochs_done(out: Path) -> int:
    try:
        return len((out / 'metrics.jsonl').read_text().splitlines())
    except FileNotFoundError:
        return 0


def test_killed_and_resumed_run_matches_uninterrupted(tmp_path):
    full, killed = tmp_path / 'full', tmp_path / 'killed'
    ref = _search(full)
    victim = _search(killed)
    deadline = time.time() + 300
    while _epochs_done(killed) < 1 and victim.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.kill(victim.pid, signal.SIGKILL)
    victim.communicate()
    assert victim.returncode == -signal.SIGKILL
    assert not (killed / 'genotype.json').exists(), 'the run finished before it could be killed'
    assert 1 <= torch.load(killed / 'checkpoint.pt', weights_only=True)['epoch'] < 3

    resumed = _search(killed, '--resume')
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    ref_out, ref_err = ref.communicate(timeout=300)
    assert ref.returncode == 0, ref_err

    a, b = load_checkpoint_arch(full / 'checkpoint.pt'), load_checkpoint_arch(killed / 'checkpoint.pt')
    assert a.keys() == b.keys() and 'threshold_logits_normal' in a
    for name in a:
        assert torch.equal(a[name], b[name]), name
    ga, gb = (json.loads((d / 'genotype.json').read_text()) for d in (full, killed))
    assert (ga['normal'], ga['reduce']) == (gb['normal'], gb['reduce'])
    ma = [json.loads(line) for line in (full / 'metrics.jsonl').read_text().splitlines()]
    mb = [json.loads(line) for line in (killed / 'metrics.jsonl').read_text().splitlines()]
    assert [r['epoch'] for r in mb] == [1, 2, 3]
    assert [r['train_loss'] for r in ma] == [r['train_loss'] for r in mb]
    assert [r['arch'] for r in ma] == [r['arch'] for r in mb]
    # --json prints only JSON lines: one per resumed epoch and a final "done"
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[-1]['event'] == 'done' and all('epoch' in r for r in lines[:-1])

    # a non-finite loss stops the run and keeps the last good checkpoint: resume the finished run from
    # its epoch-1 state with a poisoned classifier
    ckpt = torch.load(full / 'checkpoint.pt', weights_only=True)
    ckpt['epoch'], ckpt['metrics'] = 1, ckpt['metrics'][:1]
    ckpt['model']['classifier.weight'].fill_(float('inf'))
    poisoned = tmp_path / 'poisoned'
    poisoned.mkdir()
    torch.save(ckpt, poisoned / 'checkpoint.pt')
    before = (poisoned / 'checkpoint.pt').read_bytes()
    cfg = parse_config([*ARGS[:-1], '--quiet', '--output', str(poisoned), '--resume'])
    with pytest.raises(NonFiniteLossError, match='non-finite'):
        run(cfg)
    assert (poisoned / 'checkpoint.pt').read_bytes() == before
    assert len((poisoned / 'metrics.jsonl').read_text().splitlines()) == 1
    assert not (poisoned / 'genotype.json').exists()
