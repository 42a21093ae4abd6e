"""Cell diagrams: real Graphviz renders of the bundled genotypes and of DST cells, the CLI, the docs."""
from __future__ import annotations

import importlib.util
import io
import shutil
from pathlib import Path
from typing import Dict, List
from xml.etree import ElementTree

import pytest
from PIL import Image

from entrannas_timm import Genotype, list_genotypes, load_genotype
from entrannas_timm.cli import main
from entrannas_timm.models.ops import op_family
from entrannas_timm.reports.plot import (
    FAMILY_COLOURS,
    GraphvizNotFoundError,
    genotype_graph,
    genotype_image,
    plot_genotype,
)

pytest.importorskip('graphviz')
pytestmark = pytest.mark.skipif(shutil.which('dot') is None, reason='Graphviz `dot` not installed')

SVG = '{http://www.w3.org/2000/svg}'
REPO = Path(__file__).resolve().parents[1]

# An EnTranNAS-DST-like cell pair: nodes with 1..6 inputs, several ops on one edge, extended-space ops.
DST = {
    'schema_version': 1, 'name': 'dst_synthetic', 'space': 'extended', 'feature_sharing': True,
    'provenance': {'method': 'EnTranNAS-DST', 'dataset': 'ImageNet'},
    'normal': {'nodes': [
        [['sep_conv_3x3', 0], ['sep_conv_5x5', 0], ['skip_connect', 0], ['conv_1x1', 1]],
        [['dil_conv_3x3', 0], ['sep_conv_3x3', 1], ['max_pool_3x3', 2], ['avg_pool_3x3', 2]],
        [['conv_3x3', 3], ['sep_conv_3x3', 3], ['skip_connect', 0], ['conv_1x7_7x1', 2], ['sep_conv_3x3', 1]],
        [['sep_conv_3x3', 4], ['dil_conv_5x5', 4], ['skip_connect', 3], ['conv_1x3_3x1', 0], ['conv_1x5_5x1', 1],
         ['max_pool_3x3', 2]],
    ], 'concat': [2, 3, 4, 5]},
    'reduce': {'nodes': [
        [['max_pool_3x3', 0]],
        [['skip_connect', 2], ['sep_conv_5x5', 2], ['dil_conv_5x5', 2]],
        [['sep_conv_5x5', 0], ['sep_conv_5x5', 1], ['sep_conv_5x5', 2], ['sep_conv_5x5', 3]],
        [['avg_pool_3x3', 4], ['max_pool_3x3', 4], ['skip_connect', 4], ['conv_3x3', 1]],
    ], 'concat': [2, 3, 4, 5]},
}


def _svg_parts(svg: bytes) -> Dict[str, List]:
    """Texts and labelled edges (label, stroke colour) of a Graphviz SVG."""
    root = ElementTree.fromstring(svg)
    texts = [t.text for t in root.iter(f'{SVG}text')]
    edges = []
    for g in root.iter(f'{SVG}g'):
        if g.get('class') == 'edge':
            label = [t.text for t in g.iter(f'{SVG}text')]
            path = g.find(f'{SVG}path')
            edges.append((label[0] if label else None, path.get('stroke').lower()))
    return {'texts': texts, 'edges': edges}


def _check_svg(svg: bytes, g: Genotype) -> None:
    parts = _svg_parts(svg)
    names = {'c_{k-2}', 'c_{k-1}', 'c_{k}'} | {str(j) for j in range(g.normal.num_nodes)}
    assert names <= set(parts['texts'])
    assert set(g.ops_used()) <= set(parts['texts'])
    labelled = sorted((op, c) for op, c in parts['edges'] if op is not None)
    expected = sorted((op, FAMILY_COLOURS[op_family(op)].lower())
                      for cell in (g.normal, g.reduce) for _, op, _ in cell.connections())
    assert labelled == expected, 'one arrow per connection, coloured by op family'
    concat_edges = [e for e in parts['edges'] if e[0] is None]
    assert len(concat_edges) == len(g.normal.concat) + len(g.reduce.concat)
    assert g.name in parts['texts']
    assert any(str(g.provenance.get('method')) in t for t in parts['texts'] if t)


