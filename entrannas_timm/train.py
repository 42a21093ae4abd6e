"""``entrannas train`` (also ``python -m entrannas_timm.train``): train a zoo model or any genotype from scratch.

The evaluation protocols of the papers are presets (docs/method.md, "Protocols"); every value is a flag that
overrides them. Built on timm's parts: ``create_optimizer_v2``, ``create_scheduler_v2``, its label-smoothing
loss, ``ModelEmaV3``, ``timm.utils`` (accuracy, AverageMeter, gradient clipping, distributed helpers) and, for
folder data, its dataset and transforms (:mod:`entrannas_timm.loader`).

A run directory (:mod:`entrannas_timm.checkpoint`) holds ``config.json``, ``metrics.jsonl``, best and last
weights as safetensors and a resume checkpoint. Every epoch reseeds from ``(seed, epoch)`` and the data order and
augmentation depend only on ``(seed, epoch, sample)``, so a run killed at any moment and resumed with
``--resume`` ends bit for bit where the uninterrupted run ends (on CPU), and ``torchrun`` over W processes
trains on the same global batches as one process.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import inspect
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import torch
import torch.nn as nn

from .checkpoint import (
    CHECKPOINT,
    CONFIG,
    METRICS,
    WEIGHTS,
    inference_state,
    load_checkpoint,
    non_finite,
    save_checkpoint,
    save_weights,
)
from .data import DataError
from .errors import CLIError
from .files import write_atomic
from .genotype import Genotype, GenotypeError
from .loader import (
    DATASETS,
    Augment,
    ImageData,
    default_workers,
    load_data,
    split_micro,
    steps_per_epoch,
    train_batches,
)
from .models import FAMILIES, GENERIC_MODELS, MODEL_GENOTYPES
from .profile import model_cost, peak_memory_mb
from .validate import evaluate

__all__ = ['PRESETS', 'DATASET_PRESET', 'TrainConfig', 'TrainResult', 'resolve_config', 'build_parser', 'run',
           'main', 'add_cli', 'NonFiniteError']

SCHEDULES = ('cosine', 'step', 'linear')

# The evaluation protocols (docs/method.md, "Protocols"); explicit flags override every value.
PRESETS: Dict[str, Dict[str, Any]] = {
    # DARTS CIFAR-10 (Liu et al. 2019, and its train.py): 20 cells, 36 channels
    'cifar': dict(dataset='cifar10', channels=36, layers=20, epochs=600, batch_size=96, lr=0.025, min_lr=0.,
                  sched='cosine', momentum=0.9, weight_decay=3e-4, grad_clip=5., label_smoothing=0., aux_weight=0.4,
                  drop_path=0.2, cutout=16, warmup_epochs=0),
    # DARTS ImageNet mobile setting (its train_imagenet.py; 250 epochs as in the paper): 14 cells, 48 channels
    'imagenet': dict(dataset='imagenet', channels=48, layers=14, epochs=250, batch_size=128, lr=0.1, min_lr=0.,
                     sched='step', decay_rate=0.97, momentum=0.9, weight_decay=3e-5, grad_clip=5.,
                     label_smoothing=0.1, aux_weight=0.4, drop_path=0., cutout=0, warmup_epochs=0),
    # PC-DARTS ImageNet (its train_imagenet.py): batch 1024, lr 0.5, 5 warm-up epochs, linear decay
    'imagenet-pc-darts': dict(dataset='imagenet', channels=48, layers=14, epochs=250, batch_size=1024, lr=0.5,
                              min_lr=0., sched='linear', momentum=0.9, weight_decay=3e-5, grad_clip=5.,
                              label_smoothing=0.1, aux_weight=0.4, drop_path=0., cutout=0, warmup_epochs=5),
    # our CPU-scale protocol for the offline data: the DARTS CIFAR recipe, scaled (docs/method.md)
    'fashion-mnist': dict(dataset='fashion-mnist', channels=16, layers=8, epochs=10, batch_size=96, lr=0.05,
                          min_lr=0., sched='cosine', momentum=0.9, weight_decay=3e-4, grad_clip=5.,
                          label_smoothing=0., aux_weight=0.4, drop_path=0.1, cutout=8, warmup_epochs=0),
}
DATASET_PRESET = {'cifar10': 'cifar', 'cifar100': 'cifar', 'imagenet': 'imagenet', 'imagefolder': 'imagenet',
                  'mnist': 'fashion-mnist', 'fashion-mnist': 'fashion-mnist'}
"""The preset a data set trains with when ``--preset`` is not given."""

RESUME_MUTABLE = frozenset({'output', 'resume', 'workers', 'data_dir', 'device', 'threads', 'quiet', 'json'})
"""Settings that may differ between a run and its ``--resume`` (nothing else may)."""


class NonFiniteError(CLIError):
    """The loss or a weight became NaN or infinite; nothing of that epoch was written."""

    def __init__(self, message: str):
        super().__init__(message, exit_code=1)


@dataclass
class TrainConfig:
    """Every setting of a training run (``config.json``'s ``settings``)."""
    model: Optional[str] = None               # registered name; None -> the family's generic cellnet_* entrypoint
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
def _check(cfg: TrainConfig) -> None:
    """Reject unknown names and impossible values before anything is read or written."""
    if cfg.preset is not None and cfg.preset not in PRESETS:
        raise CLIError(f'--preset: unknown preset {cfg.preset!r}; expected one of {", ".join(PRESETS)}')
    if cfg.dataset not in DATASETS:
        raise CLIError(f'--dataset: unknown data set {cfg.dataset!r}; expected one of {", ".join(DATASETS)}')
    if cfg.model is not None and cfg.model not in MODEL_GENOTYPES:
        raise CLIError(f'MODEL: {cfg.model!r} is not a registered model of the zoo; registered: '
                       f'{", ".join(MODEL_GENOTYPES)} (or give only --genotype)')
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
    for name in ('workers', 'warmup_epochs', 'cutout'):
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
    _check(cfg)
    return cfg


def _resume_config(explicit: Mapping[str, Any], out: Path) -> TrainConfig:
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
    _check(cfg)
    return cfg


# ---- model --------------------------------------------------------------------------------------------------
def _genotype(spec: str) -> Genotype:
    path = Path(spec).expanduser()
    if path.is_dir():
        path = path / 'genotype.json'
        if not path.is_file():
            raise CLIError(f'--genotype: {spec} is a directory without genotype.json (expected a search run '
                           'directory, a genotype file or a bundled name)')
        return Genotype.load(path)
    return Genotype.coerce(spec)


def model_spec(cfg: TrainConfig, data: ImageData, genotype: Optional[Genotype] = None) -> Dict[str, Any]:
    """The entrypoint to build, the one to export under, and the arguments of the inference network."""
    family = (MODEL_GENOTYPES[cfg.model][1] if cfg.model else
              'imagenet' if cfg.dataset in ('imagenet', 'imagefolder') else 'cifar')
    generic = next(name for name, fam in GENERIC_MODELS.items() if fam == family)
    name = cfg.model or generic
    own = Genotype.coerce(MODEL_GENOTYPES[name][0])
    genotype = genotype or (_genotype(cfg.genotype) if cfg.genotype else own)
    same = (genotype.normal, genotype.reduce, genotype.space, genotype.feature_sharing) == \
        (own.normal, own.reduce, own.space, own.feature_sharing)
    size = FAMILIES[family]
    args = dict(genotype=genotype.to_dict(), channels=cfg.channels or size['channels'],
                layers=cfg.layers or size['layers'], in_chans=data.in_chans, num_classes=data.num_classes)
    return dict(name=name, architecture=name if same else generic, family=family, args=args)


# ---- the run ------------------------------------------------------------------------------------------------
@dataclass
class TrainResult:
    output: Path
    records: List[Dict[str, Any]]
    best: Optional[Dict[str, Any]]
    rank: int = 0


class _Printer:
    """Progress bars and one line per epoch, JSON lines only (``--json``), or nothing (``--quiet``, other ranks)."""

    def __init__(self, cfg: TrainConfig, is_main: bool):
        self.mode = 'off' if not is_main or cfg.quiet else ('json' if cfg.json else 'text')

    def bar(self, total: int, desc: str):
        from tqdm import tqdm
        return tqdm(total=total, desc=desc, disable=self.mode != 'text', leave=False, dynamic_ncols=True,
                    unit='step', file=sys.stderr)

    def text(self, line: str) -> None:
        if self.mode == 'text':
            from tqdm import tqdm
            tqdm.write(line, file=sys.stderr)

    def json(self, obj: Dict[str, Any]) -> None:
        if self.mode == 'json':
            print(json.dumps(obj), flush=True)


def _seed_everything(seed: int) -> None:
    from timm.utils import random_seed
    random_seed(seed % 2 ** 32)  # torch, numpy and random


def _output_dir(cfg: TrainConfig) -> Path:
    if cfg.output:
        return Path(cfg.output).expanduser()
    what = cfg.model or (Path(cfg.genotype).stem if cfg.genotype else 'cellnet')
    return Path('runs') / f'train-{what}-{cfg.dataset}-s{cfg.seed}'


def _check_output(out: Path) -> None:
    existing = [n for n in (CONFIG, METRICS, CHECKPOINT, *WEIGHTS.values()) if (out / n).exists()]
    if existing:
        raise CLIError(f'--output: {out} already holds a run ({", ".join(existing)}); pass --resume to continue it '
                       'or choose another --output (nothing was overwritten)')
    if out.exists() and not out.is_dir():
        raise CLIError(f'--output: {out} exists and is not a directory')


def _scheduler(optimizer, cfg: TrainConfig):
    from timm.scheduler import create_scheduler_v2
    kwargs: Dict[str, Any] = dict(num_epochs=cfg.epochs, min_lr=cfg.min_lr, warmup_epochs=cfg.warmup_epochs,
                                  warmup_lr=cfg.lr / cfg.warmup_epochs if cfg.warmup_epochs else cfg.lr)
    if cfg.sched == 'step':
        kwargs.update(sched='step', decay_epochs=1, decay_rate=cfg.decay_rate)
    elif cfg.sched == 'linear':
        kwargs.update(sched='poly', decay_rate=1.0)  # timm's polynomial decay with power 1
    else:
        kwargs.update(sched='cosine')
    return create_scheduler_v2(optimizer, **kwargs)[0]


def _criterion(cfg: TrainConfig) -> nn.Module:
    from timm.loss import LabelSmoothingCrossEntropy
    return LabelSmoothingCrossEntropy(cfg.label_smoothing) if cfg.label_smoothing > 0 else nn.CrossEntropyLoss()


def _summary(rec: Dict[str, Any], eta_s: float) -> str:
    ema = f'  ema {rec["ema_top1"]:.2f}%' if 'ema_top1' in rec else ''
    return (f'epoch {rec["epoch"]}/{rec["epochs"]}  lr {rec["lr"]:.4g}  train {rec["train_loss"]:.3f} '
            f'{rec["train_top1"]:.2f}%  val {rec["val_loss"]:.3f} {rec["val_top1"]:.2f}% (top-5 '
            f'{rec["val_top5"]:.2f}%){ema}{"  best" if rec["best"] else ""}  {rec["images_per_s"]:.0f} img/s  '
            f'{rec["epoch_time_s"]:.1f}s  ETA {datetime.timedelta(seconds=int(eta_s))}')


class _Trainer:
    """The model, its optimizer, schedule, loss and EMA, and one epoch of training."""

    def __init__(self, cfg: TrainConfig, spec: Dict[str, Any], device: torch.device, dist: Dict[str, Any]):
        import timm
        from timm.optim import create_optimizer_v2
        from timm.utils import ModelEmaV3
        self.cfg, self.device, self.dist = cfg, device, dist
        try:
            self.model = timm.create_model(spec['name'], auxiliary=cfg.aux_weight > 0, drop_path_rate=cfg.drop_path,
                                           **spec['args']).to(device)
        except (ValueError, GenotypeError) as e:
            raise CLIError(f'model: {e}') from None
        if cfg.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        # DARTS decays every weight (no bias / norm exemption)
        self.optimizer = create_optimizer_v2(self.model, opt='momentum', lr=cfg.lr, momentum=cfg.momentum,
                                             weight_decay=cfg.weight_decay, filter_bias_and_bn=False)
        self.scheduler = _scheduler(self.optimizer, cfg)
        self.criterion = _criterion(cfg)
        self.ema = ModelEmaV3(self.model, decay=cfg.ema_decay) if cfg.ema else None
        self.net: nn.Module = self.model
        if dist['distributed']:
            # each process keeps its own BN running statistics; they are averaged at every epoch end
            ddp = nn.parallel.DistributedDataParallel
            no_sync = ('forward_sync_buffers' if 'forward_sync_buffers' in inspect.signature(ddp).parameters
                       else 'broadcast_buffers')  # the newer name, where torch has it
            self.net = ddp(self.model, device_ids=[device.index] if device.type == 'cuda' else None,
                           **{no_sync: False})
        self.norms = [m for m in self.model.modules()
                      if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.momentum is not None]
        if cfg.compile:
            self.net = torch.compile(self.net)
        self.autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if cfg.amp else contextlib.nullcontext())
        self.step = 0

    def state_dict(self) -> Dict[str, Any]:
        state = dict(model=self.model.state_dict(), optimizer=self.optimizer.state_dict(),
                     scheduler=self.scheduler.state_dict(), step=self.step)
        if self.ema is not None:
            state['ema'] = self.ema.module.state_dict()
        return state

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.model.load_state_dict(state['model'])
        self.optimizer.load_state_dict(state['optimizer'])
        self.scheduler.load_state_dict(state['scheduler'])
        self.step = int(state['step'])
        if self.ema is not None:
            self.ema.module.load_state_dict(state['ema'])

    @contextlib.contextmanager
    def _norm_momentum(self, a: int, parts: int):
        """BN running statistics move once per step by ``momentum`` x the mean of the ``parts`` micro-batches'
        statistics, as over ranks: micro-step ``a`` (0-based) uses ``m / A / (1 - (A - 1 - a) m / A)``."""
        if parts == 1:
            yield
            return
        saved = [m.momentum for m in self.norms]
        for m in self.norms:
            m.momentum = m.momentum / parts / (1 - (parts - 1 - a) * m.momentum / parts)
            if a > 0:
                m.num_batches_tracked -= 1  # one step counts once
        try:
            yield
        finally:
            for m, mom in zip(self.norms, saved):
                m.momentum = mom

    def train_epoch(self, batches, steps: int, bar, single_process: bool) -> torch.Tensor:
        """Sums over this rank's images: [loss, aux loss, top-1 correct, top-5 correct, images]. Kept on the device
        (no host sync per step, unlike timm's AverageMeter); read every 10 steps for the progress bar."""
        from timm.utils import accuracy, dispatch_clip_grad
        cfg, parts = self.cfg, self.cfg.grad_accum
        sums = torch.zeros(4, dtype=torch.float64, device=self.device)
        seen = 0
        self.net.train()
        for k, (x, y) in enumerate(batches):
            if cfg.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            self.optimizer.zero_grad(set_to_none=True)
            for a, (xm, ym) in enumerate(zip(split_micro(x, parts), split_micro(y, parts))):
                sync = (self.net.no_sync() if self.dist['distributed'] and a < parts - 1 and
                        hasattr(self.net, 'no_sync') else contextlib.nullcontext())
                with sync, self._norm_momentum(a, parts):
                    with self.autocast:
                        out = self.net(xm)
                        logits, aux = out if isinstance(out, tuple) else (out, None)
                        loss = self.criterion(logits, ym)
                        aux_loss = self.criterion(aux, ym) if aux is not None else torch.zeros((), device=x.device)
                        total = loss + cfg.aux_weight * aux_loss
                    (total / parts).backward()
                top1, top5 = accuracy(logits.detach().float(), ym, topk=(1, min(5, logits.shape[1])))
                n = ym.numel()
                seen += n
                sums += torch.stack([loss.detach().double() * n, aux_loss.detach().double() * n,
                                     top1.double() * n / 100, top5.double() * n / 100])
            if cfg.grad_clip > 0:
                dispatch_clip_grad(self.model.parameters(), cfg.grad_clip, mode='norm')
            self.optimizer.step()
            self.step += 1
            if self.ema is not None:
                self.ema.update(self.model, step=self.step)
            bar.update(1)
            if k % 10 == 0 or k == steps - 1:
                avg = sums[0].item() / seen
                if single_process and not math.isfinite(avg):
                    break  # stopped here; the epoch-end check reports it
                bar.set_postfix(loss=f'{avg:.3f}', top1=f'{100 * sums[2].item() / seen:.1f}%')
        return torch.cat([sums, sums.new_full((1,), seen)])


