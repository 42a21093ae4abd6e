"""Search report: what a search run did, epoch by epoch, as files and one self-contained HTML page.

Reads a run directory written by ``python -m search`` (``metrics.jsonl``, ``config.json`` and, once the
search has finished, ``genotype.json``) and writes:

- ``frames/epoch_NNN.png`` and ``cells.gif``: the derived normal and reduction cells at every recorded epoch
  (the EnTranNAS-DST "video": all connections active at first, then cut gradually); the GIF shows at most
  ``--gif-frames`` of them, and ``frames/index.json`` lets the next report reuse frames that did not change;
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
import hashlib
import html
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple, Union

from . import __version__
from .files import write_atomic
from .genotype import Genotype, node_label
from .plot import GraphvizNotFoundError, genotype_graph, genotype_image, provenance_line, render_graph
from .records import (
    CELL_KINDS,
    CONFIG_FILE,
    EPOCH_FIELDS,
    GENOTYPE_FILE,
    LIMITS,
    METRICS_FILE,
    EpochRecord,
    RecordError,
    read_config,
    read_genotype,
    read_metrics,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from PIL import Image

__all__ = ['ReportError', 'SearchRun', 'load_run', 'build_report', 'render_frames', 'add_cli', 'GIF_FRAMES']

GIF_FRAMES = 60  # most frames in cells.gif: evenly spaced epochs and the last (every epoch has its PNG)
_STATS = ('thresholds', 'active_connections', 'skip_connect')  # per-epoch arch statistics the curves draw


class ReportError(ValueError):
    """A run directory cannot be reported on; the message names the file (and line/field) at fault."""


def _printable(text: Any) -> str:
    """Text safe to encode and render: lone surrogates (from JSON escapes or undecodable file names) escaped."""
    return str(text).encode('utf-8', 'backslashreplace').decode('utf-8')


@dataclass
class SearchRun:
    """A run directory as read, kept small for long runs: per epoch (one record per epoch, the latest if an
    epoch was logged twice, e.g. on resume) the scalar fields and architecture statistics, and the derived
    genotype as canonical JSON (parsed only when drawn); the full architecture snapshot of the last epoch only."""
    run_dir: Path
    records: List[Dict[str, Any]]
    genotypes: List[Optional[str]]
    config: Dict[str, Any]
    final: Optional[Genotype]
    last_arch: Optional[Dict[str, Any]] = None
    notes: List[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return _printable(self.run_dir.resolve().name or self.run_dir)

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
        if latest is None:
            return None
        g = Genotype.from_dict(json.loads(latest))
        return g.replace(name=g.name or self.name)

    def setting(self, key: str) -> Optional[str]:
        """A setting from config.json, falling back to the final genotype's provenance."""
        value = self.config.get(key)
        if value is None and self.final is not None:
            value = self.final.provenance.get(key)
        return None if value is None else _printable(value)


