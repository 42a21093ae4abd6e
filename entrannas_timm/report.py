"""Search report: what a search run did, epoch by epoch, as files and one self-contained HTML page.

Reads a run directory written by ``python -m search`` (``metrics.jsonl``, ``config.json`` and, once the
search has finished, ``genotype.json``) and writes:

- ``frames/epoch_NNN.png`` and ``cells.gif``: the derived normal and reduction cells at every recorded epoch
  (the EnTranNAS-DST "video": all connections active at first, then cut gradually);
- ``curves.png``: accuracy and loss, DST thresholds t_j, active connections per node, skip-connect count,
  params/MACs of the derived network;
- ``arch_weights.png``: the final architecture weights per edge and op (normal and reduction cells);
- ``report.html``: all of it with images inlined as data URIs, the final genotype and the run's settings.

A run still in progress works too: a partly written last line of ``metrics.jsonl`` is skipped and the
current derived genotype stands in for ``genotype.json``.
"""
from __future__ import annotations

import argparse
import base64
import html
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple, Union

from . import __version__
from .errors import CLIError
from .files import write_atomic
from .genotype import Genotype, GenotypeError, node_label
from .plot import GraphvizNotFoundError, genotype_image, plot_genotype

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from PIL import Image

__all__ = ['ReportError', 'SearchRun', 'load_run', 'build_report', 'add_cli']

METRICS, CONFIG, GENOTYPE = 'metrics.jsonl', 'config.json', 'genotype.json'
CELLS = ('normal', 'reduce')


class ReportError(ValueError):
    """A run directory cannot be reported on; the message names the file (and line/field) at fault."""


@dataclass
class SearchRun:
    """A run directory as read: one record per epoch (the latest if an epoch was logged twice, e.g. on resume)."""
    run_dir: Path
    records: List[Dict[str, Any]]
    genotypes: List[Optional[Genotype]]
    config: Dict[str, Any]
    final: Optional[Genotype]
    notes: List[str] = field(default_factory=list)

    @property
    def epochs(self) -> List[int]:
        return [r['epoch'] for r in self.records]

    @property
    def planned_epochs(self) -> Optional[int]:
        planned = self.records[-1].get('epochs', self.config.get('epochs'))
        return planned if isinstance(planned, int) and not isinstance(planned, bool) else None

    @property
    def complete(self) -> bool:
        return self.final is not None

    def genotype(self) -> Optional[Genotype]:
        """The final genotype, or while the search runs, the one derived at the last recorded epoch."""
        if self.final is not None:
            return self.final
        latest = next((g for g in reversed(self.genotypes) if g is not None), None)
        return latest.replace(name=latest.name or self.run_dir.name) if latest is not None else None

    def setting(self, key: str) -> Optional[str]:
        """A setting from config.json, falling back to the final genotype's provenance."""
        value = self.config.get(key)
        if value is None and self.final is not None:
            value = self.final.provenance.get(key)
        return None if value is None else str(value)


def _read_json_object(path: Path) -> Dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding='utf-8'))
    except OSError as e:
        raise ReportError(f'{path}: cannot read: {e.strerror or e}') from None
    except json.JSONDecodeError as e:
        raise ReportError(f'{path}: malformed JSON: {e.msg} at line {e.lineno} column {e.colno}') from None
    if not isinstance(data, dict):
        raise ReportError(f'{path}: expected a JSON object, got {type(data).__name__}')
    return data


