"""Search report: what a search run did, epoch by epoch, as files and one self-contained HTML page.

Reads a run directory written by ``python -m search`` (``metrics.jsonl``, ``config.json`` and, once the
search has finished, ``genotype.json``) and writes:

- ``frames/epoch_NNN.png`` and ``cells.gif``: the derived normal and reduction cells at the first and last epoch
  and at each epoch where they changed (the EnTranNAS-DST "video": all connections active at first, then cut
  gradually), at most ``--max-frames`` of them, evenly thinned; ``frames/index.json`` lets the next report reuse
  frames that did not change, and the page says which epochs the film shows;
- ``curves.png``: accuracy and loss, DST thresholds t_j, active connections per node, skip-connect count,
  params/MACs of the derived network;
- ``arch_weights.png``: the final architecture weights per edge and op (normal and reduction cells);
- ``consistency.png``: when the run holds ``consistency.jsonl``, the held-out accuracy of the super-net and of
  its derived network at the measured epochs, and the gap between them (docs/method.md, *Consistency*);
- ``report.html``: all of it with images inlined as data URIs, the final genotype and the run's settings.

A run still in progress works too: a partly written last line of ``metrics.jsonl`` is skipped and the
current derived genotype stands in for ``genotype.json``.
"""
from __future__ import annotations

import argparse
import base64
import html
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, List, Optional, Sequence, Tuple, Union

from ..utils.errors import CLIError
from ..utils.files import write_atomic
from ..version import __version__
from .charts import CONSISTENCY_LABELS, consistency_png, curves_png, weights_png
from .film import MAX_FRAMES, render_frames
from .plot import GraphvizNotFoundError, genotype_graph, provenance_line, render_graph
from .records import CONFIG_FILE, CONSISTENCY_FILE, CONSISTENCY_STAGES, GENOTYPE_FILE
from .run import ReportError, SearchRun, load_run, printable

if TYPE_CHECKING:
    pass

__all__ = ['build_report', 'render_html', 'add_cli']

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
    return html.escape(printable(text))


def _table(rows: Sequence[Tuple[str, str]]) -> str:
    return '<table>' + ''.join(f'<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>' for k, v in rows) + '</table>'


def _img(uri: Optional[str], alt: str, css: str = '') -> str:
    if uri is None:
        return f'<p class="note">{html.escape(alt)}: not available for this run.</p>'
    cls = f' class="{css}"' if css else ''
    return f'<p><img{cls} src="{uri}" alt="{html.escape(alt)}"></p>'


def _consistency_table(run: SearchRun) -> str:
    """Every measurement of ``consistency.jsonl``: accuracy per stage and the gap, in percent."""
    head = ['epoch', 'measured by', 'held-out images'] + [CONSISTENCY_LABELS[s] for s in CONSISTENCY_STAGES] + [
        'gap (super-net − inherited)', 'CPU s']
    rows = []
    for r in run.consistency:
        acc = r['acc']
        rows.append([r['epoch'], r['source'], r['heldout'].get('images')]
                    + [f'{100 * acc[s]:.2f}' for s in CONSISTENCY_STAGES]
                    + [f'{100 * (acc["supernet"] - acc["inherited"]):+.2f}', f'{r["cpu_s"]:.0f}'])
    return ('<table><tr>' + ''.join(f'<th>{_esc(h)}</th>' for h in head) + '</tr>'
            + ''.join('<tr>' + ''.join(f'<td>{_esc(v)}</td>' for v in row) + '</tr>' for row in rows) + '</table>')


def render_html(run: SearchRun, gif: Optional[bytes], cell_svg: Optional[bytes], curves: bytes,
                weights: Optional[bytes], film_caption: Optional[str] = None,
                consistency: Optional[bytes] = None) -> str:
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
        f'<p class="status">{_esc(film_caption)}</p>' if film_caption else '',
        '<h2>Final cells</h2>' if run.complete else '<h2>Current cells</h2>',
        _img(_data_uri(cell_svg, 'image/svg+xml') if cell_svg else None, 'cell diagram'),
        '<h2>Curves</h2>', _img(_data_uri(curves, 'image/png'), 'training curves'),
        '<h2>Architecture weights</h2>',
        _img(_data_uri(weights, 'image/png') if weights else None, 'architecture weight heat map'),
    ]
    if run.consistency:
        split = run.consistency[-1]['heldout']
        parts += ['<h2>Consistency</h2>',
                  f'<p>Accuracy (%) on the held-out split ({_esc(split.get("split"))}, evaluation transforms) of '
                  'the super-net and of the network its genotype builds through the zoo: with the super-net\'s '
                  'weights, after batch-norm re-calibration, after a short fine-tune, and trained from scratch for '
                  f'the same steps ({_esc(CONSISTENCY_FILE)}; docs/method.md, <i>Consistency</i>).</p>',
                  _img(_data_uri(consistency, 'image/png') if consistency else None, 'consistency curve'),
                  _consistency_table(run)]
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
                 frame_ms: int = 700, max_frames: int = MAX_FRAMES) -> Path:
    """Write every report file into ``out_dir`` (default ``RUN_DIR/report``); return the HTML page's path.

    Frames are written as they are drawn (an interrupted report keeps them, and the next one reuses them).
    """
    if frame_ms < 1:
        raise ReportError(f'frame_ms: expected a positive number of milliseconds, got {frame_ms}')
    if max_frames < 1:
        raise ReportError(f'max_frames: expected at least 1 frame, got {max_frames}')
    run = load_run(run_dir)
    out = Path(out_dir) if out_dir is not None else run.run_dir / 'report'
    film = render_frames(run, out, frame_ms=frame_ms, max_frames=max_frames)
    g = run.genotype()
    cell_svg = None
    if g is not None:  # names reach the drawing only as escaped title text, never as DOT identifiers
        cell_svg = render_graph(genotype_graph(g.replace(name=None), title=printable(g.name or run.name),
                                               subtitle=printable(provenance_line(g))), 'svg')
        write_atomic(out / 'cells.svg', cell_svg)
    curves = curves_png(run)
    write_atomic(out / 'curves.png', curves)
    weights = weights_png(run)
    if weights is not None:
        write_atomic(out / 'arch_weights.png', weights)
    consistency = consistency_png(run)
    if consistency is not None:
        write_atomic(out / 'consistency.png', consistency)
    gif = film.gif.read_bytes() if film.gif else None
    return write_atomic(out / 'report.html', render_html(run, gif, cell_svg, curves, weights, film.caption,
                                                         consistency))


def _cli_report(args: argparse.Namespace) -> int:
    """An unusable run directory is exit code 2; an environment without Graphviz, or failed I/O, 1."""
    try:
        path = build_report(args.run_dir, args.output, frame_ms=args.frame_ms, max_frames=args.max_frames)
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
                    'curves.png, arch_weights.png, consistency.png (when measured) and a self-contained '
                    'report.html. Works while the search runs.')
    p.add_argument('run_dir', metavar='RUN_DIR', help='search run directory (holds metrics.jsonl)')
    p.add_argument('-o', '--output', metavar='OUT_DIR', help='output directory (default: RUN_DIR/report)')
    p.add_argument('--frame-ms', type=int, default=700, help='animation: milliseconds per frame (default 700)')
    p.add_argument('--max-frames', type=int, default=MAX_FRAMES, help='film: at most this many frames; the epochs '
                   'where the derived cell changed, and the first and the last, are thinned evenly to fit '
                   f'(default {MAX_FRAMES})')
    p.add_argument('--gif-frames', type=int, dest='max_frames', help=argparse.SUPPRESS)  # the old name
    p.set_defaults(func=_cli_report)
    return p
