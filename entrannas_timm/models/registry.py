"""timm registration: pretrained configs and ``@register_model`` entrypoints of the model zoo.

Every entrypoint builds :class:`~entrannas_timm.models.network.CellNetwork` from its bundled genotype, and
accepts ``genotype=`` (bundled name, file path, dict or :class:`Genotype`) to build any genotype in that
family. Weights are configuration: each ``name.tag`` lives at ``hf-hub:{HF_ORG}/name.tag`` as
safetensors and loads through timm's own loader.
"""
from __future__ import annotations

import os
from typing import Any, Dict, Optional

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model, resolve_pretrained_cfg

from .authors import AUTHORS_CHECKPOINTS, AuthorsCheckpoint
from .constants import DATASET_STATS
from .genotype import Genotype, GenotypeError, GenotypeLike
from .network import CellFeatureGetter, CellNetwork

__all__ = ['HF_ORG', 'FAMILIES', 'MOBILE_MACS', 'GENERIC_MODELS', 'MODEL_GENOTYPES', 'MINI_MODELS', 'MINI_TAG',
           'PUBLISHED_TAGS', 'WEIGHTS_FILE', 'CIFAR10_MEAN', 'CIFAR10_STD', 'WeightsNotPublishedError', 'network_size']

HF_ORG = 'entrannas'
"""The Hugging Face organisation that hosts every published checkpoint of the zoo."""

WEIGHTS_FILE = 'model.safetensors'
"""Published checkpoints are safetensors only: registry tags point timm's loader at this file, never at a pickle."""

CIFAR10_MEAN, CIFAR10_STD = DATASET_STATS['cifar10']

FAMILIES: Dict[str, Dict[str, Any]] = {
    'cifar': dict(stem_type='cifar', channels=36, layers=20),
    'imagenet': dict(stem_type='imagenet', channels=48, layers=14),
}
"""Network families: stem type and the evaluation protocol's size (docs/method.md, "Protocols"): DARTS's CIFAR
network (20 cells, 36 channels) and its ImageNet mobile-setting network (14 cells, 48 channels)."""

MOBILE_MACS = 600_000_000
"""The ImageNet mobile setting: at most 600M multiply-adds at 224x224 (docs/method.md, Evaluation networks)."""

GENERIC_MODELS: Dict[str, str] = {'cellnet_cifar': 'cifar', 'cellnet_imagenet': 'imagenet'}
"""Family entrypoints for any genotype (search output, files, dicts): ``timm.create_model('cellnet_cifar',
genotype='runs/x/genotype.json')``. Without ``genotype=`` they build DARTS V2. Exported checkpoints of custom
genotypes name these, so the architecture in ``config.json`` says nothing about a genotype it does not hold."""

# registered architecture -> (bundled genotype, family). Every bundled genotype also builds through the family
# entrypoints (``cellnet_cifar(genotype='sdarts_rs')``); the well-known cells have entrypoints of their own.
MODEL_GENOTYPES: Dict[str, tuple] = {
    'cellnet_cifar': ('darts_v2', 'cifar'),
    'cellnet_imagenet': ('darts_v2', 'imagenet'),
    'darts_v1_cifar10': ('darts_v1', 'cifar'),
    'darts_v2_cifar10': ('darts_v2', 'cifar'),
    'darts_v2_imagenet': ('darts_v2', 'imagenet'),
    'pc_darts_cifar10': ('pc_darts_cifar', 'cifar'),
    'pc_darts_imagenet': ('pc_darts_image', 'imagenet'),
    # EnTranNAS cells of our own CPU-scale Fashion-MNIST searches (records/search/<genotype>/; README, "EnTranNAS
    # models"): the paper's CIFAR-10 and ImageNet cells are not available
    **{f'{genotype}_{suffix}': (genotype, family)
       for genotype in ('entrannas', 'entrannas_ext', 'entrannas_dst', 'entrannas_dst_lam005', 'entrannas_dst_lam02')
       for suffix, family in (('cifar10', 'cifar'), ('imagenet', 'imagenet'))},
    **{f'{model}_{suffix}': (genotype, family)
       for model, cifar_genotype, imagenet_genotype in [
           ('pdarts', 'pdarts', 'pdarts'),
           ('gdas', 'gdas_v1', 'gdas_v1'),
           ('snas_mild', 'snas_mild', 'snas_mild'),
           ('fairdarts_a', 'fairdarts_a', 'fairdarts_a'),
           ('fairdarts_b', 'fairdarts_b', 'fairdarts_b'),
           ('drnas', 'drnas_cifar10', 'drnas_imagenet'),
           ('sdarts_rs', 'sdarts_rs', 'sdarts_rs'),
           ('sdarts_adv', 'sdarts_adv', 'sdarts_adv'),
           ('sgas_cri1', 'sgas_cri1', 'sgas_cri1'),
           ('sgas_cri2', 'sgas_cri2', 'sgas_cri2_imagenet'),
           ('darts_minus', 'darts_minus', 'darts_minus'),
           ('beta_darts', 'beta_darts', 'beta_darts'),
           ('cdarts', 'cdarts_cifar', 'cdarts_imagenet'),
       ]
       for suffix, genotype, family in (('cifar10', cifar_genotype, 'cifar'), ('imagenet', imagenet_genotype,
                                                                                 'imagenet'))},
    # CIFAR only: NoisyDARTS's ImageNet model is in another search space (README, "The DARTS-family zoo")
    'noisy_darts_a_cifar10': ('noisy_darts_a', 'cifar'),
}

