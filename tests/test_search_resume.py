"""Resumption: a search killed (SIGKILL) mid-run and resumed ends where an uninterrupted run ends; Ctrl-C, a full
disk, a diverging run and crafted checkpoints each stop with one clear line and never lose the last good checkpoint."""
from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict

import pytest
import torch

from entrannas_timm.reports.records import read_metrics
from search.cli import main, parse_config
from search.loop import NonFiniteLossError, ResumeError, Searcher, load_checkpoint_arch, run

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
    # the cost counts the epochs run before the kill too
    cost = gb['provenance']['search_cost']['cpu_s']
    assert cost == pytest.approx(sum(r['epoch_cpu_s'] for r in mb), abs=0.03)
    # --json prints only JSON lines: one per resumed epoch and a final "done"
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[-1]['event'] == 'done' and all('epoch' in r for r in lines[:-1])


# ---- a run stopped by Ctrl-C in epoch 2: its epoch-1 checkpoint is what the cases below start from -----------
SMALL = ['--method', 'entrannas', '--synthetic', '--subset', '16', '--image-size', '16', '--channels', '4', '--layers',
         '3', '--epochs', '2', '--batch-size', '8', '--workers', '0', '--device', 'cpu', '--threads', '1',
         '--eval-channels', '8', '--eval-layers', '3', '--quiet']


@pytest.fixture(scope='module')
def stopped(tmp_path_factory: pytest.TempPathFactory, ctrl_c_before: Callable) -> Path:
    """Ctrl-C before weight step 3, the first step of epoch 2."""
    out = tmp_path_factory.mktemp('stopped') / 'run'
    with pytest.MonkeyPatch.context() as m, ctrl_c_before(Searcher, 'weight_step', call=3):
        m.setattr(sys, 'stderr', open(out.parent / 'stderr', 'w'))
        assert main([*SMALL, '--output', str(out)]) == 130
        sys.stderr.close()
    return out


def _copy(run_dir: Path, dst: Path) -> Path:
    shutil.copytree(run_dir, dst)
    return dst


def test_ctrl_c_in_epoch_2_names_the_checkpoint_it_keeps(stopped: Path) -> None:
    err = (stopped.parent / 'stderr').read_text()
    assert err == (f'interrupted during epoch 2; the checkpoint of epoch 1 ({stopped / "checkpoint.pt"}) is kept: '
                   f'continue with --resume --output {stopped}\n')
    assert torch.load(stopped / 'checkpoint.pt', weights_only=True)['epoch'] == 1
    assert [r.epoch for r in read_metrics(stopped).records] == [1]
    assert not list(stopped.glob('.*')), 'no temp file left behind'


def _no_bigger_files(limit: int) -> Callable[[], None]:
    def preexec() -> None:  # in the child: writes past `limit` bytes fail with EFBIG instead of killing it
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return preexec


def test_full_disk_while_writing_a_checkpoint(stopped: Path, tmp_path: Path) -> None:
    run_dir = _copy(stopped, tmp_path / 'run')
    ckpt = run_dir / 'checkpoint.pt'
    before = ckpt.read_bytes()
    limit = 64 * 1024  # config.json and metrics.jsonl fit; the next checkpoint does not
    assert len(before) > 2 * limit
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1', PYTHONDONTWRITEBYTECODE='1')
    proc = subprocess.run([sys.executable, '-m', 'search', *SMALL, '--output', str(run_dir), '--resume'], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300, preexec_fn=_no_bigger_files(limit))
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == (f'error: cannot write {ckpt}: File too large (EFBIG); the checkpoint of epoch 1 ({ckpt}) '
                           f'is kept: continue with --resume --output {run_dir}\n')
    assert ckpt.read_bytes() == before
    assert not list(run_dir.glob('.*')), 'no temp file left behind'
    assert [r.epoch for r in read_metrics(run_dir).records] == [1]  # metrics never run ahead of the checkpoint


def test_divergence_after_resume_names_the_checkpoint_kept(stopped: Path, tmp_path: Path) -> None:
    # finite but huge classifier weights: the checkpoint is good, epoch 2 overflows
    run_dir = _copy(stopped, tmp_path / 'run')
    ckpt = torch.load(run_dir / 'checkpoint.pt', weights_only=True)
    ckpt['model']['classifier.weight'].fill_(3e38)
    torch.save(ckpt, run_dir / 'checkpoint.pt')
    before = (run_dir / 'checkpoint.pt').read_bytes()
    with pytest.raises(NonFiniteLossError) as info:
        run(parse_config([*SMALL, '--output', str(run_dir), '--resume']))
    kept = f'in epoch 2; stopped, and the checkpoint of epoch 1 ({run_dir / "checkpoint.pt"}) is kept'
    assert kept in str(info.value)
    assert (run_dir / 'checkpoint.pt').read_bytes() == before
    assert [r.epoch for r in read_metrics(run_dir).records] == [1]
    assert not (run_dir / 'genotype.json').exists()


def _drop(key: str) -> Callable[[Dict[str, Any]], None]:
    return lambda c: c.pop(key)


def _set(key: str, value: Any) -> Callable[[Dict[str, Any]], None]:
    return lambda c: c.__setitem__(key, value)


@pytest.mark.parametrize('craft, message', [
    (_drop('epoch'), 'field "epoch": expected an integer in [0, 2], got \'<missing>\''),
    (_set('epoch', '1'), 'field "epoch": expected an integer in [0, 2]'),
    (_set('epoch', 7), 'field "epoch": expected an integer in [0, 2], got 7'),
    (_drop('model'), 'field "model": expected an object'),
    (_drop('weight_optimizer'), 'field "weight_optimizer": expected an object'),
    (_drop('config'), 'field "config": expected an object'),
    (_drop('metrics'), 'field "metrics": expected a list of 1 epoch record(s)'),
    (_set('metrics', []), 'field "metrics": expected a list of 1 epoch record(s), got list'),
    (_set('elapsed_s', float('nan')), 'field "elapsed_s": expected a finite number of seconds'),
    (lambda c: c['metrics'].__setitem__(0, c['metrics'][0].replace('"val_loss": ', '"val_loss": NaN, "x": ')),
     'metrics[0]: field "val_loss": NaN is not a finite number'),
    (lambda c: c['metrics'].__setitem__(0, c['metrics'][0].replace('"epoch": 1', '"epoch": 2', 1)),
     'field "metrics": expected the records of epochs 1 to 1'),
    (lambda c: c['model']['classifier.weight'].fill_(float('inf')),
     'model.classifier.weight holds NaN or infinite values; it is not a good checkpoint'),
    (lambda c: c['model'].pop('classifier.bias'), 'does not fit this super-net'),
    (_set('format', 'something else'), 'is not a search checkpoint'),
])
def test_crafted_checkpoints_are_refused(stopped: Path, tmp_path: Path, craft: Callable, message: str) -> None:
    ckpt = torch.load(stopped / 'checkpoint.pt', weights_only=True)
    craft(ckpt)
    path = tmp_path / 'crafted.pt'
    torch.save(ckpt, path)
    with pytest.raises(ResumeError) as info:
        run(parse_config([*SMALL, '--output', str(tmp_path / 'run'), '--resume', str(path)]))
    assert str(info.value).startswith('--resume: ') and message in str(info.value)
