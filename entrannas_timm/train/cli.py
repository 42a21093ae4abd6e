"""``entrannas train`` (also ``python -m entrannas_timm.train``): train a zoo model or any genotype from scratch.

The evaluation protocols of the papers are presets (docs/method.md, "Protocols"); every value is a flag that
overrides them.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from typing import Any, Dict, Optional, Sequence

from ..data.datasets import DataError
from ..data.loader import DATASETS
from ..models.genotype import GenotypeError
from ..utils.errors import CLIError
from .config import PRESETS, SCHEDULES, TrainConfig, resolve_config
from .trainer import run

__all__ = ['add_arguments', 'add_cli', 'build_parser', 'main']


# ---- flags ---------------------------------------------------------------------------------------------
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
                   'darts_v2_cifar10, or a same-budget baseline (baseline_linear, baseline_cnn: with --aux-weight 0 '
                   '--drop-path 0); default: the family network of the data (cellnet_cifar, or cellnet_imagenet for '
                   'folder data) built from --genotype')
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
    g.add_argument('--crop-padding', type=int, metavar='PIXELS', help='random crop after zero padding by this many '
                   'pixels (CIFAR and MNIST-family arrays; folder data use RandomResizedCrop instead; 0 = off, as a '
                   'linear classifier of the pixels needs)')
    g.add_argument('--precise-bn', type=int, metavar='BATCHES', help='before each validation, re-estimate the '
                   'batch-norm statistics on this many training batches without augmentation, with the weights of '
                   'the epoch end (0 = off: the running averages of training); short runs need it (docs/method.md, '
                   'Precise BN)')
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