MINI_SIZE: Dict[str, int] = dict(channels=8, layers=5)
"""The model zoo's CPU-size CIFAR-family network (docs/method.md, "Baselines"): the size its Fashion-MNIST
checkpoints are trained at, one input channel, 28x28."""

MINI_MODELS: Dict[str, str] = {
    **{f'{genotype}_mini': genotype for genotype in ('entrannas', 'entrannas_ext', 'entrannas_dst',
                                                     'entrannas_dst_lam005', 'entrannas_dst_lam02', 'darts_v2')},
    'pc_darts_mini': 'pc_darts_cifar'}
"""The registered EnTranNAS cells and the published references at MINI_SIZE: the architectures of the zoo's
Fashion-MNIST weights (``<name>.{MINI_TAG}``)."""
MODEL_GENOTYPES.update({name: (genotype, 'cifar') for name, genotype in MINI_MODELS.items()})

MINI_TAG = 'e3_fmnist'
"""timm's ``<recipe>_<dataset>`` of the zoo's Fashion-MNIST weights: 3 epochs at 28x28 (docs/method.md)."""


def network_size(name: str) -> Dict[str, Any]:
    """The stem type, cells and channels a registered architecture builds by default."""
    return {**FAMILIES[MODEL_GENOTYPES[name][1]], **(MINI_SIZE if name in MINI_MODELS else {})}


class WeightsNotPublishedError(RuntimeError):
    """``pretrained=True`` for a tag whose weights cannot be found on the Hub or in the local cache."""


def _paper(genotype: Optional[str]) -> Dict[str, str]:
    """timm's paper fields, from the bundled genotype's provenance (where the paper is recorded once). A missing or
    broken genotype file leaves them out instead of breaking the import (its entrypoint then fails clearly)."""
    try:
        provenance = Genotype.coerce(genotype).provenance if genotype else {}
    except GenotypeError:
        return {}
    return {k: provenance[p] for k, p in (('paper_name', 'paper'), ('paper_ids', 'paper_id')) if p in provenance}


def _cifar_cfg(genotype: Optional[str], **kwargs) -> Dict[str, Any]:
    return dict(
        num_classes=10, input_size=(3, 32, 32), min_input_size=(3, 8, 8),
        pool_size=(8, 8), crop_pct=1.0, interpolation='bilinear', mean=CIFAR10_MEAN, std=CIFAR10_STD,
        first_conv='stem0.0', classifier='head.fc', license='apache-2.0', **_paper(genotype), **kwargs)


def _imagenet_cfg(genotype: Optional[str], **kwargs) -> Dict[str, Any]:
    return dict(
        num_classes=1000, input_size=(3, 224, 224), min_input_size=(3, 32, 32),
        pool_size=(7, 7), crop_pct=0.875, interpolation='bicubic', mean=IMAGENET_DEFAULT_MEAN,
        std=IMAGENET_DEFAULT_STD, first_conv='stem0.0', classifier='head.fc', license='apache-2.0',
        **_paper(genotype), **kwargs)


