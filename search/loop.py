"""The bilevel search loop: architecture step on a validation batch, then weight step on a training batch.

:class:`~search.searcher.Searcher` holds one search step (both optimisers, AMP, DDP) and is shared with
``search.bench``; :func:`run` drives the run in named steps: ``_set_up`` (device, data, super-net, resume),
then per epoch ``_train_epoch``, ``_record`` and ``_checkpoint``, then ``_finish`` (provenance, genotype).
The run directory's files are written and read through ``entrannas_timm.reports.records``; the consistency
measurement (``--consistency-epochs``, docs/method.md, *Consistency*) through :mod:`search.consistency`.

A checkpoint is written only when every tensor of the state and every recorded metric is finite, and
``metrics.jsonl`` never runs ahead of it (nor does ``consistency.jsonl``: a resumed run drops the measurements of
later epochs and takes them again); every message about a stopped run (divergence, failed write,
Ctrl-C) names the checkpoint that exists, or says none does.

Reproducibility: every epoch reseeds the RNGs from ``(seed, epoch)`` and shuffles with
``DistributedSampler(seed=seed).set_epoch(epoch)``, so a checkpoint taken at an epoch boundary (model,
optimisers, scheduler, metrics so far) resumes exactly; no RNG state has to be carried over.
"""
from __future__ import annotations

import datetime
import errno
import io
import json
import math
import os
import random
import resource
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from timm.scheduler import create_scheduler_v2
from torch.utils.data import DataLoader, DistributedSampler

import entrannas_timm
from entrannas_timm import CellNetwork, Genotype
from entrannas_timm.models.profile import model_cost
from entrannas_timm.models.registry import FAMILIES
from entrannas_timm.reports.records import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    GENOTYPE_FILE,
    METRICS_FILE,
    RecordError,
    epoch_line,
    parse_epoch_line,
    search_provenance,
    write_config,
    write_metrics,
)
from entrannas_timm.train.checkpoint import read_checkpoint
from entrannas_timm.utils.console import Console
from entrannas_timm.utils.files import write_atomic
from entrannas_timm.utils.finite import non_finite

from .config import RESUME_MUTABLE, ConfigError, SearchConfig
from .consistency import (
    CONSISTENCY_FILE,
    ConsistencySettings,
    Progress,
    append_consistency,
    keep_consistency,
    measure,
    summary,
)
from .data import HeldOut, SearchData, build_heldout_data, build_search_data
from .distributed import DistInfo, all_equal, broadcast_tensors, init_distributed, resolve_device, shutdown_distributed
from .searcher import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    NonFiniteLossError,
    Searcher,
    SearchError,
    arch_lr_at,
    build_model,
    lr_warmup,
)
from .supernet import SearchNetwork

__all__ = ['SearchError', 'ResumeError', 'NonFiniteLossError', 'SearchInterrupted', 'Searcher', 'SearchResult',
           'run', 'build_model', 'CHECKPOINT_FORMAT']



class ResumeError(SearchError):
    """``--resume`` of a missing, unreadable or incompatible checkpoint."""


