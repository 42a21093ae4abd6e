"""timm's own generic model tests, run against the models of the zoo (PER_MODEL; the cfg test on every tag).

The tests come from ``tests/test_models.py`` of the installed timm release's source distribution, which
``scripts/setup.sh`` unpacks under ``.cache/timm-tests/``; nothing is fetched here. Each upstream test
function is called directly with our model names, one pytest item per (test, model).
"""
from __future__ import annotations

import importlib.util
import os
import sys
import warnings
from pathlib import Path
from types import ModuleType
from typing import Callable, Dict, List, Tuple

import pytest
import timm
import torch

import entrannas_timm

ROOT = Path(__file__).resolve().parents[1]
TIMM_TESTS = ROOT / '.cache' / 'timm-tests' / f'timm-{timm.__version__}' / 'tests'

MODELS: List[str] = sorted(entrannas_timm.MODEL_GENOTYPES)
TAGGED: List[str] = timm.list_models(MODELS, include_tags=True)
IMAGENET = [m for m in MODELS if entrannas_timm.MODEL_GENOTYPES[m][1] == 'imagenet']
# timm's per-model tests (below) exercise CellNetwork's API, which a genotype does not change, so they run on one
# model per cell or network feature: the DARTS cell in each family (darts_v2_*; cellnet_* build the same networks,
# darts_v1 and pc_darts the same kind of cell), nodes with many inputs and several ops on one edge (the sparsest
# DST cell, entrannas_dst_lam02_cifar10), absent nodes and node drop path (fairdarts_a_cifar10), a width other than
# the family's (gdas_imagenet, 50 channels), a 3x ImageNet stem (cdarts_imagenet) and the zoo's one-channel
# Fashion-MNIST network (entrannas_dst_mini: 28x28 input, 5 cells of 8 channels). Every registered tag runs the
# cfg test; tests/test_network.py builds every cell.
PER_MODEL: List[str] = ['darts_v2_cifar10', 'darts_v2_imagenet', 'entrannas_dst_lam02_cifar10', 'fairdarts_a_cifar10',
                        'gdas_imagenet', 'cdarts_imagenet', 'entrannas_dst_mini']

# upstream tests parametrized over every timm model (list_models): run for PER_MODEL.
# test name -> the arguments after the model name (the upstream parametrization's values)
EVERY_MODEL: Dict[str, Tuple] = {
    'test_model_forward': (1,),
    'test_model_backward': (2,),
    'test_model_forward_torchscript': (1,),
    'test_model_forward_features': (1,),
    'test_model_forward_intermediates_features': (1,),
    'test_model_forward_intermediates': (1,),
    'test_model_forward_fx': (1,),
    'test_model_backward_fx': (2,),
    'test_model_forward_fx_torchscript': (1,),
    'test_model_forward_torchscript_with_features_fx': (1,),
}
# upstream API-contract tests (upstream runs them for a few named models, or outside its CI because they are
# slow). They exercise CellNetwork's API, which does not depend on the genotype, so one model per family runs them.
CONTRACT: Dict[str, Tuple] = {
    'test_prune_intermediate_layers_contract': (),
    'test_prune_intermediate_layers_params_used': (),
    'test_prune_intermediate_layers_last_feature': (True,),
    'test_reset_classifier_keeps_pool': (),
    'test_head_hidden_size': ({},),
    'test_features_only_grad_checkpointing_backward': (),
    'test_features_only_feature_cls_class': (),
    'test_feature_getter_stage_ends_torchscript': (),
}
FAMILY_MODELS = ['darts_v2_cifar10', 'darts_v2_imagenet']
# only for models whose first feature is the stem output (the ImageNet family)
STEM_FEATURE: Dict[str, Tuple] = {'test_prune_to_stem_feature': ()}


def _load_upstream() -> ModuleType:
    path = TIMM_TESTS / 'test_models.py'
    if not path.is_file():
        msg = f'timm {timm.__version__} tests not found at {path}; run scripts/setup.sh to unpack them'
        if os.environ.get('CI'):
            pytest.fail(msg)
        pytest.skip(msg)
    name = 'timm_upstream_test_models'
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        with warnings.catch_warnings():  # upstream marks (base, cfg, timeout, ...) are registered in its own config
            warnings.simplefilter('ignore', pytest.PytestUnknownMarkWarning)
            spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope='module')
def upstream() -> ModuleType:
    return _load_upstream()


def _get(upstream: ModuleType, test: str) -> Callable:
    fn = getattr(upstream, test, None)
    if fn is None:  # defined conditionally upstream (e.g. not under GITHUB_ACTIONS) or gone in this release
        pytest.skip(f'{test} is not defined by timm {timm.__version__} tests in this environment')
    return fn


@pytest.mark.parametrize('model_name', PER_MODEL)
@pytest.mark.parametrize('test', sorted(EVERY_MODEL))
def test_upstream(upstream: ModuleType, test: str, model_name: str) -> None:
    torch.manual_seed(0)
    _get(upstream, test)(model_name, *EVERY_MODEL[test])


@pytest.mark.parametrize('model_name', FAMILY_MODELS)
@pytest.mark.parametrize('test', sorted(CONTRACT))
def test_upstream_contract(upstream: ModuleType, test: str, model_name: str) -> None:
    torch.manual_seed(0)
    _get(upstream, test)(model_name, *CONTRACT[test])


@pytest.mark.parametrize('model_name', [m for m in FAMILY_MODELS if m in IMAGENET])
@pytest.mark.parametrize('test', sorted(STEM_FEATURE))
def test_upstream_stem_feature(upstream: ModuleType, test: str, model_name: str) -> None:
    torch.manual_seed(0)
    _get(upstream, test)(model_name, *STEM_FEATURE[test])


@pytest.mark.parametrize('model_name', TAGGED)
def test_upstream_default_cfgs(upstream: ModuleType, model_name: str) -> None:
    # the upstream `cfg_device` fixture: the meta device wherever torch.device is a context manager
    cfg_device = 'meta' if upstream._HAS_DEVICE_CONTEXT else upstream.torch_device
    _get(upstream, 'test_model_default_cfgs')(model_name, 1, cfg_device)


def test_zoo_is_complete() -> None:
    """Every registered model of the zoo (and only those) is exercised above, each with a tagged cfg."""
    ours = [m for m in timm.list_models() if timm.models.model_entrypoint(m).__module__.startswith('entrannas_timm')]
    baselines = entrannas_timm.models.BASELINE_MODELS  # references, not cells (tests/test_baselines.py)
    assert MODELS == sorted(m for m in ours if m not in baselines) and set(baselines) <= set(ours)
    assert sorted({t.split('.')[0] for t in TAGGED}) == MODELS  # some carry an authors' tag beside ours
    assert set(FAMILY_MODELS) <= set(PER_MODEL) <= set(MODELS)
    assert {entrannas_timm.MODEL_GENOTYPES[m][1] for m in FAMILY_MODELS} == {'cifar', 'imagenet'}
