"""The charts of a search report: accuracy, loss and architecture statistics per epoch, and the final weights."""
from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any, List, Optional, Sequence, Tuple

from ..models.genotype import node_label
from .records import CELL_KINDS, CONSISTENCY_STAGES
from .run import SearchRun, printable

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ['curves_png', 'weights_png', 'consistency_png', 'CONSISTENCY_LABELS']

# what each stage of a consistency measurement is (docs/method.md, *Consistency*)
CONSISTENCY_LABELS = {
    'supernet': 'super-net',
    'inherited': 'derived, inherited weights',
    'recalibrated': 'derived, BN re-calibrated',
    'finetuned': 'derived, fine-tuned',
    'scratch': 'derived, from scratch',
}

# ---- (b) curves and (c) heat map ---------------------------------------------------------------
def _figure(figsize: Tuple[float, float]) -> Figure:
    # A bare Figure with an Agg canvas: no pyplot, so no global backend state is touched.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=figsize, layout='constrained')
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure, dpi: int = 100) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format='png', dpi=dpi, facecolor='white')
    return buf.getvalue()


def _series(run: SearchRun, *keys: str) -> Tuple[List[int], List[Any]]:
    """(epochs, values) of a nested field, leaving out epochs where it is missing."""
    xs, ys = [], []
    for rec in run.records:
        v: Any = rec
        for k in keys:
            v = v.get(k) if isinstance(v, dict) else None
        if v is not None:
            xs.append(rec['epoch'])
            ys.append(v)
    return xs, ys


def _not_recorded(ax: Any, what: str) -> None:
    ax.text(0.5, 0.5, f'{what}\nnot recorded', ha='center', va='center', transform=ax.transAxes, color='#777777')


def _marker(run: SearchRun) -> Optional[str]:
    return '.' if len(run.records) <= 100 else None  # a dot per epoch drowns a long run's lines


def _per_node(ax: Any, run: SearchRun, key: str, title: str, ylabel: str) -> None:
    ax.set_title(title)
    drawn = False
    for kind, style in (('normal', '-'), ('reduce', '--')):
        xs, ys = _series(run, 'arch', key, kind)
        if not xs or not all(isinstance(y, list) for y in ys):
            continue
        for j in range(max(len(y) for y in ys)):
            pts = [(x, y[j]) for x, y in zip(xs, ys) if j < len(y)]
            ax.plot(*zip(*pts), style, marker=_marker(run), color=f'C{j}', label=f'{kind} node {j}')
            drawn = True
    if drawn:
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7, ncol=2)
    else:
        _not_recorded(ax, title)


def curves_png(run: SearchRun) -> bytes:
    """Training curves and the architecture's statistics over the epochs."""
    from matplotlib.ticker import MaxNLocator
    fig = _figure((13, 7.5))
    axes = fig.subplots(2, 3)
    last = max(run.planned_epochs or 0, run.epochs[-1])
    for ax in axes.flat:
        ax.set_xlabel('epoch')
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlim(0.5, last + 0.5)
        ax.grid(alpha=0.3)
    for ax, metric, title in ((axes[0, 0], 'acc', 'accuracy'), (axes[0, 1], 'loss', 'loss')):
        ax.set_title(title)
        drawn = False
        for split in ('train', 'val'):
            xs, ys = _series(run, f'{split}_{metric}')
            if xs:
                ax.plot(xs, ys, marker=_marker(run), label=split)
                drawn = True
        if drawn:
            ax.legend()
        else:
            _not_recorded(ax, title)
    _per_node(axes[0, 2], run, 'thresholds', 'DST thresholds t_j', 't_j')
    _per_node(axes[1, 0], run, 'active_connections', 'active connections per node', 'inputs')
    ax = axes[1, 1]
    ax.set_title('skip_connect count')
    drawn = False
    for kind, style in (('normal', '-'), ('reduce', '--')):
        xs, ys = _series(run, 'arch', 'skip_connect', kind)
        if xs:
            ax.plot(xs, ys, style, marker=_marker(run), label=kind)
            drawn = True
    if drawn:
        ax.legend()
    else:
        _not_recorded(ax, 'skip_connect count')
    ax = axes[1, 2]
    ax.set_title('derived network: params and MACs')
    xs, params = _series(run, 'params')
    xm, macs = _series(run, 'macs')
    if xs:
        ax.plot(xs, [p / 1e6 for p in params], marker=_marker(run), color='C0', label='params')
        ax.set_ylabel('params (M)', color='C0')
    if xm:
        ax2 = ax.twinx()
        ax2.plot(xm, [m / 1e6 for m in macs], marker=_marker(run), color='C3', label='MACs')
        ax2.set_ylabel('MACs (M)', color='C3')
    if not xs and not xm:
        _not_recorded(ax, 'params / MACs')
    for ax in (axes[1, 0], axes[1, 1]):  # counts: integers from 0
        ax.set_ylim(bottom=0)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(f'{run.name}: {len(run.records)} epoch(s) recorded', fontsize=12, parse_math=False)
    return _png(fig)