def load_run(run_dir: Union[str, os.PathLike]) -> SearchRun:
    """Read a (possibly unfinished) run directory; every problem is a :class:`ReportError` naming the file."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise ReportError(f'{run_dir}: run directory not found')
    if not run_dir.is_dir():
        raise ReportError(f'{run_dir}: not a directory; expected a search run directory holding {METRICS_FILE}')
    if not (run_dir / METRICS_FILE).is_file():
        what = 'is empty' if not any(run_dir.iterdir()) else f'has no {METRICS_FILE}'
        raise ReportError(f'{run_dir}: {what}; expected a search run directory ({METRICS_FILE}, {CONFIG_FILE}, '
                          'written by `python -m search` after its first epoch)')
    canonical: Dict[str, str] = {}  # one string per distinct genotype: late epochs of a search repeat theirs
    last_arch: Dict[str, Any] = {'epoch': 0, 'arch': None}

    def keep(rec: EpochRecord) -> Tuple[Dict[str, Any], Optional[str]]:
        data = rec.data
        small = {k: v for k, v in data.items() if k in EPOCH_FIELDS and k not in ('genotype', 'arch')}
        arch = data.get('arch')
        if arch is not None:
            small['arch'] = {k: arch.get(k) for k in _STATS}
            if rec.epoch >= last_arch['epoch']:
                last_arch.update(epoch=rec.epoch, arch=arch)
        text = None
        if rec.genotype is not None:
            text = json.dumps(rec.genotype.to_dict(), sort_keys=True)
            text = canonical.setdefault(text, text)
        return small, text
    try:
        log = read_metrics(run_dir / METRICS_FILE, keep)
        if not log.records:
            raise ReportError(f'{log.path}: no complete epoch record yet; the report needs at least one epoch')
        notes = list(log.notes)
        config: Dict[str, Any] = {}
        if (run_dir / CONFIG_FILE).is_file():
            config = read_config(run_dir / CONFIG_FILE)
        else:
            notes.append(f'no {CONFIG_FILE} in the run directory; settings are not shown')
    except RecordError as e:
        raise ReportError(str(e)) from None
    final = None
    if (run_dir / GENOTYPE_FILE).is_file():
        try:  # the report still shows the run's records when the final genotype cannot be read
            final = read_genotype(run_dir / GENOTYPE_FILE)
        except RecordError as e:
            notes.append(f'the final genotype could not be read ({e}); the genotype shown is the one derived at '
                         'the last epoch')
    return SearchRun(run_dir, [r for r, _ in log.records], [g for _, g in log.records], config, final,
                     last_arch['arch'], notes)


# ---- (a) the architecture film ------------------------------------------------------------------
FRAME_BOX = (1280, 1440)  # largest frame (px); a fully connected DST cell is scaled down to fit
FRAME_DPI = 72
_FRAME_INDEX = 'index.json'  # frames/index.json: what each frame shows, so an unchanged frame is not redrawn


def _fit(im: Image.Image, box: Tuple[int, int] = FRAME_BOX) -> Image.Image:
    from PIL import Image
    scale = min(box[0] / im.width, box[1] / im.height, 1.0)
    if scale == 1.0:
        return im
    return im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.Resampling.LANCZOS)


def _on_canvas(im: Image.Image, canvas: Tuple[int, int]) -> Image.Image:
    """The drawing centred at the top of a white canvas (every frame gets the same size, as a GIF needs)."""
    from PIL import Image
    if im.size == canvas:
        return im
    out = Image.new('RGB', canvas, 'white')
    out.paste(im, ((canvas[0] - im.width) // 2, 0))
    return out


def _save_png(path: Path, im: Image.Image) -> None:
    buf = io.BytesIO()
    im.save(buf, format='PNG', compress_level=3)
    write_atomic(path, buf.getvalue())


def _read_index(path: Path) -> Dict[str, Dict[str, Any]]:
    """A previous report's frame index; anything unreadable or odd means "redraw everything"."""
    try:
        if path.stat().st_size > LIMITS['json_file_bytes']:
            return {}
        data = json.loads(path.read_text(encoding='utf-8'))
    except (OSError, ValueError, RecursionError):
        return {}
    frames = data.get('frames') if isinstance(data, dict) and data.get('version') == 1 else None
    if not isinstance(frames, dict):
        return {}

    def size_ok(v: Any) -> bool:
        return (isinstance(v, list) and len(v) == 2 and all(isinstance(x, int) for x in v)
                and 0 < v[0] <= FRAME_BOX[0] and 0 < v[1] <= FRAME_BOX[1])
    return {k: v for k, v in frames.items() if isinstance(v, dict) and isinstance(v.get('key'), str)
            and size_ok(v.get('size')) and size_ok(v.get('canvas'))}


def _png_size(path: Path) -> Optional[Tuple[int, int]]:
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as im:
            return im.size if im.format == 'PNG' else None
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError):
        return None


def gif_epochs(epochs: Sequence[int], most: int) -> List[int]:
    """At most ``most`` evenly spaced epochs of ``epochs``, always the first and the last."""
    if len(epochs) <= most:
        return list(epochs)
    if most < 2:
        return [epochs[-1]]
    picks = {round(i * (len(epochs) - 1) / (most - 1)) for i in range(most)}
    return [epochs[i] for i in sorted(picks)]


