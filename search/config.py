"""Search settings: one dataclass, the named protocols (presets) and the checks that reject bad combinations.

Settings resolve in three layers: the defaults below, then a ``--preset`` (a paper protocol, METHOD.md §6),
then the flags given explicitly. Every "our choice" of METHOD.md is a field here.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

__all__ = [
    'METHODS', 'DATASETS', 'PRESETS', 'SearchConfig', 'ConfigError', 'resolve_config', 'RESUME_MUTABLE',
    'parse_engine_cells',
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
                            'threads'})

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
    positive = dict(epochs=cfg.epochs, batch_size=cfg.batch_size, channels=cfg.channels, nodes=cfg.nodes,
                    stem_multiplier=cfg.stem_multiplier)
    for name, v in positive.items():
        if not isinstance(v, int) or v < 1:
            raise ConfigError(f'--{name.replace("_", "-")}: expected a positive integer, got {v!r}')
    if cfg.layers < 3:
        raise ConfigError(f'--layers: a super-net needs at least 3 cells (normal, reduce, reduce), got {cfg.layers}')
    for name in ('subset', 'image_size', 'in_chans', 'num_classes', 'pc_k', 'eval_channels', 'eval_layers',
                 'threads'):
        v = getattr(cfg, name)
        if v is not None and (not isinstance(v, int) or v < 1):
            raise ConfigError(f'--{name.replace("_", "-")}: expected a positive integer, got {v!r}')
    if cfg.workers < 0:
        raise ConfigError(f'--workers: expected >= 0, got {cfg.workers}')
    if cfg.arch_warmup_epochs < 0:
        raise ConfigError(f'--arch-warmup-epochs: expected >= 0, got {cfg.arch_warmup_epochs}')
    if cfg.arch_warmup_epochs >= cfg.epochs and 'arch_warmup_epochs' in explicit:
        raise ConfigError(f'--arch-warmup-epochs {cfg.arch_warmup_epochs} >= --epochs {cfg.epochs}: the '
                          'architecture would never be updated')
    if cfg.temperature <= 0:
        raise ConfigError(f'--temperature: expected > 0, got {cfg.temperature}')
    if cfg.lam is not None and cfg.lam < 0:
        raise ConfigError(f'--lam: expected >= 0, got {cfg.lam}')
    if cfg.init_threshold is not None and not 0 < cfg.init_threshold < 1:
        raise ConfigError(f'--init-threshold: expected a value in (0, 1), got {cfg.init_threshold}')
    if not 0 < cfg.train_portion < 1:
        raise ConfigError(f'--train-portion: expected a value in (0, 1), got {cfg.train_portion}')
    if not 0 < cfg.imagenet_portion <= 0.5:
        raise ConfigError(f'--imagenet-portion: expected a value in (0, 0.5], got {cfg.imagenet_portion}')
    if cfg.lr <= 0 or cfg.arch_lr <= 0 or cfg.min_lr < 0:
        raise ConfigError('--lr and --arch-lr must be > 0 and --min-lr >= 0')
    if cfg.export_genotype is not None and not cfg.export_genotype.endswith('.json'):
        raise ConfigError(f'--export-genotype: expected a path ending in .json (genotypes/NAME.json), '
                          f'got {cfg.export_genotype!r}')
    if cfg.quiet and cfg.json:
        raise ConfigError('--quiet and --json contradict each other: --json already prints only JSON lines')