def _fmnist_cfg(genotype: Optional[str], **kwargs) -> Dict[str, Any]:
    mean, std = DATASET_STATS['fashion-mnist']
    return _cifar_cfg(genotype, **kwargs) | dict(input_size=(1, 28, 28), min_input_size=(1, 8, 8), pool_size=(7, 7),
                                                 mean=mean, std=std)


_TAGS = {'cifar': ('c10', _cifar_cfg), 'imagenet': ('in1k', _imagenet_cfg)}
# one tag per registered cell: c10 (CIFAR-10), in1k (ImageNet-1k), or the zoo's Fashion-MNIST weights
_cfgs = {f'{name}.{_TAGS[family][0]}': _TAGS[family][1](genotype)
         for name, (genotype, family) in MODEL_GENOTYPES.items() if name not in GENERIC_MODELS | MINI_MODELS.keys()}
_cfgs.update({f'{name}.{MINI_TAG}': _fmnist_cfg(genotype) for name, genotype in MINI_MODELS.items()})


def _authors_cfg(c: AuthorsCheckpoint) -> Dict[str, Any]:
    """The tag of an authors' checkpoint: their evaluation preprocessing, the file's origin in the notes."""
    family = MODEL_GENOTYPES[c.model][1]
    notes = (f'converted from the authors\' {c.file or "checkpoint"} by `entrannas convert` ({c.layout} layout)',
             f'reported: {c.reported}', f'sha256: {c.sha256 or "not recorded"}',
             *([f'MD5 published by the authors: {c.md5}'] if c.md5 else []))
    return _TAGS[family][1](MODEL_GENOTYPES[c.model][0], **{'origin_url': c.url, 'notes': notes}) | dict(
        input_size=c.input_size, mean=c.mean, std=c.std, crop_pct=c.crop_pct, interpolation=c.interpolation,
        license=c.license)


_cfgs.update({name: _authors_cfg(c) for name, c in AUTHORS_CHECKPOINTS.items()})
# every tag's weights live in their own Hub repo, named after the tag; generic family entrypoints have no
# weights of their own (their checkpoints are hf-hub: repos whose config.json holds the genotype)
default_cfgs = generate_default_cfgs({
    **{k: dict(v, hf_hub_id=f'{HF_ORG}/{k}', hf_hub_filename=WEIGHTS_FILE) for k, v in _cfgs.items()},
    'cellnet_cifar': _cifar_cfg(None),
    'cellnet_imagenet': _imagenet_cfg(None),
})


PUBLISHED_TAGS: frozenset = frozenset()
"""``name.tag`` whose weights are published on the Hub. Any other tag loads only from the local Hugging Face
cache (e.g. weights saved with :mod:`entrannas_timm.hub`) or an explicit ``pretrained_cfg_overlay``."""


def _hub_errors() -> tuple:
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, OfflineModeIsEnabled
    return EntryNotFoundError, HfHubHTTPError, OfflineModeIsEnabled, OSError


_TRAIN_DATA = {'cifar': '--preset cifar --dataset cifar10', 'imagenet': '--preset imagenet --dataset imagenet'}
_ZOO_TRAINING = ('from a checkout, `python scripts/fmnist_zoo.py train {cell}`, then `record` and `export {cell}` '
                 '(Fashion-MNIST: Debian\'s dataset-fashion-mnist or torchvision\'s FashionMNIST/raw/ files), '
                 'then `entrannas cache hub/{name} --repo-id {repo}`')
_DATA_LAYOUT = {'cifar': "DATA holds torchvision's CIFAR-10 files (cifar-10-batches-py/)",
                'imagenet': 'DATA holds ImageNet as ImageFolder roots: DATA/train/<wnid>/*.JPEG and '
                            'DATA/val/<wnid>/*.JPEG (1,000 class folders each)'}


