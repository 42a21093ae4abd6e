"""The trained checkpoints in hub/: each loads offline through timm (hf-hub:, and its registered tag) from a real
local Hugging Face cache and scores its recorded accuracy; each is the best seed of the training grid's record
(records/train/zoo.json), whose runs are all the grid's own commands under one budget.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from entrannas_timm.hub.publish import install_in_cache
from entrannas_timm.models.registry import MINI_MODELS
from entrannas_timm.reports.markdown import splice_tables

ROOT = Path(__file__).resolve().parents[1]
HUB = ROOT / 'hub'
RESULTS = ROOT / 'records' / 'train' / 'results.json'
TRAINED = sorted(json.loads(RESULTS.read_text())) if RESULTS.is_file() else []


_OFFLINE = textwrap.dedent('''
    import json, sys
    from entrannas_timm.cli import main
    for spec in sys.argv[2:]:
        main(['validate', *spec.split(' '), '--dataset', 'fashion-mnist', '--data-dir', 'none',
              '--subset', sys.argv[1], '--threads', '1', '--json'])
''')


@pytest.mark.fashion_mnist
def test_trained_checkpoints_load_offline_with_their_recorded_accuracy(tmp_path):
    """Each hub/<name>/ installed into a fresh local Hugging Face cache loads offline with timm's hf-hub: and, for
    a registered architecture, with its registered tag, and scores what records/train/results.json says on the
    first test images (the exported files, not a run dir)."""
    results = json.loads(RESULTS.read_text())
    assert TRAINED and sorted(p.name for p in HUB.iterdir() if p.is_dir()) == TRAINED
    cache = tmp_path / 'hub'
    for name in TRAINED:
        install_in_cache(HUB / name, f'entrannas/{name}', cache)
    sample = {results[n]['sample_images'] for n in TRAINED}
    assert len(sample) == 1
    specs = [(name, f'hf-hub:entrannas/{name}') for name in TRAINED]
    specs += [(name, f'{name} --pretrained') for name in TRAINED if name.split('.')[0] in MINI_MODELS]
    assert len(specs) > len(TRAINED)  # at least one registered tag is checked
    env = dict(os.environ, HF_HUB_OFFLINE='1', HF_HUB_CACHE=str(cache), OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable, '-c', _OFFLINE, str(sample.pop()), *(s for _, s in specs)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith('{')]
    assert len(lines) == len(specs)
    for (name, spec), got in zip(specs, lines):
        # a different CPU may round a few logits differently: at most 2 of the sample's images may flip
        assert got['top1'] == pytest.approx(results[name]['sample_top1'], abs=200 / got['images']), spec
    for name in TRAINED:
        card = (HUB / name / 'README.md').read_text()
        assert f"hf-hub:entrannas/{name}'" in card and f'top-1 (%): {results[name]["test_top1"]:g}' in card
        assert 'mappingproxy' not in card  # nested provenance is rendered as JSON
        assert f'best of {results[name]["seeds"]} training seed' in card and '`baseline_cnn` (reference)' in card


def test_each_checkpoint_is_the_best_seed_of_the_grid_record(load_script):
    """Every grid run is the grid's command under the pilot's budget; every searched or published cell with a
    finished run is on the Hub as its best seed, and the exported files score what that run recorded."""
    zoo, results = load_script('scripts/fmnist_zoo.py'), json.loads(RESULTS.read_text())
    runs = json.loads(zoo.TRAINING_RECORD.read_text())
    assert zoo.TRAIN_PROTOCOL == [*zoo.pilot.BASE, *zoo.pilot.BUDGETS[zoo.TRAIN_BUDGET]]
    for key, r in runs.items():
        assert key == f'{r["model"]}/seed{r["seed"]}' and r['kind'] == zoo.kind(r['model'])
        assert r['command'] == ' '.join(zoo.train_command(r['model'], r['seed']))
        assert len(r['epoch_top1']) == zoo.TRAIN_EPOCHS and r['test_images'] == 10000
    exported = {r['model'] for r in runs.values() if r['model'] in zoo.exportable()}
    assert {r['model'] for r in results.values()} == exported
    for name, r in results.items():
        seeds = [g for g in runs.values() if g['model'] == r['model']]
        best = max(seeds, key=lambda g: (g['test_top1'], -g['seed']))
        assert name == zoo.hub_name(r['model']) and (r['seed'], r['seeds']) == (best['seed'], len(seeds))
        assert r['test_top1'] == best['test_top1'] and r['command'] == best['command']


def test_the_readme_shows_the_zoo_tables_of_the_records(load_script):
    """Each generated table is in the README as generated (`python scripts/fmnist_zoo.py readme`)."""
    readme = (ROOT / 'README.md').read_text()
    assert splice_tables(readme, load_script('scripts/fmnist_zoo.py').tables()) == readme