# ---- files -----------------------------------------------------------------------------------------
def _code_version() -> Dict[str, Any]:
    out: Dict[str, Any] = {'entrannas_timm': entrannas_timm.__version__, 'torch': torch.__version__}
    try:
        rev = subprocess.run(['git', 'describe', '--always', '--dirty'], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=10)
        if rev.returncode == 0 and rev.stdout.strip():
            out['git'] = rev.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def _peak_mem_mb(device: torch.device) -> float:
    if device.type == 'cuda':
        return torch.cuda.max_memory_allocated(device) / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _load_avg() -> Optional[List[float]]:
    """The machine's 1, 5 and 15 minute load averages (None where the platform has none)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    try:
        import numpy as np
        np.random.seed(seed % 2 ** 32)
    except ImportError:
        pass


# ---- the run ---------------------------------------------------------------------------------------
@dataclass
class SearchResult:
    genotype: Genotype
    arch_parameters: List[torch.Tensor]
    records: List[Dict[str, Any]]
    output: Path
    rank: int = 0
    files_written: List[str] = field(default_factory=list)


@dataclass
class _Kept:
    """What a stopped run leaves to resume from: the last checkpoint written (or resumed from), if any.

    Every message about a stopped run is built here, so none names a checkpoint that does not exist.
    """
    out: Path
    checkpoint: Optional[Path] = None
    epoch: int = 0
    phase: str = 'start-up'

    def __str__(self) -> str:
        if self.checkpoint is None:
            return 'no checkpoint was written (nothing to resume: start again)'
        resume = '--resume' if self.checkpoint == self.out / CHECKPOINT_FILE else f'--resume {self.checkpoint}'
        return (f'the checkpoint of epoch {self.epoch} ({self.checkpoint}) is kept: continue with '
                f'{resume} --output {self.out}')


class SearchInterrupted(KeyboardInterrupt):
    """Ctrl-C during a search; the message says what was kept."""


def _os_reason(e: OSError) -> str:
    name = errno.errorcode.get(e.errno or 0)
    return f'{e.strerror or e}' + (f' ({name})' if name else '')


def _output_dir(cfg: SearchConfig) -> Path:
    return Path(cfg.output or f'runs/{cfg.method}-{cfg.dataset}-s{cfg.seed}').expanduser()


def _check_output(cfg: SearchConfig, out: Path) -> Optional[Path]:
    """Refuse to overwrite a previous run or an exported genotype; return the checkpoint to resume."""
    if cfg.export_genotype is not None and Path(cfg.export_genotype).exists():
        raise ConfigError(f'--export-genotype: {cfg.export_genotype} already exists; remove it or choose another '
                          'name (nothing was written)')
    blocker = next((p for p in (out, *out.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise ConfigError(f'--output: {blocker} is a file, not a directory; choose a directory for the run')
    if cfg.resume is not None:
        return Path(cfg.resume) if cfg.resume != 'auto' else out / CHECKPOINT_FILE
    existing = [n for n in (CHECKPOINT_FILE, METRICS_FILE, GENOTYPE_FILE, CONSISTENCY_FILE) if (out / n).exists()]
    if existing:
        raise ConfigError(f'--output: {out} already holds a run ({", ".join(existing)}); pass --resume to '
                          'continue it or choose another --output (nothing was overwritten)')
    return None


# ---- checkpoints -----------------------------------------------------------------------------------
def _check_fields(ckpt: Dict[str, Any], path: Path, cfg: SearchConfig) -> None:
    def bad(name: str, expected: str) -> ResumeError:
        value = ckpt.get(name, '<missing>')
        shown = type(value).__name__ if isinstance(value, (dict, list)) else repr(value)
        return ResumeError(f'--resume: {path}: field "{name}": expected {expected}, got {shown}')
    for name in ('config', 'model', 'weight_optimizer', 'arch_optimizer'):
        if not isinstance(ckpt.get(name), dict):
            raise bad(name, 'an object')
    epoch = ckpt.get('epoch')
    if not isinstance(epoch, int) or isinstance(epoch, bool) or not 0 <= epoch <= cfg.epochs:
        raise bad('epoch', f'an integer in [0, {cfg.epochs}]')
    metrics = ckpt.get('metrics')
    if not (isinstance(metrics, list) and len(metrics) == epoch and all(isinstance(m, str) for m in metrics)):
        raise bad('metrics', f'a list of {epoch} epoch record(s)')
    elapsed = ckpt.get('elapsed_s', 0.)
    if not isinstance(elapsed, (int, float)) or isinstance(elapsed, bool) or not 0 <= elapsed < math.inf:
        raise bad('elapsed_s', 'a finite number of seconds >= 0')


def _load_checkpoint(path: Path, cfg: SearchConfig) -> Dict[str, Any]:
    """Read and check a checkpoint to resume from: its format, every field, finite tensors, the same settings."""
    if not path.is_file():
        raise ResumeError(f'--resume: checkpoint {path} not found')
    try:
        ckpt = read_checkpoint(path, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, 'a search checkpoint')
    except ValueError as e:
        raise ResumeError(f'--resume: {e}') from None
    _check_fields(ckpt, path, cfg)
    bad = non_finite({k: ckpt[k] for k in ('model', 'weight_optimizer', 'arch_optimizer')})
    if bad:
        raise ResumeError(f'--resume: {path}: {bad[0]} holds NaN or infinite values; it is not a good checkpoint')
    saved, now = ckpt['config'], cfg.to_dict()
    diff = sorted(k for k in now if k not in RESUME_MUTABLE and saved.get(k) != now[k])
    if diff:
        detail = ', '.join(f'{k}: checkpoint {saved.get(k)!r} vs now {now[k]!r}' for k in diff)
        raise ResumeError(f'--resume: {path} was written with different settings ({detail}); resume with the '
                          'same settings, or start a new --output')
    try:
        records = [parse_epoch_line(m, f'{path} metrics[{i}]') for i, m in enumerate(ckpt['metrics'])]
    except RecordError as e:
        raise ResumeError(f'--resume: {e}') from None
    if [r.epoch for r in records] != list(range(1, ckpt['epoch'] + 1)):
        raise ResumeError(f'--resume: {path}: field "metrics": expected the records of epochs 1 to {ckpt["epoch"]}')
    return ckpt


def _make_loader(ds, batch: int, info: DistInfo, cfg: SearchConfig, device: torch.device) -> DataLoader:
    sampler = DistributedSampler(ds, num_replicas=info.world_size, rank=info.rank, shuffle=True, seed=cfg.seed)
    return DataLoader(ds, batch_size=batch, sampler=sampler, num_workers=cfg.workers,
                      pin_memory=device.type == 'cuda', drop_last=False)


class _CostCache:
    """Params and MACs of the evaluation network of a genotype (sizes: docs/method.md, Protocols), cached."""

    def __init__(self, cfg: SearchConfig, data: SearchData):
        family = cfg.stem or 'cifar'
        size = FAMILIES[family]
        self.channels, self.layers = cfg.eval_channels or size['channels'], cfg.eval_layers or size['layers']
        self.family, self.num_classes, self.in_chans = family, data.num_classes, data.in_chans
        # the ImageNet family is evaluated at 224 (its registered input size), the CIFAR one at the data's size
        self.size = 224 if family == 'imagenet' else data.image_size
        self._cache: Dict[str, Dict[str, int]] = {}

    def __call__(self, genotype: Genotype) -> Dict[str, int]:
        key = json.dumps(genotype.to_dict(), sort_keys=True)
        if key not in self._cache:
            net = CellNetwork(genotype, stem_type=self.family, num_classes=self.num_classes, in_chans=self.in_chans,
                              channels=self.channels, layers=self.layers)
            self._cache[key] = model_cost(net, (self.in_chans, self.size, self.size))
        return self._cache[key]


def _summary(rec: Dict[str, Any], eta_s: float) -> str:
    arch = rec['arch']
    conns = ' '.join(f'{k[0]}{arch["active_connections"][k]}' for k in ('normal', 'reduce'))
    skips = '/'.join(str(arch['skip_connect'][k]) for k in ('normal', 'reduce'))
    thr = ''
    if arch.get('thresholds'):
        thr = '  t ' + '/'.join(f'{sum(v) / len(v):.2f}' for v in arch['thresholds'].values())
    return (f'epoch {rec["epoch"]}/{rec["epochs"]}  lr {rec["lr"]:.4g}  train {rec["train_loss"]:.3f} '
            f'{100 * rec["train_acc"]:.1f}%  val {rec["val_loss"]:.3f} {100 * rec["val_acc"]:.1f}%  '
            f'conns {conns}  skip {skips}{thr}  {rec["params"] / 1e6:.2f}M params {rec["macs"] / 1e6:.0f}M MACs  '
            f'{rec["epoch_time_s"]:.1f}s  ETA {datetime.timedelta(seconds=int(eta_s))}')


@dataclass
class _Run:
    """A search set up for its epochs: settings, data, super-net, optimisers and the records so far."""
    cfg: SearchConfig
    out: Path
    info: DistInfo
    device: torch.device
    printer: Console
    data: SearchData
    train_loader: DataLoader
    val_loader: DataLoader
    model: SearchNetwork
    searcher: Searcher
    scheduler: Any
    cost: _CostCache
    kept: _Kept
    heldout: Optional[HeldOut] = None   # the consistency measurement's split, when --consistency-epochs is given
    start_epoch: int = 0
    elapsed: float = 0.
    load_start: Optional[List[float]] = None
    records: List[Dict[str, Any]] = field(default_factory=list)
    consistency: List[Dict[str, Any]] = field(default_factory=list)   # this search's measurements so far
    lines: List[str] = field(default_factory=list)   # metrics.jsonl, one line per record
    written: List[str] = field(default_factory=list)

    def arch_on(self, epoch: int) -> bool:
        return epoch >= self.cfg.arch_warmup_epochs

    def to_device(self, x: torch.Tensor, y: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        x = x.to(self.device, non_blocking=True)
        if self.cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y.to(self.device, non_blocking=True)

    def write(self, name: str, writer: Callable[[Path], Any], what: str = '') -> None:
        """Rank 0 writes ``out/name`` (atomically: every writer goes through ``write_atomic``); a failed write
        (full disk, no permission) is one clear line saying what was kept."""
        path = self.out / name
        try:
            writer(path)
        except OSError as e:
            raise SearchError(f'cannot write {path}: {_os_reason(e)}; {what or self.kept}') from None
        self.written.append(name)

    def all_ranks(self, ok: bool) -> bool:
        """True when ``ok`` holds on every rank (a decision one rank makes, such as a failed write, is shared)."""
        if not self.info.enabled:
            return ok
        flag = torch.tensor([int(ok)], device=self.device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MIN)
        return bool(flag.item())

    def non_finite(self, what: str, epoch: int) -> NonFiniteLossError:
        return NonFiniteLossError(f'non-finite {what} in epoch {epoch + 1}; stopped, and {self.kept}. Try a lower '
                                  '--lr or --arch-lr, or keep --grad-clip on.')


def run(cfg: SearchConfig) -> SearchResult:
    """Search with ``cfg``; rank 0 writes config.json, metrics.jsonl, checkpoint.pt and genotype.json.

    Ctrl-C raises :class:`SearchInterrupted`, whose message says which checkpoint (if any) is kept.
    """
    out = _output_dir(cfg)
    kept = _Kept(out)
    try:
        resume_path = _check_output(cfg, out)
        ckpt = _load_checkpoint(resume_path, cfg) if resume_path is not None else None
        if ckpt is not None:
            kept.checkpoint, kept.epoch = resume_path, ckpt['epoch']
        device_type = torch.device(cfg.device).type if cfg.device else ('cuda' if torch.cuda.is_available() else 'cpu')
        info = init_distributed(device_type)
        try:
            r = _set_up(cfg, out, ckpt, info, kept)
            for epoch in range(r.start_epoch, cfg.epochs):
                kept.phase = f'epoch {epoch + 1}'
                _epoch(r, epoch)
            kept.phase = 'the final genotype'
            return _finish(r)
        finally:
            shutdown_distributed(info)
    except KeyboardInterrupt:
        raise SearchInterrupted(f'interrupted during {kept.phase}; {kept}') from None


def _set_up(cfg: SearchConfig, out: Path, ckpt: Optional[Dict[str, Any]], info: DistInfo, kept: _Kept) -> _Run:
    """Device, determinism, data, super-net, optimisers and scheduler; restore ``ckpt``; write config.json."""
    device = resolve_device(cfg.device, info.local_rank)
    if cfg.batch_size % info.world_size:
        raise ConfigError(f'--batch-size {cfg.batch_size} is global and must divide evenly over '
                          f'{info.world_size} processes')
    printer = Console.for_command(cfg.quiet, cfg.json, info.is_main, text_to='stdout')
    if cfg.amp and device.type != 'cuda':
        printer.text('note: --amp (bf16 autocast) applies on CUDA only; running in float32 on CPU')
    if cfg.deterministic:
        os.environ.setdefault('CUBLAS_WORKSPACE_CONFIG', ':4096:8')
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    elif device.type == 'cuda':
        torch.backends.cudnn.benchmark = True
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    _seed_everything(cfg.seed)

    data = build_search_data(cfg)
    per_rank = cfg.batch_size // info.world_size
    train_loader = _make_loader(data.train, per_rank, info, cfg, device)
    val_loader = _make_loader(data.val, per_rank, info, cfg, device)
    model = build_model(cfg, data.in_chans, data.num_classes, device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    broadcast_tensors(list(model.parameters()) + list(model.buffers()))  # every rank starts from rank 0's net
    searcher = Searcher(model, cfg, device, info)
    scheduler, _ = create_scheduler_v2(searcher.weight_optimizer, sched='cosine', num_epochs=cfg.epochs,
                                       min_lr=cfg.min_lr, **lr_warmup(cfg))
    heldout = build_heldout_data(cfg, cfg.consistency_images) if cfg.consistency_epochs else None
    r = _Run(cfg, out, info, device, printer, data, train_loader, val_loader, model, searcher, scheduler,
             _CostCache(cfg, data), kept, heldout, load_start=_load_avg())
    if ckpt is not None:
        try:
            searcher.load_state_dict(ckpt)
        except (RuntimeError, KeyError, ValueError, TypeError) as e:
            raise ResumeError(f'--resume: the checkpoint does not fit this super-net ({e})') from None
        r.start_epoch, r.elapsed, r.lines = ckpt['epoch'], float(ckpt.get('elapsed_s', 0.)), list(ckpt['metrics'])
        r.records = [json.loads(line) for line in r.lines]  # checked by _load_checkpoint
        r.load_start = ckpt.get('load_avg_start', r.load_start)
    if info.is_main:
        r.write(CONFIG_FILE, lambda p: write_config(p, cfg.to_dict()))
        if ckpt is not None:  # drop records written after the checkpoint by the interrupted run
            r.write(METRICS_FILE, lambda p: write_metrics(p, r.lines))
            try:
                r.consistency = keep_consistency(out, ckpt['epoch'])
            except RecordError as e:
                raise ResumeError(f'--resume: {e}') from None
            except OSError as e:
                raise SearchError(f'cannot write {out / CONSISTENCY_FILE}: {_os_reason(e)}; {kept}') from None
    return r


def _epoch(r: _Run, epoch: int) -> None:
    """One epoch: train, record, checkpoint, print. Nothing non-finite is ever recorded or saved."""
    t0, cpu0 = time.perf_counter(), time.process_time()
    _seed_everything(r.cfg.seed * 100003 + epoch)
    r.scheduler.step(epoch)
    r.searcher.set_arch_lr(arch_lr_at(r.cfg, epoch))
    lr = r.searcher.weight_optimizer.param_groups[0]['lr']
    train = _train_epoch(r, epoch, lr)
    rec = _record(r, epoch, lr, train, t0, cpu0)
    measured = _consistency(r, epoch)
    _checkpoint(r, epoch, rec)
    eta = r.elapsed / (epoch + 1 - r.start_epoch) * (r.cfg.epochs - epoch - 1)
    r.printer.text(_summary(rec, eta))
    r.printer.json(rec)
    if measured is not None:
        r.printer.text(summary(measured))
        r.printer.json({'event': 'consistency', **measured})


def _train_epoch(r: _Run, epoch: int, lr: float) -> torch.Tensor:
    """Architecture and weight steps over the epoch's batches; returns (loss sum, correct, count) over ranks."""
    device, searcher = r.device, r.searcher
    r.train_loader.sampler.set_epoch(epoch)
    r.val_loader.sampler.set_epoch(epoch)
    arch_on = r.arch_on(epoch)
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
    r.model.train()
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    correct = torch.zeros((), device=device, dtype=torch.float64)
    seen = torch.zeros((), device=device, dtype=torch.float64)
    steps = min(len(r.train_loader), len(r.val_loader))
    bar = r.printer.bar(steps, f'epoch {epoch + 1}/{r.cfg.epochs}')
    nonfinite = False
    for step, ((x, y), (xv, yv)) in enumerate(zip(r.train_loader, r.val_loader)):
        x, y = r.to_device(x, y)
        if arch_on:
            xv, yv = r.to_device(xv, yv)
            try:
                searcher.arch_step(xv, yv, x, y, eta=lr)
            except NonFiniteLossError:
                nonfinite = True
                break
        loss, logits = searcher.weight_step(x, y)
        loss_sum += loss.double() * y.numel()
        correct += (logits.argmax(1) == y).sum()
        seen += y.numel()
        bar.update(1)
        if step % 20 == 0 or step == steps - 1:
            avg = (loss_sum / seen).item()
            if not math.isfinite(avg):
                break
            bar.set_postfix(loss=f'{avg:.3f}', acc=f'{(correct / seen).item():.3f}')
    bar.close()
    stats = torch.stack([loss_sum, correct, seen])
    if r.info.enabled:
        torch.distributed.all_reduce(stats)
    if nonfinite or not math.isfinite(float(stats[0])):
        raise r.non_finite('training loss', epoch)
    if non_finite(searcher.arch_params):
        raise r.non_finite('architecture parameters', epoch)
    return stats