def _draw_frames(run: SearchRun, frames_dir: Path) -> Tuple[Dict[int, Dict[str, Any]], Tuple[int, int]]:
    """Draw each epoch's frame and write its PNG at once, on the largest canvas so far; reuse a frame the
    last report drew for the same genotype and heading. Returns the frames by epoch and the final canvas."""
    subtitle = ' · '.join(x for x in (run.setting('method'), run.setting('dataset'), run.name) if x)
    total = run.planned_epochs
    width = max(3, len(str(max(run.epochs[-1], total or 0))))
    index = _read_index(frames_dir / _FRAME_INDEX)
    entries: Dict[int, Dict[str, Any]] = {}
    canvas = (1, 1)
    for rec, text in zip(run.records, run.genotypes):
        if text is None:
            continue
        epoch = rec['epoch']
        heading = f'epoch {epoch} of {total}' if total else f'epoch {epoch}'
        key = hashlib.sha256(json.dumps([text, heading, subtitle, FRAME_DPI, FRAME_BOX]).encode()).hexdigest()
        path = frames_dir / f'epoch_{epoch:0{width}d}.png'
        old = index.get(str(epoch))
        if old is not None and old['key'] == key and _png_size(path) == tuple(old['canvas']):
            entry = dict(old, path=path)
        else:
            # the name is not drawn into the frame (the heading says the epoch): a crafted name cannot reach DOT
            g = Genotype.from_dict(json.loads(text)).replace(name=None)
            im = _fit(genotype_image(g, title=heading, subtitle=subtitle, dpi=FRAME_DPI))
            canvas = (max(canvas[0], im.width), max(canvas[1], im.height))
            _save_png(path, _on_canvas(im, canvas))
            entry = dict(key=key, size=list(im.size), canvas=list(canvas), path=path)
        canvas = (max(canvas[0], entry['size'][0]), max(canvas[1], entry['size'][1]))
        entries[epoch] = entry
    return entries, canvas