def load_run(run_dir: Union[str, os.PathLike]) -> SearchRun:
    """Read a (possibly unfinished) run directory; every problem is a :class:`ReportError` naming the file."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise ReportError(f'{run_dir}: run directory not found')
    if not run_dir.is_dir():
        raise ReportError(f'{run_dir}: not a directory; expected a search run directory holding {METRICS}')
    metrics = run_dir / METRICS
    if not metrics.is_file():
        what = 'is empty' if not any(run_dir.iterdir()) else f'has no {METRICS}'
        raise ReportError(f'{run_dir}: {what}; expected a search run directory ({METRICS}, {CONFIG}, written by '
                          '`python -m search` after its first epoch)')
    notes: List[str] = []
    try:
        lines = metrics.read_text(encoding='utf-8').splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ReportError(f'{metrics}: cannot read: {e}') from None
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    by_epoch: Dict[int, Tuple[Dict[str, Any], Optional[Genotype]]] = {}
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        where = f'{metrics}:{i + 1}'
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            if i == last:
                notes.append(f'{METRICS} line {i + 1} is incomplete (the run is still writing it); skipped')
                continue
            raise ReportError(f'{where}: malformed JSON: {e.msg} at column {e.colno}') from None
        if not isinstance(rec, dict):
            raise ReportError(f'{where}: expected a JSON object per line, got {type(rec).__name__}')
        epoch = rec.get('epoch')
        if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 1:
            raise ReportError(f'{where}: field "epoch": expected an integer >= 1, got {epoch!r}')
        genotype = None
        if rec.get('genotype') is not None:
            try:
                genotype = Genotype.from_dict(rec['genotype'], source=f'{where} "genotype"')
            except GenotypeError as e:
                raise ReportError(str(e)) from None
        arch = rec.get('arch')
        if arch is not None:
            _check_arch(arch, where)
        if epoch in by_epoch:
            notes.append(f'epoch {epoch} is recorded more than once (resumed run); the last record is used')
        by_epoch[epoch] = (rec, genotype)
    if not by_epoch:
        raise ReportError(f'{metrics}: no complete epoch record yet; the report needs at least one epoch')
    ordered = [by_epoch[e] for e in sorted(by_epoch)]
    config: Dict[str, Any] = {}
    if (run_dir / CONFIG).is_file():
        config = _read_json_object(run_dir / CONFIG)
    else:
        notes.append(f'no {CONFIG} in the run directory; settings are not shown')
    final = None
    if (run_dir / GENOTYPE).is_file():
        try:
            final = Genotype.load(run_dir / GENOTYPE)
        except GenotypeError as e:
            raise ReportError(str(e)) from None
    return SearchRun(run_dir, [r for r, _ in ordered], [g for _, g in ordered], config, final, notes)


def _check_arch(arch: Any, where: str) -> None:
    """The arch snapshot's shape (search API): edges x ops weights for both cells."""
    if not isinstance(arch, dict):
        raise ReportError(f'{where}: field "arch": expected an object, got {type(arch).__name__}')
    ops, edges, weights = arch.get('ops'), arch.get('edges'), arch.get('weights')
    if not (isinstance(ops, list) and all(isinstance(o, str) for o in ops)):
        raise ReportError(f'{where}: field "arch.ops": expected a list of op names')
    if not (isinstance(edges, list) and all(isinstance(e, list) and len(e) == 2 for e in edges)):
        raise ReportError(f'{where}: field "arch.edges": expected a list of [input, node] pairs')
    if not isinstance(weights, dict):
        raise ReportError(f'{where}: field "arch.weights": expected {{"normal": [...], "reduce": [...]}}')
    for kind in CELLS:
        w = weights.get(kind)
        if not (isinstance(w, list) and len(w) == len(edges)
                and all(isinstance(row, list) and len(row) == len(ops) for row in w)):
            raise ReportError(f'{where}: field "arch.weights.{kind}": expected {len(edges)} rows (edges) of '
                              f'{len(ops)} weights (ops)')


# ---- (a) the architecture film ------------------------------------------------------------------
FRAME_BOX = (1280, 1440)  # largest frame (px); a fully connected DST cell is scaled down to fit


def _fit(im: Image.Image, box: Tuple[int, int] = FRAME_BOX) -> Image.Image:
    from PIL import Image
    scale = min(box[0] / im.width, box[1] / im.height, 1.0)
    if scale == 1.0:
        return im
    return im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.Resampling.LANCZOS)