def _record(r: _Run, epoch: int, lr: float, train: torch.Tensor, t0: float, cpu0: float) -> Dict[str, Any]:
    """Validate, derive the genotype and its cost, and append the epoch's record (checked, strict JSON)."""
    val = torch.stack(r.searcher.evaluate(r.val_loader, r.to_device))
    if r.info.enabled:
        torch.distributed.all_reduce(val)
    if not math.isfinite(float(val[0])):
        raise r.non_finite('validation loss', epoch)
    genotype = r.model.genotype()
    mc = r.cost(genotype)
    epoch_time = time.perf_counter() - t0
    r.elapsed += epoch_time
    rec = {
        'epoch': epoch + 1, 'epochs': r.cfg.epochs, 'lr': lr, 'arch_lr': arch_lr_at(r.cfg, epoch),
        'train_loss': float(train[0] / train[2]), 'train_acc': float(train[1] / train[2]),
        'val_loss': float(val[0] / val[2]), 'val_acc': float(val[1] / val[2]),
        'arch_updates': r.arch_on(epoch),
        'genotype': genotype.to_dict(), 'arch': r.model.arch_snapshot(),
        'params': mc['params'], 'macs': mc['macs'],
        'epoch_time_s': epoch_time, 'epoch_cpu_s': time.process_time() - cpu0, 'peak_mem_mb': _peak_mem_mb(r.device),
    }
    r.lines.append(epoch_line(rec))
    r.records.append(rec)
    return rec