def _unpublished(name: str, reason: str) -> WeightsNotPublishedError:
    model = name.split('.')[0]
    family = MODEL_GENOTYPES[model][1] if model in MODEL_GENOTYPES else 'cifar'
    if name in AUTHORS_CHECKPOINTS:
        c = AUTHORS_CHECKPOINTS[name]
        return WeightsNotPublishedError(
            f'no converted weights for {name!r}: {reason}. They are the authors\' {c.file or "checkpoint"} '
            f'({c.reported}; {c.url}, code {c.code}): download it, then `entrannas convert {c.file_arg} --model '
            f'{name} -o hub/{name}` '
            f'and `entrannas cache hub/{name} --repo-id {HF_ORG}/{name}`.')
    head = f'no pretrained weights for {name!r}: {reason}. Published tags: {sorted(PUBLISHED_TAGS) or "none yet"}. '
    if model in MINI_MODELS:
        return WeightsNotPublishedError(head + 'They are the model zoo\'s Fashion-MNIST weights: '
                                        + _ZOO_TRAINING.format(cell=MINI_MODELS[model], name=name,
                                                               repo=f'{HF_ORG}/{name}') + '.')
    return WeightsNotPublishedError(
        head + f'Train them with `entrannas train {model} {_TRAIN_DATA[family]} --data-dir DATA --output runs/{model}` '
        f'({_DATA_LAYOUT[family]}; then `entrannas export` and `entrannas cache`), use pretrained=False, or load '
        'your own weights with pretrained_cfg_overlay=dict(file="path/to/model.safetensors") or '
        'timm.create_model("hf-hub:ORG/NAME").')


def _check_weights(variant: str, kwargs: Dict[str, Any]) -> bool:
    """Fail fast, before any network access, on a weights file that does not exist or a registry tag whose
    weights are neither published nor cached. True when the weights will come from the Hugging Face Hub."""
    from huggingface_hub import constants, try_to_load_from_cache

    cfg = resolve_pretrained_cfg(variant, kwargs.get('pretrained_cfg'), kwargs.get('pretrained_cfg_overlay')).to_dict()
    # the order in which timm's loader picks a source, read from documented PretrainedCfg fields (timm has no
    # public function for the choice): a given source (hf-hub:, local-dir:), a state dict, a file, hf_hub_id
    if cfg.get('source') in ('hf-hub', 'local-dir'):
        return cfg['source'] == 'hf-hub'  # timm has read the checkpoint's config.json there already
    if cfg.get('state_dict'):
        return False
    if cfg.get('file'):
        file = os.fspath(cfg['file'])
        if not os.path.isfile(file):
            overlay = kwargs.get('pretrained_cfg_overlay') or {}
            given = 'pretrained_cfg_overlay' if overlay.get('file') else 'pretrained_cfg'
            raise FileNotFoundError(f"{given}['file']: no weights file at {file!r}")
        return False
    if not cfg.get('hf_hub_id'):
        return False
    repo_id, filename = cfg['hf_hub_id'], cfg.get('hf_hub_filename') or WEIGHTS_FILE
    name = f"{variant}.{cfg['tag']}" if cfg.get('tag') else variant
    if isinstance(try_to_load_from_cache(repo_id, filename, cache_dir=kwargs.get('cache_dir')), str):
        return True
    if constants.HF_HUB_OFFLINE:
        raise _unpublished(name, f'{repo_id}/{filename} is not in the Hugging Face cache and HF_HUB_OFFLINE is set')
    if name not in PUBLISHED_TAGS:
        raise _unpublished(name, f'this tag has no published weights (hf-hub:{repo_id} is reserved for them)')
    return True


def _create_network(variant: str, pretrained: bool = False, genotype: Optional[GenotypeLike] = None,
                    **kwargs) -> CellNetwork:
    default_genotype, family = MODEL_GENOTYPES[variant]
    genotype = Genotype.coerce(default_genotype if genotype is None else genotype)
    # the family's protocol, then the widths the genotype's authors evaluate it at (GDAS: 50 channels), then kwargs
    mini = MINI_SIZE if variant in MINI_MODELS else {}
    model_kwargs = {**FAMILIES[family], **genotype.network_settings(family), **mini, **kwargs}
    n_features = 3 if family == 'cifar' else 4
    # features come from forward_intermediates (cells take two inputs, so no sequential/hook rewrite)
    feature_cfg = dict(feature_cls=CellFeatureGetter, out_indices=tuple(range(n_features)))
    feature_cfg.update(model_kwargs.pop('feature_cfg', None) or {})
    from_hub = pretrained and _check_weights(variant, model_kwargs)
    try:
        return build_model_with_cfg(
            CellNetwork, variant, pretrained, genotype=genotype, feature_cfg=feature_cfg, **model_kwargs)
    except _hub_errors() as e:
        if not from_hub:
            raise
        raise _unpublished(variant, f'{type(e).__name__}: {e}') from e