def _init_distributed(cfg: TrainConfig) -> Dict[str, Any]:
    """timm's set-up from torchrun's (or SLURM's) environment: one process per device, gloo on CPU."""
    from types import SimpleNamespace

    from timm.utils import init_distributed_device
    device = cfg.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    if device.startswith('cuda') and not torch.cuda.is_available():
        raise CLIError(f'--device {device}: CUDA is not available on this machine')
    args = SimpleNamespace(device=device)
    init_distributed_device(args)
    return dict(device=args.device, global_rank=args.rank, local_rank=args.local_rank, world_size=args.world_size,
                distributed=args.distributed)


def _all_reduce(t: torch.Tensor, dist: Dict[str, Any]) -> torch.Tensor:
    if dist['distributed']:
        torch.distributed.all_reduce(t)
    return t


def _versions() -> Dict[str, str]:
    import timm

    from . import __version__
    return {'entrannas_timm': __version__, 'timm': timm.__version__, 'torch': torch.__version__}


def run(cfg: TrainConfig, explicit: Optional[Mapping[str, Any]] = None) -> TrainResult:
    """Train with ``cfg`` (``--resume``: with the settings saved in the run, checked against ``explicit``)."""
    out = _output_dir(cfg)
    ckpt = None
    if cfg.resume:
        cfg = _resume_config(explicit if explicit is not None else {}, out)
        ckpt = load_checkpoint(out / CHECKPOINT)
    else:
        _check_output(out)
    genotype = _genotype(cfg.genotype) if cfg.genotype else None  # a bad genotype fails before any work
    dist = _init_distributed(cfg)
    try:
        return _run(cfg, out, ckpt, dist, genotype)
    finally:
        if dist['distributed'] and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def _run(cfg: TrainConfig, out: Path, ckpt: Optional[Dict[str, Any]], dist: Dict[str, Any],
         genotype: Optional[Genotype]) -> TrainResult:
    from timm.utils import distribute_bn
    device, rank, world = torch.device(dist['device']), dist['global_rank'], dist['world_size']
    is_main = rank == 0
    printer = _Printer(cfg, is_main)
    if cfg.batch_size % (world * cfg.grad_accum):
        raise CLIError(f'--batch-size {cfg.batch_size} is global and must divide evenly over {world} process(es) x '
                       f'--grad-accum {cfg.grad_accum}')
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    if device.type == 'cuda':
        torch.backends.cudnn.benchmark = True
    _seed_everything(cfg.seed)
    try:
        train = load_data(cfg.dataset, cfg.data_dir, 'train', cfg.subset, cfg.image_size, cfg.seed)
        val = load_data(cfg.dataset, cfg.data_dir, 'test' if train.small else 'val', cfg.val_subset,
                        train.image_size, cfg.seed)
    except DataError as e:
        raise CLIError(str(e)) from None
    steps = steps_per_epoch(len(train), cfg.batch_size)
    if steps < 1:
        raise CLIError(f'--batch-size {cfg.batch_size} is larger than the {len(train)} training images')
    workers = default_workers(train) if cfg.workers is None else cfg.workers
    spec = model_spec(cfg, train, genotype)
    trainer = _Trainer(cfg, spec, device, dist)
    aug = Augment(cutout=cfg.cutout)

    start, records, best, elapsed = 0, [], None, 0.
    if ckpt is not None:
        try:
            trainer.load_state_dict(ckpt)
        except (RuntimeError, KeyError, ValueError) as e:
            raise CLIError(f'--resume: {out / CHECKPOINT} does not fit this model ({e})') from None
        start = int(ckpt['epoch'])
        records = [json.loads(line) for line in ckpt['metrics']]
        best = json.loads(ckpt['best']) if ckpt.get('best') else None
        elapsed = float(ckpt['elapsed_s'])
    if is_main:
        probe = trainer.model.training
        cost = model_cost(_inference_copy(trainer.model), train.data_config()['input_size'])
        trainer.model.train(probe)
        if ckpt is None:  # a resumed run keeps the config.json its settings were just checked against
            config = dict(settings=cfg.to_dict(), model=dict(spec, **cost), versions=_versions(), world_size=world,
                          data=dict(dataset=cfg.dataset, train_images=len(train), val_split=val.split,
                                    val_images=len(val), steps_per_epoch=steps, **train.data_config()))
            write_atomic(out / CONFIG, json.dumps(config, indent=2) + '\n')
        else:  # records written after the checkpoint by the interrupted run are dropped
            write_atomic(out / METRICS, ''.join(json.dumps(r) + '\n' for r in records))
        printer.text(f'{spec["name"]}: {cost["params"] / 1e6:.3f}M params, {cost["macs"] / 1e6:.1f}M MACs at '
                     f'{"x".join(map(str, train.data_config()["input_size"]))}; {len(train)} training images, '
                     f'{steps} steps per epoch, validation on {len(val)} {val.split} images -> {out}')

    session_t0 = time.perf_counter()
    for epoch in range(start, cfg.epochs):
        t0, cpu0 = time.perf_counter(), time.process_time()
        _seed_everything(cfg.seed * 100003 + epoch)
        trainer.scheduler.step(epoch)
        drop_prob = cfg.drop_path * epoch / cfg.epochs
        trainer.model.set_drop_path(drop_prob)
        lr = trainer.optimizer.param_groups[0]['lr']
        if device.type == 'cuda':
            torch.cuda.reset_peak_memory_stats(device)
        bar = printer.bar(steps, f'epoch {epoch + 1}/{cfg.epochs}')
        batches = train_batches(train, cfg.batch_size, epoch, cfg.seed, aug, device, rank, world, workers)
        sums = _all_reduce(trainer.train_epoch(batches, steps, bar, not dist['distributed']), dist)
        bar.close()
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
        train_s = time.perf_counter() - t0
        if dist['distributed']:
            distribute_bn(trainer.model, world, reduce=True)
            if trainer.ema is not None:
                distribute_bn(trainer.ema.module, world, reduce=True)
        rec: Dict[str, Any] = dict(epoch=epoch + 1, epochs=cfg.epochs, lr=lr, drop_path=drop_prob,
                                   train_loss=float(sums[0] / sums[4]), train_top1=float(100 * sums[2] / sums[4]),
                                   train_top5=float(100 * sums[3] / sums[4]))
        if cfg.aux_weight > 0:
            rec['train_aux_loss'] = float(sums[1] / sums[4])
        bad = non_finite(rec, 'metrics') + non_finite(trainer.state_dict(), 'state')
        if bad:
            raise NonFiniteError(
                f'non-finite values in epoch {epoch + 1} ({", ".join(bad[:3])}{", ..." if len(bad) > 3 else ""}); '
                f'stopped without writing it. The last good checkpoint ({out / CHECKPOINT}, epoch {epoch}) is kept. '
                'Try a lower --lr, a --grad-clip, or without --amp.')
        v = evaluate(trainer.model, val, 2 * cfg.batch_size // world, device, cfg.amp, cfg.channels_last, rank,
                     world, workers)
        rec.update(val_loss=v['loss'], val_top1=v['top1'], val_top5=v['top5'])
        if trainer.ema is not None:
            e = evaluate(trainer.ema.module, val, 2 * cfg.batch_size // world, device, cfg.amp, cfg.channels_last,
                         rank, world, workers)
            rec.update(ema_loss=e['loss'], ema_top1=e['top1'], ema_top5=e['top5'])
        epoch_s = time.perf_counter() - t0
        elapsed += epoch_s
        rec.update(images_per_s=float(sums[4]) / train_s, train_time_s=train_s, epoch_time_s=epoch_s,
                   epoch_cpu_s=time.process_time() - cpu0, peak_mem_mb=peak_memory_mb(device),
                   best=best is None or rec['val_top1'] > best['val_top1'])
        bad = non_finite(rec, 'metrics')
        if bad:
            raise NonFiniteError(f'non-finite validation metrics in epoch {epoch + 1} ({", ".join(bad)}); stopped '
                                 f'without writing it. The last good checkpoint ({out / CHECKPOINT}, epoch {epoch}) '
                                 'is kept.')
        if rec['best']:
            best = rec
        best_ema = max((r for r in records + [rec] if 'ema_top1' in r), key=lambda r: r['ema_top1'], default=None)
        records.append(rec)
        if is_main:
            _write_epoch(out, trainer, rec, records, best, best_ema, cfg, elapsed)
        eta = (time.perf_counter() - session_t0) / (epoch + 1 - start) * (cfg.epochs - epoch - 1)
        printer.text(_summary(rec, eta))
        printer.json(rec)
    if best is not None:
        printer.text(f'best: epoch {best["epoch"]}, {best["val_top1"]:.2f}% top-1 on {len(val)} {val.split} images; '
                     f'weights in {out / WEIGHTS[("best", False)]}')
    printer.json({'event': 'done', 'output': str(out), 'best_epoch': best['epoch'] if best else None,
                  'best_top1': best['val_top1'] if best else None})
    return TrainResult(out, records, best, rank)


