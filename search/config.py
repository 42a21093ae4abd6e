"""Search settings: one dataclass, the named protocols (presets) and the checks that reject bad combinations.

Settings resolve in three layers: the defaults below, then a ``--preset`` (a paper protocol, METHOD.md §6),
then the flags given explicitly. Every "our choice" of METHOD.md is a field here.
"""
from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Set, Tuple, Union

__all__ = [
    'METHODS', 'DATASETS', 'PRESETS', 'SearchConfig', 'ConfigError', 'resolve_config', 'RESUME_MUTABLE',
    'parse_engine_cells', 'check_ranges', 'MIN_IMAGE_SIZE',
]

METHODS: Tuple[str, ...] = ('darts', 'pc-darts', 'entrannas', 'entrannas-dst')
DATASETS: Tuple[str, ...] = ('cifar10', 'cifar100', 'mnist', 'fashion-mnist', 'imagenet', 'imagefolder')
SPACES: Tuple[str, ...] = ('standard', 'extended')
STEMS: Tuple[str, ...] = ('cifar', 'imagenet')


class ConfigError(ValueError):
    """Contradictory or invalid settings; the message names the flag(s) and what was expected."""


# The paper protocols (METHOD.md §6) and the two baselines' own published protocols.
PRESETS: Dict[str, Dict[str, Any]] = {
    # EnTranNAS CIFAR-10 search: half/half split, 8 cells, 16 channels, 50 epochs, DARTS's batch and lr
    'cifar10': dict(dataset='cifar10', epochs=50, channels=16, layers=8, nodes=4, batch_size=64, lr=0.025,
                    min_lr=0.001, arch_lr=6e-4),
    'cifar100': dict(dataset='cifar100', epochs=50, channels=16, layers=8, nodes=4, batch_size=64, lr=0.025,
                     min_lr=0.001, arch_lr=6e-4),
    'fashion-mnist': dict(dataset='fashion-mnist', epochs=50, channels=16, layers=8, nodes=4, batch_size=64,
                          lr=0.025, min_lr=0.001, arch_lr=6e-4),
    # ImageNet direct search (PC-DARTS protocol): 10% / 10% of train, ImageNet stem, global batch 1024,
    # lr 0.5, arch lr 6e-3, architecture updates from epoch 35 of 50
    'imagenet': dict(dataset='imagenet', stem='imagenet', image_size=224, epochs=50, channels=16, layers=8,
                     nodes=4, batch_size=1024, lr=0.5, min_lr=0.0, arch_lr=6e-3, arch_warmup_epochs=35),
    # DARTS's own CIFAR-10 search (train_search.py defaults)
    'darts': dict(method='darts', dataset='cifar10', epochs=50, channels=16, layers=8, nodes=4, batch_size=64,
                  lr=0.025, min_lr=0.001, arch_lr=3e-4),
    # PC-DARTS's own CIFAR-10 search (train_search.py defaults: arch updates from epoch 15)
    'pc-darts': dict(method='pc-darts', dataset='cifar10', epochs=50, channels=16, layers=8, nodes=4,
                     batch_size=256, lr=0.1, min_lr=0.0, arch_lr=6e-4, arch_warmup_epochs=15),
}


