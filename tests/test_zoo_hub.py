"""The trained checkpoints in hub/: each loads offline through timm's hf-hub: from a real local Hugging Face cache
and scores its recorded accuracy; records/train/results.json covers the stated cells and seeds under one budget.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import entrannas_timm
from entrannas_timm.hub.publish import install_in_cache

ROOT = Path(__file__).resolve().parents[1]
HUB = ROOT / 'hub'
RESULTS = ROOT / 'records' / 'train' / 'results.json'
TRAINED = sorted(json.loads(RESULTS.read_text())) if RESULTS.is_file() else []


_OFFLINE = textwrap.dedent('''
    import json, sys
    from entrannas_timm.cli import main
    for name in sys.argv[2:]:
        main(['validate', f'hf-hub:entrannas/{name}', '--dataset', 'fashion-mnist', '--data-dir', 'none',
              '--subset', sys.argv[1], '--threads', '1', '--json'])
''')


@pytest.mark.fashion_mnist
def test_trained_checkpoints_load_offline_with_their_recorded_accuracy(tmp_path):
    """Each hub/<name>/ installed into a fresh local Hugging Face cache loads with timm's hf-hub: offline and
    scores what records/train/results.json says on the first test images (the exported files, not a run dir)."""
    results = json.loads(RESULTS.read_text())
    assert sorted(p.name for p in HUB.iterdir() if p.is_dir()) == TRAINED
    cache = tmp_path / 'hub'
    for name in TRAINED:
        install_in_cache(HUB / name, f'entrannas/{name}', cache)
    sample = {results[n]['sample_images'] for n in TRAINED}
    assert len(sample) == 1
    env = dict(os.environ, HF_HUB_OFFLINE='1', HF_HUB_CACHE=str(cache), OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable, '-c', _OFFLINE, str(sample.pop()), *TRAINED], capture_output=True,
                          text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith('{')]
    assert len(lines) == len(TRAINED)
    for name, got in zip(TRAINED, lines):
        # a different CPU may round a few logits differently: at most 2 of the sample's images may flip
        assert got['top1'] == pytest.approx(results[name]['sample_top1'], abs=200 / got['images']), name
        card = (HUB / name / 'README.md').read_text()
        assert f"hf-hub:entrannas/{name}'" in card and f'top-1 (%): {results[name]["test_top1"]:g}' in card
        assert 'mappingproxy' not in card  # nested provenance is rendered as JSON


def test_trained_results_cover_the_stated_seeds():
    results = json.loads(RESULTS.read_text())
    commands = {r['command'].split(' --seed')[0] for r in results.values()}
    assert len({c.split('--genotype ')[1].split(' ', 1)[1] for c in commands}) == 1  # one budget for all cells
    seeds = {}
    for r in results.values():
        seeds.setdefault(r['genotype'], set()).add(r['seed'])
    assert seeds.get('darts_v2') == {0, 1} and seeds.get('entrannas_dst') == {0, 1}
    # every registered EnTranNAS cell, and the published PC-DARTS cell, is trained under that budget
    cells = {g for g, _ in entrannas_timm.MODEL_GENOTYPES.values() if g.startswith('entrannas')} | {'pc_darts_cifar'}
    assert cells <= set(seeds)