@register_model
def cellnet_cifar(pretrained: bool = False, **kwargs) -> CellNetwork:
    """Any genotype (``genotype=``; default DARTS V2) as a CIFAR network (20 cells, 36 channels)."""
    return _create_network('cellnet_cifar', pretrained, **kwargs)


@register_model
def cellnet_imagenet(pretrained: bool = False, **kwargs) -> CellNetwork:
    """Any genotype (``genotype=``; default DARTS V2) as an ImageNet mobile network (14 cells, 48 channels)."""
    return _create_network('cellnet_imagenet', pretrained, **kwargs)


@register_model
def darts_v1_cifar10(pretrained: bool = False, **kwargs) -> CellNetwork:
    """DARTS (first order) cell, CIFAR network (20 cells, 36 channels). https://arxiv.org/abs/1806.09055"""
    return _create_network('darts_v1_cifar10', pretrained, **kwargs)


@register_model
def darts_v2_cifar10(pretrained: bool = False, **kwargs) -> CellNetwork:
    """DARTS (second order) cell, CIFAR network (20 cells, 36 channels). https://arxiv.org/abs/1806.09055"""
    return _create_network('darts_v2_cifar10', pretrained, **kwargs)


@register_model
def darts_v2_imagenet(pretrained: bool = False, **kwargs) -> CellNetwork:
    """DARTS (second order) cell, ImageNet mobile network (14 cells, 48 channels). https://arxiv.org/abs/1806.09055"""
    return _create_network('darts_v2_imagenet', pretrained, **kwargs)


@register_model
def pc_darts_cifar10(pretrained: bool = False, **kwargs) -> CellNetwork:
    """PC-DARTS CIFAR-10 cell, CIFAR network (20 cells, 36 channels). https://arxiv.org/abs/1907.05737"""
    return _create_network('pc_darts_cifar10', pretrained, **kwargs)


@register_model
def pc_darts_imagenet(pretrained: bool = False, **kwargs) -> CellNetwork:
    """PC-DARTS ImageNet cell, ImageNet mobile network (14 cells, 48 channels). https://arxiv.org/abs/1907.05737"""
    return _create_network('pc_darts_imagenet', pretrained, **kwargs)


@register_model
def entrannas_cifar10(pretrained: bool = False, **kwargs) -> CellNetwork:
    """EnTranNAS cell (CPU Fashion-MNIST search), CIFAR network (20 cells, 36 ch). https://arxiv.org/abs/2101.11342"""
    return _create_network('entrannas_cifar10', pretrained, **kwargs)


@register_model
def entrannas_imagenet(pretrained: bool = False, **kwargs) -> CellNetwork:
    """EnTranNAS cell (CPU Fashion-MNIST search), ImageNet mobile network (14 cells, 48 ch). https://arxiv.org/abs/2101.11342"""
    return _create_network('entrannas_imagenet', pretrained, **kwargs)


@register_model
def entrannas_ext_cifar10(pretrained: bool = False, **kwargs) -> CellNetwork:
    """EnTranNAS cell, 13-op space (CPU Fashion-MNIST search), CIFAR network (20 cells, 36 ch). https://arxiv.org/abs/2101.11342"""
    return _create_network('entrannas_ext_cifar10', pretrained, **kwargs)


@register_model
def entrannas_ext_imagenet(pretrained: bool = False, **kwargs) -> CellNetwork:
    """EnTranNAS cell, 13-op space (CPU Fashion-MNIST search), ImageNet mobile network (14 cells, 48 ch). https://arxiv.org/abs/2101.11342"""
    return _create_network('entrannas_ext_imagenet', pretrained, **kwargs)


@register_model
def entrannas_dst_cifar10(pretrained: bool = False, **kwargs) -> CellNetwork:
    """EnTranNAS-DST cell (lam 0.1) (CPU Fashion-MNIST search), CIFAR network (20 cells, 36 ch). https://arxiv.org/abs/2101.11342"""
    return _create_network('entrannas_dst_cifar10', pretrained, **kwargs)


@register_model
def entrannas_dst_imagenet(pretrained: bool = False, **kwargs) -> CellNetwork:
    """EnTranNAS-DST cell (lam 0.1) (CPU Fashion-MNIST search), ImageNet mobile network (14 cells, 48 ch). https://arxiv.org/abs/2101.11342"""
    return _create_network('entrannas_dst_imagenet', pretrained, **kwargs)


