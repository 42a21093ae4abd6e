"""Time and peak memory of ``entrannas report`` against the length of a search run.

For each size, a synthetic EnTranNAS-DST run directory is written through the record module
(``entrannas_timm.reports.records``), with architecture snapshots made by a real ``SearchNetwork.arch_snapshot()``:
the super-net's architecture parameters follow a DST-like trajectory (every connection active at first,
thresholds rising while the weights sharpen, so connections are cut over the first part of the run, then
the cell stays as it is). Then, each in a fresh process:

- ``first``: ``build_report`` on the run (every frame of the film drawn: the epochs where the derived cell
  changed, with the first and the last, thinned to the default ``--max-frames``);
- ``again``: ``build_report`` once more on the same run (nothing changed: every frame is reused).

Each line reports wall seconds, CPU seconds of the report (its process and its ``dot`` children: the figure
that a busy machine does not inflate), the report process's peak RSS and its RSS once the libraries are
imported (the difference is what the report itself holds), the GIF's frame count, the number of PNG frames
and the size of ``report.html``. Peak RSS is the process's own high-water mark (``VmHWM`` in
``/proc/self/status`` where there is one): ``ru_maxrss`` of a freshly started process also counts the parent it
was started from (Linux carries it across ``exec``), here the process that wrote the synthetic run.
``--baseline DIR`` also runs ``first`` with the package found in DIR (an older checkout) for a side-by-side
figure.

    nice -n 10 python benchmarks/report_scaling.py --epochs 50,300,3000
    python benchmarks/report_scaling.py --epochs 50,300 --baseline /tmp/old-checkout
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

ROOT = Path(__file__).resolve().parents[1]


def write_run(run_dir: Path, epochs: int, seed: int = 0) -> None:
    """A finished DST search of ``epochs`` epochs: config.json, metrics.jsonl, genotype.json."""
    import torch

    from entrannas_timm.reports.records import epoch_line, search_provenance, write_config, write_metrics
    from search.supernet import SearchNetwork
    torch.set_num_threads(1)  # tiny tensors: more threads only add overhead
    net = SearchNetwork(method='entrannas-dst', num_classes=10, channels=4, layers=3)  # arch shapes: nodes x ops
    rng = random.Random(seed)
    # per edge: the op it comes to prefer and how strongly (two strong edges per node survive the cuts)
    preferred = {kind: [rng.randrange(len(net.ops)) for _ in net.edges] for kind in ('normal', 'reduce')}
    strength = {kind: [] for kind in ('normal', 'reduce')}
    for kind in strength:
        for j in range(net.nodes):
            strong = set(rng.sample(range(j + 2), 2))
            strength[kind] += [1.0 if i in strong else rng.uniform(0.2, 0.6) for i in range(j + 2)]
    cut_by = max(2, epochs // 3)  # connections are cut over the first third of the run, then the cell holds
    start = math.log(0.3 / 0.7)   # thresholds t_j = sigmoid(logit) start at 0.3 (the default)
    noise = torch.Generator().manual_seed(seed)
    lines: List[str] = []
    for epoch in range(1, epochs + 1):
        progress = min((epoch - 1) / (cut_by - 1), 1.0)
        with torch.no_grad():
            for kind in ('normal', 'reduce'):
                alphas = getattr(net, f'alphas_{kind}')
                alphas.normal_(0, 0.05, generator=noise)
                for e, k in enumerate(preferred[kind]):
                    alphas[e, k] += 5 * progress * strength[kind][e]
                getattr(net, f'threshold_logits_{kind}').fill_(start + (2.0 - start) * progress)
        net.rederive()
        lines.append(epoch_line({
            'epoch': epoch, 'epochs': epochs, 'lr': 0.0125 * (1 + math.cos(math.pi * epoch / epochs)), 'arch_lr': 6e-4,
            'train_loss': 2.3 / (1 + 0.05 * epoch), 'train_acc': 1 - 0.9 / (1 + 0.05 * epoch),
            'val_loss': 2.3 / (1 + 0.04 * epoch), 'val_acc': 1 - 0.9 / (1 + 0.04 * epoch),
            'arch_updates': True, 'genotype': net.genotype().to_dict(), 'arch': net.arch_snapshot(),
            'params': 3_000_000, 'macs': 500_000_000, 'epoch_time_s': 60.0, 'epoch_cpu_s': 110.0,
            'peak_mem_mb': 2000.0}))
    run_dir.mkdir(parents=True)
    write_config(run_dir / 'config.json', {'method': 'entrannas-dst', 'dataset': 'cifar10', 'space': 'standard',
                                           'epochs': epochs, 'seed': seed})
    write_metrics(run_dir / 'metrics.jsonl', lines)
    prov = search_provenance(method='entrannas-dst', dataset='cifar10', seed=seed, epochs=epochs, search_settings={},
                             engine_cells=[1, 2], search_cost={'wall_time_s': 60.0 * epochs}, code_version={},
                             metrics={}, evaluation_network={}, arch_update_epochs=epochs)
    net.genotype().replace(name=run_dir.name, provenance=prov).save(run_dir / 'genotype.json')


def _peak_rss_mb() -> float:
    """This process's peak RSS in MB: its own high-water mark, not the one ``ru_maxrss`` inherits from its parent."""
    try:
        with open('/proc/self/status') as f:
            return next(int(line.split()[1]) for line in f if line.startswith('VmHWM:')) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(run_dir: str, out_dir: str) -> None:
    """One report in this (fresh) process; prints one JSON line."""
    from PIL import Image

    from entrannas_timm.reports.report import build_report
    imported_mb = _peak_rss_mb()
    cpu0 = sum(getattr(resource.getrusage(resource.RUSAGE_SELF), f) for f in ('ru_utime', 'ru_stime'))
    t0 = time.perf_counter()
    page = build_report(run_dir, out_dir)
    seconds = time.perf_counter() - t0
    with Image.open(Path(out_dir) / 'cells.gif') as gif:
        frames = gif.n_frames
    cpu = sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
              for f in ('ru_utime', 'ru_stime'))
    print(json.dumps({'seconds': round(seconds, 2), 'cpu_s': round(cpu - cpu0, 2),
                      'peak_rss_mb': round(_peak_rss_mb(), 1),
                      'after_imports_mb': round(imported_mb, 1),
                      'gif_frames': frames,
                      'pngs': len(list((Path(out_dir) / 'frames').glob('epoch_*.png'))),
                      'html_mb': round(page.stat().st_size / 2 ** 20, 2)}))


