"""The bilevel search loop: architecture step on a validation batch, then weight step on a training batch.

:func:`run` drives epochs, metrics, checkpoints and the final genotype; one step is a
:class:`~search.searcher.Searcher` (both optimisers, AMP, DDP), shared with ``search.bench``.

Reproducibility: every epoch reseeds the RNGs from ``(seed, epoch)`` and shuffles with
``DistributedSampler(seed=seed).set_epoch(epoch)``, so a checkpoint taken at an epoch boundary (model,
optimisers, scheduler, metrics so far) resumes exactly; no RNG state has to be carried over.
"""
from __future__ import annotations

import datetime
import json
import math
import os
import random
import resource
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import torch
from timm.scheduler import create_scheduler_v2
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

import entrannas_timm
from entrannas_timm import CellNetwork, Genotype
from entrannas_timm.files import write_atomic
from entrannas_timm.models import FAMILIES
from entrannas_timm.profile import model_cost

from .config import RESUME_MUTABLE, ConfigError, SearchConfig
from .data import SearchData, build_search_data
from .distributed import DistInfo, all_equal, broadcast_tensors, init_distributed, shutdown_distributed
from .searcher import NonFiniteLossError, Searcher, SearchError, build_model, lr_warmup

__all__ = ['SearchError', 'ResumeError', 'NonFiniteLossError', 'Searcher', 'SearchResult', 'run',
           'build_model', 'CHECKPOINT_FORMAT']

CHECKPOINT_FORMAT = 'entrannas-search-checkpoint'
CHECKPOINT_VERSION = 1


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


class _Printer:
    """Console output: progress bars and a summary line per epoch, JSON lines only, or nothing."""

    def __init__(self, cfg: SearchConfig, is_main: bool):
        self.mode = 'off' if not is_main or cfg.quiet else ('json' if cfg.json else 'text')

    def bar(self, total: int, desc: str):
        return tqdm(total=total, desc=desc, disable=self.mode != 'text', leave=False, dynamic_ncols=True,
                    unit='step')

    def text(self, line: str) -> None:
        if self.mode == 'text':
            tqdm.write(line)

    def json(self, obj: Dict[str, Any]) -> None:
        if self.mode == 'json':
            print(json.dumps(obj), flush=True)


def _resolve_device(cfg: SearchConfig, info_local_rank: int) -> torch.device:
    name = cfg.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    dev = torch.device(name)
    if dev.type == 'cuda':
        if not torch.cuda.is_available():
            raise ConfigError(f'--device {name}: CUDA is not available on this machine')
        if dev.index is None:
            dev = torch.device('cuda', info_local_rank)
    return dev


def _output_dir(cfg: SearchConfig) -> Path:
    return Path(cfg.output or f'runs/{cfg.method}-{cfg.dataset}-s{cfg.seed}').expanduser()


def _load_checkpoint(path: Path, cfg: SearchConfig) -> Dict[str, Any]:
    if not path.is_file():
        raise ResumeError(f'--resume: checkpoint {path} not found')
    try:
        ckpt = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:  # truncated zip, bad pickle, ...: all mean "not a usable checkpoint"
        raise ResumeError(f'--resume: {path} is not a readable checkpoint ({type(e).__name__}: {e})') from None
    if not isinstance(ckpt, dict) or ckpt.get('format') != CHECKPOINT_FORMAT:
        raise ResumeError(f'--resume: {path} is not a search checkpoint (expected format {CHECKPOINT_FORMAT!r})')
    if ckpt.get('version') != CHECKPOINT_VERSION:
        raise ResumeError(f'--resume: {path} has checkpoint version {ckpt.get("version")!r}; this code reads '
                          f'{CHECKPOINT_VERSION}')
    saved, now = ckpt.get('config', {}), cfg.to_dict()
    diff = sorted(k for k in now if k not in RESUME_MUTABLE and saved.get(k) != now[k])
    if diff:
        detail = ', '.join(f'{k}: checkpoint {saved.get(k)!r} vs now {now[k]!r}' for k in diff)
        raise ResumeError(f'--resume: {path} was written with different settings ({detail}); resume with the '
                          'same settings, or start a new --output')
    return ckpt


