"""The training-budget pilot's committed records: its random cells, its runs' commands, the README's table."""
from __future__ import annotations

import json
from pathlib import Path

from entrannas_timm import Genotype
from entrannas_timm.models.sampling import sample_genotype

ROOT = Path(__file__).resolve().parents[1]


def test_random_cells_are_the_samplers_with_provenance(load_script):
    pilot = load_script('scripts/fmnist_pilot.py')
    files = sorted(pilot.CELLS.glob('random_s*.json'))
    assert [f.stem for f in files] == [f'random_s{k}' for k in range(pilot.RANDOM_CELLS)]
    for k, f in enumerate(files):
        cell, sampled = Genotype.load(f), sample_genotype(k)
        assert (cell.normal, cell.reduce, cell.space) == (sampled.normal, sampled.reduce, sampled.space)
        assert cell.provenance['seed'] == k and cell.provenance['paper_id'] == 'arXiv:1902.07638'


def test_every_recorded_run_is_a_pilot_command_and_the_readme_shows_the_record(load_script):
    pilot = load_script('scripts/fmnist_pilot.py')
    runs = json.loads(pilot.RECORD.read_text())
    assert runs, 'records/train/pilot.json holds no run'
    for key, r in runs.items():
        assert key == f'{r["budget"]}/{r["model"]}_s{r["seed"]}'
        assert r['command'] == ' '.join(pilot.command(r['budget'], r['model'], r['seed']))
        assert len(r['epoch_top1']) == pilot.budget_epochs(r['budget']) and r['epoch_top1'][-1] == r['test_top1']
        assert r['test_images'] == 10000 and 10. < r['test_top1'] < 100.
    assert pilot.table() in (ROOT / 'README.md').read_text()
