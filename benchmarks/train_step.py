"""Training-step speed of our CIFAR network against the original DARTS ``NetworkCIFAR``, same genotype.

One step is what DARTS's ``train.py`` does per batch: forward in train mode with the auxiliary head,
cross-entropy + 0.4 * auxiliary loss, backward, gradient clipping at 5, SGD step; drop path 0.2 on
both sides. Every (variant, round) runs in a fresh subprocess with the same thread count, and rounds
interleave the variants, so slow phases of a shared machine hit all variants alike. Output: JSON
lines, one per variant (median step seconds over all timed steps of all rounds), then a summary with
the ratio ours / original.

    python benchmarks/train_step.py --threads 2 --batch 32 --rounds 3 --steps 4
    python benchmarks/train_step.py --compile          # adds a torch.compile variant (slow to compile on CPU)

The original DARTS code draws its drop-path masks with ``torch.cuda.FloatTensor``. On CPU the
worker rebinds ``drop_path`` in the imported DARTS ``model`` module to the same in-place formula with
a device-agnostic mask (their files are not edited), or, with ``--darts-drop-path zero``, both sides
run with drop path 0. The output says which.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any, Dict, List

DEFAULT_DARTS_REPO = '/tmp/darts/cnn'
VARIANTS = ('darts', 'ours', 'ours_channels_last', 'ours_bf16')


def _parse_args(argv: List[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--genotype', default='darts_v2', help='bundled name or genotype file (2 inputs per node)')
    p.add_argument('--batch', type=int, default=32)
    p.add_argument('--channels', type=int, default=36)
    p.add_argument('--layers', type=int, default=20)
    p.add_argument('--drop-path', type=float, default=0.2)
    p.add_argument('--threads', type=int, default=os.cpu_count(), help='torch intra-op threads, every variant')
    p.add_argument('--device', default=None, help='cpu or cuda (default: cuda when available)')
    p.add_argument('--rounds', type=int, default=3, help='fresh-process rounds per variant, interleaved')
    p.add_argument('--warmup', type=int, default=2, help='untimed steps per round')
    p.add_argument('--steps', type=int, default=4, help='timed steps per round')
    p.add_argument('--darts-repo', default=DEFAULT_DARTS_REPO,
                   help='directory of the original DARTS cnn/ code (model.py, operations.py, utils.py)')
    p.add_argument('--darts-drop-path', choices=('patch', 'zero'), default='patch',
                   help='CPU only: rebind the original drop_path to a device-agnostic copy, or run both sides '
                        'with drop path 0')
    p.add_argument('--compile', action='store_true', help='also time torch.compile(ours)')
    p.add_argument('--variants', default=None, help=f'comma-separated subset of {VARIANTS + ("ours_compile",)}')
    p.add_argument('--worker', default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


# ---- worker: one variant, one fresh process ----------------------------------------------------------
def _darts_network(args: argparse.Namespace, genotype: Any, device: str, drop_path: float):
    """The original NetworkCIFAR, imported from ``--darts-repo`` without modifying its files."""
    import contextlib
    import io

    import torch
    sys.path.insert(0, args.darts_repo)
    import model as darts_model  # noqa: E402

    import genotypes as darts_genotypes  # noqa: E402  (the DARTS repo's module)

    if device == 'cpu' and drop_path > 0:
        def cpu_drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
            # utils.drop_path of DARTS, with the mask allocated like x instead of torch.cuda.FloatTensor
            if drop_prob > 0.:
                keep_prob = 1. - drop_prob
                mask = torch.empty(x.size(0), 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep_prob)
                x.div_(keep_prob)
                x.mul_(mask)
            return x
        darts_model.drop_path = cpu_drop_path

    def pairs(cell) -> List[tuple]:
        return [(op, i) for node in cell.nodes for op, i in node]
    dg = darts_genotypes.Genotype(normal=pairs(genotype.normal), normal_concat=list(genotype.normal.concat),
                                  reduce=pairs(genotype.reduce), reduce_concat=list(genotype.reduce.concat))
    with contextlib.redirect_stdout(io.StringIO()):  # their Cell prints channel counts
        net = darts_model.NetworkCIFAR(args.channels, 10, args.layers, True, dg)
    net.drop_path_prob = drop_path
    return net


def _worker(args: argparse.Namespace) -> Dict[str, Any]:
    import torch
    import torch.nn.functional as F

    import entrannas_timm  # noqa: F401  (registers the models)
    from entrannas_timm import load_genotype
    from entrannas_timm.models.profile import count_params

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    variant = args.worker
    device = args.device
    genotype = load_genotype(args.genotype)
    if not genotype.is_darts_representable:
        raise SystemExit(f'--genotype: {genotype.name} has nodes without exactly 2 inputs; the original '
                         'DARTS code cannot build it')
    drop_path = args.drop_path
    note = None
    if device == 'cpu' and drop_path > 0:
        if args.darts_drop_path == 'zero':
            drop_path, note = 0., 'drop path 0 on both sides (original DARTS drop_path is CUDA-only)'
        else:
            note = ('original DARTS drop_path rebound to a device-agnostic copy at run time '
                    '(same in-place formula; their files unchanged)')

    if variant == 'darts':
        net = _darts_network(args, genotype, device, drop_path)
    else:
        net = _ours(genotype, args, drop_path)
    params = count_params(net, exclude=('aux_head', 'auxiliary_head'))
    net = net.to(device).train()
    x = torch.randn(args.batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (args.batch,), device=device)
    if variant == 'ours_channels_last':
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(net.parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4)
    step_net = torch.compile(net) if variant == 'ours_compile' else net
    use_bf16 = variant == 'ours_bf16'

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=use_bf16):
            logits, logits_aux = step_net(x)
            loss = F.cross_entropy(logits, y) + 0.4 * F.cross_entropy(logits_aux, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.)
        opt.step()

    def sync() -> None:
        if device == 'cuda':
            torch.cuda.synchronize()

    t0 = time.perf_counter()
    for _ in range(args.warmup):
        step()
    sync()
    warmup_s = time.perf_counter() - t0
    times = []
    for _ in range(args.steps):
        t = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t)
    return dict(variant=variant, params=params, times=times, warmup_s=warmup_s, drop_path=drop_path, note=note,
                threads=torch.get_num_threads())


def _ours(genotype: Any, args: argparse.Namespace, drop_path: float):
    import timm
    return timm.create_model('darts_v2_cifar10', genotype=genotype, channels=args.channels, layers=args.layers,
                             auxiliary=True, drop_path_rate=drop_path)


# ---- parent: interleave fresh-process rounds, summarise --------------------------------------------
def main(argv: List[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.device is None:
        import torch
        args.device = 'cuda' if torch.cuda.is_available() else 'cpu'
    if args.worker:
        print(json.dumps(_worker(args)))
        return 0

    variants = args.variants.split(',') if args.variants else list(VARIANTS) + (['ours_compile'] if args.compile
                                                                                else [])
    unknown = [v for v in variants if v not in VARIANTS + ('ours_compile',)]
    if unknown:
        raise SystemExit(f'--variants: unknown {unknown}; expected from {VARIANTS + ("ours_compile",)}')
    if 'darts' in variants and not os.path.isfile(os.path.join(args.darts_repo, 'model.py')):
        print(json.dumps(dict(skipped='darts', reason=f'no model.py under --darts-repo {args.darts_repo}')))
        variants.remove('darts')

    base = [sys.executable, os.path.abspath(__file__)] + [a for a in (argv if argv is not None else sys.argv[1:])]
    base += ['--device', args.device]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    import torch
    print(json.dumps(dict(config=dict(genotype=args.genotype, batch=args.batch, channels=args.channels,
                                      layers=args.layers, drop_path=args.drop_path, threads=args.threads,
                                      device=args.device, rounds=args.rounds, warmup=args.warmup,
                                      steps=args.steps, torch=torch.__version__, variants=variants))), flush=True)
    results: Dict[str, List[Dict[str, Any]]] = {v: [] for v in variants}
    for r in range(args.rounds):
        for v in variants:
            proc = subprocess.run(base + ['--worker', v], env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                err = (proc.stderr.strip().splitlines() or ['?'])[-1]
                print(json.dumps(dict(variant=v, round=r, error=err)), flush=True)
                continue
            run = json.loads(proc.stdout.strip().splitlines()[-1])
            results[v].append(run)
            print(json.dumps(dict(variant=v, round=r, step_s=[round(t, 4) for t in run['times']])), flush=True)

    summary: Dict[str, Any] = {}
    for v, runs in results.items():
        if not runs:
            continue
        times = [t for run in runs for t in run['times']]
        line = dict(variant=v, median_step_s=round(statistics.median(times), 4), min_step_s=round(min(times), 4),
                    n_steps=len(times), rounds=len(runs), params=runs[0]['params'],
                    drop_path=runs[0]['drop_path'], threads=runs[0]['threads'])
        if runs[0]['note'] and v == 'darts':
            line['note'] = runs[0]['note']
        if v == 'ours_compile':
            line['first_round_warmup_s'] = round(runs[0]['warmup_s'], 1)
        summary[v] = line
        print(json.dumps(line), flush=True)
    out: Dict[str, Any] = {'summary': {v: s['median_step_s'] for v, s in summary.items()}}
    if 'darts' in summary and 'ours' in summary:
        out['ratio_ours_over_darts'] = round(summary['ours']['median_step_s'] / summary['darts']['median_step_s'], 3)
        out['same_params'] = summary['ours']['params'] == summary['darts']['params']
    print(json.dumps(out), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