def _check_output(cfg: SearchConfig, out: Path) -> Optional[Path]:
    """Refuse to overwrite a previous run or an exported genotype; return the checkpoint to resume."""
    if cfg.export_genotype is not None and Path(cfg.export_genotype).exists():
        raise ConfigError(f'--export-genotype: {cfg.export_genotype} already exists; remove it or choose another '
                          'name (nothing was written)')
    if cfg.resume is not None:
        return Path(cfg.resume) if cfg.resume != 'auto' else out / 'checkpoint.pt'
    existing = [n for n in ('checkpoint.pt', 'metrics.jsonl', 'genotype.json') if (out / n).exists()]
    if existing:
        raise ConfigError(f'--output: {out} already holds a run ({", ".join(existing)}); pass --resume to '
                          'continue it or choose another --output (nothing was overwritten)')
    return None


def _make_loader(ds, batch: int, info: DistInfo, cfg: SearchConfig, device: torch.device) -> DataLoader:
    sampler = DistributedSampler(ds, num_replicas=info.world_size, rank=info.rank, shuffle=True, seed=cfg.seed)
    return DataLoader(ds, batch_size=batch, sampler=sampler, num_workers=cfg.workers,
                      pin_memory=device.type == 'cuda', drop_last=False)


class _CostCache:
    """Params and MACs of the evaluation network of a genotype (METHOD.md §7 sizes), cached per genotype."""

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


def run(cfg: SearchConfig) -> SearchResult:
    """Search with ``cfg``; rank 0 writes config.json, metrics.jsonl, checkpoint.pt and genotype.json."""
    out = _output_dir(cfg)
    resume_path = _check_output(cfg, out)
    ckpt = _load_checkpoint(resume_path, cfg) if resume_path is not None else None
    device_type = torch.device(cfg.device).type if cfg.device else ('cuda' if torch.cuda.is_available() else 'cpu')
    info = init_distributed(device_type)
    try:
        return _run(cfg, out, ckpt, info)
    finally:
        shutdown_distributed(info)


