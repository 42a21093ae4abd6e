"""Search quality per engine-cell placement: search, then train each derived cell from scratch and test it.

Where the engine cells sit decides what a search costs (``python -m search.bench --engine-cells
first,last``) and may decide what it finds: engine cells are the only cells whose architecture gradient
is computed, so their resolution and depth shape the signal. This study runs one short EnTranNAS search
per (placement, seed) on real Fashion-MNIST, trains the derived cell from scratch as a small CIFAR-family
network on the training images and reports its accuracy on the 10,000 test images, with the search's own
cost. One JSON line per run, then one summary line per placement (mean and spread over seeds).

    .venv/bin/python benchmarks/engine_placement.py --placements first,last --seeds 0,1 \\
        --output benchmarks/results-cpu-placement-quality.jsonl

The defaults fit a 2-core CPU in well under an hour; they are a small proxy of the CIFAR protocol, so
differences smaller than the spread over seeds mean nothing. On a GPU, raise ``--search-epochs``,
``--subset``, ``--image-size`` and ``--train-epochs`` towards the paper's protocol.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import timm
import torch
import torch.nn.functional as F
from timm.optim import create_optimizer_v2
from timm.scheduler import CosineLRScheduler

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import entrannas_timm  # noqa: E402,F401  (registers the models)
from entrannas_timm import Genotype  # noqa: E402
from entrannas_timm.models.profile import model_cost  # noqa: E402
from search.config import resolve_config  # noqa: E402
from search.data import read_mnist_like  # noqa: E402
from search.loop import run  # noqa: E402


def _fashion_mnist(data_dir: str, split: str) -> tuple:
    x, y = read_mnist_like('fashion-mnist', data_dir, split)
    return x.float().div_(255.).sub_(0.2860).div_(0.3530), y


def train_and_test(genotype: Genotype, args: argparse.Namespace, seed: int) -> Dict[str, Any]:
    """Train the genotype's CIFAR-family network from scratch on Fashion-MNIST; accuracy on the test set."""
    torch.manual_seed(seed)
    x, y = _fashion_mnist(args.data_dir, 'train')
    xt, yt = _fashion_mnist(args.data_dir, 'test')
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:args.train_images]
    x, y = x[idx], y[idx]
    model = timm.create_model('darts_v2_cifar10', genotype=genotype, in_chans=1, num_classes=10,
                              channels=args.eval_channels, layers=args.eval_layers, drop_path_rate=0.)
    cost = model_cost(model, (1, 28, 28))
    opt = create_optimizer_v2(model, 'momentum', lr=args.train_lr, weight_decay=3e-4, momentum=0.9)
    steps_per_epoch = (len(x) + args.train_batch - 1) // args.train_batch
    sched = CosineLRScheduler(opt, t_initial=args.train_epochs * steps_per_epoch, t_in_epochs=False)
    t0, step = time.perf_counter(), 0
    for _ in range(args.train_epochs):
        model.train()
        for b in torch.randperm(len(x)).split(args.train_batch):
            xb = x[b]
            flip = torch.rand(len(b)) < 0.5
            xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
            loss = F.cross_entropy(model(xb), y[b])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.)
            opt.step()
            step += 1
            sched.step_update(step)
    model.eval()
    with torch.no_grad():
        correct = sum(int((model(xt[i:i + 500]).argmax(1) == yt[i:i + 500]).sum()) for i in range(0, len(xt), 500))
    return {'test_acc': correct / len(xt), 'eval_params': cost['params'], 'eval_macs': cost['macs'],
            'train_s': round(time.perf_counter() - t0, 1)}


def study_one(placement: str, seed: int, args: argparse.Namespace) -> Dict[str, Any]:
    out = Path(args.workdir) / f'{placement.replace(",", "-")}-s{seed}'
    cfg = resolve_config(dict(
        method=args.method, dataset='fashion-mnist', data_dir=args.data_dir, engine_cells=placement, seed=seed,
        subset=args.subset, image_size=args.image_size, channels=args.channels, layers=args.layers,
        epochs=args.search_epochs, batch_size=args.batch_size, workers=0, threads=args.threads, device='cpu',
        output=str(out), quiet=True, eval_channels=args.eval_channels, eval_layers=args.eval_layers))
    t0 = time.perf_counter()
    result = run(cfg)
    search_s = time.perf_counter() - t0
    prov = result.genotype.provenance
    rec = {'placement': placement, 'engine_cells': prov['engine_cells'], 'seed': seed, 'method': args.method,
           'search_s': round(search_s, 1), 'supernet_val_acc': result.records[-1]['val_acc'],
           'genotype': result.genotype.to_dict()}
    rec.update(train_and_test(result.genotype, args, seed))
    return rec


def summarise(records: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    out = []
    for placement in dict.fromkeys(r['placement'] for r in records):
        rs = [r for r in records if r['placement'] == placement]
        accs = [r['test_acc'] for r in rs]
        out.append({'summary': placement, 'runs': len(rs), 'test_acc_mean': round(statistics.mean(accs), 4),
                    'test_acc_spread': round(max(accs) - min(accs), 4),
                    'search_s_mean': round(statistics.mean(r['search_s'] for r in rs), 1),
                    'eval_macs_mean': round(statistics.mean(r['eval_macs'] for r in rs))})
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--placements', default='first,last',
                   help="engine-cell placements, comma-separated (index lists: separate with ';', e.g. '0,2;5,7')")
    p.add_argument('--seeds', default='0,1', help='search and training seeds, comma-separated')
    p.add_argument('--method', default='entrannas', choices=('entrannas', 'entrannas-dst'))
    p.add_argument('--data-dir', default='~/data', help='torchvision-layout root (the Debian package is found too)')
    p.add_argument('--subset', type=int, default=3200, help='search images per split (default 3200)')
    p.add_argument('--image-size', type=int, default=16, help='search resolution (default 16)')
    p.add_argument('--channels', type=int, default=8, help='search net channels (default 8)')
    p.add_argument('--layers', type=int, default=8, help='search net cells (default 8)')
    p.add_argument('--search-epochs', type=int, default=6)
    p.add_argument('--batch-size', type=int, default=32)
    p.add_argument('--eval-channels', type=int, default=16, help='evaluation net channels (default 16)')
    p.add_argument('--eval-layers', type=int, default=8, help='evaluation net cells (default 8)')
    p.add_argument('--train-images', type=int, default=10000, help='training images for evaluation (default 10000)')
    p.add_argument('--train-epochs', type=int, default=4)
    p.add_argument('--train-batch', type=int, default=64)
    p.add_argument('--train-lr', type=float, default=0.05)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--workdir', default='runs/engine-placement', help='where the search runs are written')
    p.add_argument('--output', help='also write the JSON lines to this file')
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    placements = [s.strip() for s in args.placements.split(';' if ';' in args.placements else ',') if s.strip()]
    try:
        seeds = [int(s) for s in args.seeds.split(',')]
    except ValueError:
        raise SystemExit(f'--seeds: expected integers such as 0,1, got {args.seeds!r}') from None
    records = []
    for seed in seeds:  # seeds outermost: a stopped study still has every placement at the first seed
        for placement in placements:
            rec = study_one(placement, seed, args)
            records.append(rec)
            print(json.dumps(rec), flush=True)
    lines = records + summarise(records)
    for rec in lines[len(records):]:
        print(json.dumps(rec), flush=True)
    if args.output:
        from entrannas_timm.utils.files import write_atomic
        write_atomic(Path(args.output), ''.join(json.dumps(r) + '\n' for r in lines))
    return 0


if __name__ == '__main__':
    sys.exit(main())
