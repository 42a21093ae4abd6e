"""``python -m search``: the command line of the search (flags -> :class:`SearchConfig` -> :func:`loop.run`);
``python -m search consistency RUN`` measures a run's consistency (:mod:`search.consistency`);
``python -m search dst-budget RUN`` costs a DST run's cells at other thresholds (:mod:`search.dst_budget`)."""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional, Sequence

from .config import (
    ARCH_LR_SCHEDULES,
    DATASETS,
    METHODS,
    PRESETS,
    SPACES,
    STEMS,
    ConfigError,
    SearchConfig,
    resolve_config,
)
from .methods import EnTranNASDST, PCDarts

__all__ = ['build_parser', 'parse_config', 'main']

_D = SearchConfig()

_EPILOG = """\
presets (docs/method.md, Protocols; explicit flags override them):
""" + '\n'.join(f'  {name:14s} ' + ' '.join(f'{k}={v}' for k, v in p.items()) for name, p in PRESETS.items()) + """

examples:
  python -m search --preset cifar10 --method entrannas --data-dir ~/data --output runs/entrannas-c10-s0
  python -m search --method entrannas-dst --dataset fashion-mnist --epochs 50 --output runs/dst-fm-s0
  torchrun --nproc_per_node 8 -m search --preset imagenet --method entrannas-dst --data-dir /data/imagenet
  python -m search --method darts --synthetic --subset 64 --epochs 1 --output /tmp/smoke
  python -m search --preset cifar10 --method entrannas-dst --consistency-epochs 10,25,end --output runs/dst
  python -m search consistency runs/dst --batches 20 --steps 200   (see python -m search consistency --help)
  python -m search dst-budget runs/dst --thresholds 0.8,0.9   (see python -m search dst-budget --help)
"""


