"""``entrannas validate``: top-1 / top-5 (percent, as timm's validate.py), loss and images/s of a network on a split.

The network comes from any of the places weights live: a registered name (``--pretrained`` for its published or
cached weights), a training run directory (its best or last weights), a safetensors file with ``--genotype``, a
folder exported by ``entrannas export``, or an ``hf-hub:ORG/NAME`` repo. Preprocessing follows the weights: a
run's recorded data configuration, or the model's pretrained configuration (input size, mean, std, crop).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import torch
import torch.nn as nn

from ..data.datasets import DataError
from ..data.loader import DATASETS, ImageData, default_workers, eval_batches, load_data
from ..models.genotype import Genotype, GenotypeError
from ..models.network import size_from_weights
from ..models.registry import MODEL_GENOTYPES, WEIGHTS_FILE
from ..utils.errors import CLIError
from .checkpoint import build_run_model, is_run_dir, load_into, load_weights, read_config

__all__ = ['evaluate', 'load_model', 'validate', 'format_row', 'add_cli']


@torch.no_grad()
def evaluate(model: nn.Module, data: ImageData, batch_size: int, device: torch.device, amp: bool = False,
             channels_last: bool = False, rank: int = 0, world: int = 1, workers: int = 0) -> Dict[str, float]:
    """Loss, top-1 and top-5 (percent) of ``model`` on ``data`` in eval mode; shards and sums over ``world``
    processes, so each image counts once."""
    from timm.utils import accuracy
    was_training = model.training
    model.eval()
    sums = torch.zeros(4, dtype=torch.float64, device=device)
    k5 = min(5, data.num_classes)
    t0 = time.perf_counter()
    try:
        for x, y in eval_batches(data, max(1, batch_size), device, rank, world, workers):
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                logits = model(x)
            logits = logits.float()
            top1, top5 = accuracy(logits, y, topk=(1, k5))
            n = y.numel()
            sums += torch.stack([nn.functional.cross_entropy(logits, y, reduction='sum').double(),
                                 top1.double() * n / 100, top5.double() * n / 100,
                                 torch.tensor(float(n), dtype=torch.float64, device=device)])
    finally:
        model.train(was_training)
    if world > 1:
        torch.distributed.all_reduce(sums)
    seconds = time.perf_counter() - t0
    n = max(float(sums[3]), 1.)
    return dict(top1=float(100 * sums[1] / n), top5=float(100 * sums[2] / n), loss=float(sums[0] / n),
                images=int(sums[3]), seconds=seconds, images_per_s=float(sums[3]) / max(seconds, 1e-9))


# ---- where the network comes from ---------------------------------------------------------------------------
CELL0_WIDTH_KEYS = ('cells.0.preprocess1.1.weight', 'cells.0.preprocess0.1.weight', 'cells.0.preprocess0.bn.weight')
"""Keys whose first dimension is the first cell's width: its ReLUConvBN preprocessing, or FactorizedReduce's."""


def _from_state_dict(state: Dict[str, torch.Tensor], genotype: Genotype, source: str) -> nn.Module:
    """The family network whose shapes ``state`` has (stem, channels, cells, input channels, classes)."""
    import timm
    try:
        stem = state['stem0.0.weight']
        # the first cell's width: from whichever input it preprocesses (a learned topology may read only one)
        c = next(state[k].shape[0] for k in CELL0_WIDTH_KEYS if k in state)
        layers = 1 + max(int(k.split('.')[1]) for k in state if k.startswith('cells.'))
        classes = state['head.fc.weight'].shape[0] if 'head.fc.weight' in state else 0
    except (KeyError, ValueError, IndexError, StopIteration):
        raise CLIError(f'{source}: not the weights of a DARTS-family cell network (no stem0 / cells / head keys)') \
            from None
    imagenet = 'stem1.1.weight' in state
    args: Dict[str, Any] = dict(genotype=genotype, **size_from_weights('imagenet' if imagenet else 'cifar', stem, c,
                                                                       layers, classes))
    try:
        model = timm.create_model('cellnet_imagenet' if imagenet else 'cellnet_cifar', **args)
    except ValueError as e:
        raise CLIError(f'{source}: {e}') from None
    load_into(model, state, source)
    return model


def load_model(spec: str, pretrained: bool = False, genotype: Optional[str] = None, which: str = 'best',
               ema: bool = False) -> Tuple[nn.Module, Optional[Dict[str, Any]], str]:
    """The network named by ``spec``, in eval mode; a training run's ``config.json`` (whose data configuration the
    weights were trained with) or None (the model's pretrained configuration describes them); the source, in words."""
    import timm
    path = Path(spec).expanduser()
    if spec.startswith('hf-hub:'):
        try:
            return timm.create_model(spec, pretrained=True).eval(), None, spec
        except Exception as e:  # offline without a cached copy, unknown repo, broken config: one line
            raise CLIError(f'{spec}: cannot load ({type(e).__name__}: {e})') from None
    if path.is_dir():
        if is_run_dir(path):
            model, cfg = build_run_model(path, which, ema)
            return model, cfg, f'{path} ({which}{" EMA" if ema else ""} weights)'
        config = path / 'config.json'
        if config.is_file() and (path / WEIGHTS_FILE).is_file():
            read_config(config)  # bounded, and a clear error if broken, before timm reads it
            load_weights(path / WEIGHTS_FILE)  # a corrupt file fails here with its name, not inside timm
            try:
                return timm.create_model(f'local-dir:{path}', pretrained=True).eval(), None, str(path)
            except Exception as e:
                raise CLIError(f'{path}: cannot load the exported model ({type(e).__name__}: {e})') from None
        raise CLIError(f'{spec}: a directory that is neither a training run (config.json + best.safetensors) nor an '
                       f'exported model (config.json + {WEIGHTS_FILE})')
    if path.suffix == '.safetensors':
        if genotype is None:
            raise CLIError(f'{spec}: a bare weights file needs --genotype (the cell it was trained with)')
        model = _from_state_dict(load_weights(path), Genotype.coerce(genotype), str(path))
        return model.eval(), None, str(path)
    name = spec.split('.', 1)[0]
    if name not in MODEL_GENOTYPES:
        raise CLIError(f'MODEL: {spec!r} is not a registered model, a run directory, an exported folder, a '
                       f'.safetensors file or an hf-hub: id; registered: {", ".join(MODEL_GENOTYPES)}')
    kwargs = {} if genotype is None else dict(genotype=genotype)
    try:
        return timm.create_model(spec, pretrained=pretrained, **kwargs).eval(), None, spec
    except (GenotypeError, ValueError, RuntimeError) as e:  # RuntimeError: WeightsNotPublishedError, timm's own
        raise CLIError(f'{spec}: {e}') from None


def _data_for(model: nn.Module, preprocessing: Optional[Dict[str, Any]], dataset: str, data_dir: str, split: str,
              subset: Optional[int], image_size: Optional[int]) -> ImageData:
    """The split, preprocessed as the weights expect: ``preprocessing`` (a run's data configuration; empty: the
    data set's own size and statistics) or, when None, the model's pretrained configuration."""
    from timm.data import resolve_data_config
    cfg = dict(preprocessing) if preprocessing is not None else resolve_data_config({}, model=model)
    size = image_size or (int(cfg['input_size'][-1]) if 'input_size' in cfg else None)
    try:
        data = load_data(dataset, data_dir, split, subset, size, interpolation=cfg.get('interpolation'),
                         crop_pct=cfg.get('crop_pct'))
    except DataError as e:
        raise CLIError(str(e)) from None
    if 'mean' in cfg and len(cfg['mean']) == data.in_chans:
        data.mean, data.std = tuple(cfg['mean']), tuple(cfg['std'])
    in_chans = getattr(model, 'in_chans', None)
    if in_chans is not None and in_chans != data.in_chans:
        raise CLIError(f'the model takes {in_chans}-channel images but {dataset} has {data.in_chans} channels')
    if getattr(model, 'num_classes', data.num_classes) != data.num_classes:
        raise CLIError(f'the model has {model.num_classes} classes but {dataset} has {data.num_classes}')
    return data


def validate(args: argparse.Namespace) -> Dict[str, Any]:
    """Run ``entrannas validate`` with parsed ``args``; the result row."""
    model, run, source = load_model(args.model, args.pretrained, args.genotype, 'last' if args.last else 'best',
                                    args.ema)
    dataset, data_dir = args.dataset, args.data_dir
    # preprocessing: a run's own; for bare weights, the data set's; else the model's pretrained configuration
    preprocessing = {} if args.model.endswith('.safetensors') else None
    if run is not None:
        preprocessing = run['data']
        dataset = dataset or preprocessing.get('dataset')
        data_dir = data_dir or run.get('settings', {}).get('data_dir')
    if dataset is None:
        raise CLIError(f'--dataset: which data set to validate on? one of {", ".join(DATASETS)}')
    data = _data_for(model, preprocessing, dataset, data_dir or 'data', args.split, args.subset, args.image_size)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device or ('cuda' if torch.cuda.is_available() else 'cpu'))
    model = model.to(device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    workers = default_workers(data) if args.workers is None else args.workers
    r = evaluate(model, data, args.batch_size, device, args.amp, args.channels_last, workers=workers)
    return dict(model=source, dataset=dataset, split=data.split, top1=r['top1'], top5=r['top5'], loss=r['loss'],
                images=r['images'], images_per_s=r['images_per_s'])


def _cli_validate(args: argparse.Namespace) -> int:
    try:
        row = validate(args)
    except GenotypeError as e:
        raise CLIError(str(e)) from None
    print(json.dumps(row) if args.json else format_row(row))
    return 0


def format_row(row: Dict[str, Any]) -> str:
    """One validation result as the line ``entrannas validate`` prints."""
    return (f'{row["model"]} on {row["dataset"]} {row["split"]} ({row["images"]} images): top-1 {row["top1"]:.2f}%  '
            f'top-5 {row["top5"]:.2f}%  loss {row["loss"]:.4f}  {row["images_per_s"]:.0f} img/s')


def add_cli(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``entrannas validate``."""
    p = subparsers.add_parser(
        'validate', help='top-1 / top-5, loss and images/s of a model on a data set split',
        description=__doc__.split('\n\n')[0].split(': ', 1)[1] + ' ' + __doc__.split('\n\n')[1].replace('\n', ' '))
    p.add_argument('model', metavar='MODEL', help='registered name (with --pretrained for its weights), training run '
                   'directory, exported folder, .safetensors file (with --genotype) or hf-hub:ORG/NAME')
    p.add_argument('--pretrained', action='store_true', help='registered name: load its published (or cached) '
                   'weights')
    p.add_argument('--genotype', help='the genotype of a .safetensors file (bundled name or file); for a registered '
                   'name, build this genotype instead of its own')
    p.add_argument('--last', action='store_true', help="run directory: the last epoch's weights instead of the best")
    p.add_argument('--ema', action='store_true', help="run directory: the EMA weights (runs trained with --ema)")
    p.add_argument('--dataset', choices=DATASETS, help="data set (default: a run's own)")
    p.add_argument('--data-dir', help="where it lives (default: a run's own, else data)")
    p.add_argument('--split', default='test', choices=('test', 'val', 'train'),
                   help='split: test (small data sets; folders: the val/ folder) or train (default test)')
    p.add_argument('--subset', type=int, metavar='N', help='the first N images only')
    p.add_argument('--image-size', type=int, help="input size (default: the weights' own)")
    p.add_argument('--batch-size', type=int, default=256, help='batch size (default 256)')
    p.add_argument('--device', help='cpu, cuda or cuda:N (default cuda if available)')
    p.add_argument('--threads', type=int, help='CPU threads')
    p.add_argument('--workers', type=int, help='loader processes for folder data (default: the CPU count, at most 8)')
    p.add_argument('--amp', action='store_true', help='bfloat16 autocast')
    p.add_argument('--channels-last', action='store_true', help='channels_last memory format')
    p.add_argument('--json', action='store_true', help='one JSON object: top1, top5, loss, images, images_per_s, ...')
    p.set_defaults(func=_cli_validate)
    return p

