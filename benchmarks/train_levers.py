"""CPU speed levers of ``entrannas train`` on the zoo's training protocol, side by side.

Every (variant, round) is one fresh ``entrannas train`` process on the same Fashion-MNIST images: two epochs on
``--subset`` training images, so the second epoch is timed after compilation, caches and allocator warm-up.
Rounds interleave the variants, so a busy phase of a shared machine slows all of them alike. Variants combine
``--threads``, ``--batch-size``, ``--channels-last`` and ``--compile``. Output: JSON lines, one per variant
(median over rounds of images/s on the wall clock, CPU seconds per 1,000 images, and the first epoch's extra
seconds: compilation), then a summary with each variant's throughput relative to the first.

    python benchmarks/train_levers.py --genotype darts_v2 --image-size 28 --rounds 3 \\
        --variants t1-b96,t1-b256,t1-b256-cl,t1-b256-compile,t2-b256 --output benchmarks/results-cpu-train-levers.jsonl
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List

ROOT = Path(__file__).resolve().parents[1]


def _parse_args(argv: List[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--genotype', default='darts_v2', help='bundled name or genotype file')
    p.add_argument('--channels', type=int, default=8)
    p.add_argument('--layers', type=int, default=5)
    p.add_argument('--image-size', type=int, default=28)
    p.add_argument('--subset', type=int, default=2560, help='training images per epoch')
    p.add_argument('--val-subset', type=int, default=500, help='test images validated after each epoch')
    p.add_argument('--rounds', type=int, default=3)
    p.add_argument('--variants', default='t1-b96,t1-b256,t1-b256-cl,t1-b256-compile,t2-b256',
                   help='comma-separated t<threads>-b<batch>[-cl][-compile]')
    p.add_argument('--output', help='append the JSON lines to this file too')
    return p.parse_args(argv)


def _flags(variant: str) -> List[str]:
    """``t2-b256-cl-compile`` -> the flags of that variant."""
    flags: List[str] = []
    for part in variant.split('-'):
        if part[0] == 't' and part[1:].isdigit():
            flags += ['--threads', part[1:]]
        elif part[0] == 'b' and part[1:].isdigit():
            flags += ['--batch-size', part[1:]]
        elif part == 'cl':
            flags.append('--channels-last')
        elif part == 'compile':
            flags.append('--compile')
        else:
            raise SystemExit(f'--variants: cannot read {part!r} of {variant!r} (t<threads>-b<batch>[-cl][-compile])')
    return flags


def _run(args: argparse.Namespace, variant: str, out: Path) -> Dict[str, Any]:
    cmd = [sys.executable, '-m', 'entrannas_timm', 'train', '--genotype', args.genotype, '--dataset',
           'fashion-mnist', '--channels', str(args.channels), '--layers', str(args.layers), '--image-size',
           str(args.image_size), '--subset', str(args.subset), '--val-subset', str(args.val_subset), '--epochs', '2',
           '--cutout', '0', '--drop-path', '0', '--precise-bn', '0', '--workers', '0', '--json',
           *_flags(variant), '--output', str(out)]
    lines = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout.splitlines()
    epochs = [json.loads(line) for line in lines if line.startswith('{') and '"epoch"' in line]
    first, second = epochs[0], epochs[1]
    return dict(images_per_s=second['images_per_s'],
                cpu_s_per_1k=1000 * second['epoch_cpu_s'] / args.subset,
                first_epoch_extra_s=first['train_time_s'] - second['train_time_s'])


def main(argv: List[str] | None = None) -> int:
    args = _parse_args(argv)
    variants = args.variants.split(',')
    for v in variants:
        _flags(v)
    runs: Dict[str, List[Dict[str, Any]]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for v in variants:
                runs[v].append(_run(args, v, Path(tmp) / f'{v}-r{r}'))
    config = dict(genotype=args.genotype, channels=args.channels, layers=args.layers, image_size=args.image_size,
                  subset=args.subset, rounds=args.rounds)
    lines = [dict(config=config)]
    for v in variants:
        line: Dict[str, Any] = dict(variant=v, flags=' '.join(_flags(v)))
        for key in runs[v][0]:
            values = [run[key] for run in runs[v]]
            line[key] = statistics.median(values)
            line[f'{key}_rounds'] = [round(x, 2) for x in values]
        lines.append(line)
    base = lines[1]['images_per_s']
    lines.append(dict(summary=True, throughput_vs_first={line['variant']: round(line['images_per_s'] / base, 2)
                                                         for line in lines[1:]}))
    text = ''.join(json.dumps(line) + '\n' for line in lines)
    print(text, end='')
    if args.output:
        with open(args.output, 'a', encoding='utf-8') as f:
            f.write(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