def build_parser() -> argparse.ArgumentParser:
    """Every flag defaults to 'not given' so presets and method defaults can fill what the user left out."""
    p = argparse.ArgumentParser(
        prog='python -m search', description='Differentiable architecture search (DARTS, PC-DARTS, EnTranNAS, '
        'EnTranNAS-DST) on one super-net; writes a genotype the entrannas_timm zoo builds.',
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter, argument_default=argparse.SUPPRESS)
    g = p.add_argument_group('method')
    g.add_argument('--method', choices=METHODS, help=f'search method (default {_D.method}): '
                   + ', '.join(f'{name} ({cls.summary})' for name, cls in METHODS.items()))
    g.add_argument('--preset', choices=sorted(PRESETS), help='a named search protocol (listed below)')
    g.add_argument('--space', choices=SPACES, help=f'operation space: standard (8 ops) or extended (13 ops) '
                   f'(default {_D.space})')
    g.add_argument('--unrolled', action='store_true', help='darts only: second-order (unrolled) architecture '
                   'gradient with a finite-difference Hessian-vector product')
    g.add_argument('--engine-cells', metavar='WHERE', help="entrannas*: which cells are engine cells: 'last' "
                   "(default: last normal + second reduction cell), 'first', 'all' (DARTS behaviour) or indices "
                   "such as 0,2; the rest are transit cells")
    g.add_argument('--feature-sharing', dest='feature_sharing', action='store_true',
                   help='entrannas*: one op instance per (source node, op) (default on for entrannas*)')
    g.add_argument('--no-feature-sharing', dest='feature_sharing', action='store_false',
                   help='entrannas*: one op instance per (edge, op), as DARTS (ablation)')
    g.add_argument('--temperature', type=float, help=f'softmax temperature tau, p = softmax(alpha / tau) '
                   f'(default {_D.temperature})')
    g.add_argument('--lam', type=float, help='entrannas-dst: weight of the sparsity regulariser, '
                   f'L_arch = L_val + lam * mean_j(1 - t_j); larger -> sparser cells (default {EnTranNASDST.lam})')
    g.add_argument('--init-threshold', type=float, help='entrannas-dst: initial threshold t_j in (0, 1) '
                   f'(default {EnTranNASDST.init_threshold})')
    g.add_argument('--dst-regularizer', help='entrannas-dst: form of the lam term (default '
                   f'{EnTranNASDST.dst_regularizer!r})')
    g.add_argument('--threshold-decay', type=float, help='entrannas-dst: Adam weight decay of the threshold logits '
                   f'beta_j, separate from --arch-weight-decay (default {EnTranNASDST.threshold_decay})')
    g.add_argument('--pc-k', type=int, help='pc-darts: 1/K of the channels go through the mixed op '
                   f'(default {PCDarts.pc_k})')

    g = p.add_argument_group('super-net')
    g.add_argument('--channels', type=int, help=f'initial channels (default {_D.channels})')
    g.add_argument('--layers', type=int, help=f'cells; reductions at 1/3 and 2/3 depth (default {_D.layers})')
    g.add_argument('--nodes', type=int, help=f'intermediate nodes per cell (default {_D.nodes})')
    g.add_argument('--stem', choices=STEMS, help='stem: cifar (3x3 conv) or imagenet (three stride-2 convs) '
                   '(default: imagenet for imagenet/imagefolder, else cifar)')

    g = p.add_argument_group('data')
    g.add_argument('--dataset', choices=DATASETS, help=f'training set to search on (default {_D.dataset}); '
                   'imagefolder = any ImageFolder root given by --data-dir')
    g.add_argument('--data-dir', help=f'where the data set lives or is downloaded to (default {_D.data_dir}); '
                   'Fashion-MNIST is also found in /usr/share/datasets/fashion-mnist')
    g.add_argument('--subset', type=int, metavar='N', help='use only N images of each split (quick trials)')
    g.add_argument('--synthetic', action='store_true', help="random data of the dataset's shape (benchmarks, "
                   'tests); --subset N sets its size (default 256 per split)')
    g.add_argument('--image-size', type=int, help='training image size (default: native; 224 for ImageNet)')
    g.add_argument('--in-chans', type=int, help='--synthetic only: input channels')
    g.add_argument('--num-classes', type=int, help='--synthetic only: number of classes')
    g.add_argument('--train-portion', type=float, help=f'CIFAR-like and imagefolder: fraction of the training '
                   f'set for weights, the rest for the architecture (default {_D.train_portion})')
    g.add_argument('--imagenet-portion', type=float, help=f'imagenet: fraction of train for weights and another '
                   f'disjoint one for the architecture, random per seed (default {_D.imagenet_portion})')
    g.add_argument('--workers', type=int, help=f'data loader processes (default {_D.workers})')

    g = p.add_argument_group('optimisation')
    g.add_argument('--epochs', type=int, help=f'search epochs (default {_D.epochs})')
    g.add_argument('--batch-size', type=int, help=f'global batch size, split over distributed processes '
                   f'(default {_D.batch_size})')
    g.add_argument('--lr', type=float, help=f'weight SGD learning rate, cosine to --min-lr (default {_D.lr})')
    g.add_argument('--min-lr', type=float, help=f'final learning rate of the cosine schedule (default {_D.min_lr})')
    g.add_argument('--momentum', type=float, help=f'weight SGD momentum (default {_D.momentum})')
    g.add_argument('--weight-decay', type=float, help=f'weight SGD weight decay (default {_D.weight_decay})')
    g.add_argument('--grad-clip', type=float, help=f'weight gradient norm clip, 0 = off (default {_D.grad_clip})')
    g.add_argument('--lr-warmup-epochs', type=int, metavar='N', help='linear warm-up of the weight learning rate '
                   'over N epochs: lr/N, 2 lr/N, ..., then the cosine schedule (PC-DARTS ImageNet: 5) '
                   f'(default {_D.lr_warmup_epochs})')
    g.add_argument('--arch-lr', type=float, help=f'architecture Adam learning rate (default {_D.arch_lr})')
    g.add_argument('--arch-lr-schedule', choices=ARCH_LR_SCHEDULES,
                   help="'constant' (default, the DARTS family) or 'cosine': the architecture lr decays as the "
                        "weights' cosine, to 0 at the last epoch (docs/method.md, *EnTranNAS-DST*)")
    g.add_argument('--arch-betas', type=float, nargs=2, metavar=('B1', 'B2'),
                   help=f'architecture Adam betas (default {_D.arch_betas[0]} {_D.arch_betas[1]})')
    g.add_argument('--arch-weight-decay', type=float, help=f'architecture Adam weight decay '
                   f'(default {_D.arch_weight_decay})')
    g.add_argument('--arch-grad-clip', type=float, help='architecture gradient norm clip, 0 = off (PC-DARTS '
                   f'ImageNet: 5) (default {_D.arch_grad_clip})')
    g.add_argument('--arch-warmup-epochs', type=int, help='epochs of weight-only training before architecture '
                   f'updates begin (default {_D.arch_warmup_epochs})')
    g.add_argument('--eval-channels', type=int, help='channels of the evaluation network whose params/MACs are '
                   'logged (default 36 CIFAR-like, 48 ImageNet)')
    g.add_argument('--eval-layers', type=int, help='cells of that evaluation network (default 20 / 14)')

    g = p.add_argument_group('consistency (docs/method.md, Consistency; off by default)')
    g.add_argument('--consistency-epochs', metavar='EPOCHS', help="after these epochs (comma-separated, 1-based, "
                   "'end' = the last), measure on the held-out split the super-net, the derived network with "
                   'inherited weights, after batch-norm re-calibration, after a short fine-tune, and trained from '
                   'scratch; written to consistency.jsonl, timed apart from the epochs')
    g.add_argument('--consistency-batches', type=int, metavar='N', help='training batches that re-estimate the '
                   f'derived network\'s batch-norm statistics (default {_D.consistency_batches})')
    g.add_argument('--consistency-steps', type=int, metavar='S', help='fine-tune and from-scratch SGD steps '
                   f'(default {_D.consistency_steps})')
    g.add_argument('--consistency-images', type=int, metavar='M', help='measure the first M held-out images '
                   '(default: the whole held-out split)')
    g.add_argument('--consistency-lr', type=float, metavar='LR', help='constant SGD learning rate of the fine-tune '
                   'and the from-scratch training (default: --lr)')

    g = p.add_argument_group('execution')
    g.add_argument('--device', help='cpu, cuda or cuda:N (default cuda if available; torchrun: one GPU per rank)')
    g.add_argument('--threads', type=int, help='CPU threads per process (default: torch default)')
    g.add_argument('--amp', action='store_true', help='bf16 autocast (CUDA)')
    g.add_argument('--channels-last', action='store_true', help='channels_last memory format')
    g.add_argument('--seed', type=int, help=f'random seed of weights, data order and splits (default {_D.seed})')
    g.add_argument('--deterministic', action='store_true', help='deterministic algorithms only (slower on GPU)')

    g = p.add_argument_group('output')
    g.add_argument('--output', help='run directory (default runs/METHOD-DATASET-sSEED): config.json, '
                   'metrics.jsonl, checkpoint.pt, genotype.json')
    g.add_argument('--resume', nargs='?', const='auto', metavar='CHECKPOINT',
                   help='continue the run in --output from its checkpoint.pt (or from CHECKPOINT)')
    g.add_argument('--export-genotype', metavar='genotypes/NAME.json', help='also write the final genotype '
                   "here; in genotypes/ it builds with timm.create_model(..., genotype='NAME')")
    g.add_argument('--allow-unsearched-genotype', action='store_true',
                   help='write a genotype even if the architecture was never updated (--arch-warmup-epochs not '
                   'smaller than --epochs): the initial architecture, a baseline; refused without this flag')
    g.add_argument('--quiet', action='store_true', help='print nothing but errors')
    g.add_argument('--json', action='store_true', help='print only JSON lines: one per epoch, then a "done" line')
    return p


def parse_config(argv: Optional[Sequence[str]] = None) -> SearchConfig:
    """Flags -> resolved :class:`SearchConfig` (raises :class:`ConfigError` for contradictions)."""
    ns = build_parser().parse_args(argv)
    explicit = vars(ns)
    if 'arch_betas' in explicit:
        explicit['arch_betas'] = tuple(explicit['arch_betas'])
    return resolve_config(explicit)


def main(argv: Optional[List[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if args[:1] == ['dst-budget']:
        from .dst_budget import main as dst_budget_main
        return dst_budget_main(args[1:])
    if args[:1] == ['consistency']:
        from .consistency import main as consistency_main
        return consistency_main(args[1:])
    from entrannas_timm import GenotypeError  # heavy imports only once the flags are valid

    from .data import DataError
    from .loop import SearchError, run
    try:
        cfg = parse_config(args)
        run(cfg)
    except (ConfigError, DataError, SearchError, GenotypeError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2 if isinstance(e, ConfigError) else 1
    except KeyboardInterrupt as e:  # run() says what was kept; before it started, nothing was written
        print(str(e) or 'interrupted before the search started; nothing was written', file=sys.stderr)
        return 130
    return 0