def _consistency(r: _Run, epoch: int) -> Optional[Dict[str, Any]]:
    """The consistency measurement after the chosen epochs (every rank measures, so none waits in a collective;
    rank 0 writes consistency.jsonl). It is timed apart from the epoch: not in ``epoch_time_s`` / ``epoch_cpu_s``."""
    if not r.cfg.consistency_epochs or epoch + 1 not in r.cfg.consistency_epochs:
        return None
    assert r.heldout is not None
    r.kept.phase = f'the consistency measurement after epoch {epoch + 1}'
    rec = measure(r.model, r.data, r.heldout, ConsistencySettings.from_config(r.cfg), epoch=epoch + 1,
                  epochs=r.cfg.epochs, method=r.cfg.method, source='search', workers=r.cfg.workers,
                  progress=Progress(bar=r.printer.bars))
    r.kept.phase = f'epoch {epoch + 1}'
    r.consistency.append(rec)
    if r.info.is_main:
        r.write(CONSISTENCY_FILE, lambda p: append_consistency(r.out, rec))
    return rec


def _checkpoint(r: _Run, epoch: int, rec: Dict[str, Any]) -> None:
    """Save the end of ``epoch`` if every tensor of the state is finite (a good checkpoint), then metrics.jsonl.

    The checkpoint is written first: metrics.jsonl never runs ahead of a checkpoint (resume rewrites it from one).
    """
    state = dict(r.searcher.state_dict(), format=CHECKPOINT_FORMAT, version=CHECKPOINT_VERSION, epoch=epoch + 1,
                 config=r.cfg.to_dict(), scheduler=r.scheduler.state_dict(), metrics=list(r.lines),
                 elapsed_s=r.elapsed, load_avg_start=r.load_start)
    bad = non_finite({k: state[k] for k in ('model', 'weight_optimizer', 'arch_optimizer')})
    if not r.all_ranks(not bad):
        raise r.non_finite(f'values in {bad[0]}' if bad else 'values on another rank', epoch)
    error = None
    if r.info.is_main:
        try:
            buf = io.BytesIO()  # serialised first: torch.save into a failing file hides the OSError (full disk)
            torch.save(state, buf)
            r.write(CHECKPOINT_FILE, lambda p: write_atomic(p, buf.getvalue()))
            r.kept.checkpoint, r.kept.epoch = r.out / CHECKPOINT_FILE, epoch + 1
            r.write(METRICS_FILE, lambda p: write_metrics(p, r.lines))
        except SearchError as e:
            error = e
    if not r.all_ranks(error is None):
        raise error or SearchError(f'rank 0 could not write the run directory {r.out}; stopped')


