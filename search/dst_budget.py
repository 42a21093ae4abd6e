"""What an EnTranNAS-DST search's cells would cost at other thresholds: ``python -m search dst-budget RUN ...``.

A DST cell is the set of connections whose ratio ``p / max p`` clears its node's threshold (docs/method.md,
*EnTranNAS-DST*), so from one epoch's recorded alphas the cell that any threshold would keep can be derived
without searching again. For the record's own learned thresholds and for a grid of uniform ones, this prints
each cell's in-degree by input node, its ops per edge and the MACs and parameters of the network a user would
build from it (``cellnet_imagenet`` at 224x224 by default: the mobile setting, at most 600M MACs), so that a
λ, a threshold schedule or a budget can be chosen by measurement.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import timm
import torch
import torch.nn.functional as F

from entrannas_timm import SPACES, Genotype
from entrannas_timm.models import CellSpec
from entrannas_timm.models.profile import model_cost
from entrannas_timm.models.registry import MOBILE_MACS
from entrannas_timm.reports.records import RecordError, read_config, read_metrics

from .derive import derive_dst, dst_weights, node_slices
from .methods import CELL_KINDS

NETWORKS = {'imagenet': ('cellnet_imagenet', (3, 224, 224)), 'cifar': ('cellnet_cifar', (3, 32, 32))}


@dataclass(frozen=True)
class EpochArch:
    """One epoch's DST architecture parameters, read from a run's ``metrics.jsonl``."""
    run: str
    epoch: int
    lam: Optional[float]
    space: str
    ops: Tuple[str, ...]
    nodes: int
    feature_sharing: bool
    p: Dict[str, torch.Tensor]           # per kind, [edges, ops]: softmax(alpha / temperature)
    thresholds: Dict[str, torch.Tensor]  # per kind, [nodes]: the learned t_j


@dataclass(frozen=True)
class CellCost:
    thresholds: str                      # 'learned' or the uniform value
    in_degree: Dict[str, List[int]]      # distinct input nodes per node
    ops_per_edge: Dict[str, List[List[int]]]
    connections: Dict[str, int]          # (input, op) pairs
    params: int
    macs: int


def _matrix(value: Any, rows: int, cols: int, where: str) -> torch.Tensor:
    t = torch.tensor(value, dtype=torch.float64) if isinstance(value, list) else None
    if t is None or tuple(t.shape) != ((rows, cols) if cols else (rows,)) or not torch.isfinite(t).all():
        shape = f'[{rows}, {cols}]' if cols else f'[{rows}]'
        raise RecordError(f'{where}: expected a finite {shape} list of numbers')
    return t


def read_epoch_arch(run: str, epoch: Optional[int] = None) -> EpochArch:
    """The DST parameters of ``epoch`` (default the last recorded) of the run directory ``run``."""
    config = read_config(Path(run) / 'config.json')
    if config.get('method') != 'entrannas-dst':
        raise RecordError(f'{run}: method {config.get("method")!r}; expected an entrannas-dst search')
    log = read_metrics(run)
    records = {r.data['epoch']: r.data for r in log.records}
    if not records:
        raise RecordError(f'{run}/metrics.jsonl: no epoch recorded yet')
    epoch = max(records) if epoch is None else epoch
    if epoch not in records:
        raise RecordError(f'{run}: epoch {epoch} not recorded (epochs {min(records)}..{max(records)})')
    arch = records[epoch].get('arch') or {}
    params = arch.get('parameters') or {}
    space = config.get('space', 'standard')
    ops = tuple(arch.get('ops') or ())
    if space not in SPACES or not ops or any(o not in SPACES[space] or o == 'none' for o in ops):
        raise RecordError(f'{run}: epoch {epoch}: arch.ops {list(ops)!r} is not a DST op list of space {space!r}')
    nodes = int(config.get('nodes', 4))
    edges = node_slices(nodes)[-1].stop
    where = f'{run}/metrics.jsonl epoch {epoch}: arch.parameters'
    temperature = float(config.get('temperature', 1.0))
    p = {k: F.softmax(_matrix(params.get(f'alphas_{k}'), edges, len(ops), f'{where}.alphas_{k}') / temperature, -1)
         for k in CELL_KINDS}
    t = {k: torch.sigmoid(_matrix(params.get(f'threshold_logits_{k}'), nodes, 0, f'{where}.threshold_logits_{k}'))
         for k in CELL_KINDS}
    return EpochArch(str(run), epoch, config.get('lam'), space, ops, nodes, bool(config.get('feature_sharing', True)),
                     p, t)


def derive_at(arch: EpochArch, thresholds: Optional[float]) -> Dict[str, CellSpec]:
    """The cells at a uniform threshold, or at the learned ones (``None``)."""
    cells = {}
    for k in CELL_KINDS:
        t = arch.thresholds[k] if thresholds is None else torch.full((arch.nodes,), float(thresholds))
        cells[k] = derive_dst(dst_weights(arch.p[k], t.to(arch.p[k].dtype), arch.nodes)[0], arch.ops, arch.nodes)
    return cells


def cell_cost(arch: EpochArch, thresholds: Optional[float], network: str = 'imagenet', **size: int) -> CellCost:
    """``size``: ``channels`` / ``layers`` of the network, where not the family's protocol."""
    cells = derive_at(arch, thresholds)
    genotype = Genotype(cells['normal'], cells['reduce'], arch.space, arch.feature_sharing)
    entrypoint, input_size = NETWORKS[network]
    with torch.device('meta'):  # shapes only: counting needs no weights
        model = timm.create_model(entrypoint, genotype=genotype, num_classes=1000, **size)
    return CellCost('learned' if thresholds is None else f'{thresholds:.2f}',
                    {k: list(c.in_degree()) for k, c in cells.items()},
                    {k: [list(e) for e in c.ops_per_edge()] for k, c in cells.items()},
                    {k: sum(len(n) for n in c.nodes) for k, c in cells.items()},
                    **model_cost(model, input_size))


