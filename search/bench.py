"""``python -m search.bench``: the cost of one search step per method, side by side.

A search step is what the loop runs per iteration (first order): an architecture step on a validation
batch, then a weight step on a training batch. Each configuration runs in a fresh process, so on CPU the
peak resident set size (RSS) is that configuration's own; on CUDA peak memory is
``torch.cuda.max_memory_allocated``. With ``--darts-repo`` / ``--pcdarts-repo`` the original authors'
``model_search.Network`` and ``Architect`` are imported from those checkouts (never copied) and timed on
the same step, as the honest baselines. ``--rounds R`` runs every configuration R times, interleaved (round 1
of each, then round 2 of each, ...), each time in a fresh process; one JSON object per configuration reports
the median over rounds and the spread (min, max, every round's step time).
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from .methods import METHODS, EnTranNASDST

__all__ = ['main', 'bench_configs', 'median_of_rounds']

# figures that vary between rounds: reported as medians over rounds
_ROUND_FIGURES = ('step_s', 'arch_step_s', 'weight_step_s', 'peak_mem_mb', 'rss_before_model_mb',
                  'peak_mem_above_base_mb')


def _rss_mb() -> float:
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2 ** 20


def _time_steps(step: Callable[[], Any], steps: int, warmup: int, sync: Callable[[], None]) -> List[float]:
    for _ in range(warmup):
        step()
    sync()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t)
    return times


def _worker(spec: Dict[str, Any]) -> Dict[str, Any]:
    """Run one configuration in this (fresh) process and return its record."""
    import torch
    if spec.get('threads'):
        torch.set_num_threads(spec['threads'])
    device = torch.device(spec['device'])
    torch.manual_seed(0)
    B, size, C_in, K = spec['batch_size'], spec['image_size'], 3, spec['num_classes']
    x, y = torch.randn(B, C_in, size, size, device=device), torch.randint(0, K, (B,), device=device)
    xv, yv = torch.randn(B, C_in, size, size, device=device), torch.randint(0, K, (B,), device=device)
    if spec['channels_last']:
        x, xv = x.contiguous(memory_format=torch.channels_last), xv.contiguous(memory_format=torch.channels_last)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == 'cuda' else (lambda: None)
    # import everything first: the baseline RSS then holds the libraries, the peak adds the search itself
    from .config import resolve_config
    from .searcher import Searcher, build_model
    if spec['impl'] != 'entrannas-timm':
        orig_model, orig_architect = _import_original(spec, device)
    base = _rss_mb()
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
    arch_t: List[float] = []
    weight_t: List[float] = []

    def timed(fn: Callable[[], Any], acc: List[float]) -> None:
        t = time.perf_counter()
        fn()
        sync()
        acc.append(time.perf_counter() - t)

    if spec['impl'] == 'entrannas-timm':
        cfg = resolve_config(dict(method=spec['method'], space=spec['space'], engine_cells=spec['engine_cells'],
                                  channels=spec['channels'], layers=spec['layers'], nodes=spec['nodes'],
                                  batch_size=B, synthetic=True, device=spec['device'], amp=spec['amp'],
                                  channels_last=spec['channels_last']))
        model = build_model(cfg, C_in, K, device)
        if spec.get('dst_state') == 'sparse':
            _sparsify_dst(model)
        elif spec.get('dst_epoch'):
            model.load_arch_snapshot(_run_records(spec['dst_run'])[spec['dst_epoch']]['arch'])
        if spec['channels_last']:
            model = model.to(memory_format=torch.channels_last)
        searcher = Searcher(model, cfg, device)
        lr = cfg.lr

        def step():
            timed(lambda: searcher.arch_step(xv, yv, x, y, eta=lr), arch_t)
            timed(lambda: searcher.weight_step(x, y), weight_t)
        extra = {'engine_cells': model.engine_cell_indices, 'feature_sharing': model.feature_sharing,
                 **({'dst_state': spec['dst_state']} if spec.get('dst_state') else {}),
                 **({'dst_run': spec['dst_run']} if spec.get('dst_epoch') else {}),
                 'derived_connections': sum(len(n) for c in model.derived.values() for n in c.nodes),
                 'supernet_params': sum(p.numel() for p in model.weight_parameters())}
    else:
        model, architect, optimizer, criterion, lr = _original(spec, device, orig_model, orig_architect)

        def arch():
            architect.step(x, y, xv, yv, lr, optimizer, unrolled=False)

        def weight():
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.)
            optimizer.step()

        def step():
            timed(arch, arch_t)
            timed(weight, weight_t)
        arch_ids = {id(p) for p in model.arch_parameters()}
        extra = {'engine_cells': 'all', 'feature_sharing': False,
                 'supernet_params': sum(p.numel() for p in model.parameters() if id(p) not in arch_ids)}
    times = _time_steps(step, spec['steps'], spec['warmup'], sync)
    n = spec['warmup']
    if device.type == 'cuda':
        peak = torch.cuda.max_memory_allocated(device) / 2 ** 20
        mem = {'peak_mem_mb': round(peak, 1), 'peak_mem_kind': 'cuda_max_allocated'}
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        mem = {'peak_mem_mb': round(peak, 1), 'peak_mem_kind': 'peak_rss_fresh_process',
               'rss_before_model_mb': round(base, 1), 'peak_mem_above_base_mb': round(peak - base, 1)}
    return {
        'method': spec['method'], 'impl': spec['impl'], 'space': spec['space'], 'batch_size': B,
        'step_s': round(statistics.median(times), 5),
        'arch_step_s': round(statistics.median(arch_t[n:]), 5),
        'weight_step_s': round(statistics.median(weight_t[n:]), 5),
        **mem, 'image_size': size, 'channels': spec['channels'], 'layers': spec['layers'], 'nodes': spec['nodes'],
        'device': spec['device'], 'threads': torch.get_num_threads(), 'amp': spec['amp'],
        'channels_last': spec['channels_last'], 'steps': spec['steps'], 'warmup': spec['warmup'], **extra,
    }


def _sparsify_dst(model) -> None:
    """Put an EnTranNAS-DST super-net in a typical mid-search state: two strong connections per node.

    At initialisation DST cuts nothing (every ratio is near 1), so its first steps cost what a fully connected
    cell costs; as thresholds rise, connections are cut. This state (alpha 3 on two seeded connections per node,
    t = 0.5) cuts every other connection, the sparsity the top-2 rule gives, to time the search once cutting
    has set in.
    """
    import torch

    from .derive import node_slices
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for kind in ('normal', 'reduce'):
            alphas = getattr(model, f'alphas_{kind}')
            alphas.zero_()
            for sl in node_slices(model.nodes):
                block = alphas[sl]
                for flat in torch.randperm(block.numel(), generator=gen)[:2].tolist():
                    block.view(-1)[flat] = 3.
            getattr(model, f'threshold_logits_{kind}').zero_()
    model.rederive()


def _run_records(path: str) -> Dict[int, Dict[str, Any]]:
    """The per-epoch records of a search run (its directory or its ``metrics.jsonl``), by epoch."""
    from entrannas_timm.reports.records import RecordError, read_metrics
    try:
        log = read_metrics(path)
    except RecordError as e:
        raise SystemExit(f'--dst-run: {e}') from None
    records = {r.epoch: dict(r.data) for r in log.records if r.get('arch') is not None}
    if not records:
        raise SystemExit(f'--dst-run: {log.path} holds no epoch records with an architecture snapshot')
    if any('parameters' not in r['arch'] for r in records.values()):
        raise SystemExit(f'--dst-run: {log.path} records no raw architecture parameters ("arch.parameters"); it was '
                         'written by an older version and cannot be replayed')
    return records


def _import_original(spec: Dict[str, Any], device):
    """The authors' ``model_search`` and ``architect`` modules (CPU: their ``.cuda()`` calls become no-ops)."""
    import torch
    repo = Path(spec['repo']).expanduser().resolve()
    if not (repo / 'model_search.py').is_file() or not (repo / 'architect.py').is_file():
        raise SystemExit(f'--{"darts" if spec["method"] == "darts" else "pcdarts"}-repo: {repo} has no '
                         'model_search.py / architect.py (expected the cnn/ folder of the original code)')
    if device.type != 'cuda':
        torch.Tensor.cuda = lambda self, *a, **k: self
        torch.nn.Module.cuda = lambda self, *a, **k: self
    sys.path.insert(0, str(repo))
    import architect as orig_architect
    import model_search as orig_model
    return orig_model, orig_architect