def _edge_label(edge: Sequence[int]) -> str:
    src, node = edge
    return f'{node_label(src)} → {node_label(node)}'


def weights_png(run: SearchRun) -> Optional[bytes]:
    """Heat map of the final architecture weights (edges x ops) of both cells; None without a snapshot."""
    arch = run.last_arch
    if arch is None:
        return None
    ops, edges = arch['ops'], arch['edges']
    vmax = max([max(row, default=0) for k in CELL_KINDS for row in arch['weights'][k]] + [1e-12])
    fig = _figure((max(8.0, 0.75 * len(ops) * 2 + 3), 0.36 * len(edges) + 2.4))
    axes = fig.subplots(1, 2, sharey=True)
    image = None
    for ax, kind in zip(axes, CELL_KINDS):
        w = arch['weights'][kind]
        image = ax.imshow(w, cmap='viridis', vmin=0, vmax=vmax, aspect='auto')
        ax.set_title('normal cell' if kind == 'normal' else 'reduction cell')
        ax.set_xticks(range(len(ops)), ops, rotation=45, ha='right', fontsize=8)
        ax.set_yticks(range(len(edges)), [_edge_label(e) for e in edges], fontsize=8)
        for i, row in enumerate(w):
            for k, v in enumerate(row):
                if v > 0:
                    ax.text(k, i, f'{v:.2f}', ha='center', va='center', fontsize=6,
                            color='black' if v > 0.6 * vmax else 'white')
    fig.colorbar(image, ax=list(axes), shrink=0.8, label='weight')
    fig.suptitle(f'architecture weights at epoch {run.epochs[-1]} (0 = cut or zero)', fontsize=11)
    return _png(fig)

def consistency_png(run: SearchRun) -> Optional[bytes]:
    """Held-out accuracy of the super-net and of its derived network (each stage) at the measured epochs, and
    the consistency gap (super-net minus derived); None when the run has no measurement."""
    if not run.consistency:
        return None
    from matplotlib.ticker import MaxNLocator
    latest = {(r['source'], r['epoch']): r for r in run.consistency}  # a repeated measurement: the latest counts
    fig = _figure((13, 4.2))
    acc_ax, gap_ax = fig.subplots(1, 2)
    for source, style in (('search', '-'), ('command', ':')):
        recs = sorted((r for (s, _), r in latest.items() if s == source), key=lambda r: r['epoch'])
        if not recs:
            continue
        xs = [r['epoch'] for r in recs]
        tag = '' if source == 'search' else ' (command)'
        for k, stage in enumerate(CONSISTENCY_STAGES):
            acc_ax.plot(xs, [100 * r['acc'][stage] for r in recs], style, marker='o', color=f'C{k}',
                        label=CONSISTENCY_LABELS[stage] + tag)
        for stage, marker, color in (('inherited', 'o', 'C1'), ('recalibrated', 's', 'C2')):
            gap_ax.plot(xs, [100 * (r['acc']['supernet'] - r['acc'][stage]) for r in recs], style, marker=marker,
                        color=color, label=f'super-net − {CONSISTENCY_LABELS[stage]}{tag}')
    split = run.consistency[-1]['heldout']
    acc_ax.set_title(f'held-out accuracy ({printable(split.get("split"))}, {split.get("images")} images)',
                     parse_math=False)
    acc_ax.set_ylabel('top-1 (%)')
    gap_ax.set_title('consistency gap')
    gap_ax.set_ylabel('percentage points')
    gap_ax.axhline(0, color='#999999', linewidth=0.8)
    last = max(run.planned_epochs or 0, run.epochs[-1], *(r['epoch'] for r in run.consistency))
    for ax in (acc_ax, gap_ax):
        ax.set_xlabel('search epoch')
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlim(0.5, last + 0.5)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _png(fig)