def sweep(arch: EpochArch, grid: Sequence[float], network: str = 'imagenet', **size: int) -> List[CellCost]:
    """The learned thresholds first, then each uniform value of ``grid``."""
    with torch.no_grad():
        return [cell_cost(arch, t, network, **size) for t in (None, *grid)]


def _degrees(c: CellCost, kind: str) -> str:
    return ' '.join(map(str, c.in_degree[kind]))


def _ops(c: CellCost, kind: str) -> str:
    return ' / '.join(','.join(map(str, e)) for e in c.ops_per_edge[kind])  # nodes apart, edges by comma


def table(arch: EpochArch, costs: Sequence[CellCost], budget: int) -> str:
    lam = f', λ {arch.lam}' if arch.lam is not None else ''
    learned = ' '.join(f'{k} ' + ' '.join(f'{v:.2f}' for v in arch.thresholds[k].tolist()) for k in CELL_KINDS)
    out = [f'{arch.run}, epoch {arch.epoch}{lam}: learned thresholds {learned}', '',
           '| thresholds | in-degree by input node, normal; reduce | ops per kept edge, normal; reduce | '
           'connections | params | MACs | within budget |', '|---|---|---|---|---|---|---|']
    for c in costs:
        ok = 'yes' if c.macs <= budget else 'no'
        out.append(f'| {c.thresholds} | {_degrees(c, "normal")}; {_degrees(c, "reduce")} | '
                   f'{_ops(c, "normal")}; {_ops(c, "reduce")} | {c.connections["normal"]} / '
                   f'{c.connections["reduce"]} | {c.params / 1e6:.2f}M | {c.macs / 1e6:.0f}M | {ok} |')
    return '\n'.join(out)


def _grid(text: str) -> List[float]:
    try:
        values = [float(v) for v in text.split(',') if v.strip()]
    except ValueError:
        values = []
    if not values or not all(0. < v < 1. for v in values):
        raise argparse.ArgumentTypeError(f'expected comma-separated thresholds in (0, 1), got {text!r}')
    return values


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog='python -m search dst-budget', description=__doc__.split('\n\n')[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('runs', nargs='+', metavar='RUN', help='run directories of entrannas-dst searches (config.json, '
                   'metrics.jsonl)')
    p.add_argument('--epoch', type=int, help='the epoch whose alphas are read (default: the last recorded)')
    p.add_argument('--thresholds', type=_grid, default=_grid('0.6,0.7,0.75,0.8,0.85,0.9,0.95'),
                   help='uniform thresholds to derive at, comma-separated (default 0.6,0.7,0.75,0.8,0.85,0.9,0.95)')
    p.add_argument('--network', choices=sorted(NETWORKS), default='imagenet',
                   help='the network the cells are costed in (imagenet: 14 cells, 48 channels, 224x224)')
    p.add_argument('--channels', type=int, help="the network's initial channels (default: the family's, 48 / 36)")
    p.add_argument('--layers', type=int, help="the network's cells (default: the family's, 14 / 20)")
    p.add_argument('--budget', type=float, default=MOBILE_MACS, help='MACs budget (default 600e6, the mobile '
                   'setting)')
    p.add_argument('--json', action='store_true', help='print one JSON line per run instead of tables')
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        for run in args.runs:
            arch = read_epoch_arch(run, args.epoch)
            size = {k: v for k in ('channels', 'layers') if (v := getattr(args, k)) is not None}
            costs = sweep(arch, args.thresholds, args.network, **size)
            if args.json:
                print(json.dumps({'run': arch.run, 'epoch': arch.epoch, 'lam': arch.lam, 'network': args.network,
                                  'learned_thresholds': {k: v.tolist() for k, v in arch.thresholds.items()},
                                  'cells': [asdict(c) for c in costs]}), flush=True)
            else:
                print(table(arch, costs, int(args.budget)) + '\n', flush=True)
    except RecordError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    return 0