def _original(spec: Dict[str, Any], device, orig_model, orig_architect):
    """The authors' super-net, Architect and weight optimiser, set up as their train_search.py does."""
    import types

    import torch
    criterion = torch.nn.CrossEntropyLoss()
    model = orig_model.Network(spec['channels'], spec['num_classes'], spec['layers'], criterion,
                               steps=spec['nodes'], multiplier=spec['nodes']).to(device)
    if spec['channels_last']:
        model = model.to(memory_format=torch.channels_last)
    lr = 0.025 if spec['method'] == 'darts' else 0.1
    args = types.SimpleNamespace(momentum=0.9, weight_decay=3e-4, arch_learning_rate=6e-4, arch_weight_decay=1e-3)
    architect = orig_architect.Architect(model, args)
    optimizer = torch.optim.SGD(model.parameters(), lr, momentum=0.9, weight_decay=3e-4)
    return model, architect, optimizer, criterion, lr


def bench_configs(args: argparse.Namespace) -> List[Dict[str, Any]]:
    """Every (method, space, engine placement, batch size) configuration asked for, plus the originals."""
    methods = [m.strip() for m in args.methods.split(',') if m.strip()]
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise SystemExit(f'--methods: unknown method(s) {bad}; expected from {",".join(METHODS)}')
    spaces = [s.strip() for s in args.space.split(',') if s.strip()]
    if any(s not in ('standard', 'extended') for s in spaces):
        raise SystemExit(f'--space: expected standard and/or extended, got {args.space!r}')
    placements = [p.strip() for p in args.engine_cells.split(';' if ';' in args.engine_cells else ',')
                  if p.strip()] if args.engine_cells else ['default']
    try:
        batches = [int(b) for b in str(args.batch_size).split(',')]
    except ValueError:
        raise SystemExit(f'--batch-size: expected integers such as 32 or 64,256, got {args.batch_size!r}') from None
    dst_state = args.dst_state if args.dst_state is not None else ('' if args.dst_run else 'init,sparse')
    dst_states: List[Optional[str]] = [d.strip() for d in dst_state.split(',') if d.strip()]
    if any(d not in ('init', 'sparse') for d in dst_states):
        raise SystemExit(f'--dst-state: expected init and/or sparse, got {args.dst_state!r}')
    dst_epochs: List[Optional[int]] = [None] * len(dst_states)
    if args.dst_run:
        recorded = sorted(_run_records(args.dst_run))
        try:
            wanted = [int(e) for e in args.dst_epochs.split(',')] if args.dst_epochs else recorded
        except ValueError:
            raise SystemExit(f'--dst-epochs: expected epoch numbers such as 1,5,10, got {args.dst_epochs!r}') from None
        if set(wanted) - set(recorded):
            raise SystemExit(f'--dst-epochs: {sorted(set(wanted) - set(recorded))} not recorded in {args.dst_run} '
                             f'(epochs {recorded[0]}-{recorded[-1]})')
        dst_states += [f'epoch {e}' for e in wanted]
        dst_epochs += wanted
    if not dst_states and any(issubclass(METHODS[m], EnTranNASDST) for m in methods):
        raise SystemExit('--dst-state: give init and/or sparse, or --dst-run')
    import torch
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    common = dict(channels=args.channels, layers=args.layers, nodes=args.nodes, image_size=args.image_size,
                  num_classes=args.num_classes, steps=args.steps, warmup=args.warmup, device=device,
                  threads=args.threads, amp=args.amp, channels_last=args.channels_last)
    out = []
    for batch, method, space in itertools.product(batches, methods, spaces):
        for place in (placements if METHODS[method].transit_cells else ['all']):
            # DST's cost follows its thresholds: time the asked-for architecture states
            dst = list(zip(dst_states, dst_epochs)) if issubclass(METHODS[method], EnTranNASDST) else [(None, None)]
            for state, epoch in dst:
                out.append(dict(common, impl='entrannas-timm', method=method, space=space, batch_size=batch,
                                engine_cells=None if place == 'default' else place, dst_state=state,
                                dst_epoch=epoch, dst_run=args.dst_run if epoch else None))
        repo = {'darts': args.darts_repo, 'pc-darts': args.pcdarts_repo}.get(method)
        if repo and space == 'standard':
            out.append(dict(common, impl=f'original-{method}', method=method, space=space, batch_size=batch,
                            engine_cells='all', repo=repo))
    return out


