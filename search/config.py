"""Search settings: one dataclass, the named protocols (presets) and the checks that reject bad combinations.

Settings resolve in three layers: the defaults below, then a ``--preset`` (a paper protocol, docs/method.md,
*Protocols*), then the flags given explicitly. Every "our choice" of docs/method.md is a field here. The
method-specific settings (``pc_k``, ``lam``, ...) are checked and defaulted by the method's class
(:mod:`search.methods`), which also decides where engine cells sit and whether features are shared.
"""
from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Set, Tuple, Union

from .methods import METHODS, SettingError, create_method, method_settings, parse_engine_cells

__all__ = [
    'METHODS', 'DATASETS', 'PRESETS', 'SearchConfig', 'ConfigError', 'resolve_config', 'RESUME_MUTABLE',
    'parse_engine_cells', 'check_ranges', 'MIN_IMAGE_SIZE', 'ARCH_LR_SCHEDULES', 'parse_consistency_epochs',
]

DATASETS: Tuple[str, ...] = ('cifar10', 'cifar100', 'mnist', 'fashion-mnist', 'imagenet', 'imagefolder')
SPACES: Tuple[str, ...] = ('standard', 'extended')
STEMS: Tuple[str, ...] = ('cifar', 'imagenet')
ARCH_LR_SCHEDULES: Tuple[str, ...] = ('constant', 'cosine')


class ConfigError(ValueError):
    """Contradictory or invalid settings; the message names the flag(s) and what was expected."""


