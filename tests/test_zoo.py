"""The EnTranNAS models of the zoo: searched cells traced to their committed records, registered entrypoints
(tests/test_zoo_hub.py loads the trained checkpoints).
"""
from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch

import entrannas_timm
from entrannas_timm import load_genotype
from entrannas_timm.reports.records import PROVENANCE_SOURCE, read_config, read_metrics, search_cost_seconds
from search.config import resolve_config
from search.searcher import build_model

ROOT = Path(__file__).resolve().parents[1]
SEARCHED = [name for name in entrannas_timm.list_genotypes()
            if load_genotype(name).provenance.get('source') == PROVENANCE_SOURCE]
MINI_MODELS = entrannas_timm.models.registry.MINI_MODELS
ENTRANNAS_MODELS = [m for m, (g, _) in entrannas_timm.MODEL_GENOTYPES.items() if g.startswith('entrannas')]
RECORD_SETTINGS = ('method', 'space', 'dataset', 'image_size', 'epochs', 'seed', 'lam', 'init_threshold', 'subset',
                   'batch_size', 'arch_lr', 'arch_lr_schedule')


def test_every_entrannas_model_is_a_searched_cell_in_both_families():
    genotypes = {g for m, (g, _) in entrannas_timm.MODEL_GENOTYPES.items() if m in ENTRANNAS_MODELS}
    assert genotypes <= set(SEARCHED)
    for name in ('entrannas', 'entrannas_ext', 'entrannas_dst', 'entrannas_dst_lam005', 'entrannas_dst_lam02'):
        assert {f'{name}_cifar10', f'{name}_imagenet', f'{name}_mini'} <= set(ENTRANNAS_MODELS)
    assert timm.list_models('entrannas_dst*', include_tags=True)[:2] == ['entrannas_dst_cifar10.c10',
                                                                        'entrannas_dst_imagenet.in1k']


@pytest.mark.parametrize('name', SEARCHED)
def test_searched_cell_is_its_record_rederived(name):
    """The bundled file is what the record's final architecture state derives, and its provenance says how."""
    bundled = load_genotype(name)
    prov = bundled.provenance
    record = ROOT / prov['record']
    assert all((record / f).is_file() for f in ('config.json', 'metrics.jsonl', 'genotype.json',
                                                 'report/report.html'))
    config = read_config(record / 'config.json')
    settings = prov['search_settings']
    for key in RECORD_SETTINGS:
        assert settings[key] == config[key], key
    assert prov['image_size'] == config['image_size'] and prov['epochs'] == config['epochs']
    assert prov['arch_steps'] == prov['epochs'] * -(-config['subset'] // config['batch_size'])
    cost = search_cost_seconds(prov['search_cost'])  # these records predate wall_s / cpu_s
    assert cost['wall_s'] > 0 and prov['code_version']['git']
    assert prov['command'].startswith('python -m search') and f'--method {config["method"]}' in prov['command']
    records = read_metrics(record).records
    final = records[-1]
    assert final.epoch == config['epochs']
    cfg = resolve_config({k: v for k, v in config.items() if k not in ('output', 'resume', 'export_genotype')})
    net = build_model(cfg, in_chans=1, num_classes=10, device=torch.device('cpu'))
    net.load_arch_snapshot(final.get('arch'))
    derived = net.genotype()
    assert (derived.normal, derived.reduce, derived.space, derived.feature_sharing) == \
        (bundled.normal, bundled.reduce, bundled.space, bundled.feature_sharing)
    stable = prov['stable_from_epoch']
    changes = [r.epoch for prev, r in zip(records, records[1:]) if r.genotype != prev.genotype]
    assert (changes[-1] if changes else 1) == stable
    assert prov['converged'] == (config['epochs'] - stable + 1 >= config['epochs'] / 5)
    cpu_s = sum(r.get('epoch_cpu_s') for r in records)
    assert cost['cpu_s'] == pytest.approx(cpu_s, abs=0.01)
    assert cost['wall_s'] == pytest.approx(sum(r.get('epoch_time_s') for r in records), abs=0.01)
    assert prov['paper_id'] == {'darts': 'arXiv:1806.09055', 'pc-darts': 'arXiv:1907.05737'}.get(config['method'],
                                                                                                  'arXiv:2101.11342')


@pytest.mark.parametrize('model_name', ENTRANNAS_MODELS)
def test_entrannas_entrypoint_builds_its_cell_and_fails_fast_without_weights(model_name):
    genotype, family = entrannas_timm.MODEL_GENOTYPES[model_name]
    with torch.device('meta'):
        model = timm.create_model(model_name)
    assert model.genotype.normal == load_genotype(genotype).normal
    with pytest.raises(entrannas_timm.WeightsNotPublishedError) as e:
        timm.create_model(model_name, pretrained=True)
    if model_name in MINI_MODELS:  # the zoo's Fashion-MNIST weights: the message names the zoo's commands
        assert model.pretrained_cfg['input_size'] == (1, 28, 28) and model.channels == 8 and len(model.cells) == 5
        assert f'python scripts/fmnist_zoo.py train {genotype}' in str(e.value), str(e.value)
        assert f'entrannas cache hub/{model_name}.e3_fmnist' in str(e.value) and 'FashionMNIST/raw/' in str(e.value)
        return
    data = '--preset cifar --dataset cifar10' if family == 'cifar' else '--preset imagenet --dataset imagenet'
    assert 'no pretrained weights' in str(e.value) and f'entrannas train {model_name} {data}' in str(e.value)
    layout = 'cifar-10-batches-py/' if family == 'cifar' else 'DATA/train/<wnid>/*.JPEG and DATA/val/<wnid>/*.JPEG'
    assert layout in str(e.value)