def _run_fresh(spec: Dict[str, Any]) -> Dict[str, Any]:
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    env['PYTHONPATH'] = root + (os.pathsep + env['PYTHONPATH'] if env.get('PYTHONPATH') else '')
    if spec.get('threads'):
        env.setdefault('OMP_NUM_THREADS', str(spec['threads']))
    proc = subprocess.run([sys.executable, '-m', 'search.bench', '--worker', json.dumps(spec)], env=env, cwd=root,
                          capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith('{')]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        return {'method': spec['method'], 'impl': spec['impl'], 'space': spec['space'],
                'batch_size': spec['batch_size'], 'error': ' | '.join(tail) or f'exit code {proc.returncode}'}
    return json.loads(lines[-1])


def median_of_rounds(rounds: List[Dict[str, Any]]) -> Dict[str, Any]:
    """One configuration's record: its rounds' figures as medians, plus the spread of the step time and peak
    memory (min, max) and every round's step time. A round that failed makes the record an error."""
    failed = [r for r in rounds if 'error' in r]
    if failed:
        return dict(failed[0], rounds=len(rounds), failed_rounds=len(failed))
    out = dict(rounds[0])
    for key in _ROUND_FIGURES:
        if key in out:
            out[key] = round(statistics.median(r[key] for r in rounds), 5)
    for key in ('step_s', 'peak_mem_mb'):
        out[f'{key}_min'] = min(r[key] for r in rounds)
        out[f'{key}_max'] = max(r[key] for r in rounds)
    out['step_s_rounds'] = [r['step_s'] for r in rounds]
    out['rounds'] = len(rounds)
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog='python -m search.bench', description=__doc__.split('\n\n')[0])
    p.add_argument('--methods', default=','.join(METHODS), help='comma-separated methods (default: all)')
    p.add_argument('--space', default='standard', help='standard, extended or standard,extended')
    p.add_argument('--engine-cells', default='default', help="entrannas* placements, comma-separated: default, "
                   "all, first, last (explicit index lists: separate placements with ';', e.g. '0,2;5,7')")
    p.add_argument('--dst-state',
                   help='entrannas-dst architecture state to time: init (nothing cut yet) and/or sparse (two '
                        'connections per node kept, as once cutting has set in); default both, none with --dst-run')
    p.add_argument('--dst-run', metavar='RUN_DIR',
                   help='entrannas-dst: also time the architecture of each epoch recorded in this search run\'s '
                        'metrics.jsonl (the cost of the search as it went, at the benchmark\'s size)')
    p.add_argument('--dst-epochs', help='with --dst-run: only these epochs, comma-separated (default all)')
    p.add_argument('--batch-size', default='32', help='batch size, or a comma-separated list (default 32)')
    p.add_argument('--steps', type=int, default=5, help='timed steps per round; their median is the round\'s figure '
                   '(default 5)')
    p.add_argument('--rounds', type=int, default=3, help='fresh-process rounds per configuration, interleaved; '
                   'the median over rounds is reported with its spread (default 3)')
    p.add_argument('--warmup', type=int, default=1, help='untimed steps first (default 1)')
    p.add_argument('--channels', type=int, default=16, help='initial channels (default 16)')
    p.add_argument('--layers', type=int, default=8, help='cells (default 8)')
    p.add_argument('--nodes', type=int, default=4, help='intermediate nodes (default 4)')
    p.add_argument('--image-size', type=int, default=32, help='input resolution (default 32)')
    p.add_argument('--num-classes', type=int, default=10, help='classes (default 10)')
    p.add_argument('--device', help='cpu or cuda (default cuda if available)')
    p.add_argument('--threads', type=int, help='CPU threads per configuration (default: torch default)')
    p.add_argument('--amp', action='store_true', help='bf16 autocast (CUDA; our implementation only)')
    p.add_argument('--channels-last', action='store_true', help='channels_last memory format')
    p.add_argument('--darts-repo', help="path to the original DARTS cnn/ folder: also time the authors' code")
    p.add_argument('--pcdarts-repo', help="path to the original PC-DARTS folder: also time the authors' code")
    p.add_argument('--output', help='also write the JSON lines to this file')
    p.add_argument('--worker', help=argparse.SUPPRESS)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(json.loads(args.worker))), flush=True)
        return 0
    if args.steps < 1 or args.warmup < 0 or args.rounds < 1:
        raise SystemExit('--steps and --rounds must be >= 1 and --warmup >= 0')
    specs = bench_configs(args)
    rounds: List[List[Dict[str, Any]]] = [[] for _ in specs]
    for r in range(args.rounds):  # interleaved, so slow drifts of the machine spread over every configuration
        for spec, done in zip(specs, rounds):
            done.append(_run_fresh(spec))
            label = ' '.join(str(spec[k]) for k in ('impl', 'method', 'space', 'batch_size', 'engine_cells',
                                                     'dst_state') if spec.get(k) is not None)
            print(f'round {r + 1}/{args.rounds}: {label}: {done[-1].get("step_s", done[-1].get("error"))}',
                  file=sys.stderr, flush=True)
    records = [median_of_rounds(done) for done in rounds]
    for rec in records:
        print(json.dumps(rec), flush=True)
    if args.output:
        from entrannas_timm.utils.files import write_atomic
        write_atomic(Path(args.output), ''.join(json.dumps(r) + '\n' for r in records))
    return 1 if any('error' in r for r in records) else 0


if __name__ == '__main__':
    sys.exit(main())
