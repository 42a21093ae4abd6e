"""The DARTS text form of a genotype, ``[NAME = ]Genotype(normal=..., normal_concat=..., reduce=...,
reduce_concat=...)``, as the DARTS family's ``genotypes.py`` files write it: read literally (``ast``, never
``eval``) into the JSON object form, and written back for cells DARTS can hold.
"""
from __future__ import annotations

import ast
import re
import textwrap
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from .genotype_format import LIMITS, SCHEMA_VERSION, CellSpec, GenotypeError, is_int, short_repr, thaw
from .ops import OPS, SPACES, make_op

__all__ = ['looks_like_darts', 'parse_darts', 'to_darts']

_DARTS_TEXT = re.compile(r'\s*([A-Za-z_]\w*\s*=\s*)?Genotype\s*\(')


def looks_like_darts(text: str) -> bool:
    """True for a string of DARTS text (``[NAME = ]Genotype(...)``) rather than a name or a path."""
    return bool(_DARTS_TEXT.match(text))


def parse_darts(text: str, name: Optional[str] = None, source: Optional[str] = None,
                provenance: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """The JSON object form of DARTS text.

    A cell is written as consecutive ``('op', input)`` pairs (two per node, DARTS; or SNAS's edge-all form,
    node ``i`` holding ``i + 2``, told apart by the node count that ``*_concat`` names), as a list of nodes each
    a list of pairs (GDAS, CDARTS), or as FairDARTS's ``('op', to, from)`` triples, read with the
    semantics of FairDARTS's evaluation cell: nodes that no triple feeds are absent, the output
    concatenates the fed nodes in order and ignores ``*_concat``, drop path drops whole nodes, and a
    parameter-free edge from an absent node (which that cell skips) is dropped. Concat lists may be
    written as lists or ``range(...)``; further namedtuple fields are accepted when ``None`` (GDAS's
    ``connectN``, ``connects``). Parsing is literal (``ast``), never ``eval``. The text may be a whole
    ``genotypes.py``: other statements are ignored, ``A = B`` aliases count, and ``name`` picks the
    assignment (case-insensitive) when there are several. ``name`` also names the result; without it, the
    assigned variable does.
    """
    src = source or '<DARTS text>'
    if len(text) > LIMITS['file_bytes']:
        raise GenotypeError(f'text is longer than {LIMITS["file_bytes"]:,} characters, the limit', src)
    try:
        tree = ast.parse(textwrap.dedent(text).strip(), mode='exec')
    except (SyntaxError, ValueError) as e:
        raise GenotypeError(f'not valid DARTS genotype text: {getattr(e, "msg", e)}', src) from None
    except (RecursionError, MemoryError):
        raise GenotypeError('not valid DARTS genotype text: nested too deeply', src) from None
    target, call = _pick_definition(_darts_definitions(tree), name, src)
    kwargs = _call_fields(call, src)
    data: Dict[str, Any] = dict(schema_version=SCHEMA_VERSION, name=name if name is not None else target,
                                feature_sharing=False, provenance=dict(provenance or {}))
    triples = []
    for kind in ('normal', 'reduce'):
        conns = _literal(kwargs[kind], src, kind)
        concat = _concat_literal(kwargs[f'{kind}_concat'], src, f'{kind}_concat')
        nodes, form = _darts_nodes(conns, src, kind, concat)
        if form == 'triples':
            nodes, concat = _fairdarts_cell(conns, src, kind)
            triples.append(kind)
        data[kind] = {'nodes': nodes, 'concat': concat}
    if triples and len(triples) != 2:
        raise GenotypeError('one cell is written as (op, to, from) triples and the other is not', src)
    if triples:
        data['drop_path'] = 'node'
    data['space'] = _smallest_space(data)
    return data


def to_darts(genotype: Any, assign: Optional[str] = None, concat_style: str = 'list') -> str:
    """The DARTS ``Genotype(...)`` text; only for cells with exactly 2 inputs per node.

    ``assign`` prefixes ``NAME = `` (a line of a DARTS ``genotypes.py``); ``concat_style='range'``
    writes a contiguous concat as ``range(a, b)``, as PC-DARTS publishes it.
    """
    if concat_style not in ('list', 'range'):
        raise ValueError(f"concat_style: expected 'list' or 'range', got {concat_style!r}")
    if not all(len(node) == 2 for cell in (genotype.normal, genotype.reduce) for node in cell.nodes):
        raise GenotypeError('DARTS text needs exactly 2 connections per node; this genotype has nodes '
                            'with other in-degrees', genotype.name)
    for key, default in (('feature_sharing', False), ('network', {}), ('drop_path', 'path'), ('bn_after', ())):
        if getattr(genotype, key) != default:
            raise GenotypeError(f'DARTS text cannot record {key}={thaw(getattr(genotype, key))!r}', genotype.name, key)

    def conns(cell: CellSpec) -> str:
        return '[' + ', '.join(f"('{op}', {i})" for node in cell.nodes for op, i in node) + ']'

    def concat(cell: CellSpec) -> str:
        c = list(cell.concat)
        if concat_style == 'range' and c == list(range(c[0], c[-1] + 1)):
            return f'range({c[0]}, {c[-1] + 1})'
        return str(c)
    prefix = f'{assign} = ' if assign else ''
    return (f'{prefix}Genotype(normal={conns(genotype.normal)}, normal_concat={concat(genotype.normal)}, '
            f'reduce={conns(genotype.reduce)}, reduce_concat={concat(genotype.reduce)})')


# ---- reading -------------------------------------------------------------------------------------------
def _is_genotype_call(node: Any) -> bool:
    return isinstance(node, ast.Call) and getattr(node.func, 'id', getattr(node.func, 'attr', None)) in (
        'Genotype', 'genotype')


def _darts_definitions(tree: ast.Module) -> List[Tuple[Optional[str], ast.Call]]:
    """``(variable, call)`` of each ``Genotype(...)`` statement, in order; an alias ``A = B`` adds ``(A, B's call)``."""
    found: List[Tuple[Optional[str], ast.Call]] = []
    named: Dict[str, ast.Call] = {}
    for stmt in tree.body:
        value = getattr(stmt, 'value', None)
        target = None
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            target = stmt.targets[0].id
        if isinstance(stmt, (ast.Expr, ast.Assign)) and _is_genotype_call(value):
            found.append((target, value))
        elif target is not None and isinstance(value, ast.Name) and value.id in named:
            found.append((target, named[value.id]))
        else:
            continue
        if target is not None:
            named[target] = found[-1][1]
    return found


def _pick_definition(found: List[Tuple[Optional[str], ast.Call]], name: Optional[str],
                     src: str) -> Tuple[Optional[str], ast.Call]:
    if not found:
        raise GenotypeError('expected a call Genotype(normal=..., normal_concat=..., reduce=..., '
                            'reduce_concat=...)', src)
    if len({id(call) for _, call in found}) == 1:  # one genotype (perhaps under aliases): ``name`` only names it
        return found[0]
    chosen = [f for f in found if name is not None and f[0] is not None and f[0].lower() == name.lower()]
    if len({id(call) for _, call in chosen}) != 1:
        names = [t for t, _ in found if t]
        shown = ', '.join(names[:20]) + (f', ... ({len(names) - 20} more)' if len(names) > 20 else '')
        miss = f'; {short_repr(name)} is none of them' if name else ''
        count = len({id(call) for _, call in found})
        raise GenotypeError(f'{count} genotypes are defined ({shown}); pick one by name{miss}', src, 'name')
    return chosen[0]


_CELL_FIELDS = ('normal', 'normal_concat', 'reduce', 'reduce_concat')


def _call_fields(call: ast.Call, src: str) -> Dict[str, ast.AST]:
    fields: Dict[str, ast.AST] = {}
    for i, arg in enumerate(call.args):
        fields[_CELL_FIELDS[i] if i < 4 else f'<field {i}>'] = arg
    for kw in call.keywords:
        if kw.arg is None:
            raise GenotypeError('expected keyword fields, not **mapping', src)
        if kw.arg in fields:
            raise GenotypeError('a field is given twice', src)
        fields[kw.arg] = kw.value
    missing = [k for k in _CELL_FIELDS if k not in fields]
    if missing:
        raise GenotypeError(f'missing fields {missing}', src)
    # further namedtuple fields carry nothing when None (GDAS writes connectN=None, connects=None)
    extra = [k for k, v in fields.items() if k not in _CELL_FIELDS and not (
        isinstance(v, ast.Constant) and v.value is None)]
    if extra:
        raise GenotypeError(f'unknown fields {extra} (only None is accepted beyond {list(_CELL_FIELDS)})', src)
    return fields


def _literal(node: ast.AST, src: str, fld: str) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise GenotypeError('expected a literal list', src, fld) from None


def _concat_literal(node: ast.AST, src: str, fld: str) -> List[int]:
    if isinstance(node, ast.Call) and getattr(node.func, 'id', None) == 'range':
        try:
            args = [ast.literal_eval(a) for a in node.args]
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            args = []
        if not 1 <= len(args) <= 3 or not all(is_int(a) for a in args) or node.keywords:
            raise GenotypeError('expected range(start, stop[, step]) with integer bounds', src, fld)
        bound = LIMITS['nodes'] + 2
        if not all(-bound <= a <= bound for a in args):
            raise GenotypeError(f'range{tuple(args) if len(str(args)) < 60 else "(...)"} names nodes beyond any '
                                f'cell (at most {LIMITS["nodes"]} nodes)', src, fld)
        if len(args) == 3 and args[2] == 0:
            raise GenotypeError('range() step must not be zero', src, fld)
        return list(range(*args))
    value = _literal(node, src, fld)
    if not isinstance(value, (list, tuple)) or not all(is_int(v) for v in value):
        raise GenotypeError('expected a list of node indices or range(a, b)', src, fld)
    return list(value)


def _is_pair(x: Any) -> bool:
    return isinstance(x, (list, tuple)) and len(x) == 2 and isinstance(x[0], str) and is_int(x[1])


def _edge_all_sizes(count: int, concat: Sequence[int]) -> Optional[List[int]]:
    """Node sizes 2, 3, 4, ... of SNAS's edge-all form (one connection from every predecessor; its
    model_edge_all.py reads the node count from the connection count), when ``count`` is that of the nodes
    ``concat`` names and differs from DARTS's two per node."""
    nodes = max(concat, default=1) - 1
    sizes = [i + 2 for i in range(nodes)]
    return sizes if count == sum(sizes) and count != 2 * nodes else None


def _darts_nodes(conns: Any, src: str, kind: str,
                 concat: Sequence[int] = ()) -> Tuple[List[List[List[Any]]], str]:
    """The nodes of a cell written as flat pairs (DARTS, or SNAS's edge-all form), nodes of pairs (GDAS, CDARTS)
    or triples (FairDARTS)."""
    if not isinstance(conns, (list, tuple)) or not conns:
        raise GenotypeError("expected a non-empty list of ('op', input) tuples", src, kind)
    if len(conns) > LIMITS['nodes'] * LIMITS['connections_per_node']:
        raise GenotypeError(f'{len(conns):,} entries; far more than any cell may have', src, kind)
    sizes = _edge_all_sizes(len(conns), concat) if all(_is_pair(c) for c in conns) else None
    if sizes:
        starts = [sum(sizes[:i]) for i in range(len(sizes))]
        return [[list(c) for c in conns[a:a + n]] for a, n in zip(starts, sizes)], 'edge-all'
    if all(_is_pair(c) for c in conns):
        if len(conns) % 2:
            raise GenotypeError(f'DARTS text needs 2 connections per node, got {len(conns)}', src, kind)
        return [[list(c) for c in conns[i:i + 2]] for i in range(0, len(conns), 2)], 'pairs'
    if all(isinstance(n, (list, tuple)) and all(_is_pair(c) for c in n) for n in conns):
        return [[list(c) for c in node] for node in conns], 'nodes'
    if all(isinstance(c, (list, tuple)) and len(c) == 3 and isinstance(c[0], str) and is_int(c[1])
           and is_int(c[2]) for c in conns):
        return [], 'triples'
    raise GenotypeError("expected a list of ('op', input) tuples, a list of nodes of such tuples, or FairDARTS "
                        "('op', to, from) triples", src, kind)


def _has_parameters(op: str) -> bool:
    return any(True for _ in make_op(op, 2, 1).parameters())


def _fairdarts_cell(triples: Sequence[Sequence[Any]], src: str, kind: str) -> Tuple[List[List[List[Any]]], List[int]]:
    """Nodes and concat of FairDARTS's evaluation cell (``DCOCell``) for ``(op, to, from)`` triples.

    That cell computes the fed nodes in the order they first appear, skips an edge whose source node is not
    fed (the edge still builds its op) and concatenates every fed node, whatever ``*_concat`` says.
    """
    order: List[int] = []
    inputs: Dict[int, List[Tuple[str, int]]] = {}
    for c, (op, to, frm) in enumerate(triples):
        if not (2 <= to <= LIMITS['nodes'] + 1 and 0 <= frm < to):
            raise GenotypeError(f'({op!r}, {short_repr(to)}, {short_repr(frm)}): expected (op, to, from) with '
                                f'0 <= from < to and 2 <= to <= {LIMITS["nodes"] + 1}', src, f'{kind}[{c}]')
        if to not in inputs:
            order.append(to)
            inputs[to] = []
        inputs[to].append((op, frm))
    if order != sorted(order):
        raise GenotypeError(f'nodes appear in the order {order}; FairDARTS computes them in that order, which is '
                            'not supported (list each node after the nodes it reads)', src, kind)
    nodes: List[List[List[Any]]] = [[] for _ in range(order[-1] - 1)]
    for to in order:
        for op, frm in inputs[to]:
            if frm >= 2 and frm not in inputs:
                if op in OPS and _has_parameters(op):
                    raise GenotypeError(f'({op!r}, {to}, {frm}) reads node {frm}, which nothing feeds: FairDARTS '
                                        'skips that edge but still builds its parameters, which a cell here cannot '
                                        'hold', src, kind)
                continue  # parameter-free and skipped by FairDARTS: nothing to build
            nodes[to - 2].append([op, frm])
        if not nodes[to - 2]:
            raise GenotypeError(f'node {to} reads only nodes that nothing feeds (FairDARTS would fail on it)',
                                src, kind)
    return nodes, order


def _smallest_space(cells: Mapping[str, Any]) -> str:
    ops = {c[0] for kind in ('normal', 'reduce') for node in cells[kind]['nodes'] for c in node}
    return 'standard' if ops <= set(SPACES['standard']) else 'extended'