def _pad(images: Sequence[Image.Image]) -> List[Image.Image]:
    """Same canvas for every frame (a GIF has one size), drawing centred at the top."""
    from PIL import Image
    w, h = max(im.width for im in images), max(im.height for im in images)
    out = []
    for im in images:
        canvas = Image.new('RGB', (w, h), 'white')
        canvas.paste(im, ((w - im.width) // 2, 0))
        out.append(canvas)
    return out


def render_frames(run: SearchRun, out_dir: Path, frame_ms: int = 700) -> Tuple[List[Path], Optional[Path]]:
    """PNG per recorded epoch and the animated GIF; returns (frames, gif)."""
    from PIL import Image
    frames_dir = out_dir / 'frames'
    subtitle = ' · '.join(x for x in (run.setting('method'), run.setting('dataset'), run.run_dir.name) if x)
    total = run.planned_epochs
    epochs, images = [], []
    for rec, g in zip(run.records, run.genotypes):
        if g is None:
            continue
        epoch = rec['epoch']
        heading = f'epoch {epoch} of {total}' if total else f'epoch {epoch}'
        images.append(_fit(genotype_image(g, title=heading, subtitle=subtitle, dpi=72)))
        epochs.append(epoch)
    skipped = len(run.records) - len(epochs)
    if skipped:
        run.notes.append(f'{skipped} epoch record(s) without a "genotype" field: no frame for them')
    if not images:
        return [], None
    images = _pad(images)
    paths = []
    for epoch, im in zip(epochs, images):
        buf = io.BytesIO()
        im.save(buf, format='PNG')
        paths.append(write_atomic(frames_dir / f'epoch_{epoch:03d}.png', buf.getvalue()))
    for stale in frames_dir.glob('epoch_*.png'):
        if stale not in paths:
            stale.unlink()
    buf = io.BytesIO()
    durations = [frame_ms] * (len(images) - 1) + [max(3 * frame_ms, 2000)]
    # one fast 64-colour palette per frame: diagrams are flat colours, and Pillow's default quantiser is slow
    frames = [im.quantize(colors=64, method=Image.Quantize.FASTOCTREE) for im in images]
    frames[0].save(buf, format='GIF', save_all=True, append_images=frames[1:], duration=durations, loop=0)
    return paths, write_atomic(out_dir / 'cells.gif', buf.getvalue())


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


def _per_node(ax: Any, run: SearchRun, key: str, title: str, ylabel: str) -> None:
    ax.set_title(title)
    drawn = False
    for kind, style in (('normal', '-'), ('reduce', '--')):
        xs, ys = _series(run, 'arch', key, kind)
        if not xs or not all(isinstance(y, list) for y in ys):
            continue
        for j in range(max(len(y) for y in ys)):
            pts = [(x, y[j]) for x, y in zip(xs, ys) if j < len(y)]
            ax.plot(*zip(*pts), style, marker='.', color=f'C{j}', label=f'{kind} node {j}')
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
                ax.plot(xs, ys, marker='.', label=split)
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
            ax.plot(xs, ys, style, marker='.', label=kind)
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
        ax.plot(xs, [p / 1e6 for p in params], marker='.', color='C0', label='params')
        ax.set_ylabel('params (M)', color='C0')
    if xm:
        ax2 = ax.twinx()
        ax2.plot(xm, [m / 1e6 for m in macs], marker='.', color='C3', label='MACs')
        ax2.set_ylabel('MACs (M)', color='C3')
    if not xs and not xm:
        _not_recorded(ax, 'params / MACs')
    for ax in (axes[1, 0], axes[1, 1]):  # counts: integers from 0
        ax.set_ylim(bottom=0)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(f'{run.run_dir.name}: {len(run.records)} epoch(s) recorded', fontsize=12)
    return _png(fig)


def _edge_label(edge: Sequence[int]) -> str:
    src, node = edge
    return f'{node_label(src)} → {node_label(node)}'


def weights_png(run: SearchRun) -> Optional[bytes]:
    """Heat map of the final architecture weights (edges x ops) of both cells; None without a snapshot."""
    arch = next((r['arch'] for r in reversed(run.records) if r.get('arch') is not None), None)
    if arch is None:
        return None
    ops, edges = arch['ops'], arch['edges']
    vmax = max([max(row, default=0) for k in CELLS for row in arch['weights'][k]] + [1e-12])
    fig = _figure((max(8.0, 0.75 * len(ops) * 2 + 3), 0.36 * len(edges) + 2.4))
    axes = fig.subplots(1, 2, sharey=True)
    image = None
    for ax, kind in zip(axes, CELLS):
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


# ---- (d) the HTML page -------------------------------------------------------------------------
_CSS = """
body{font-family:Helvetica,Arial,sans-serif;margin:2em auto;max-width:1200px;color:#222;padding:0 1em}
h1{margin-bottom:.2em} h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
.status{color:#555} img{max-width:100%;height:auto;border:1px solid #eee} img.film{max-height:90vh}
table{border-collapse:collapse} td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top}
pre{background:#f6f8fa;padding:.8em;overflow-x:auto;font-size:.85em} .note{color:#8a6d3b}
"""


def _data_uri(data: bytes, mime: str) -> str:
    return f'data:{mime};base64,{base64.b64encode(data).decode("ascii")}'


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f'{value:.4g}'
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _summary(run: SearchRun) -> List[Tuple[str, str]]:
    last = run.records[-1]
    rows = [(k, run.setting(k)) for k in ('method', 'dataset', 'space')]
    total = run.planned_epochs
    rows.append(('epochs recorded', f'{len(run.records)}' + (f' of {total}' if total else '')))
    for key, label in (('train_acc', 'train accuracy'), ('val_acc', 'val accuracy'),
                       ('train_loss', 'train loss'), ('val_loss', 'val loss')):
        if last.get(key) is not None:
            rows.append((f'{label}, epoch {last["epoch"]}', _fmt(last[key])))
    if last.get('params') is not None:
        rows.append(('derived network params', f'{last["params"] / 1e6:.3f} M'))
    if last.get('macs') is not None:
        rows.append(('derived network MACs', f'{last["macs"] / 1e6:.1f} M'))
    times = [r['epoch_time_s'] for r in run.records if isinstance(r.get('epoch_time_s'), (int, float))]
    if times:
        rows.append(('search time of recorded epochs', f'{sum(times) / 3600:.3f} h'))
    mems = [r['peak_mem_mb'] for r in run.records if isinstance(r.get('peak_mem_mb'), (int, float))]
    if mems:
        rows.append(('peak memory', f'{max(mems):.0f} MB'))
    if run.final is not None:
        provenance = run.final.to_dict()['provenance']  # plain JSON types (the Genotype holds frozen ones)
        for key in ('search_cost', 'seed', 'date', 'code_version'):
            if provenance.get(key) is not None:
                rows.append((key.replace('_', ' '), _fmt(provenance[key])))
    return [(k, v) for k, v in rows if v is not None]


def _table(rows: Sequence[Tuple[str, str]]) -> str:
    return '<table>' + ''.join(f'<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>'
                               for k, v in rows) + '</table>'


def _img(uri: Optional[str], alt: str, css: str = '') -> str:
    if uri is None:
        return f'<p class="note">{html.escape(alt)}: not available for this run.</p>'
    cls = f' class="{css}"' if css else ''
    return f'<p><img{cls} src="{uri}" alt="{html.escape(alt)}"></p>'


def render_html(run: SearchRun, gif: Optional[bytes], cell_svg: Optional[bytes], curves: bytes,
                weights: Optional[bytes]) -> str:
    """One page, no external resources: every image is a data URI and the style is inline."""
    name = run.run_dir.name
    total = run.planned_epochs
    if run.complete:
        status = f'complete: {len(run.records)} epoch(s) recorded, final genotype in {GENOTYPE}'
    else:
        status = (f'in progress: epoch {run.epochs[-1]}' + (f' of {total}' if total else '')
                  + f' recorded; no {GENOTYPE} yet, so the genotype shown is the one derived at the last epoch')
    g = run.genotype()
    parts = [
        '<!DOCTYPE html>', '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">',
        f'<title>Search report: {html.escape(name)}</title><style>{_CSS}</style></head><body>',
        f'<h1>Search report: {html.escape(name)}</h1><p class="status">{html.escape(status)}</p>',
        _table(_summary(run)),
    ]
    if run.notes:
        parts.append('<ul>' + ''.join(f'<li class="note">{html.escape(n)}</li>' for n in run.notes) + '</ul>')
    parts += [
        '<h2>Derived cells, epoch by epoch</h2>',
        _img(_data_uri(gif, 'image/gif') if gif else None, 'derived cells per epoch (animation)', 'film'),
        '<h2>Final cells</h2>' if run.complete else '<h2>Current cells</h2>',
        _img(_data_uri(cell_svg, 'image/svg+xml') if cell_svg else None, 'cell diagram'),
        '<h2>Curves</h2>', _img(_data_uri(curves, 'image/png'), 'training curves'),
        '<h2>Architecture weights</h2>',
        _img(_data_uri(weights, 'image/png') if weights else None, 'architecture weight heat map'),
    ]
    if g is not None:
        parts += ['<h2>Genotype</h2>', f'<pre>{html.escape(str(g))}</pre>',
                  f'<details open><summary>JSON</summary><pre>{html.escape(g.to_json())}</pre></details>']
    parts.append('<h2>Settings</h2>')
    if run.config:
        parts.append(_table([(k, _fmt(v)) for k, v in run.config.items()]))
    else:
        parts.append(f'<p class="note">no {CONFIG} in the run directory.</p>')
    parts.append(f'<p class="status">entrannas-timm {html.escape(__version__)} · run directory '
                 f'{html.escape(str(run.run_dir))}</p></body></html>')
    return '\n'.join(parts) + '\n'


def build_report(run_dir: Union[str, os.PathLike], out_dir: Union[str, os.PathLike, None] = None,
                 frame_ms: int = 700) -> Path:
    """Write every report file into ``out_dir`` (default ``RUN_DIR/report``); return the HTML page's path."""
    if frame_ms < 1:
        raise ReportError(f'frame_ms: expected a positive number of milliseconds, got {frame_ms}')
    run = load_run(run_dir)
    out = Path(out_dir) if out_dir is not None else run.run_dir / 'report'
    _, gif_path = render_frames(run, out, frame_ms=frame_ms)
    g = run.genotype()
    cell_svg = None
    if g is not None:
        cell_svg = plot_genotype(g, format='svg', title=g.name)
        write_atomic(out / 'cells.svg', cell_svg)
    curves = curves_png(run)
    write_atomic(out / 'curves.png', curves)
    weights = weights_png(run)
    if weights is not None:
        write_atomic(out / 'arch_weights.png', weights)
    gif = gif_path.read_bytes() if gif_path else None
    return write_atomic(out / 'report.html', render_html(run, gif, cell_svg, curves, weights))


def _cli_report(args: argparse.Namespace) -> int:
    """An unusable run directory is exit code 2; an environment without Graphviz, or failed I/O, 1."""
    try:
        path = build_report(args.run_dir, args.output, frame_ms=args.frame_ms)
    except ReportError as e:
        raise CLIError(str(e)) from e
    except (GraphvizNotFoundError, ImportError, OSError, RuntimeError) as e:
        raise CLIError(str(e), exit_code=1) from e
    print(path)
    return 0


def add_cli(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``entrannas report RUN_DIR [-o OUT_DIR]``."""
    p = subparsers.add_parser(
        'report', help='report on a search run (cell animation, curves, weights, HTML page)',
        description='Write a report of a search run directory: frames/ and cells.gif (derived cells per epoch), '
                    'curves.png, arch_weights.png and a self-contained report.html. Works while the search runs.')
    p.add_argument('run_dir', metavar='RUN_DIR', help='search run directory (holds metrics.jsonl)')
    p.add_argument('-o', '--output', metavar='OUT_DIR', help='output directory (default: RUN_DIR/report)')
    p.add_argument('--frame-ms', type=int, default=700, help='animation: milliseconds per epoch (default 700)')
    p.set_defaults(func=_cli_report)
    return p