def _inference_copy(model: nn.Module) -> nn.Module:
    """The network as users get it (no auxiliary head), for counting params and MACs."""
    import copy
    m = copy.deepcopy(model).eval()
    m.aux_head = None
    return m


def _write_epoch(out: Path, trainer: _Trainer, rec: Dict[str, Any], records: List[Dict[str, Any]],
                 best: Optional[Dict[str, Any]], best_ema: Optional[Dict[str, Any]], cfg: TrainConfig,
                 elapsed: float) -> None:
    """Weights first, then the checkpoint, then the metrics: a crash in between leaves a consistent earlier run."""
    meta = {'epoch': str(rec['epoch']), 'val_top1': f'{rec["val_top1"]:.4f}'}
    weights = inference_state(trainer.model)
    save_weights(out / WEIGHTS[('last', False)], weights, meta)
    if rec['best']:
        save_weights(out / WEIGHTS[('best', False)], weights, meta)
    if trainer.ema is not None:
        ema_weights = inference_state(trainer.ema.module)
        ema_meta = {'epoch': str(rec['epoch']), 'val_top1': f'{rec["ema_top1"]:.4f}'}
        save_weights(out / WEIGHTS[('last', True)], ema_weights, ema_meta)
        if best_ema is rec:
            save_weights(out / WEIGHTS[('best', True)], ema_weights, ema_meta)
    save_checkpoint(out / CHECKPOINT, dict(
        trainer.state_dict(), epoch=rec['epoch'], settings=json.dumps(cfg.to_dict()),
        metrics=[json.dumps(r) for r in records], best=json.dumps(best) if best else '', elapsed_s=elapsed))
    write_atomic(out / METRICS, ''.join(json.dumps(r) + '\n' for r in records))


