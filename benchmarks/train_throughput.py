"""Training throughput of ``entrannas train`` against a bare loop on the same model, data and batch.

The bare loop is what any trainer must do: forward, loss (with the auxiliary head's, as the preset trains),
backward, optimizer step, over batches already normalised in memory; nothing else. The pipeline is
``entrannas_timm.train.trainer.run`` itself, one epoch per round, with the default workers: sampling, DARTS's
augmentation (crop, flip, Cutout), the drop-path schedule, gradient clipping, metrics and bookkeeping. Its
images/s are those it records in ``metrics.jsonl`` (the training phase of the epoch; validation and file writes
are not training throughput and are reported apart).

Rounds interleave the two, in one process with the same threads, so a busy machine slows both alike; the
summary gives the medians over rounds and their ratio (the target is >= 0.9 on CPU).

    python benchmarks/train_throughput.py --rounds 5 --steps 20 --threads 2
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch

ROOT = Path(__file__).resolve().parents[1]


def _pipeline(args: argparse.Namespace, workdir: Path, round_: int) -> Dict[str, float]:
    from entrannas_timm.train.config import resolve_config
    from entrannas_timm.train.trainer import run
    cfg = resolve_config(dict(
        dataset='fashion-mnist', data_dir=args.data_dir, preset='fashion-mnist', genotype=args.genotype,
        channels=args.channels, layers=args.layers, batch_size=args.batch_size, subset=args.steps * args.batch_size,
        val_subset=args.batch_size, epochs=1, seed=0, quiet=True, output=str(workdir / f'run{round_}'),
        **({} if args.workers is None else {'workers': args.workers})))
    t0 = time.perf_counter()
    rec = run(cfg).records[0]
    return dict(images_per_s=rec['images_per_s'], train_s=rec['train_time_s'], epoch_s=rec['epoch_time_s'],
                run_s=time.perf_counter() - t0)


def _bare(args: argparse.Namespace, x: torch.Tensor, y: torch.Tensor) -> Dict[str, float]:
    """The same network and objective: forward, loss, backward, SGD step; batches ready in memory."""
    import timm

    import entrannas_timm  # noqa: F401  (registers the models)
    from entrannas_timm.train.config import PRESETS
    p = PRESETS['fashion-mnist']
    torch.manual_seed(0)
    model = timm.create_model('cellnet_cifar', genotype=args.genotype, channels=args.channels, layers=args.layers,
                              in_chans=1, num_classes=10, auxiliary=True, drop_path_rate=p['drop_path'])
    model.set_drop_path(0.)  # epoch 1 of the ramp, as the pipeline's round
    opt = torch.optim.SGD(model.parameters(), lr=p['lr'], momentum=p['momentum'], weight_decay=p['weight_decay'])
    ce = torch.nn.CrossEntropyLoss()
    model.train()
    b = args.batch_size
    t0 = time.perf_counter()
    for k in range(args.steps):
        xb, yb = x[k * b:(k + 1) * b], y[k * b:(k + 1) * b]
        logits, aux = model(xb)
        loss = ce(logits, yb) + p['aux_weight'] * ce(aux, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    seconds = time.perf_counter() - t0
    return dict(images_per_s=args.steps * b / seconds, train_s=seconds)


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--rounds', type=int, default=5)
    ap.add_argument('--steps', type=int, default=20, help='optimizer steps per round and variant')
    ap.add_argument('--batch-size', type=int, default=96, help="the fashion-mnist preset's batch (default 96)")
    ap.add_argument('--channels', type=int, default=16, help="the fashion-mnist preset's network (default 16)")
    ap.add_argument('--layers', type=int, default=8)
    ap.add_argument('--genotype', default='darts_v2')
    ap.add_argument('--threads', type=int, default=None, help='torch CPU threads (default: torch default)')
    ap.add_argument('--workers', type=int, default=None, help="loader workers (default: the trainer's default)")
    ap.add_argument('--data-dir', default='data', help='Fashion-MNIST (the Debian package files are found too)')
    ap.add_argument('--output', type=Path, help='also append the JSON lines to this file')
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    from entrannas_timm.data.loader import load_data
    data = load_data('fashion-mnist', args.data_dir, 'train', args.steps * args.batch_size)
    mean, std = data.mean[0], data.std[0]
    x = (data.images.float() / 255. - mean) / std  # type: ignore[union-attr]
    y = data.labels
    lines: List[Dict] = [dict(config=dict(vars(args), output=str(args.output) if args.output else None,
                                          threads=torch.get_num_threads(), torch=torch.__version__))]
    results: Dict[str, List[Dict[str, float]]] = {'bare': [], 'pipeline': []}
    _bare(argparse.Namespace(**dict(vars(args), steps=1)), x, y)  # untimed: one-time kernel set-up for these shapes
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for variant in (('bare', 'pipeline') if r % 2 == 0 else ('pipeline', 'bare')):
                res = _bare(args, x, y) if variant == 'bare' else _pipeline(args, Path(tmp), r)
                results[variant].append(res)
                lines.append(dict(round=r, variant=variant, **res))
                print(json.dumps(lines[-1]), flush=True)
    med = {v: statistics.median(r['images_per_s'] for r in rs) for v, rs in results.items()}
    ratios = [p['images_per_s'] / b['images_per_s'] for b, p in zip(results['bare'], results['pipeline'])]
    summary = dict(summary=True, bare_images_per_s=med['bare'], pipeline_images_per_s=med['pipeline'],
                   ratio=med['pipeline'] / med['bare'], ratio_per_round=ratios,
                   pipeline_epoch_s_median=statistics.median(r['epoch_s'] for r in results['pipeline']),
                   target=0.9, meets_target=med['pipeline'] / med['bare'] >= 0.9)
    print(json.dumps(summary), flush=True)
    if args.output:
        with open(args.output, 'a') as f:
            f.write(''.join(json.dumps(line) + '\n' for line in lines + [summary]))
    return 0


if __name__ == '__main__':
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