# The paper protocols (docs/method.md, *Protocols*) and the two baselines' own published protocols. A preset's
# method-specific settings (pc_k) apply only when the chosen method has them.
PRESETS: Dict[str, Dict[str, Any]] = {
    # EnTranNAS CIFAR-10 search: half/half split, 8 cells, 16 channels, 50 epochs, DARTS's batch and lr
    'cifar10': dict(dataset='cifar10', epochs=50, channels=16, layers=8, nodes=4, batch_size=64, lr=0.025,
                    min_lr=0.001, arch_lr=6e-4),
    'cifar100': dict(dataset='cifar100', epochs=50, channels=16, layers=8, nodes=4, batch_size=64, lr=0.025,
                     min_lr=0.001, arch_lr=6e-4),
    'fashion-mnist': dict(dataset='fashion-mnist', epochs=50, channels=16, layers=8, nodes=4, batch_size=64,
                          lr=0.025, min_lr=0.001, arch_lr=6e-4),
    # ImageNet direct search, PC-DARTS's protocol (train_search_imagenet.py): ImageNet stem, global batch 1024,
    # lr 0.5 warmed up over 5 epochs, arch lr 6e-3 with arch gradients clipped at 5, architecture updates from
    # epoch 35 of 50, K = 2 for pc-darts; the splits are EnTranNAS's 10% / 10% of train (PC-DARTS: 10% / 2.5%)
    'imagenet': dict(dataset='imagenet', stem='imagenet', image_size=224, epochs=50, channels=16, layers=8,
                     nodes=4, batch_size=1024, lr=0.5, min_lr=0.0, lr_warmup_epochs=5, arch_lr=6e-3,
                     arch_grad_clip=5.0, arch_warmup_epochs=35, pc_k=2),
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
    feature_sharing: Optional[bool] = None    # None -> the method's default (on for entrannas*)
    temperature: float = 1.0
    # method-specific settings: None (False) = not given; the method's class (search/methods.py) fills its own
    pc_k: Optional[int] = None                # pc-darts partial-channel K
    lam: Optional[float] = None               # entrannas-dst sparsity weight
    init_threshold: Optional[float] = None    # entrannas-dst initial t_j
    dst_regularizer: Optional[str] = None     # entrannas-dst form of the lam term
    threshold_decay: Optional[float] = None   # entrannas-dst Adam weight decay of the threshold logits
    unrolled: bool = False                    # darts second order
    # optimisation
    epochs: int = 50
    batch_size: int = 64                      # global: split across distributed ranks
    lr: float = 0.025
    min_lr: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    lr_warmup_epochs: int = 0                 # linear warm-up of the weight lr (PC-DARTS ImageNet: 5)
    arch_lr: float = 6e-4
    arch_betas: Tuple[float, float] = (0.5, 0.999)
    arch_weight_decay: float = 1e-3
    arch_grad_clip: float = 0.0               # architecture gradient norm clip, 0 = off (PC-DARTS ImageNet: 5)
    arch_lr_schedule: str = 'constant'        # 'constant' (the DARTS family) or 'cosine' (as the weights' lr, to 0)
    arch_warmup_epochs: int = 0
    # evaluation-protocol network used for params/MACs in metrics (None -> family default)
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
    # consistency measurement (docs/method.md, *Consistency*): after these epochs (1-based; None = off)
    consistency_epochs: Optional[List[int]] = None
    consistency_batches: int = 10             # N: training batches that re-estimate the batch-norm statistics
    consistency_steps: int = 100              # S: fine-tune (and from-scratch) training steps
    consistency_images: Optional[int] = None  # held-out images measured (None -> the whole held-out split)
    consistency_lr: Optional[float] = None    # fine-tune / from-scratch SGD learning rate (None -> --lr)
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

    def method_settings(self) -> Dict[str, Any]:
        """This run's method's own settings that are fields here (``search.methods.create_method`` takes them)."""
        return {name: getattr(self, name) for name in METHODS[self.method].settings() if hasattr(self, name)}


# settings that may change between a run and its --resume (everything else must match the checkpoint)
# (the consistency measurement runs on its own random streams, so it never changes the search's results)
RESUME_MUTABLE = frozenset({'output', 'resume', 'export_genotype', 'quiet', 'json', 'workers', 'data_dir', 'device',
                            'threads', 'allow_unsearched_genotype', 'consistency_epochs', 'consistency_batches',
                            'consistency_steps', 'consistency_images', 'consistency_lr'})

def resolve_config(explicit: Mapping[str, Any]) -> SearchConfig:
    """Defaults < preset < explicit flags, then method defaults and consistency checks."""
    explicit = dict(explicit)
    preset = explicit.get('preset')
    values: Dict[str, Any] = {}
    if preset is not None:
        if preset not in PRESETS:
            raise ConfigError(f'--preset: unknown preset {preset!r}; expected one of {sorted(PRESETS)}')
        method = explicit.get('method', PRESETS[preset].get('method', SearchConfig.method))
        values.update(_preset_values(PRESETS[preset], method))
        pm = PRESETS[preset].get('method')
        if pm is not None and explicit.get('method', pm) != pm:
            raise ConfigError(f"--preset {preset} is the {pm} protocol; it contradicts --method {explicit['method']}")
    values.update(explicit)
    try:
        cfg = SearchConfig(**values)
    except TypeError as e:
        raise ConfigError(str(e)) from None
    check_ranges(cfg, set(explicit))
    cfg.consistency_epochs = parse_consistency_epochs(cfg.consistency_epochs, cfg.epochs)
    _check(cfg)
    _resolve_method(cfg)
    if cfg.stem is None:
        cfg.stem = 'imagenet' if cfg.dataset in ('imagenet', 'imagefolder') else 'cifar'
    return cfg


def _preset_values(preset: Mapping[str, Any], method: str) -> Dict[str, Any]:
    """A preset's settings for ``method``: settings only other methods have (PC-DARTS's K) are left out."""
    if method not in METHODS:
        return dict(preset)  # an unknown method is reported by _check
    foreign = set(method_settings()) - set(METHODS[method].settings())
    return {k: v for k, v in preset.items() if k not in foreign}


def _resolve_method(cfg: SearchConfig) -> None:
    """Check the method-specific settings and fill their defaults, asking the method's class."""
    defaults = {f.name: f.default for f in dataclasses.fields(SearchConfig)}
    given = {name: getattr(cfg, name) for name in method_settings()
             if name in defaults and getattr(cfg, name) != defaults[name]}
    try:
        method = create_method(cfg.method, **given)
        method.check_supernet(cfg.channels)
        cfg.engine_cells = parse_engine_cells(cfg.engine_cells)
        method.engine_cells(cfg.engine_cells, cfg.layers)
        if cfg.engine_cells is None:
            cfg.engine_cells = method.default_engine_cells
        cfg.feature_sharing = method.feature_sharing(cfg.feature_sharing)
    except SettingError as e:
        raise ConfigError(f'--{e.setting.replace("_", "-")}: {e.reason}') from None
    for name, value in dataclasses.asdict(method).items():
        if name in defaults:
            setattr(cfg, name, value)


def _check(cfg: SearchConfig) -> None:
    """Reject unknown names and contradictory flags before anything is read or written."""
    if cfg.method not in METHODS:
        raise ConfigError(f'--method: unknown method {cfg.method!r}; expected one of {", ".join(METHODS)}')
    if cfg.space not in SPACES:
        raise ConfigError(f'--space: unknown space {cfg.space!r}; expected one of {", ".join(SPACES)}')
    if cfg.dataset not in DATASETS:
        raise ConfigError(f'--dataset: unknown dataset {cfg.dataset!r}; expected one of {", ".join(DATASETS)}')
    if cfg.stem is not None and cfg.stem not in STEMS:
        raise ConfigError(f'--stem: expected one of {", ".join(STEMS)}, got {cfg.stem!r}')
    if cfg.arch_lr_schedule not in ARCH_LR_SCHEDULES:
        raise ConfigError(f'--arch-lr-schedule: expected one of {", ".join(ARCH_LR_SCHEDULES)}, '
                          f'got {cfg.arch_lr_schedule!r}')
    if cfg.in_chans is not None and not cfg.synthetic:
        raise ConfigError('--in-chans applies only to --synthetic data (real data sets its own channels)')
    if cfg.num_classes is not None and not cfg.synthetic:
        raise ConfigError('--num-classes applies only to --synthetic data (real data sets its own classes)')
    if cfg.export_genotype is not None and not cfg.export_genotype.endswith('.json'):
        raise ConfigError(f'--export-genotype: expected a path ending in .json (genotypes/NAME.json), '
                          f'got {cfg.export_genotype!r}')
    if cfg.quiet and cfg.json:
        raise ConfigError('--quiet and --json contradict each other: --json already prints only JSON lines')


# Smallest image each stem's super-net can take: every stride-2 edge (factorized reduce) needs at least 2 pixels.
MIN_IMAGE_SIZE: Dict[str, int] = {'cifar': 3, 'imagenet': 17}
_DEVICE = re.compile(r'cpu|cuda(:\d{1,4})?')
_FLOATS = ('temperature', 'lam', 'init_threshold', 'train_portion', 'imagenet_portion', 'lr', 'min_lr', 'momentum',
           'weight_decay', 'grad_clip', 'arch_lr', 'arch_weight_decay', 'threshold_decay', 'arch_grad_clip',
           'consistency_lr')
_POSITIVE_INTS = ('epochs', 'batch_size', 'channels', 'nodes', 'stem_multiplier', 'layers', 'subset', 'image_size',
                  'in_chans', 'num_classes', 'pc_k', 'eval_channels', 'eval_layers', 'threads', 'consistency_batches',
                  'consistency_steps', 'consistency_images')


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
    for name in ('arch_warmup_epochs', 'lr_warmup_epochs'):
        _in(cfg, name, lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, 'an integer >= 0')
    for name in ('lr', 'arch_lr', 'temperature', 'consistency_lr'):
        _in(cfg, name, lambda v: v > 0, 'a number > 0')
    for name in ('min_lr', 'weight_decay', 'arch_weight_decay', 'grad_clip', 'arch_grad_clip'):
        _in(cfg, name, lambda v: v >= 0, 'a number >= 0 (0 = off)' if 'clip' in name else 'a number >= 0')
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


def parse_consistency_epochs(value: Union[str, Sequence[int], None], epochs: int) -> Optional[List[int]]:
    """The epochs after which the search measures its consistency (docs/method.md, *Consistency*), sorted.

    ``value``: None, '' or 'off' (no measurement); or comma-separated 1-based epochs and/or 'end' (the last
    epoch), such as '10,25,end'; or a list of epochs (as config.json holds them).
    """
    if value is None:
        return None
    flag = '--consistency-epochs'
    items: List[Any]
    if isinstance(value, str):
        if value.strip().lower() in ('', 'off'):
            return None
        items = [v.strip().lower() for v in value.split(',')]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise ConfigError(f"{flag}: expected comma-separated epochs or 'end', got {value!r}")
    out = set()
    for item in items:
        if item == 'end':
            out.add(epochs)
            continue
        if isinstance(item, int) and not isinstance(item, bool):
            e: Optional[int] = item
        else:
            e = int(item) if isinstance(item, str) and item.isdigit() else None
        if e is None or not 1 <= e <= epochs:
            raise ConfigError(f"{flag}: expected comma-separated epochs in 1..{epochs} (--epochs) or 'end', such "
                              f"as 10,25,end; got {value!r}")
        out.add(e)
    if not out:
        raise ConfigError(f"{flag}: no epoch given (use 'end' for the last one)")
    return sorted(out)