@pytest.mark.parametrize('name', list_genotypes())
def test_bundled_genotypes_render(name: str) -> None:
    g = load_genotype(name)
    _check_svg(plot_genotype(name), g)
    png = plot_genotype(g, format='png')
    with Image.open(io.BytesIO(png)) as im:
        assert im.format == 'PNG' and im.width > 400 and im.height > 300
    assert plot_genotype(g.to_dict(), format='pdf').startswith(b'%PDF')


def test_dst_genotype_with_parallel_edges(tmp_path: Path) -> None:
    g = Genotype.from_dict(DST)
    svg = plot_genotype(g, tmp_path / 'dst.svg')
    _check_svg(svg.read_bytes(), g)
    # c_{k-2} -> node 0 carries three ops: three separate labelled arrows between the same pair
    titles = [t.text for t in ElementTree.parse(svg).iter(f'{SVG}title')]
    assert titles.count('normal_0&#45;&gt;normal_2') + titles.count('normal_0->normal_2') == 3
    for suffix, magic in (('png', b'\x89PNG'), ('pdf', b'%PDF')):
        path = plot_genotype(DST, tmp_path / f'dst.{suffix}')
        assert path.read_bytes().startswith(magic)
    with Image.open(tmp_path / 'dst.png') as im:
        im.load()
        assert im.width > 800
    assert not list(tmp_path.glob('.*')), 'no temp files left behind'


def test_genotype_file_and_darts_text(tmp_path: Path) -> None:
    g = load_genotype('darts_v2')
    path = g.replace(name='mine').save(tmp_path / 'mine.json')
    assert b'mine' in plot_genotype(path)
    text = plot_genotype(g.to_darts())
    _check_svg(text, Genotype.parse_darts(g.to_darts()).replace(name='genotype', provenance={'method': 'standard'}))


def test_genotype_image() -> None:
    im = genotype_image('pc_darts_cifar', title='epoch 3 of 50')
    assert im.mode == 'RGB' and im.width > 400
    assert len(im.getcolors(1 << 24)) > 20
    assert 'epoch 3 of 50' in genotype_graph('pc_darts_cifar', title='epoch 3 of 50').source


def test_title_and_format_arguments(tmp_path: Path) -> None:
    assert 'My cells' in _svg_parts(plot_genotype('darts_v1', title='My cells'))['texts']
    with pytest.raises(ValueError, match=r'\.svg, \.png or \.pdf'):
        plot_genotype('darts_v1', tmp_path / 'cell.jpg')
    with pytest.raises(ValueError, match='does not match'):
        plot_genotype('darts_v1', tmp_path / 'cell.png', format='pdf')
    with pytest.raises(ValueError, match='unknown diagram format'):
        plot_genotype('darts_v1', format='gif')


def test_missing_dot_gives_install_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture) -> None:
    empty = tmp_path / 'empty-bin'
    empty.mkdir()
    monkeypatch.setenv('PATH', str(empty))
    with pytest.raises(GraphvizNotFoundError, match='apt-get install graphviz') as info:
        plot_genotype('darts_v2')
    assert 'brew install graphviz' in str(info.value)
    assert main(['plot', 'darts_v2', '-o', str(tmp_path / 'x.svg')]) == 1
    assert 'apt-get install graphviz' in capsys.readouterr().err
    assert not (tmp_path / 'x.svg').exists()


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(['plot', 'darts_v2', '-o', str(tmp_path / 'cells.pdf')]) == 0
    assert (tmp_path / 'cells.pdf').read_bytes().startswith(b'%PDF')
    assert capsys.readouterr().out.strip() == str(tmp_path / 'cells.pdf')
    monkeypatch.chdir(tmp_path)
    assert main(['plot', 'pc_darts_image']) == 0 and (tmp_path / 'pc_darts_image.svg').is_file()
    assert main(['plot', 'no_such_genotype']) == 2
    assert "no bundled genotype named 'no_such_genotype'" in capsys.readouterr().err