@dataclass
class SearchConfig:
    """Every setting of a search run (what ``config.json`` holds)."""
    method: str = 'entrannas'
    space: str = 'standard'
    preset: Optional[str] = None
    # data
    dataset: str = 'cifar10'
    data_dir: str = 'data'
    synthetic: bool = False
    subset: Optional[int] = None
    image_size: Optional[int] = None          # None -> the dataset's native size (224 for ImageNet)
    in_chans: Optional[int] = None            # synthetic data only; real data sets it
    num_classes: Optional[int] = None         # synthetic data only; real data sets it
    train_portion: float = 0.5                # CIFAR-like: fraction of train for weights, the rest for arch
    imagenet_portion: float = 0.1             # ImageNet: fraction for weights, another disjoint one for arch
    workers: int = 2
    # super-net
    stem: Optional[str] = None                # None -> 'imagenet' for imagenet/imagefolder, else 'cifar'
    channels: int = 16
    layers: int = 8
    nodes: int = 4
    stem_multiplier: int = 3
    engine_cells: Optional[Union[str, List[int]]] = None   # None -> the method's default placement
    feature_sharing: Optional[bool] = None    # None -> on for entrannas*, off for darts/pc-darts
    temperature: float = 1.0
    pc_k: Optional[int] = None                # pc-darts partial-channel K (default 4)
    lam: Optional[float] = None               # entrannas-dst sparsity weight (default 0.1)
    init_threshold: Optional[float] = None    # entrannas-dst initial t_j (default 0.3)
    dst_regularizer: Optional[str] = None     # entrannas-dst form of the lam term (default 'threshold_gap')
    unrolled: bool = False                    # darts second order
    # optimisation
    epochs: int = 50
    batch_size: int = 64                      # global: split across distributed ranks
    lr: float = 0.025
    min_lr: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    arch_lr: float = 6e-4
    arch_betas: Tuple[float, float] = (0.5, 0.999)
    arch_weight_decay: float = 1e-3
    arch_warmup_epochs: int = 0
    # evaluation-protocol network used for params/MACs in metrics (None -> family default, METHOD.md §7)
    eval_channels: Optional[int] = None
    eval_layers: Optional[int] = None
    # execution
    device: Optional[str] = None              # None -> cuda if available, else cpu
    threads: Optional[int] = None             # CPU intra-op threads (None -> torch's default)
    amp: bool = False
    channels_last: bool = False
    seed: int = 0
    deterministic: bool = False
    # output
    output: Optional[str] = None
    resume: Optional[str] = None
    export_genotype: Optional[str] = None
    allow_unsearched_genotype: bool = False   # write a genotype even if the architecture was never updated
    quiet: bool = False
    json: bool = False

    def to_dict(self) -> Dict[str, Any]:
        d = dataclasses.asdict(self)
        d['arch_betas'] = list(self.arch_betas)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = 'config') -> SearchConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f'{source}: unknown setting(s) {unknown}')
        d = dict(data)
        if 'arch_betas' in d:
            d['arch_betas'] = tuple(d['arch_betas'])
        return cls(**d)

    # ---- derived settings ----------------------------------------------------------------------
    @property
    def is_dst(self) -> bool:
        return self.method == 'entrannas-dst'

    @property
    def is_entrannas(self) -> bool:
        return self.method in ('entrannas', 'entrannas-dst')


# settings that may change between a run and its --resume (everything else must match the checkpoint)
RESUME_MUTABLE = frozenset({'output', 'resume', 'export_genotype', 'quiet', 'json', 'workers', 'data_dir', 'device',
                            'threads', 'allow_unsearched_genotype'})

_DEFAULT_LAM = 0.1
_DEFAULT_INIT_THRESHOLD = 0.3
_DEFAULT_PC_K = 4


def parse_engine_cells(value: Union[str, Sequence[int], None]) -> Optional[Union[str, List[int]]]:
    """'all' | 'first' | 'last' | 'default' | comma-separated cell indices ('0,5')."""
    if value is None or isinstance(value, list):
        return value
    if not isinstance(value, str):
        return [int(v) for v in value]
    v = value.strip().lower()
    if v in ('', 'default'):
        return None
    if v in ('all', 'first', 'last'):
        return v
    try:
        cells = [int(x) for x in v.split(',') if x.strip()]
    except ValueError:
        raise ConfigError(f"--engine-cells: expected 'all', 'first', 'last', 'default' or comma-separated "
                          f'cell indices such as 2,5; got {value!r}') from None
    if not cells:
        raise ConfigError('--engine-cells: no cell index given')
    return cells