@register_model
def entrannas_dst_lam005_cifar10(pretrained: bool = False, **kwargs) -> CellNetwork:
    """EnTranNAS-DST cell, lam 0.05 (CPU Fashion-MNIST search), CIFAR network (20 cells, 36 ch). https://arxiv.org/abs/2101.11342"""
    return _create_network('entrannas_dst_lam005_cifar10', pretrained, **kwargs)


@register_model
def entrannas_dst_lam005_imagenet(pretrained: bool = False, **kwargs) -> CellNetwork:
    """EnTranNAS-DST cell, lam 0.05 (CPU Fashion-MNIST search), ImageNet mobile network (14 cells, 48 ch). https://arxiv.org/abs/2101.11342"""
    return _create_network('entrannas_dst_lam005_imagenet', pretrained, **kwargs)


@register_model
def entrannas_dst_lam02_cifar10(pretrained: bool = False, **kwargs) -> CellNetwork:
    """EnTranNAS-DST cell, lam 0.2 (CPU Fashion-MNIST search), CIFAR network (20 cells, 36 ch). https://arxiv.org/abs/2101.11342"""
    return _create_network('entrannas_dst_lam02_cifar10', pretrained, **kwargs)


@register_model
def entrannas_dst_lam02_imagenet(pretrained: bool = False, **kwargs) -> CellNetwork:
    """EnTranNAS-DST cell, lam 0.2 (CPU Fashion-MNIST search), ImageNet mobile network (14 cells, 48 ch). https://arxiv.org/abs/2101.11342"""
    return _create_network('entrannas_dst_lam02_imagenet', pretrained, **kwargs)


@register_model
def entrannas_mini(pretrained: bool = False, **kwargs) -> CellNetwork:
    """EnTranNAS cell (CPU Fashion-MNIST search), the zoo's CPU-size network (5 cells, 8 ch, 1x28x28). https://arxiv.org/abs/2101.11342"""
    return _create_network('entrannas_mini', pretrained, **kwargs)


@register_model
def entrannas_ext_mini(pretrained: bool = False, **kwargs) -> CellNetwork:
    """EnTranNAS cell, 13-op space (CPU Fashion-MNIST search), the zoo's CPU-size network (5 cells, 8 ch, 1x28x28). https://arxiv.org/abs/2101.11342"""
    return _create_network('entrannas_ext_mini', pretrained, **kwargs)


@register_model
def entrannas_dst_mini(pretrained: bool = False, **kwargs) -> CellNetwork:
    """EnTranNAS-DST cell (lam 0.1) (CPU Fashion-MNIST search), the zoo's CPU-size network (5 cells, 8 ch, 1x28x28). https://arxiv.org/abs/2101.11342"""
    return _create_network('entrannas_dst_mini', pretrained, **kwargs)


@register_model
def entrannas_dst_lam005_mini(pretrained: bool = False, **kwargs) -> CellNetwork:
    """EnTranNAS-DST cell, lam 0.05 (CPU Fashion-MNIST search), the zoo's CPU-size network (5 cells, 8 ch, 1x28x28). https://arxiv.org/abs/2101.11342"""
    return _create_network('entrannas_dst_lam005_mini', pretrained, **kwargs)


@register_model
def entrannas_dst_lam02_mini(pretrained: bool = False, **kwargs) -> CellNetwork:
    """EnTranNAS-DST cell, lam 0.2 (CPU Fashion-MNIST search), the zoo's CPU-size network (5 cells, 8 ch, 1x28x28). https://arxiv.org/abs/2101.11342"""
    return _create_network('entrannas_dst_lam02_mini', pretrained, **kwargs)


@register_model
def darts_v2_mini(pretrained: bool = False, **kwargs) -> CellNetwork:
    """DARTS (second order) cell, the zoo's CPU-size network (5 cells, 8 ch, 1x28x28). https://arxiv.org/abs/1806.09055"""
    return _create_network('darts_v2_mini', pretrained, **kwargs)


@register_model
def pc_darts_mini(pretrained: bool = False, **kwargs) -> CellNetwork:
    """PC-DARTS CIFAR-10 cell, the zoo's CPU-size network (5 cells, 8 ch, 1x28x28). https://arxiv.org/abs/1907.05737"""
    return _create_network('pc_darts_mini', pretrained, **kwargs)


