"""Training a zoo model or any genotype from scratch: the run behind ``entrannas train``.

The evaluation protocols of the papers are presets (docs/method.md, "Protocols"); every value is a flag that
overrides them. Built on timm's parts: ``create_optimizer_v2``, ``create_scheduler_v2``, its label-smoothing
loss, ``ModelEmaV3``, ``timm.utils`` (accuracy, AverageMeter, gradient clipping, distributed helpers) and, for
folder data, its dataset and transforms (:mod:`entrannas_timm.data.loader`).

A run directory (:mod:`entrannas_timm.train.checkpoint`) holds ``config.json``, ``metrics.jsonl``, best and last
weights as safetensors and a resume checkpoint. Every epoch reseeds from ``(seed, epoch)`` and the data order and
augmentation depend only on ``(seed, epoch, sample)``, so a run killed at any moment and resumed with
``--resume`` ends bit for bit where the uninterrupted run ends (on CPU), and ``torchrun`` over W processes
trains on the same global batches as one process.
"""
from __future__ import annotations

import contextlib
import datetime
import inspect
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

import torch
import torch.nn as nn

from ..data.datasets import DataError
from ..data.loader import (
    Augment,
    ImageData,
    calibration_batches,
    default_workers,
    load_data,
    split_micro,
    steps_per_epoch,
    train_batches,
)
from ..models.baselines import BASELINE_MODELS
from ..models.genotype import Genotype, GenotypeError
from ..models.profile import model_cost, peak_memory_mb
from ..models.registry import GENERIC_MODELS, MODEL_GENOTYPES, network_size
from ..utils.console import Console
from ..utils.errors import CLIError
from ..utils.files import write_atomic
from ..utils.finite import non_finite
from .checkpoint import (
    CHECKPOINT,
    CONFIG,
    METRICS,
    WEIGHTS,
    inference_state,
    load_checkpoint,
    save_checkpoint,
    save_weights,
)
from .config import TrainConfig, resume_config
from .precise_bn import is_batch_norm, recalibrate_bn
from .validate import evaluate

__all__ = ['TrainResult', 'NonFiniteError', 'model_spec', 'run']


class NonFiniteError(CLIError):
    """The loss or a weight became NaN or infinite; nothing of that epoch was written."""

    def __init__(self, message: str):
        super().__init__(message, exit_code=1)


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
    if cfg.model in BASELINE_MODELS:
        args = dict(in_chans=data.in_chans, num_classes=data.num_classes, img_size=data.image_size)
        return dict(name=cfg.model, architecture=cfg.model, family=None, args=args)
    family = (MODEL_GENOTYPES[cfg.model][1] if cfg.model else
              'imagenet' if cfg.dataset in ('imagenet', 'imagefolder') else 'cifar')
    generic = next(name for name, fam in GENERIC_MODELS.items() if fam == family)
    name = cfg.model or generic
    own = Genotype.coerce(MODEL_GENOTYPES[name][0])
    genotype = genotype or (_genotype(cfg.genotype) if cfg.genotype else own)
    same = (genotype.normal, genotype.reduce, genotype.space, genotype.feature_sharing) == \
        (own.normal, own.reduce, own.space, own.feature_sharing)
    size = network_size(name)
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
            cells = {} if spec['family'] is None else dict(auxiliary=cfg.aux_weight > 0, drop_path_rate=cfg.drop_path)
            self.model = timm.create_model(spec['name'], **cells, **spec['args']).to(device)
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
        self.norms = [m for m in self.model.modules() if is_batch_norm(m) and m.momentum is not None]
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

    from ..version import __version__
    return {'entrannas_timm': __version__, 'timm': timm.__version__, 'torch': torch.__version__}


def run(cfg: TrainConfig, explicit: Optional[Mapping[str, Any]] = None) -> TrainResult:
    """Train with ``cfg`` (``--resume``: with the settings saved in the run, checked against ``explicit``)."""
    out = _output_dir(cfg)
    ckpt = None
    if cfg.resume:
        cfg = resume_config(explicit if explicit is not None else {}, out)
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
    printer = Console.for_command(cfg.quiet, cfg.json, is_main)
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
    aug = Augment(crop_padding=cfg.crop_padding, cutout=cfg.cutout)

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
        epoch_seed = cfg.seed * 100003 + epoch
        _seed_everything(epoch_seed)
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
        nets = [trainer.model] + ([trainer.ema.module] if trainer.ema is not None else [])
        if cfg.precise_bn:  # statistics of the network as inference runs it: clean images, no drop path
            for net in nets:
                net.set_drop_path(0.)
                # forwards of the training micro-batch size, so N processes or N accumulation steps agree
                batches = calibration_batches(train, cfg.batch_size // world, cfg.precise_bn,
                                              epoch_seed, device, rank, world, workers)
                recalibrate_bn(net, ((xm, y) for x, y in batches for xm in split_micro(x, cfg.grad_accum)))
            trainer.model.set_drop_path(drop_prob)
        if dist['distributed']:
            for net in nets:
                distribute_bn(net, world, reduce=True)
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
