"""Cell diagrams: both cells of a genotype drawn as the DARTS/EnTranNAS papers draw them.

Inputs ``c_{k-2}``, ``c_{k-1}``, intermediate nodes ``0..n-1`` and the output ``c_{k}``; one arrow per
connection, labelled with its op and coloured by op family. EnTranNAS-DST cells (any number of inputs per
node, several ops on one edge) come out as parallel labelled arrows. Layout is done by Graphviz ``dot``;
the ``graphviz`` Python package (extra ``plot``) only writes the DOT source and runs the program.
"""
from __future__ import annotations

import argparse
import html
import io
import os
import re
import shutil
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Optional, Sequence, Union

from ..models.genotype import CellSpec, Genotype, GenotypeError, GenotypeLike, node_label
from ..models.ops import op_family
from ..utils.errors import CLIError
from ..utils.files import write_atomic

if TYPE_CHECKING:  # optional dependencies, imported where used
    import graphviz
    from PIL import Image

__all__ = [
    'FORMATS', 'FAMILY_COLOURS', 'GraphvizNotFoundError', 'genotype_graph', 'render_graph',
    'plot_genotype', 'genotype_image', 'provenance_line', 'add_cli',
]

FORMATS = ('svg', 'png', 'pdf')
# Okabe-Ito palette: distinguishable with the common colour-vision deficiencies.
FAMILY_COLOURS: Dict[str, str] = {
    'sep_conv': '#0072B2', 'dil_conv': '#009E73', 'conv': '#D55E00', 'pool': '#CC79A7',
    'skip_connect': '#E69F00', 'none': '#999999',
}
_OTHER_COLOUR = '#333333'
_FONT = 'Helvetica'
_NODE_FILL = {'input': '#d8efd8', 'node': '#cfe3f5', 'output': '#f3ecc2'}
INSTALL_HINT = ('install Graphviz: `apt-get install graphviz` (Debian/Ubuntu), `brew install graphviz` (macOS) '
                'or `conda install -c conda-forge graphviz`')


class GraphvizNotFoundError(RuntimeError):
    """Graphviz's ``dot`` program is not on PATH (the Python package alone cannot lay out graphs)."""

    def __init__(self) -> None:
        super().__init__(f"Graphviz's `dot` program was not found on PATH; {INSTALL_HINT}")


def _import_graphviz() -> Any:
    try:
        import graphviz
    except ImportError:
        raise ImportError("cell diagrams need the 'graphviz' Python package: pip install 'entrannas-timm[plot]'"
                          ) from None
    return graphviz


def _printable(text: str) -> str:
    """Control characters and lone surrogates (no SVG or PDF can hold them) shown as U+FFFD; newlines kept."""
    return ''.join('\ufffd' if ch != '\n' and unicodedata.category(ch) in ('Cc', 'Cs') else ch for ch in text)


def _dot_text(text: str) -> str:
    """A user string as a DOT id or label: quoted where needed, never read as ``<html>`` or ``\\N``-style escapes."""
    return _import_graphviz().escape(_printable(text))


def _html_text(text: str) -> str:
    """A user string inside a Graphviz HTML-like label: markup escaped, backslashes literal, newlines as breaks."""
    return html.escape(_printable(text).replace('\\', '\\\\')).replace('\n', '<br/>')


def family_colour(op: str) -> str:
    return FAMILY_COLOURS.get(op_family(op), _OTHER_COLOUR)


def provenance_line(genotype: Genotype) -> str:
    """``method · dataset · space`` from the genotype's provenance (what a figure caption needs)."""
    prov = genotype.provenance
    parts = [str(prov[k]) for k in ('method', 'dataset') if prov.get(k)]
    parts.append(f'{genotype.space} space')
    if genotype.feature_sharing:
        parts.append('feature sharing')
    return ' · '.join(parts)


def _header(heading: str, subheading: str, families: Sequence[str]) -> str:
    """HTML-like graph label: heading, provenance and a colour legend of the op families used."""
    rows = []
    if heading:
        rows.append(f'<tr><td><font point-size="18"><b>{_html_text(heading)}</b></font></td></tr>')
    if subheading:
        rows.append(f'<tr><td><font point-size="12">{_html_text(subheading)}</font></td></tr>')
    legend = '  '.join(f'<font color="{FAMILY_COLOURS.get(f, _OTHER_COLOUR)}">&#9632; {_html_text(f)}</font>'
                       for f in families)
    rows.append(f'<tr><td><font point-size="11">{legend}</font></td></tr>')
    return '<<table border="0" cellspacing="2">' + ''.join(rows) + '</table>>'


def _add_cell(dot: Any, cell: CellSpec, kind: str) -> None:
    label = 'normal cell' if kind == 'normal' else 'reduction cell'
    with dot.subgraph(name=f'cluster_{kind}') as c:
        c.attr(label=label, labeljust='l', fontsize='14', style='rounded', color='#bbbbbb')
        with c.subgraph(name=f'{kind}_inputs') as inputs:
            inputs.attr(rank='same')
            for i in (0, 1):
                inputs.node(f'{kind}_{i}', node_label(i), fillcolor=_NODE_FILL['input'])
            inputs.edge(f'{kind}_0', f'{kind}_1', style='invis')  # keeps c_{k-2} above c_{k-1}
        for j in range(cell.num_nodes):
            c.node(f'{kind}_{j + 2}', str(j), fillcolor=_NODE_FILL['node'], shape='circle', width='0.45',
                   fixedsize='true')
        c.node(f'{kind}_out', 'c_{k}', fillcolor=_NODE_FILL['output'])
        for j, op, inp in cell.connections():
            colour = family_colour(op)
            c.edge(f'{kind}_{inp}', f'{kind}_{j + 2}', label=_dot_text(op), color=colour, fontcolor=colour)
        for k in cell.concat:
            c.edge(f'{kind}_{k}', f'{kind}_out', color='#888888', style='dashed', arrowsize='0.6')