def resolve_config(explicit: Mapping[str, Any]) -> SearchConfig:
    """Defaults < preset < explicit flags, then method defaults and consistency checks."""
    explicit = dict(explicit)
    preset = explicit.get('preset')
    values: Dict[str, Any] = {}
    if preset is not None:
        if preset not in PRESETS:
            raise ConfigError(f'--preset: unknown preset {preset!r}; expected one of {sorted(PRESETS)}')
        values.update(PRESETS[preset])
        pm = PRESETS[preset].get('method')
        if pm is not None and explicit.get('method', pm) != pm:
            raise ConfigError(f"--preset {preset} is the {pm} protocol; it contradicts --method {explicit['method']}")
    values.update(explicit)
    if 'engine_cells' in values:
        values['engine_cells'] = parse_engine_cells(values['engine_cells'])
    try:
        cfg = SearchConfig(**values)
    except TypeError as e:
        raise ConfigError(str(e)) from None
    check_ranges(cfg, set(explicit))
    _check(cfg, set(explicit))
    # method defaults for the method-specific settings
    if cfg.method == 'entrannas-dst':
        cfg.lam = _DEFAULT_LAM if cfg.lam is None else cfg.lam
        cfg.init_threshold = _DEFAULT_INIT_THRESHOLD if cfg.init_threshold is None else cfg.init_threshold
    if cfg.method == 'pc-darts':
        cfg.pc_k = _DEFAULT_PC_K if cfg.pc_k is None else cfg.pc_k
    if cfg.method in ('darts', 'pc-darts'):
        cfg.engine_cells = 'all'
        cfg.feature_sharing = False
    elif cfg.feature_sharing is None:
        cfg.feature_sharing = True
    if cfg.stem is None:
        cfg.stem = 'imagenet' if cfg.dataset in ('imagenet', 'imagefolder') else 'cifar'
    return cfg


def _check(cfg: SearchConfig, explicit: set) -> None:
    """Reject unknown names and contradictory flags before anything is read or written."""
    if cfg.method not in METHODS:
        raise ConfigError(f'--method: unknown method {cfg.method!r}; expected one of {", ".join(METHODS)}')
    if cfg.space not in SPACES:
        raise ConfigError(f'--space: unknown space {cfg.space!r}; expected one of {", ".join(SPACES)}')
    if cfg.dataset not in DATASETS:
        raise ConfigError(f'--dataset: unknown dataset {cfg.dataset!r}; expected one of {", ".join(DATASETS)}')
    if cfg.stem is not None and cfg.stem not in STEMS:
        raise ConfigError(f'--stem: expected one of {", ".join(STEMS)}, got {cfg.stem!r}')
    if cfg.unrolled and cfg.method != 'darts':
        raise ConfigError(f'--unrolled (second-order DARTS) applies only to --method darts, not {cfg.method}')
    if cfg.method != 'entrannas-dst':
        for name, flag in (('lam', '--lam'), ('init_threshold', '--init-threshold'),
                           ('dst_regularizer', '--dst-regularizer')):
            if getattr(cfg, name) is not None:
                raise ConfigError(f'{flag} applies only to --method entrannas-dst (its thresholds), not {cfg.method}')
    if cfg.method != 'pc-darts' and cfg.pc_k is not None:
        raise ConfigError(f'--pc-k (partial channels) applies only to --method pc-darts, not {cfg.method}')
    if cfg.method in ('darts', 'pc-darts'):
        if cfg.engine_cells not in (None, 'all'):
            raise ConfigError(f'--engine-cells: {cfg.method} makes every cell an engine cell; only entrannas and '
                              'entrannas-dst place engine cells')
        if cfg.feature_sharing:
            raise ConfigError(f'--feature-sharing: {cfg.method} never shares features; use entrannas, or drop '
                              'the flag')
    if cfg.in_chans is not None and not cfg.synthetic:
        raise ConfigError('--in-chans applies only to --synthetic data (real data sets its own channels)')
    if cfg.num_classes is not None and not cfg.synthetic:
        raise ConfigError('--num-classes applies only to --synthetic data (real data sets its own classes)')
    if cfg.lam is not None and cfg.lam < 0:
        raise ConfigError(f'--lam: expected >= 0, got {cfg.lam}')
    if cfg.init_threshold is not None and not 0 < cfg.init_threshold < 1:
        raise ConfigError(f'--init-threshold: expected a value in (0, 1), got {cfg.init_threshold}')
    if cfg.export_genotype is not None and not cfg.export_genotype.endswith('.json'):
        raise ConfigError(f'--export-genotype: expected a path ending in .json (genotypes/NAME.json), '
                          f'got {cfg.export_genotype!r}')
    if cfg.quiet and cfg.json:
        raise ConfigError('--quiet and --json contradict each other: --json already prints only JSON lines')