@register_model
def pdarts_cifar10(pretrained: bool = False, **kwargs) -> CellNetwork:
    """P-DARTS cell, CIFAR network (20 cells, 36 channels). https://arxiv.org/abs/1904.12760"""
    return _create_network('pdarts_cifar10', pretrained, **kwargs)


@register_model
def pdarts_imagenet(pretrained: bool = False, **kwargs) -> CellNetwork:
    """P-DARTS cell, ImageNet mobile network (14 cells, 48 channels). https://arxiv.org/abs/1904.12760"""
    return _create_network('pdarts_imagenet', pretrained, **kwargs)


@register_model
def gdas_cifar10(pretrained: bool = False, **kwargs) -> CellNetwork:
    """GDAS cell, CIFAR network (20 cells, 36 channels). https://arxiv.org/abs/1910.04465"""
    return _create_network('gdas_cifar10', pretrained, **kwargs)


@register_model
def gdas_imagenet(pretrained: bool = False, **kwargs) -> CellNetwork:
    """GDAS cell, ImageNet mobile network (14 cells, 50 channels, as GDAS). https://arxiv.org/abs/1910.04465"""
    return _create_network('gdas_imagenet', pretrained, **kwargs)


@register_model
def snas_mild_cifar10(pretrained: bool = False, **kwargs) -> CellNetwork:
    """SNAS mild-constraint cell, CIFAR network (20 cells, 36 channels). https://arxiv.org/abs/1812.09926"""
    return _create_network('snas_mild_cifar10', pretrained, **kwargs)


@register_model
def snas_mild_imagenet(pretrained: bool = False, **kwargs) -> CellNetwork:
    """SNAS mild-constraint cell, ImageNet mobile network (14 cells, 48 channels). https://arxiv.org/abs/1812.09926"""
    return _create_network('snas_mild_imagenet', pretrained, **kwargs)


@register_model
def fairdarts_a_cifar10(pretrained: bool = False, **kwargs) -> CellNetwork:
    """FairDARTS-a cell, CIFAR network (20 cells, 36 channels). https://arxiv.org/abs/1911.12126"""
    return _create_network('fairdarts_a_cifar10', pretrained, **kwargs)


@register_model
def fairdarts_a_imagenet(pretrained: bool = False, **kwargs) -> CellNetwork:
    """FairDARTS-a cell, ImageNet mobile network (14 cells, 48 channels). https://arxiv.org/abs/1911.12126"""
    return _create_network('fairdarts_a_imagenet', pretrained, **kwargs)


@register_model
def fairdarts_b_cifar10(pretrained: bool = False, **kwargs) -> CellNetwork:
    """FairDARTS-b cell, CIFAR network (20 cells, 36 channels). https://arxiv.org/abs/1911.12126"""
    return _create_network('fairdarts_b_cifar10', pretrained, **kwargs)


@register_model
def fairdarts_b_imagenet(pretrained: bool = False, **kwargs) -> CellNetwork:
    """FairDARTS-b cell, ImageNet mobile network (14 cells, 48 channels). https://arxiv.org/abs/1911.12126"""
    return _create_network('fairdarts_b_imagenet', pretrained, **kwargs)


@register_model
def drnas_cifar10(pretrained: bool = False, **kwargs) -> CellNetwork:
    """DrNAS cell (CIFAR-10 search), CIFAR network (20 cells, 36 channels). https://arxiv.org/abs/2006.10355"""
    return _create_network('drnas_cifar10', pretrained, **kwargs)


@register_model
def drnas_imagenet(pretrained: bool = False, **kwargs) -> CellNetwork:
    """DrNAS cell (ImageNet search), ImageNet mobile network (14 cells, 48 ch). https://arxiv.org/abs/2006.10355"""
    return _create_network('drnas_imagenet', pretrained, **kwargs)


@register_model
def sdarts_rs_cifar10(pretrained: bool = False, **kwargs) -> CellNetwork:
    """SDARTS-RS cell, CIFAR network (20 cells, 36 channels). https://arxiv.org/abs/2002.05283"""
    return _create_network('sdarts_rs_cifar10', pretrained, **kwargs)


@register_model
def sdarts_rs_imagenet(pretrained: bool = False, **kwargs) -> CellNetwork:
    """SDARTS-RS cell, ImageNet mobile network (14 cells, 48 channels). https://arxiv.org/abs/2002.05283"""
    return _create_network('sdarts_rs_imagenet', pretrained, **kwargs)