# ---- command line ---------------------------------------------------------------------------------------------
_D = TrainConfig()


def _preset_table() -> str:
    keys = ('dataset', 'channels', 'layers', 'epochs', 'batch_size', 'lr', 'sched', 'warmup_epochs', 'weight_decay',
            'label_smoothing', 'aux_weight', 'drop_path', 'cutout')
    return '\n'.join(f'  {name:18s} ' + ' '.join(f'{k}={p[k]}' for k in keys if k in p) for name, p in PRESETS.items())


_EPILOG = f"""\
presets (docs/method.md, "Protocols"; explicit flags override every value; without --preset the data set's
preset applies: cifar10/cifar100 -> cifar, imagenet/imagefolder -> imagenet, mnist/fashion-mnist -> fashion-mnist):
{_preset_table()}

A run directory holds config.json, metrics.jsonl, best.safetensors, last.safetensors and checkpoint.pt.

examples:
  entrannas train --genotype runs/search/genotype.json --dataset fashion-mnist --output runs/train-fm
  entrannas train darts_v2_cifar10 --preset cifar --data-dir ~/data --output runs/darts-v2-c10
  torchrun --nproc_per_node 8 -m entrannas_timm.train pc_darts_imagenet --preset imagenet-pc-darts \\
      --data-dir /data/imagenet --output runs/pcdarts-in1k
  entrannas train --resume --output runs/train-fm          # continue a stopped run exactly
"""


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Every flag defaults to 'not given', so that presets fill what the user left out."""
    p.add_argument('model', nargs='?', metavar='MODEL', help='registered model of the zoo (entrannas models), e.g. '
                   'darts_v2_cifar10; default: the family network of the data (cellnet_cifar, or cellnet_imagenet '
                   'for folder data) built from --genotype')
    g = p.add_argument_group('what to train')
    g.add_argument('--genotype', help="genotype: bundled name, .json file, or a search run directory (its "
                   "genotype.json); default: MODEL's own")
    g.add_argument('--preset', choices=list(PRESETS), help="evaluation protocol (listed below); default: the data "
                   "set's")
    g.add_argument('--channels', type=int, help="initial channels (default: the preset's, else the family's: "
                   "36 CIFAR, 48 ImageNet)")
    g.add_argument('--layers', type=int, help="cells; reductions at 1/3 and 2/3 depth (default: the preset's, else "
                   "the family's: 20 CIFAR, 14 ImageNet)")
    g = p.add_argument_group('data')
    g.add_argument('--dataset', choices=DATASETS, help=f'data set (default {_D.dataset}); imagefolder = any '
                   'ImageFolder root (train/ and val/ sub-folders) given by --data-dir')
    g.add_argument('--data-dir', help=f'where the data set lives (default {_D.data_dir}); Fashion-MNIST is also '
                   'found in /usr/share/datasets/fashion-mnist')
    g.add_argument('--subset', type=int, metavar='N', help='train on the first N training images only (a random N '
                   'for folders)')
    g.add_argument('--val-subset', type=int, metavar='N', help='validate on the first N test images only (a random N '
                   'of val/ for folders; default: all)')
    g.add_argument('--image-size', type=int, help='input size (default: native; 224 for folders)')
    g = p.add_argument_group('protocol (the preset fills these)')
    g.add_argument('--epochs', type=int, help='training epochs')
    g.add_argument('--batch-size', type=int, help='global batch size, split over torchrun processes and --grad-accum')
    g.add_argument('--lr', type=float, help='SGD learning rate (momentum, DARTS: weight decay on every weight)')
    g.add_argument('--min-lr', type=float, help='final learning rate of the cosine / linear schedule')
    g.add_argument('--sched', choices=SCHEDULES, help='learning-rate schedule per epoch: cosine (to --min-lr), step '
                   '(x --decay-rate every epoch), linear (to --min-lr)')
    g.add_argument('--decay-rate', type=float, help=f'--sched step: factor per epoch (default {_D.decay_rate})')
    g.add_argument('--warmup-epochs', type=int, help='linear warm-up epochs, starting at lr / warmup-epochs')
    g.add_argument('--momentum', type=float, help=f'SGD momentum (default {_D.momentum})')
    g.add_argument('--weight-decay', type=float, help='weight decay')
    g.add_argument('--grad-clip', type=float, help='gradient norm clip (0 = off)')
    g.add_argument('--label-smoothing', type=float,
                   help='label smoothing of the loss (timm LabelSmoothingCrossEntropy)')
    g.add_argument('--aux-weight', type=float, help='weight of the auxiliary head loss (0 = no auxiliary head); the '
                   'head is for training only and never exported')
    g.add_argument('--drop-path', type=float, help='drop-path probability reached at the last epoch, ramped '
                   'linearly from 0 (DARTS)')
    g.add_argument('--cutout', type=int, metavar='PIXELS', help='Cutout square side (DARTS form: centre anywhere, '
                   'clipped at the borders; 0 = off)')
    g.add_argument('--ema', action='store_true', help='also keep an exponential moving average of the weights '
                   '(timm ModelEmaV3), validated every epoch and saved as *_ema.safetensors')
    g.add_argument('--ema-decay', type=float, help=f'EMA decay per step (default {_D.ema_decay})')
    g.add_argument('--grad-accum', type=int, help='split every batch into N accumulation steps (same result as N '
                   'processes; default 1)')
    g = p.add_argument_group('execution')
    g.add_argument('--device', help='cpu, cuda or cuda:N (default cuda if available; torchrun: one GPU per process)')
    g.add_argument('--threads', type=int, help='CPU threads per process (default: torch default)')
    g.add_argument('--workers', type=int, help='data loader processes (default: 0 for the small in-memory data sets, '
                   'whose batches are augmented on the device; the CPU count, at most 8, for folders)')
    g.add_argument('--amp', action='store_true', help='bfloat16 autocast (CUDA, or CPUs with bf16 support)')
    g.add_argument('--channels-last', action='store_true', help='channels_last memory format')
    g.add_argument('--compile', action='store_true', help='torch.compile the training network (takes minutes on CPU)')
    g.add_argument('--seed', type=int, help=f'seed of weights, data order and augmentation (default {_D.seed})')
    g = p.add_argument_group('output')
    g.add_argument('--output', help='run directory (default runs/train-MODEL-DATASET-sSEED)')
    g.add_argument('--resume', action='store_true', help="continue the run in --output from its checkpoint.pt, "
                   "with its saved settings (flags may be left out; changed ones are refused)")
    g.add_argument('--quiet', action='store_true', help='print nothing but errors')
    g.add_argument('--json', action='store_true', help='print only JSON lines: one per epoch, then a "done" line')
    p.set_defaults(func=_cli_train)
    return p


def _explicit(args: argparse.Namespace) -> Dict[str, Any]:
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    return {k: v for k, v in vars(args).items() if k in names and v is not None and not (k == 'model' and v is None)}


def _cli_train(args: argparse.Namespace) -> int:
    explicit = _explicit(args)
    if explicit.get('resume'):
        cfg = TrainConfig(output=explicit.get('output'), resume=True)
        if cfg.output is None:
            raise CLIError('--resume needs --output RUN_DIR (the run to continue)')
    else:
        cfg = resolve_config(explicit)
    try:
        run(cfg, explicit)
    except (GenotypeError, DataError) as e:
        raise CLIError(str(e)) from None
    return 0


def add_cli(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``entrannas train``."""
    p = subparsers.add_parser(
        'train', help='train a zoo model or any genotype (presets: the papers\' protocols)',
        description=__doc__.split('\n\n')[0].split(': ', 1)[1], epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter, argument_default=argparse.SUPPRESS)
    return add_arguments(p)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog='python -m entrannas_timm.train', epilog=_EPILOG,
                                description=__doc__.split('\n\n')[0].split(': ', 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                argument_default=argparse.SUPPRESS)
    return add_arguments(p)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m entrannas_timm.train``: the same command as ``entrannas train``, errors as one line."""
    args = build_parser().parse_args(argv)
    try:
        return _cli_train(args)
    except CLIError as e:
        if os.environ.get('ENTRANNAS_DEBUG'):
            raise
        print(f'entrannas train: error: {e}', file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print('interrupted; the last checkpoint (end of the last finished epoch) is kept; continue with --resume',
              file=sys.stderr)
        return 130


if __name__ == '__main__':
    sys.exit(main())