# ---- docs/cells: committed diagrams never drift from the genotypes ------------------------------
def _render_docs():
    spec = importlib.util.spec_from_file_location('render_docs', REPO / 'scripts' / 'render_docs.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_diagrams_are_current() -> None:
    problems = _render_docs().check(REPO / 'docs' / 'cells')
    assert problems == [], 'run `python scripts/render_docs.py`: ' + '; '.join(problems)


def test_render_docs_check_detects_drift(tmp_path: Path) -> None:
    docs = _render_docs()
    assert docs.main(['--out', str(tmp_path)]) == 0
    assert docs.check(tmp_path) == []
    first = sorted(tmp_path.glob('*.svg'))[0]
    first.write_bytes(first.read_bytes().replace(b'sep_conv_3x3', b'sep_conv_5x5', 1))
    (tmp_path / 'retired.svg').write_bytes(b'<svg/>')
    (tmp_path / list_genotypes()[-1]).with_suffix('.svg').unlink()
    problems = docs.check(tmp_path)
    assert len(problems) == 3, problems
    assert docs.main(['--check', '--out', str(tmp_path)]) == 1
    assert docs.main(['--out', str(tmp_path)]) == 0 and docs.check(tmp_path) == []
    assert not (tmp_path / 'retired.svg').exists()


# ---- untrusted names: quoted for DOT, escaped for HTML-like labels ------------------------------
HOSTILE_NAMES = [
    '<a> { X [label="injected"] } digraph <b>',
    '<script>alert(1)</script>',
    'it\'s "quoted" & <b>bold</b>',
    'back\\slash \\N \\G \\l trailing\\',
    '{braces} [brackets]; -> -- <!-- -->',
    'ünïcödé α β — ✓ 中文',
]


@pytest.mark.parametrize('name', HOSTILE_NAMES)
def test_hostile_names_render_as_text(name: str) -> None:
    g = load_genotype('darts_v2').replace(name=name, provenance={'method': name, 'dataset': 'x'})
    svg = plot_genotype(g)
    assert svg.count(b'<svg') == 1, 'one SVG document'
    root = ElementTree.fromstring(svg)  # a second document or stray markup would not parse
    classes = sorted(e.get('class') for e in root.iter(f'{SVG}g') if e.get('class') in ('node', 'edge'))
    plain = ElementTree.fromstring(plot_genotype(g.replace(name='plain')))
    assert classes == sorted(e.get('class') for e in plain.iter(f'{SVG}g') if e.get('class') in ('node', 'edge'))
    texts = _svg_parts(svg)['texts']
    assert name in texts, (name, texts[:4])  # names are printable text (the genotype format refuses line breaks)
    assert any(t.startswith(name + ' · x · ') for t in texts), 'provenance is escaped too'


def test_unprintable_characters_in_a_title() -> None:
    texts = _svg_parts(plot_genotype('darts_v1', title='bell\x07 nul\x00 \ud800 end'))['texts']
    assert 'bell\ufffd nul\ufffd \ufffd end' in texts


def test_cli_default_file_name_from_a_hostile_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture) -> None:
    path = load_genotype('darts_v2').replace(name='../<script>alert(1)</script>').save(tmp_path / 'g.json')
    work = tmp_path / 'work'
    work.mkdir()
    monkeypatch.chdir(work)
    assert main(['plot', str(path)]) == 0
    assert [p.name for p in work.iterdir()] == ['script_alert_1_script.svg']
    assert capsys.readouterr().out.strip() == 'script_alert_1_script.svg'