@register_model
def sdarts_adv_cifar10(pretrained: bool = False, **kwargs) -> CellNetwork:
    """SDARTS-ADV cell, CIFAR network (20 cells, 36 channels). https://arxiv.org/abs/2002.05283"""
    return _create_network('sdarts_adv_cifar10', pretrained, **kwargs)


@register_model
def sdarts_adv_imagenet(pretrained: bool = False, **kwargs) -> CellNetwork:
    """SDARTS-ADV cell, ImageNet mobile network (14 cells, 48 channels). https://arxiv.org/abs/2002.05283"""
    return _create_network('sdarts_adv_imagenet', pretrained, **kwargs)


@register_model
def sgas_cri1_cifar10(pretrained: bool = False, **kwargs) -> CellNetwork:
    """SGAS criterion-1 best cell, CIFAR network (20 cells, 36 channels). https://arxiv.org/abs/1912.00195"""
    return _create_network('sgas_cri1_cifar10', pretrained, **kwargs)


@register_model
def sgas_cri1_imagenet(pretrained: bool = False, **kwargs) -> CellNetwork:
    """SGAS criterion-1 best cell, ImageNet mobile network (14 cells, 48 channels). https://arxiv.org/abs/1912.00195"""
    return _create_network('sgas_cri1_imagenet', pretrained, **kwargs)


@register_model
def sgas_cri2_cifar10(pretrained: bool = False, **kwargs) -> CellNetwork:
    """SGAS criterion-2 cell best on CIFAR-10, CIFAR network (20 cells, 36 ch). https://arxiv.org/abs/1912.00195"""
    return _create_network('sgas_cri2_cifar10', pretrained, **kwargs)


@register_model
def sgas_cri2_imagenet(pretrained: bool = False, **kwargs) -> CellNetwork:
    """SGAS criterion-2 cell best on ImageNet, ImageNet mobile network (14 cells, 48 ch). https://arxiv.org/abs/1912.00195"""
    return _create_network('sgas_cri2_imagenet', pretrained, **kwargs)


@register_model
def darts_minus_cifar10(pretrained: bool = False, **kwargs) -> CellNetwork:
    """DARTS- cell, CIFAR network (20 cells, 36 channels). https://arxiv.org/abs/2009.01027"""
    return _create_network('darts_minus_cifar10', pretrained, **kwargs)


@register_model
def darts_minus_imagenet(pretrained: bool = False, **kwargs) -> CellNetwork:
    """DARTS- cell, ImageNet mobile network (14 cells, 48 channels). https://arxiv.org/abs/2009.01027"""
    return _create_network('darts_minus_imagenet', pretrained, **kwargs)


@register_model
def noisy_darts_a_cifar10(pretrained: bool = False, **kwargs) -> CellNetwork:
    """NoisyDARTS-a cell, CIFAR network (20 cells, 36 channels). https://arxiv.org/abs/2005.03566"""
    return _create_network('noisy_darts_a_cifar10', pretrained, **kwargs)


@register_model
def beta_darts_cifar10(pretrained: bool = False, **kwargs) -> CellNetwork:
    """β-DARTS cell, CIFAR network (20 cells, 36 channels). https://arxiv.org/abs/2203.01665"""
    return _create_network('beta_darts_cifar10', pretrained, **kwargs)


@register_model
def beta_darts_imagenet(pretrained: bool = False, **kwargs) -> CellNetwork:
    """β-DARTS cell, ImageNet mobile network (14 cells, 48 channels). https://arxiv.org/abs/2203.01665"""
    return _create_network('beta_darts_imagenet', pretrained, **kwargs)


@register_model
def cdarts_cifar10(pretrained: bool = False, **kwargs) -> CellNetwork:
    """CDARTS cell (CIFAR-10 search), CIFAR network (20 cells, 36 channels). https://arxiv.org/abs/2006.10724"""
    return _create_network('cdarts_cifar10', pretrained, **kwargs)


@register_model
def cdarts_imagenet(pretrained: bool = False, **kwargs) -> CellNetwork:
    """CDARTS cell (ImageNet search), ImageNet mobile network (48 ch, 3x stem). https://arxiv.org/abs/2006.10724"""
    return _create_network('cdarts_imagenet', pretrained, **kwargs)