def _run(cfg: SearchConfig, out: Path, ckpt: Optional[Dict[str, Any]], info: DistInfo) -> SearchResult:
    device = _resolve_device(cfg, info.local_rank)
    if cfg.batch_size % info.world_size:
        raise ConfigError(f'--batch-size {cfg.batch_size} is global and must divide evenly over '
                          f'{info.world_size} processes')
    printer = _Printer(cfg, info.is_main)
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
    cost = _CostCache(cfg, data)

    start_epoch, records, elapsed = 0, [], 0.
    if ckpt is not None:
        try:
            searcher.load_state_dict(ckpt)
        except (RuntimeError, KeyError, ValueError) as e:
            raise ResumeError(f'--resume: the checkpoint does not fit this super-net ({e})') from None
        start_epoch = int(ckpt['epoch'])
        records = [json.loads(line) for line in ckpt.get('metrics', [])]
        elapsed = float(ckpt.get('elapsed_s', 0.))
    written: List[str] = []
    if info.is_main:
        write_atomic(out / 'config.json', json.dumps(cfg.to_dict(), indent=2) + '\n')
        written.append('config.json')
        if ckpt is not None:  # drop records written after the checkpoint by the interrupted run
            write_atomic(out / 'metrics.jsonl', ''.join(json.dumps(r) + '\n' for r in records))

    def to_device(x: torch.Tensor, y: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        x = x.to(device, non_blocking=True)
        if cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y.to(device, non_blocking=True)

    steps = min(len(train_loader), len(val_loader))
    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.perf_counter()
        _seed_everything(cfg.seed * 100003 + epoch)
        scheduler.step(epoch)
        lr = searcher.weight_optimizer.param_groups[0]['lr']
        train_loader.sampler.set_epoch(epoch)
        val_loader.sampler.set_epoch(epoch)
        arch_on = epoch >= cfg.arch_warmup_epochs
        if device.type == 'cuda':
            torch.cuda.reset_peak_memory_stats(device)
        model.train()
        loss_sum = torch.zeros((), device=device, dtype=torch.float64)
        correct = torch.zeros((), device=device, dtype=torch.float64)
        seen = torch.zeros((), device=device, dtype=torch.float64)
        bar = printer.bar(steps, f'epoch {epoch + 1}/{cfg.epochs}')
        nonfinite = False
        for step, ((x, y), (xv, yv)) in enumerate(zip(train_loader, val_loader)):
            x, y = to_device(x, y)
            if arch_on:
                xv, yv = to_device(xv, yv)
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
        if info.enabled:
            torch.distributed.all_reduce(stats)
        if nonfinite or not math.isfinite(float(stats[0])) or not all(math.isfinite(float(p.detach().float().sum()))
                                                        for p in searcher.arch_params):
            raise NonFiniteLossError(
                f'non-finite training loss in epoch {epoch + 1}; stopped. The last good checkpoint '
                f'({out / "checkpoint.pt"}, epoch {epoch}) is kept. Try a lower --lr or --arch-lr.')
        vstats = torch.stack(searcher.evaluate(val_loader, to_device))
        if info.enabled:
            torch.distributed.all_reduce(vstats)
        genotype = model.genotype()
        mc = cost(genotype)
        epoch_time = time.perf_counter() - t0
        elapsed += epoch_time
        rec = {
            'epoch': epoch + 1, 'epochs': cfg.epochs, 'lr': lr,
            'train_loss': float(stats[0] / stats[2]), 'train_acc': float(stats[1] / stats[2]),
            'val_loss': float(vstats[0] / vstats[2]), 'val_acc': float(vstats[1] / vstats[2]),
            'arch_updates': arch_on,
            'genotype': genotype.to_dict(), 'arch': model.arch_snapshot(),
            'params': mc['params'], 'macs': mc['macs'],
            'epoch_time_s': epoch_time, 'peak_mem_mb': _peak_mem_mb(device),
        }
        records.append(rec)
        if info.is_main:
            state = dict(searcher.state_dict(), format=CHECKPOINT_FORMAT, version=CHECKPOINT_VERSION,
                         epoch=epoch + 1, config=cfg.to_dict(), scheduler=scheduler.state_dict(),
                         metrics=[json.dumps(r) for r in records], elapsed_s=elapsed)
            write_atomic(out / 'checkpoint.pt', lambda f, s=state: torch.save(s, f))
            write_atomic(out / 'metrics.jsonl', ''.join(json.dumps(r) + '\n' for r in records))
            written += ['checkpoint.pt', 'metrics.jsonl']
        eta = elapsed / (epoch + 1 - start_epoch) * (cfg.epochs - epoch - 1) if epoch >= start_epoch else 0.
        printer.text(_summary(rec, eta))
        printer.json(rec)

    if not all_equal(searcher.arch_params):
        raise SearchError('architecture parameters differ between ranks; the distributed run is inconsistent')
    genotype = model.genotype()
    last = records[-1] if records else {}
    name = Path(cfg.export_genotype).stem if cfg.export_genotype else f'{cfg.method}_{cfg.dataset}_s{cfg.seed}'
    world = info.world_size
    cost_key = 'gpu_days' if device.type == 'cuda' else 'cpu_hours'
    provenance = {
        'source': 'entrannas-timm search (python -m search)',
        'method': cfg.method, 'dataset': data.name, 'seed': cfg.seed, 'epochs': cfg.epochs,
        'search_settings': {k: v for k, v in cfg.to_dict().items() if k not in RESUME_MUTABLE},
        'engine_cells': list(model.engine_cell_indices),
        'search_cost': {'wall_time_s': round(elapsed, 2), 'devices': world, 'device': device.type,
                        'device_name': (torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'),
                        cost_key: round(elapsed * world / (86400 if device.type == 'cuda' else 3600), 6)},
        'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        'code_version': _code_version(),
        'metrics': {k: last.get(k) for k in ('train_acc', 'val_acc', 'train_loss', 'val_loss', 'params', 'macs')},
        'evaluation_network': {'stem': cost.family, 'channels': cost.channels, 'layers': cost.layers,
                               'input_size': [data.in_chans, cost.size, cost.size]},
    }
    genotype = genotype.replace(name=name, provenance=provenance)
    if info.is_main:
        genotype.save(out / 'genotype.json')
        written.append('genotype.json')
        if cfg.export_genotype:
            genotype.save(cfg.export_genotype)
            written.append(str(cfg.export_genotype))
        printer.text(f'genotype written to {out / "genotype.json"}'
                     + (f' and {cfg.export_genotype}' if cfg.export_genotype else ''))
        printer.text(str(genotype))
        printer.json({'event': 'done', 'output': str(out), 'genotype': genotype.to_dict(),
                      'exported': cfg.export_genotype})
    return SearchResult(genotype, [p.detach().cpu().clone() for p in searcher.arch_params], records, out,
                        info.rank, sorted(set(written)))


def load_checkpoint_arch(path: os.PathLike) -> Dict[str, torch.Tensor]:
    """Architecture parameters stored in a checkpoint (by state-dict name)."""
    ckpt = torch.load(path, map_location='cpu', weights_only=True)
    names = [n for n in ckpt['model'] if n.startswith(('alphas_', 'betas_', 'threshold_logits_'))]
    return {n: ckpt['model'][n] for n in names}