# Smallest image each stem's super-net can take: every stride-2 edge (factorized reduce) needs at least 2 pixels.
MIN_IMAGE_SIZE: Dict[str, int] = {'cifar': 3, 'imagenet': 17}
_DEVICE = re.compile(r'cpu|cuda(:\d{1,4})?')
_FLOATS = ('temperature', 'lam', 'init_threshold', 'train_portion', 'imagenet_portion', 'lr', 'min_lr', 'momentum',
           'weight_decay', 'grad_clip', 'arch_lr', 'arch_weight_decay')
_POSITIVE_INTS = ('epochs', 'batch_size', 'channels', 'nodes', 'stem_multiplier', 'layers', 'subset', 'image_size',
                  'in_chans', 'num_classes', 'pc_k', 'eval_channels', 'eval_layers', 'threads')


def _flag(name: str) -> str:
    return '--' + name.replace('_', '-')


def _in(cfg: SearchConfig, name: str, ok: Callable[[float], bool], expected: str) -> None:
    v = getattr(cfg, name)
    if v is not None and not ok(v):
        raise ConfigError(f'{_flag(name)}: expected {expected}, got {v!r}')


def check_ranges(cfg: SearchConfig, explicit: Set[str] = frozenset()) -> None:
    """Reject values out of range for any method: non-finite numbers, negative rates, impossible sizes, unknown
    devices. ``explicit`` names the settings given as flags (the others came from a preset or the defaults)."""
    for name in _FLOATS:
        _in(cfg, name, lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
            'a finite number')
    betas = cfg.arch_betas
    if not (isinstance(betas, (tuple, list)) and len(betas) == 2
            and all(isinstance(b, (int, float)) and not isinstance(b, bool) and 0 <= b < 1 for b in betas)):
        raise ConfigError(f'--arch-betas: expected two numbers in [0, 1) (Adam betas), got {betas!r}')
    for name in _POSITIVE_INTS:
        _in(cfg, name, lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1, 'a positive integer')
    _in(cfg, 'layers', lambda v: v >= 3, 'at least 3 cells (a super-net has a normal and two reduction cells)')
    _in(cfg, 'workers', lambda v: isinstance(v, int) and v >= 0, 'an integer >= 0')
    _in(cfg, 'arch_warmup_epochs', lambda v: isinstance(v, int) and v >= 0, 'an integer >= 0')
    for name in ('lr', 'arch_lr', 'temperature'):
        _in(cfg, name, lambda v: v > 0, 'a number > 0')
    for name in ('min_lr', 'weight_decay', 'arch_weight_decay', 'grad_clip'):
        _in(cfg, name, lambda v: v >= 0, 'a number >= 0 (0 = off)' if name == 'grad_clip' else 'a number >= 0')
    _in(cfg, 'momentum', lambda v: 0 <= v < 1, 'a number in [0, 1)')
    _in(cfg, 'train_portion', lambda v: 0 < v < 1, 'a fraction in (0, 1)')
    _in(cfg, 'imagenet_portion', lambda v: 0 < v <= 0.5, 'a fraction in (0, 0.5]')
    stem = cfg.stem or ('imagenet' if cfg.dataset in ('imagenet', 'imagefolder') else 'cifar')
    smallest = MIN_IMAGE_SIZE.get(stem, 1)
    _in(cfg, 'image_size', lambda v: v >= smallest, f'at least {smallest} pixels (the {stem} stem and two reduction '
        'cells need it)')
    if cfg.device is not None and not (isinstance(cfg.device, str) and _DEVICE.fullmatch(cfg.device)):
        raise ConfigError(f'--device: expected cpu, cuda or cuda:N (N = GPU index), got {cfg.device!r}')
    if cfg.arch_warmup_epochs >= cfg.epochs and not cfg.allow_unsearched_genotype:
        source = '' if 'arch_warmup_epochs' in explicit or cfg.preset is None else f' (from --preset {cfg.preset})'
        raise ConfigError(f'--arch-warmup-epochs {cfg.arch_warmup_epochs}{source} is not smaller than --epochs '
                          f'{cfg.epochs}: the architecture would never be updated and the genotype would be the '
                          'random initial one. Give more --epochs or fewer --arch-warmup-epochs, or pass '
                          '--allow-unsearched-genotype if that is what you want')
