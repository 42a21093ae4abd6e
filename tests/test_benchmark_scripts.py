"""The benchmark scripts still run end to end (tiny settings; the figures themselves are measured by hand)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from entrannas_timm import Genotype
from entrannas_timm.reports.film import film_epochs
from entrannas_timm.reports.records import read_metrics

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.fashion_mnist
def test_engine_placement_study_runs_on_real_fashion_mnist(tmp_path: Path, load_script) -> None:
    study = load_script('benchmarks/engine_placement.py')
    out = tmp_path / 'quality.jsonl'
    assert study.main(['--placements', 'first,last', '--seeds', '0', '--subset', '32', '--search-epochs', '1',
                       '--batch-size', '16', '--layers', '5', '--channels', '4', '--eval-channels', '4',
                       '--eval-layers', '3', '--train-images', '64', '--train-epochs', '1', '--threads', '1',
                       '--data-dir', str(tmp_path / 'none'), '--workdir', str(tmp_path / 'runs'),
                       '--output', str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    runs, summaries = lines[:2], lines[2:]
    assert [r['placement'] for r in runs] == ['first', 'last']
    assert runs[0]['engine_cells'] == [0, 1] and runs[1]['engine_cells'] == [3, 4]
    for r in runs:
        assert 0. <= r['test_acc'] <= 1. and r['eval_params'] > 0 and r['eval_macs'] > 0
        assert Genotype.from_dict(r['genotype']).feature_sharing is True
    assert [s['summary'] for s in summaries] == ['first', 'last']
    assert summaries[0]['test_acc_mean'] == runs[0]['test_acc'] and summaries[0]['test_acc_spread'] == 0


@pytest.mark.skipif(shutil.which('dot') is None, reason='Graphviz `dot` not installed')
def test_report_scaling_record_is_a_dst_search(tmp_path: Path, capsys: pytest.CaptureFixture,
                                               load_script) -> None:
    bench = load_script('benchmarks/report_scaling.py')
    bench.write_run(tmp_path / 'run', 4)
    records = read_metrics(tmp_path / 'run').records
    kept = [sum(r.data['arch']['active_connections']['normal']) for r in records]
    assert kept[0] == 14 * 7 and kept[-1] == 2 * 4 and kept == sorted(kept, reverse=True)  # cut down to 2 per node
    bench._child(str(tmp_path / 'run'), str(tmp_path / 'report'))
    figures = json.loads(capsys.readouterr().out)
    film = film_epochs([(r.epoch, json.dumps(r.data['genotype'], sort_keys=True)) for r in records])
    assert figures['gif_frames'] == figures['pngs'] == len(film) and film[0] == 1 and film[-1] == 4
    assert figures['peak_rss_mb'] >= figures['after_imports_mb'] and figures['html_mb'] > 0


@pytest.mark.fashion_mnist
def test_train_levers_times_each_variant_in_its_own_run(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                        load_script) -> None:
    levers = load_script('benchmarks/train_levers.py')
    out = tmp_path / 'levers.jsonl'
    assert levers.main(['--subset', '64', '--val-subset', '32', '--channels', '4', '--layers', '3', '--image-size',
                        '16', '--rounds', '2', '--variants', 't1-b32,t1-b32-cl', '--output', str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines == [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    config, variants, summary = lines[0]['config'], lines[1:3], lines[3]
    assert config['subset'] == 64 and config['rounds'] == 2
    assert [v['flags'] for v in variants] == ['--threads 1 --batch-size 32', '--threads 1 --batch-size 32 '
                                              '--channels-last']
    for v in variants:
        assert len(v['images_per_s_rounds']) == 2 and v['images_per_s'] > 0 and v['cpu_s_per_1k'] > 0
    assert summary['throughput_vs_first']['t1-b32'] == 1.0
    with pytest.raises(SystemExit, match="cannot read 'x9'"):
        levers.main(['--variants', 't1-x9'])