def _recentre(entries: Dict[int, Dict[str, Any]], canvas: Tuple[int, int]) -> None:
    """Put frames drawn on a smaller canvas than the largest frame onto the final one (one at a time)."""
    from PIL import Image
    for entry in entries.values():
        if tuple(entry['canvas']) != canvas:
            (w, h), (cw, _) = entry['size'], entry['canvas']
            with Image.open(entry['path']) as im:
                drawing = im.convert('RGB').crop(((cw - w) // 2, 0, (cw - w) // 2 + w, h))
            _save_png(entry['path'], _on_canvas(drawing, canvas))
            entry['canvas'] = list(canvas)


def _write_gif(frames: Sequence[Path], path: Path, frame_ms: int) -> Path:
    from PIL import Image
    gif = []
    for frame in frames:  # one fast 64-colour palette per frame: diagrams are flat colours
        with Image.open(frame) as im:
            gif.append(im.convert('RGB').quantize(colors=64, method=Image.Quantize.FASTOCTREE))
    durations = [frame_ms] * (len(gif) - 1) + [max(3 * frame_ms, 2000)]
    buf = io.BytesIO()
    gif[0].save(buf, format='GIF', save_all=True, append_images=gif[1:], duration=durations, loop=0)
    return write_atomic(path, buf.getvalue())


def render_frames(run: SearchRun, out_dir: Path, frame_ms: int = 700,
                  gif_frames: int = GIF_FRAMES) -> Tuple[List[Path], Optional[Path]]:
    """A PNG per recorded epoch, written as it is drawn, and the animated GIF of at most ``gif_frames`` of
    them; returns (frames, gif). Memory stays bounded: one drawing at a time, then only the GIF's frames.

    A frame whose drawing (genotype, heading) has not changed since the last report is reused, not redrawn.
    """
    frames_dir = out_dir / 'frames'
    entries, canvas = _draw_frames(run, frames_dir)
    skipped = len(run.records) - len(entries)
    if skipped:
        run.notes.append(f'{skipped} epoch record(s) without a "genotype" field: no frame for them')
    _recentre(entries, canvas)
    paths = [e['path'] for e in entries.values()]
    if frames_dir.is_dir():
        for stale in frames_dir.glob('epoch_*.png'):
            if stale not in paths:
                stale.unlink()
    if not entries:
        return [], None
    write_atomic(frames_dir / _FRAME_INDEX, json.dumps({'version': 1, 'frames': {
        str(e): {k: v for k, v in entry.items() if k != 'path'} for e, entry in entries.items()}}))
    chosen = gif_epochs(sorted(entries), gif_frames)
    if len(chosen) < len(entries):
        run.notes.append(f'the animation shows {len(chosen)} of {len(entries)} epochs (evenly spaced, and the '
                         f'last); every epoch is in frames/')
    return paths, _write_gif([entries[e]['path'] for e in chosen], out_dir / 'cells.gif', frame_ms)


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


def _esc(text: Any) -> str:
    """Any text from the run directory, made safe for the page (HTML-escaped, encodable)."""
    return html.escape(_printable(text))


def _table(rows: Sequence[Tuple[str, str]]) -> str:
    return '<table>' + ''.join(f'<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>' for k, v in rows) + '</table>'


def _img(uri: Optional[str], alt: str, css: str = '') -> str:
    if uri is None:
        return f'<p class="note">{html.escape(alt)}: not available for this run.</p>'
    cls = f' class="{css}"' if css else ''
    return f'<p><img{cls} src="{uri}" alt="{html.escape(alt)}"></p>'


def render_html(run: SearchRun, gif: Optional[bytes], cell_svg: Optional[bytes], curves: bytes,
                weights: Optional[bytes]) -> str:
    """One page, no external resources: every image is a data URI and the style is inline."""
    name = run.name
    total = run.planned_epochs
    if run.complete:
        status = f'complete: {len(run.records)} epoch(s) recorded, final genotype in {GENOTYPE_FILE}'
    elif (run.run_dir / GENOTYPE_FILE).is_file():
        status = f'finished: {len(run.records)} epoch(s) recorded; {GENOTYPE_FILE} could not be read (see below)'
    else:
        status = (f'in progress: epoch {run.epochs[-1]}' + (f' of {total}' if total else '')
                  + f' recorded; no {GENOTYPE_FILE} yet, so the genotype shown is the one derived at the last epoch')
    g = run.genotype()
    parts = [
        '<!DOCTYPE html>', '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">',
        f'<title>Search report: {_esc(name)}</title><style>{_CSS}</style></head><body>',
        f'<h1>Search report: {_esc(name)}</h1><p class="status">{_esc(status)}</p>',
        _table(_summary(run)),
    ]
    if run.notes:
        parts.append('<ul>' + ''.join(f'<li class="note">{_esc(n)}</li>' for n in run.notes) + '</ul>')
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
        parts += ['<h2>Genotype</h2>', f'<pre>{_esc(g)}</pre>',
                  f'<details open><summary>JSON</summary><pre>{_esc(g.to_json())}</pre></details>']
    parts.append('<h2>Settings</h2>')
    if run.config:
        parts.append(_table([(k, _fmt(v)) for k, v in run.config.items()]))
    else:
        parts.append(f'<p class="note">no {CONFIG_FILE} in the run directory.</p>')
    parts.append(f'<p class="status">entrannas-timm {_esc(__version__)} · run directory '
                 f'{_esc(run.run_dir)}</p></body></html>')
    return '\n'.join(parts) + '\n'


def build_report(run_dir: Union[str, os.PathLike], out_dir: Union[str, os.PathLike, None] = None,
                 frame_ms: int = 700, gif_frames: int = GIF_FRAMES) -> Path:
    """Write every report file into ``out_dir`` (default ``RUN_DIR/report``); return the HTML page's path.

    Frames are written as they are drawn (an interrupted report keeps them, and the next one reuses them).
    """
    if frame_ms < 1:
        raise ReportError(f'frame_ms: expected a positive number of milliseconds, got {frame_ms}')
    if gif_frames < 1:
        raise ReportError(f'gif_frames: expected at least 1 frame, got {gif_frames}')
    run = load_run(run_dir)
    out = Path(out_dir) if out_dir is not None else run.run_dir / 'report'
    _, gif_path = render_frames(run, out, frame_ms=frame_ms, gif_frames=gif_frames)
    g = run.genotype()
    cell_svg = None
    if g is not None:  # names reach the drawing only as escaped title text, never as DOT identifiers
        cell_svg = render_graph(genotype_graph(g.replace(name=None), title=_printable(g.name or run.name),
                                               subtitle=_printable(provenance_line(g))), 'svg')
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
    from .cli import CLIError
    try:
        path = build_report(args.run_dir, args.output, frame_ms=args.frame_ms, gif_frames=args.gif_frames)
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
    p.add_argument('--gif-frames', type=int, default=GIF_FRAMES, help='animation: at most this many epochs, evenly '
                   f'spaced, and the last (default {GIF_FRAMES}); frames/ holds every epoch')
    p.set_defaults(func=_cli_report)
    return p