def _provenance(r: _Run) -> Dict[str, Any]:
    """How the genotype was found: settings, engine cells, cost, code, final metrics, evaluation network."""
    cfg, device, world = r.cfg, r.device, r.info.world_size
    last = r.records[-1] if r.records else {}
    # docs/method.md, *Search cost*: wall and process CPU seconds of the search's epochs, each under its own name
    cost: Dict[str, Any] = {
        'wall_s': round(r.elapsed, 2), 'cpu_s': round(sum(rec['epoch_cpu_s'] for rec in r.records), 2),
        'devices': world, 'device': device.type,
        'device_name': torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu',
        'threads': torch.get_num_threads(), 'load_avg_start': r.load_start, 'load_avg_end': _load_avg()}
    if device.type == 'cuda':  # the papers' convention: wall time x GPUs
        cost['gpu_days'] = round(r.elapsed * world / 86400, 6)
    if r.consistency:
        cost['consistency_cpu_s'] = round(sum(c['cpu_s'] for c in r.consistency), 2)
        cost['consistency_wall_s'] = round(sum(c['wall_s'] for c in r.consistency), 2)
    return search_provenance(
        method=cfg.method, dataset=r.data.name, seed=cfg.seed, epochs=cfg.epochs,
        search_settings={k: v for k, v in cfg.to_dict().items() if k not in RESUME_MUTABLE},
        engine_cells=list(r.model.engine_cell_indices),
        search_cost=cost,
        code_version=_code_version(),
        metrics={k: last.get(k) for k in ('train_acc', 'val_acc', 'train_loss', 'val_loss', 'params', 'macs')},
        evaluation_network={'stem': r.cost.family, 'channels': r.cost.channels, 'layers': r.cost.layers,
                            'input_size': [r.data.in_chans, r.cost.size, r.cost.size]},
        arch_update_epochs=sum(1 for rec in r.records if rec.get('arch_updates')))