def _measure(run_dir: Path, out_dir: Path, pythonpath: Optional[str] = None) -> Dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=pythonpath or str(ROOT))
    cwd = pythonpath or str(ROOT)
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), '--child', str(run_dir), str(out_dir)],
                          cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode:
        return {'error': proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f'exit {proc.returncode}'}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--epochs', default='50,300,3000', help='comma-separated run lengths (default 50,300,3000)')
    p.add_argument('--baseline', metavar='DIR', help='also time a first report with the package in DIR')
    p.add_argument('--workdir', help='where the synthetic runs go (default: a temporary directory)')
    p.add_argument('--child', nargs=2, metavar=('RUN_DIR', 'OUT_DIR'), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        _child(*args.child)
        return 0
    sizes = [int(e) for e in args.epochs.split(',')]
    with tempfile.TemporaryDirectory(prefix='report-scaling-') as tmp:
        work = Path(args.workdir or tmp)
        for epochs in sizes:
            run_dir = work / f'dst-{epochs}'
            t0 = time.perf_counter()
            write_run(run_dir, epochs)
            record = {'epochs': epochs, 'metrics_mb': round((run_dir / 'metrics.jsonl').stat().st_size / 2 ** 20, 2),
                      'record_s': round(time.perf_counter() - t0, 1)}
            print(json.dumps(dict(record, report='first', **_measure(run_dir, work / f'report-{epochs}'))), flush=True)
            print(json.dumps(dict(record, report='again', **_measure(run_dir, work / f'report-{epochs}'))), flush=True)
            if args.baseline:
                print(json.dumps(dict(record, report='baseline', baseline=args.baseline,
                                      **_measure(run_dir, work / f'baseline-{epochs}', args.baseline))), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
