"""The settings of a training run: the papers' protocols as presets, the dataclass, and how flags, presets and a
resumed run's saved settings combine into one checked :class:`TrainConfig`.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

from ..data.loader import DATASETS, Augment
from ..models.baselines import BASELINE_MODELS
from ..models.registry import MODEL_GENOTYPES
from ..utils.errors import CLIError
from .checkpoint import CONFIG

__all__ = ['SCHEDULES', 'PRESETS', 'DATASET_PRESET', 'RESUME_MUTABLE', 'TrainConfig', 'check_config',
           'resolve_config', 'resume_config']

SCHEDULES = ('cosine', 'step', 'linear')

# The evaluation protocols (docs/method.md, "Protocols"); explicit flags override every value.
PRESETS: Dict[str, Dict[str, Any]] = {
    # DARTS CIFAR-10 (Liu et al. 2019, and its train.py): 20 cells, 36 channels
    'cifar': dict(dataset='cifar10', channels=36, layers=20, epochs=600, batch_size=96, lr=0.025, min_lr=0.,
                  sched='cosine', momentum=0.9, weight_decay=3e-4, grad_clip=5., label_smoothing=0., aux_weight=0.4,
                  drop_path=0.2, cutout=16, warmup_epochs=0, precise_bn=0),
    # DARTS ImageNet mobile setting (its train_imagenet.py; 250 epochs as in the paper): 14 cells, 48 channels
    'imagenet': dict(dataset='imagenet', channels=48, layers=14, epochs=250, batch_size=128, lr=0.1, min_lr=0.,
                     sched='step', decay_rate=0.97, momentum=0.9, weight_decay=3e-5, grad_clip=5.,
                     label_smoothing=0.1, aux_weight=0.4, drop_path=0., cutout=0, warmup_epochs=0,
                     precise_bn=0),
    # PC-DARTS ImageNet (its train_imagenet.py): batch 1024, lr 0.5, 5 warm-up epochs, linear decay
    'imagenet-pc-darts': dict(dataset='imagenet', channels=48, layers=14, epochs=250, batch_size=1024, lr=0.5,
                              min_lr=0., sched='linear', momentum=0.9, weight_decay=3e-5, grad_clip=5.,
                              label_smoothing=0.1, aux_weight=0.4, drop_path=0., cutout=0, warmup_epochs=5,
                              precise_bn=0),
    # our CPU-scale protocol for the offline data: the DARTS CIFAR recipe, scaled (docs/method.md)
    'fashion-mnist': dict(dataset='fashion-mnist', channels=16, layers=8, epochs=10, batch_size=96, lr=0.05,
                          min_lr=0., sched='cosine', momentum=0.9, weight_decay=3e-4, grad_clip=5.,
                          label_smoothing=0., aux_weight=0.4, drop_path=0.1, cutout=8, warmup_epochs=0,
                          precise_bn=20),
}
DATASET_PRESET = {'cifar10': 'cifar', 'cifar100': 'cifar', 'imagenet': 'imagenet', 'imagefolder': 'imagenet',
                  'mnist': 'fashion-mnist', 'fashion-mnist': 'fashion-mnist'}
"""The preset a data set trains with when ``--preset`` is not given."""

RESUME_MUTABLE = frozenset({'output', 'resume', 'workers', 'data_dir', 'device', 'threads', 'quiet', 'json'})
"""Settings that may differ between a run and its ``--resume`` (nothing else may)."""


@dataclass
class TrainConfig:
    """Every setting of a training run (``config.json``'s ``settings``)."""
    model: Optional[str] = None               # registered name or a baseline; None -> the family's cellnet_* entrypoint
    genotype: Optional[str] = None            # bundled name, genotype file, or a search run directory
    preset: Optional[str] = None              # None -> DATASET_PRESET[dataset]
    # data
    dataset: str = 'cifar10'
    data_dir: str = 'data'
    subset: Optional[int] = None
    val_subset: Optional[int] = None          # None -> the whole test / val split
    image_size: Optional[int] = None          # None -> native size (224 for folders)
    # network size (None -> the preset's, else the family's)
    channels: Optional[int] = None
    layers: Optional[int] = None
    # protocol (filled by the preset)
    epochs: int = 600
    batch_size: int = 96                      # global: split over torchrun processes and --grad-accum steps
    lr: float = 0.025
    min_lr: float = 0.
    sched: str = 'cosine'
    decay_rate: float = 0.97                  # sched=step: lr factor per epoch
    warmup_epochs: int = 0                    # linear warm-up from lr / warmup_epochs
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.
    label_smoothing: float = 0.
    aux_weight: float = 0.4                   # 0 = no auxiliary head
    drop_path: float = 0.2                    # final drop-path probability, ramped linearly from 0 over the epochs
    cutout: int = 16
    crop_padding: int = Augment.crop_padding  # small data sets: random crop after zero padding (0 = off)
    precise_bn: int = 0                       # batches re-estimating BN statistics before each validation
    ema: bool = False
    ema_decay: float = 0.9998
    grad_accum: int = 1
    # execution
    device: Optional[str] = None
    threads: Optional[int] = None
    workers: Optional[int] = None             # None -> loader.default_workers
    amp: bool = False
    channels_last: bool = False
    compile: bool = False
    seed: int = 0
    # output
    output: Optional[str] = None
    resume: bool = False
    quiet: bool = False
    json: bool = False

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


# ---- settings -------------------------------------------------------------------------------------------------
def check_config(cfg: TrainConfig) -> None:
    """Reject unknown names and impossible values before anything is read or written."""
    if cfg.preset is not None and cfg.preset not in PRESETS:
        raise CLIError(f'--preset: unknown preset {cfg.preset!r}; expected one of {", ".join(PRESETS)}')
    if cfg.dataset not in DATASETS:
        raise CLIError(f'--dataset: unknown data set {cfg.dataset!r}; expected one of {", ".join(DATASETS)}')
    if cfg.model is not None and cfg.model not in MODEL_GENOTYPES and cfg.model not in BASELINE_MODELS:
        raise CLIError(f'MODEL: {cfg.model!r} is not a registered model of the zoo; registered: '
                       f'{", ".join(MODEL_GENOTYPES)}; baselines: {", ".join(BASELINE_MODELS)} (or give only '
                       '--genotype)')
    if cfg.model in BASELINE_MODELS:
        given = [f for f, v in (('--genotype', cfg.genotype), ('--aux-weight', cfg.aux_weight),
                                ('--drop-path', cfg.drop_path)) if v]
        if given:
            raise CLIError(f'MODEL {cfg.model}: a baseline has no cells, auxiliary head or drop path; pass '
                           f'--aux-weight 0 --drop-path 0 and no --genotype (got {", ".join(given)})')
    if cfg.sched not in SCHEDULES:
        raise CLIError(f'--sched: expected one of {", ".join(SCHEDULES)}, got {cfg.sched!r}')
    for name in ('epochs', 'batch_size', 'grad_accum'):
        v = getattr(cfg, name)
        if not isinstance(v, int) or v < 1:
            raise CLIError(f'--{name.replace("_", "-")}: expected a positive integer, got {v!r}')
    for name in ('subset', 'val_subset', 'image_size', 'channels', 'layers', 'threads'):
        v = getattr(cfg, name)
        if v is not None and (not isinstance(v, int) or v < 1):
            raise CLIError(f'--{name.replace("_", "-")}: expected a positive integer, got {v!r}')
    if cfg.channels is not None and cfg.channels % 2:
        raise CLIError(f'--channels: expected an even number, got {cfg.channels}')
    if cfg.layers is not None and cfg.layers < 3:
        raise CLIError(f'--layers: a network needs at least 3 cells (normal, reduce, reduce), got {cfg.layers}')
    for name in ('workers', 'warmup_epochs', 'cutout', 'crop_padding', 'precise_bn'):
        v = getattr(cfg, name)
        if v is not None and v < 0:
            raise CLIError(f'--{name.replace("_", "-")}: expected >= 0, got {v}')
    if cfg.warmup_epochs >= cfg.epochs and cfg.warmup_epochs > 0:
        raise CLIError(f'--warmup-epochs {cfg.warmup_epochs} >= --epochs {cfg.epochs}: the run would end in warm-up')
    if cfg.lr <= 0 or cfg.min_lr < 0 or cfg.min_lr > cfg.lr:
        raise CLIError(f'--lr must be > 0 and 0 <= --min-lr <= --lr (got {cfg.lr}, {cfg.min_lr})')
    for name, lo, hi in (('drop_path', 0., 1.), ('label_smoothing', 0., 1.), ('ema_decay', 0., 1.),
                         ('momentum', 0., 1.), ('decay_rate', 0., 1.)):
        v = getattr(cfg, name)
        if not lo <= v < hi and not (name == 'decay_rate' and v == 1.):
            raise CLIError(f'--{name.replace("_", "-")}: expected a value in [{lo}, {hi}), got {v}')
    for name in ('weight_decay', 'grad_clip', 'aux_weight'):
        if getattr(cfg, name) < 0:
            raise CLIError(f'--{name.replace("_", "-")}: expected >= 0, got {getattr(cfg, name)}')
    if cfg.quiet and cfg.json:
        raise CLIError('--quiet and --json contradict each other: --json already prints only JSON lines')


def resolve_config(explicit: Mapping[str, Any]) -> TrainConfig:
    """Defaults < preset (given, or the data set's) < explicit flags."""
    explicit = dict(explicit)
    preset = explicit.get('preset')
    if preset is not None and preset not in PRESETS:
        raise CLIError(f'--preset: unknown preset {preset!r}; expected one of {", ".join(PRESETS)}')
    if preset is None:
        dataset = explicit.get('dataset', TrainConfig.dataset)
        if dataset not in DATASETS:
            raise CLIError(f'--dataset: unknown data set {dataset!r}; expected one of {", ".join(DATASETS)}')
        preset = DATASET_PRESET[dataset]
    values = dict(PRESETS[preset], preset=preset)
    values.update(explicit)
    try:
        cfg = TrainConfig(**values)
    except TypeError as e:
        raise CLIError(str(e)) from None
    check_config(cfg)
    return cfg


def resume_config(explicit: Mapping[str, Any], out: Path) -> TrainConfig:
    """The settings saved in ``out/config.json``, after checking that no flag given now contradicts them."""
    path = out / CONFIG
    try:
        saved = json.loads(path.read_text(encoding='utf-8'))['settings']
        base = TrainConfig(**saved)
    except FileNotFoundError:
        raise CLIError(f'--resume: {out} holds no run to resume ({CONFIG} not found)') from None
    except (ValueError, KeyError, TypeError) as e:
        raise CLIError(f'--resume: {path} is not the configuration of an entrannas train run ({e})') from None
    diff = sorted(k for k, v in explicit.items() if k not in RESUME_MUTABLE and saved.get(k) != v)
    if diff:
        detail = ', '.join(f'--{k.replace("_", "-")}: run {saved.get(k)!r}, now {explicit[k]!r}' for k in diff)
        raise CLIError(f'--resume: the run in {out} was started with other settings ({detail}); resume without '
                       'changing them (flags may be left out), or start a new --output')
    cfg = dataclasses.replace(base, **{k: v for k, v in explicit.items() if k in RESUME_MUTABLE})
    check_config(cfg)
    return cfg