def genotype_graph(genotype: GenotypeLike, title: Optional[str] = None, subtitle: Optional[str] = None,
                   dpi: Optional[int] = None) -> graphviz.Digraph:
    """The DOT graph of both cells. ``title`` defaults to the genotype's name, ``subtitle`` to its provenance."""
    graphviz = _import_graphviz()
    g = Genotype.coerce(genotype)
    heading = (g.name or 'genotype') if title is None else title
    subheading = provenance_line(g) if subtitle is None else subtitle
    families = sorted({op_family(op) for op in g.ops_used()})
    dot = graphviz.Digraph(name=_dot_text(g.name or 'genotype'))
    dot.attr(rankdir='LR', labelloc='t', label=_header(heading, subheading, families), fontname=_FONT,
             nodesep='0.25', ranksep='0.6', bgcolor='white', pad='0.2')
    if dpi:
        dot.attr(dpi=str(dpi))
    dot.attr('node', shape='box', style='filled,rounded', fontname=_FONT, fontsize='14', penwidth='1.2',
             height='0.4')
    dot.attr('edge', fontname=_FONT, fontsize='11', penwidth='1.6', arrowsize='0.8')
    # dot stacks the later of two unconnected clusters on top: add the reduction cell first so that the
    # normal cell is drawn above it, as in the papers
    _add_cell(dot, g.reduce, 'reduce')
    _add_cell(dot, g.normal, 'normal')
    return dot


def render_graph(dot: Any, fmt: str) -> bytes:
    """Lay out with `dot` and return the file; a missing `dot` is a GraphvizNotFoundError with the fix."""
    if fmt not in FORMATS:
        raise ValueError(f'unknown diagram format {fmt!r}; expected one of {", ".join(FORMATS)}')
    graphviz = _import_graphviz()
    if shutil.which('dot') is None:
        raise GraphvizNotFoundError()
    try:
        return dot.pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise GraphvizNotFoundError() from None
    except graphviz.CalledProcessError as e:
        err = (e.stderr or b'').decode(errors='replace').strip()
        raise RuntimeError(f'Graphviz dot failed to render the cell diagram ({fmt}): {err}') from None


def plot_genotype(genotype: GenotypeLike, path: Union[str, os.PathLike, None] = None, format: Optional[str] = None,
                  title: Optional[str] = None) -> Union[bytes, Path]:
    """Draw both cells; return the file's bytes, or write ``path`` (format from its suffix) and return it.

    ``genotype`` is anything :meth:`Genotype.coerce` takes (bundled name, file, dict, Genotype).
    """
    fmt = format.lower() if format else None
    if path is not None:
        suffix = Path(path).suffix.lower().lstrip('.')
        if fmt is None:
            if suffix not in FORMATS:
                raise ValueError(f'cannot tell the diagram format from {os.fspath(path)!r}; '
                                 f'use a .svg, .png or .pdf file name')
            fmt = suffix
        elif suffix in FORMATS and suffix != fmt:
            raise ValueError(f'format {fmt!r} does not match the file name {os.fspath(path)!r}')
    fmt = fmt or 'svg'
    data = render_graph(genotype_graph(genotype, title=title, dpi=120 if fmt == 'png' else None), fmt)
    return data if path is None else write_atomic(path, data)


def genotype_image(genotype: GenotypeLike, title: Optional[str] = None, subtitle: Optional[str] = None,
                   dpi: int = 96) -> Image.Image:
    """The diagram as an RGB PIL image (frames of the search animation are made of these)."""
    from PIL import Image
    data = render_graph(genotype_graph(genotype, title=title, subtitle=subtitle, dpi=dpi), 'png')
    with Image.open(io.BytesIO(data)) as im:
        return im.convert('RGB')


# ---- command line -----------------------------------------------------------------------------
def _default_output(genotype: Genotype) -> Path:
    """``NAME.svg`` in the current directory, the name reduced to a safe file name (no ``/``, ``..``, markup)."""
    stem = re.sub(r'[^\w.-]+', '_', genotype.name or '').strip('._')[:100]
    return Path(f'{stem or "genotype"}.svg')


def _cli_plot(args: argparse.Namespace) -> int:
    """Bad input (genotype, file name) is exit code 2; an environment without Graphviz, or failed I/O, 1."""
    try:
        g = Genotype.coerce(args.genotype)
        out = Path(args.output) if args.output else _default_output(g)
        written = plot_genotype(g, out, title=args.title)
    except (GenotypeError, ValueError) as e:
        raise CLIError(str(e)) from e
    except (GraphvizNotFoundError, ImportError, OSError, RuntimeError) as e:
        raise CLIError(str(e), exit_code=1) from e
    print(written)
    return 0


def add_cli(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``entrannas plot GENOTYPE [-o cell.svg|png|pdf]``."""
    p = subparsers.add_parser(
        'plot', help='draw the normal and reduction cells of a genotype',
        description='Draw both cells of a genotype (bundled name or file) as SVG, PNG or PDF. Needs Graphviz '
                    '(`apt-get install graphviz` or `brew install graphviz`).')
    p.add_argument('genotype', metavar='GENOTYPE', help='bundled genotype name (e.g. darts_v2) or a genotype file')
    p.add_argument('-o', '--output', metavar='FILE',
                   help='output file; the format follows the suffix: .svg, .png or .pdf (default: NAME.svg)')
    p.add_argument('--title', help='heading of the figure (default: the genotype name)')
    p.set_defaults(func=_cli_plot)
    return p