def _finish(r: _Run) -> SearchResult:
    """Derive the final genotype with its provenance and write genotype.json (and --export-genotype)."""
    cfg, searcher = r.cfg, r.searcher
    if not all_equal(searcher.arch_params):
        raise SearchError('architecture parameters differ between ranks; the distributed run is inconsistent')
    provenance = _provenance(r)
    if provenance['arch_update_epochs'] == 0 and not cfg.allow_unsearched_genotype:
        raise SearchError(
            f'the architecture was never updated ({cfg.arch_warmup_epochs} warm-up epoch(s) of {cfg.epochs}), so '
            f'the genotype would be the random initial one; none was written. Records and checkpoint are kept in '
            f'{r.out}; to write that genotype anyway, continue with --resume --output {r.out} '
            '--allow-unsearched-genotype')
    name = Path(cfg.export_genotype).stem if cfg.export_genotype else f'{cfg.method}_{cfg.dataset}_s{cfg.seed}'
    genotype = r.model.genotype().replace(name=name, provenance=provenance)
    if r.info.is_main:
        again = f'the records are kept; continue with --resume --output {r.out} to write it again'
        r.write(GENOTYPE_FILE, genotype.save, again)
        if cfg.export_genotype:
            try:
                genotype.save(cfg.export_genotype)
            except OSError as e:
                raise SearchError(f'--export-genotype: cannot write {cfg.export_genotype}: {_os_reason(e)}; '
                                  f'the genotype is in {r.out / GENOTYPE_FILE}') from None
            r.written.append(str(cfg.export_genotype))
        r.printer.text(f'genotype written to {r.out / GENOTYPE_FILE}'
                       + (f' and {cfg.export_genotype}' if cfg.export_genotype else ''))
        r.printer.text(str(genotype))
        r.printer.json({'event': 'done', 'output': str(r.out), 'genotype': genotype.to_dict(),
                        'exported': cfg.export_genotype})
    return SearchResult(genotype, [p.detach().cpu().clone() for p in searcher.arch_params], r.records, r.out,
                        r.info.rank, sorted(set(r.written)))


def load_checkpoint_arch(path: os.PathLike) -> Dict[str, torch.Tensor]:
    """Architecture parameters stored in a checkpoint (by state-dict name)."""
    ckpt = torch.load(path, map_location='cpu', weights_only=True)
    names = [n for n in ckpt['model'] if n.startswith(('alphas_', 'betas_', 'threshold_logits_'))]
    return {n: ckpt['model'][n] for n in names}
