"""The genotype: a searched architecture as data (format, validation, bundled files, DARTS text).

A genotype holds a normal and a reduction cell. Each cell is a list of intermediate nodes; each node
is a list of ``(op, input)`` connections of any length >= 1 (EnTranNAS-DST gives nodes any number of
inputs and may put several ops on one edge). Inputs 0 and 1 are the cell inputs c_{k-2} and c_{k-1};
input ``i >= 2`` is intermediate node ``i - 2``. The JSON file format is specified in
``docs/genotype-format.md``; this module is its only reader and writer.
"""
from __future__ import annotations

import ast
import json
import os
import re
import textwrap
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple, Union

from .files import write_atomic
from .ops import OPS, SPACES

__all__ = [
    'SCHEMA_VERSION', 'GenotypeError', 'CellSpec', 'Genotype', 'GenotypeLike',
    'bundled_genotype_dirs', 'list_genotypes', 'load_genotype', 'INPUT_LABELS', 'node_label',
]

SCHEMA_VERSION = 1
_FORMAT = 'entrannas-genotype'

Connection = Tuple[str, int]


class GenotypeError(ValueError):
    """A genotype is malformed; the message names the source (file) and the field."""

    def __init__(self, message: str, source: Optional[str] = None, field: Optional[str] = None):
        self.source, self.field, self.reason = source, field, message
        where = ': '.join(x for x in (source, field) if x)
        super().__init__(f'{where}: {message}' if where else message)


@dataclass(frozen=True)
class CellSpec:
    """One cell: ``nodes[j]`` lists the connections ``(op, input)`` summed into intermediate node j."""
    nodes: Tuple[Tuple[Connection, ...], ...]
    concat: Tuple[int, ...]

    @property
    def num_nodes(self) -> int:
        return len(self.nodes)

    def connections(self) -> Iterator[Tuple[int, str, int]]:
        """Yield ``(node, op, input)`` for every connection, in order."""
        for j, node in enumerate(self.nodes):
            for op, inp in node:
                yield j, op, inp

    def to_dict(self) -> Dict[str, Any]:
        return {'nodes': [[[op, inp] for op, inp in node] for node in self.nodes], 'concat': list(self.concat)}


def _freeze(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return MappingProxyType({k: _freeze(v) for k, v in obj.items()})
    if isinstance(obj, (list, tuple)):
        return tuple(_freeze(v) for v in obj)
    return obj


def _thaw(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {k: _thaw(v) for k, v in obj.items()}
    if isinstance(obj, tuple):
        return [_thaw(v) for v in obj]
    return obj


@dataclass(frozen=True)
class Genotype:
    """An immutable, validated architecture. Build with :meth:`from_dict`, :meth:`load`, :meth:`parse_darts`."""
    normal: CellSpec
    reduce: CellSpec
    space: str = 'standard'
    feature_sharing: bool = False
    name: Optional[str] = None
    provenance: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), compare=False, hash=False)

    def __post_init__(self):
        object.__setattr__(self, 'provenance', _freeze(self.provenance))
        _validate(self, source=self.name)

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Any, source: Optional[str] = None) -> Genotype:
        """Build from the JSON object form; every error names ``source`` and the offending field."""
        if not isinstance(data, Mapping):
            raise GenotypeError(f'expected a JSON object, got {type(data).__name__}', source)
        version = data.get('schema_version')
        if version is None:
            raise GenotypeError('missing; expected schema_version: 1', source, 'schema_version')
        if not isinstance(version, int) or isinstance(version, bool) or version != SCHEMA_VERSION:
            raise GenotypeError(f'unsupported {version!r}; this version reads {SCHEMA_VERSION}',
                                source, 'schema_version')
        fmt = data.get('format', _FORMAT)
        if fmt != _FORMAT:
            raise GenotypeError(f'expected {_FORMAT!r}, got {fmt!r}', source, 'format')
        known = {'format', 'schema_version', 'name', 'space', 'feature_sharing', 'normal', 'reduce', 'provenance'}
        unknown = sorted(str(k) for k in set(data) - known)
        if unknown:
            raise GenotypeError(f'unknown field(s) {unknown}; expected only {sorted(known)}', source)
        space = data.get('space', 'standard')
        if not isinstance(space, str) or space not in SPACES:
            raise GenotypeError(f'unknown space {space!r}; expected one of {sorted(SPACES)}', source, 'space')
        sharing = data.get('feature_sharing', False)
        if not isinstance(sharing, bool):
            raise GenotypeError(f'expected true or false, got {sharing!r}', source, 'feature_sharing')
        name = data.get('name')
        if name is not None and not isinstance(name, str):
            raise GenotypeError(f'expected a string, got {name!r}', source, 'name')
        provenance = data.get('provenance', {})
        if not isinstance(provenance, Mapping):
            raise GenotypeError(f'expected an object, got {type(provenance).__name__}', source, 'provenance')
        cells = {k: _cell_from_obj(data.get(k), source, k) for k in ('normal', 'reduce')}
        try:
            return cls(cells['normal'], cells['reduce'], space, sharing, name, provenance)
        except GenotypeError as e:
            raise GenotypeError(e.reason, source, e.field) from None

    @classmethod
    def load(cls, path: Union[str, os.PathLike], name: Optional[str] = None) -> Genotype:
        """Read a genotype JSON file (or a ``.py``/``.txt`` file holding DARTS ``Genotype(...)`` text; ``name``
        picks one of several, as in :meth:`parse_darts`)."""
        path = Path(path)
        try:
            text = path.read_text(encoding='utf-8')
        except OSError as e:
            raise GenotypeError(f'cannot read genotype file: {e.strerror or e}', str(path)) from None
        except UnicodeDecodeError as e:
            raise GenotypeError(f'not UTF-8 text ({e.reason} at byte {e.start})', str(path)) from None
        if path.suffix != '.json' and not text.lstrip().startswith('{'):
            g = cls.parse_darts(text, name=name, source=str(path))
            return g if g.name else g.replace(name=path.stem)
        try:
            data = json.loads(text, object_pairs_hook=_no_duplicate_keys)
        except json.JSONDecodeError as e:
            raise GenotypeError(f'malformed JSON: {e.msg} at line {e.lineno} column {e.colno}', str(path)) from None
        except _DuplicateKey as e:
            raise GenotypeError(f'malformed JSON: key {e.args[0]!r} appears twice in one object', str(path)) from None
        except RecursionError:
            raise GenotypeError('malformed JSON: nested too deeply', str(path)) from None
        g = cls.from_dict(data, source=str(path))
        return g if g.name else g.replace(name=path.stem)

    @classmethod
    def parse_darts(cls, text: str, name: Optional[str] = None, source: Optional[str] = None,
                    provenance: Optional[Mapping[str, Any]] = None) -> Genotype:
        """Parse the DARTS text form, ``[NAME = ]Genotype(normal=[('op', i), ...], normal_concat=...)``.

        Concat lists may be written as lists or ``range(a, b)``. Nodes take connections in consecutive
        pairs, as in DARTS. Parsing is literal (``ast``), never ``eval``. The text may be a whole DARTS
        ``genotypes.py``: statements other than ``Genotype(...)`` calls are ignored, and ``name`` picks
        the assignment (case-insensitive) when there are several. ``name`` also names the result;
        without it, the assigned variable does.
        """
        src = source or '<DARTS text>'
        try:
            tree = ast.parse(textwrap.dedent(text).strip(), mode='exec')
        except (SyntaxError, ValueError) as e:
            raise GenotypeError(f'not valid DARTS genotype text: {getattr(e, "msg", e)}', src) from None
        found: List[Tuple[Optional[str], ast.Call]] = []
        for stmt in tree.body:
            if isinstance(stmt, (ast.Expr, ast.Assign)) and _is_genotype_call(stmt.value):
                target = None
                if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
                    target = stmt.targets[0].id
                found.append((target, stmt.value))
        if not found:
            raise GenotypeError('expected a call Genotype(normal=..., normal_concat=..., reduce=..., '
                                'reduce_concat=...)', src)
        if len(found) > 1:
            chosen = [f for f in found if name is not None and f[0] is not None and f[0].lower() == name.lower()]
            if len(chosen) != 1:
                names = [t for t, _ in found if t]
                miss = f'; {name!r} is none of them' if name else ''
                raise GenotypeError(f'{len(found)} genotypes are defined ({", ".join(names)}); pick one by '
                                    f'name{miss}', src, 'name')
            found = chosen
        target, call = found[0]
        name = name if name is not None else target
        if call.args:
            fields = ('normal', 'normal_concat', 'reduce', 'reduce_concat')
            if len(call.args) > 4:
                raise GenotypeError(f'expected at most 4 positional fields {fields}', src)
            kwargs = dict(zip(fields, call.args))
        else:
            kwargs = {}
        for kw in call.keywords:
            if kw.arg is None:
                raise GenotypeError('expected keyword fields, not **mapping', src)
            kwargs[kw.arg] = kw.value
        missing = [k for k in ('normal', 'normal_concat', 'reduce', 'reduce_concat') if k not in kwargs]
        extra = [k for k in kwargs if k not in ('normal', 'normal_concat', 'reduce', 'reduce_concat')]
        if len(call.args) + len(call.keywords) != len(kwargs):
            raise GenotypeError('a field is given twice', src)
        if missing or extra:
            raise GenotypeError(f'missing fields {missing}' if missing else f'unknown fields {extra}', src)
        cells = {}
        for kind in ('normal', 'reduce'):
            conns = _literal(kwargs[kind], src, kind)
            if not isinstance(conns, list) or not all(
                    isinstance(c, tuple) and len(c) == 2 and isinstance(c[0], str) and _is_int(c[1])
                    for c in conns):
                raise GenotypeError("expected a list of ('op', input) tuples", src, kind)
            if not conns or len(conns) % 2:
                raise GenotypeError(f'DARTS text needs 2 connections per node, got {len(conns)}', src, kind)
            concat = _concat_literal(kwargs[f'{kind}_concat'], src, f'{kind}_concat')
            nodes = [conns[i:i + 2] for i in range(0, len(conns), 2)]
            cells[kind] = {'nodes': [[list(c) for c in node] for node in nodes], 'concat': concat}
        data = dict(schema_version=SCHEMA_VERSION, name=name, space=_smallest_space(cells),
                    feature_sharing=False, provenance=dict(provenance or {}), **cells)
        return cls.from_dict(data, source=src)

    # ---- export -------------------------------------------------------------------------------
    def to_dict(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {'format': _FORMAT, 'schema_version': SCHEMA_VERSION}
        if self.name:
            out['name'] = self.name
        out.update(space=self.space, feature_sharing=self.feature_sharing,
                   normal=self.normal.to_dict(), reduce=self.reduce.to_dict(), provenance=_thaw(self.provenance))
        return out

    def to_json(self) -> str:
        """Pretty JSON with one connection per line: readable diffs in ``genotypes/``."""
        text = json.dumps(self.to_dict(), indent=2)
        # collapse the innermost [op, input] pairs onto one line
        text = re.sub(r'\[\s+("[^"]+"),\s+(\d+)\s+\]', r'[\1, \2]', text)
        return re.sub(r'"concat": \[([\d,\s]*)\]', lambda m: '"concat": [' + ', '.join(re.findall(r'\d+', m[1]))
                      + ']', text) + '\n'

    def save(self, path: Union[str, os.PathLike]) -> Path:
        """Write atomically (temp file + rename): an existing file is never left half-written."""
        return write_atomic(path, self.to_json())

    @property
    def is_darts_representable(self) -> bool:
        return all(len(node) == 2 for cell in (self.normal, self.reduce) for node in cell.nodes)

    def to_darts(self, assign: Optional[str] = None, concat_style: str = 'list') -> str:
        """The DARTS ``Genotype(...)`` text; only for cells with exactly 2 inputs per node.

        ``assign`` prefixes ``NAME = `` (a line of a DARTS ``genotypes.py``); ``concat_style='range'``
        writes a contiguous concat as ``range(a, b)``, as PC-DARTS publishes it.
        """
        if concat_style not in ('list', 'range'):
            raise ValueError(f"concat_style: expected 'list' or 'range', got {concat_style!r}")
        if not self.is_darts_representable:
            raise GenotypeError('DARTS text needs exactly 2 connections per node; this genotype has nodes '
                                'with other in-degrees', self.name)
        if self.feature_sharing:
            raise GenotypeError('DARTS text cannot record feature_sharing=true', self.name, 'feature_sharing')

        def conns(cell: CellSpec) -> str:
            return '[' + ', '.join(f"('{op}', {i})" for node in cell.nodes for op, i in node) + ']'

        def concat(cell: CellSpec) -> str:
            c = list(cell.concat)
            if concat_style == 'range' and c == list(range(c[0], c[-1] + 1)):
                return f'range({c[0]}, {c[-1] + 1})'
            return str(c)
        prefix = f'{assign} = ' if assign else ''
        return (f'{prefix}Genotype(normal={conns(self.normal)}, normal_concat={concat(self.normal)}, '
                f'reduce={conns(self.reduce)}, reduce_concat={concat(self.reduce)})')

    def replace(self, **changes: Any) -> Genotype:
        data = self.to_dict()
        data.update({k: (v.to_dict() if isinstance(v, CellSpec) else _thaw(v)) for k, v in changes.items()})
        return Genotype.from_dict(data, source=changes.get('name', self.name))

    def __reduce__(self):
        # the read-only provenance mapping cannot be pickled or deep-copied (copy.deepcopy of a model, EMA, DDP
        # spawn): rebuild from the dict form instead
        return (Genotype.from_dict, (self.to_dict(), self.name))

    def ops_used(self) -> List[str]:
        return sorted({op for cell in (self.normal, self.reduce) for _, op, _ in cell.connections()})

    def __str__(self) -> str:
        lines = [f'{self.name or "genotype"} (space={self.space}, feature_sharing={self.feature_sharing})']
        for kind, cell in (('normal', self.normal), ('reduce', self.reduce)):
            lines.append(f'  {kind} cell (output = concat of nodes {[c - 2 for c in cell.concat]}):')
            for j, node in enumerate(cell.nodes):
                ins = ', '.join(f'{op}({node_label(i) if i < 2 else "node " + node_label(i)})' for op, i in node)
                lines.append(f'    node {j} = {ins}')
        return '\n'.join(lines)

    @staticmethod
    def looks_like_darts(text: str) -> bool:
        """True for a string of DARTS text (``[NAME = ]Genotype(...)``) rather than a name or a path."""
        return bool(_DARTS_TEXT.match(text))

    @classmethod
    def coerce(cls, value: GenotypeLike) -> Genotype:
        """Accept a Genotype, a bundled name, a file path, a dict or DARTS text."""
        if isinstance(value, Genotype):
            return value
        if isinstance(value, Mapping):
            return cls.from_dict(value, source='<dict>')
        if isinstance(value, (str, os.PathLike)):
            text = os.fspath(value)
            if cls.looks_like_darts(text):
                return cls.parse_darts(text)
            return load_genotype(text)
        raise GenotypeError(f'expected a Genotype, bundled name, file path or dict, got {type(value).__name__}',
                            field='genotype')


GenotypeLike = Union[Genotype, str, os.PathLike, Mapping[str, Any]]

_DARTS_TEXT = re.compile(r'\s*([A-Za-z_]\w*\s*=\s*)?Genotype\s*\(')


class _DuplicateKey(Exception):
    pass


def _no_duplicate_keys(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


def _is_genotype_call(node: Any) -> bool:
    return isinstance(node, ast.Call) and getattr(node.func, 'id', getattr(node.func, 'attr', None)) in (
        'Genotype', 'genotype')


INPUT_LABELS = ('c_{k-2}', 'c_{k-1}')
"""Names of a cell's two input states (0 and 1): the outputs of the cell two back and of the previous cell."""


def node_label(i: int) -> str:
    """The label of state ``i`` of a cell: ``c_{k-2}``, ``c_{k-1}``, then intermediate nodes ``0, 1, ...``."""
    return INPUT_LABELS[i] if i < 2 else str(i - 2)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _literal(node: ast.AST, src: str, fld: str) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError):
        raise GenotypeError('expected a literal list', src, fld) from None


def _concat_literal(node: ast.AST, src: str, fld: str) -> List[int]:
    if isinstance(node, ast.Call) and getattr(node.func, 'id', None) == 'range':
        args = [_literal(a, src, fld) for a in node.args]
        if not 1 <= len(args) <= 3 or not all(_is_int(a) for a in args):
            raise GenotypeError('expected range(start, stop) with integer bounds', src, fld)
        if len(range(*args)) > 1000:
            raise GenotypeError(f'range{tuple(args)} is far longer than any cell', src, fld)
        return list(range(*args))
    value = _literal(node, src, fld)
    if not isinstance(value, (list, tuple)) or not all(_is_int(v) for v in value):
        raise GenotypeError('expected a list of node indices or range(a, b)', src, fld)
    return list(value)


def _smallest_space(cells: Mapping[str, Any]) -> str:
    ops = {c[0] for cell in cells.values() for node in cell['nodes'] for c in node}
    return 'standard' if ops <= set(SPACES['standard']) else 'extended'


def _cell_from_obj(obj: Any, source: Optional[str], kind: str) -> CellSpec:
    if obj is None:
        raise GenotypeError('missing; expected {"nodes": [...], "concat": [...]}', source, kind)
    if not isinstance(obj, Mapping):
        raise GenotypeError(f'expected an object with "nodes" and "concat", got {type(obj).__name__}', source, kind)
    unknown = sorted(set(obj) - {'nodes', 'concat'})
    if unknown:
        raise GenotypeError(f'unknown field(s) {unknown}; expected "nodes" and "concat"', source, kind)
    nodes_obj = obj.get('nodes')
    if not isinstance(nodes_obj, list) or not nodes_obj:
        raise GenotypeError('expected a non-empty list of nodes', source, f'{kind}.nodes')
    nodes = []
    for j, node in enumerate(nodes_obj):
        fld = f'{kind}.nodes[{j}]'
        if not isinstance(node, list):
            raise GenotypeError(f'expected a list of [op, input] pairs, got {type(node).__name__}', source, fld)
        conns = []
        for c, conn in enumerate(node):
            if not (isinstance(conn, (list, tuple)) and len(conn) == 2
                    and isinstance(conn[0], str) and _is_int(conn[1])):
                raise GenotypeError(f'expected ["op", input_index], got {conn!r}', source, f'{fld}[{c}]')
            conns.append((conn[0], conn[1]))
        nodes.append(tuple(conns))
    concat = obj.get('concat', list(range(2, len(nodes) + 2)))
    if not isinstance(concat, list) or not all(_is_int(c) for c in concat):
        raise GenotypeError(f'expected a list of node indices, got {concat!r}', source, f'{kind}.concat')
    return CellSpec(tuple(nodes), tuple(concat))


def _validate(g: Genotype, source: Optional[str]) -> None:
    """Checks on the built object, so that direct construction is held to the same rules as files."""
    if not isinstance(g.space, str) or g.space not in SPACES:
        raise GenotypeError(f'unknown space {g.space!r}; expected one of {sorted(SPACES)}', source, 'space')
    if not isinstance(g.feature_sharing, bool):
        raise GenotypeError(f'expected true or false, got {g.feature_sharing!r}', source, 'feature_sharing')
    if g.name is not None and not isinstance(g.name, str):
        raise GenotypeError(f'expected a string, got {g.name!r}', source, 'name')
    allowed = SPACES[g.space]
    for kind, cell in (('normal', g.normal), ('reduce', g.reduce)):
        if not isinstance(cell, CellSpec):
            raise GenotypeError(f'expected a CellSpec, got {type(cell).__name__}', source, kind)
        if not isinstance(cell.nodes, tuple) or not cell.nodes:
            raise GenotypeError('a cell needs a non-empty tuple of intermediate nodes', source, f'{kind}.nodes')
        if not isinstance(cell.concat, tuple) or not all(_is_int(c) for c in cell.concat):
            raise GenotypeError(f'expected a tuple of node indices, got {cell.concat!r}', source, f'{kind}.concat')
        for j, node in enumerate(cell.nodes):
            fld = f'{kind}.nodes[{j}]'
            if not isinstance(node, tuple):
                raise GenotypeError(f'expected a tuple of (op, input) pairs, got {type(node).__name__}', source, fld)
            if not node:
                raise GenotypeError('empty node: every node needs at least one [op, input] connection',
                                    source, fld)
            seen = set()
            for c, conn in enumerate(node):
                if not (isinstance(conn, tuple) and len(conn) == 2 and isinstance(conn[0], str) and _is_int(conn[1])):
                    raise GenotypeError(f'expected ("op", input_index), got {conn!r}', source, f'{fld}[{c}]')
                op, inp = conn
                if op not in OPS:
                    raise GenotypeError(f'unknown op {op!r}; expected one of {sorted(OPS)}', source, f'{fld}[{c}]')
                if op not in allowed:
                    raise GenotypeError(f'op {op!r} is not in the {g.space!r} space (set "space": "extended")',
                                        source, f'{fld}[{c}]')
                if op == 'none':
                    raise GenotypeError("'none' (the zero op) cannot appear in a derived cell", source, f'{fld}[{c}]')
                if not 0 <= inp < j + 2:
                    raise GenotypeError(f'input {inp} out of range: node {j} may read inputs 0..{j + 1} '
                                        '(0, 1 = cell inputs, 2.. = earlier nodes)', source, f'{fld}[{c}]')
                if (op, inp) in seen:
                    raise GenotypeError(f'duplicate connection [{op!r}, {inp}]', source, f'{fld}[{c}]')
                seen.add((op, inp))
        if not cell.concat:
            raise GenotypeError('concat must name at least one node', source, f'{kind}.concat')
        for c in cell.concat:
            if not 2 <= c < cell.num_nodes + 2:
                raise GenotypeError(f'concat names node {c}, which does not exist (nodes are 2..'
                                    f'{cell.num_nodes + 1})', source, f'{kind}.concat')
        if len(set(cell.concat)) != len(cell.concat):
            raise GenotypeError(f'duplicate entries in {list(cell.concat)}', source, f'{kind}.concat')


# ---- bundled genotypes ------------------------------------------------------------------------
def bundled_genotype_dirs() -> List[Path]:
    """Where bundled genotypes live: ``$ENTRANNAS_GENOTYPE_PATH`` entries, the installed copy, the checkout."""
    dirs = [Path(p) for p in os.environ.get('ENTRANNAS_GENOTYPE_PATH', '').split(os.pathsep) if p]
    installed = Path(str(resources.files('entrannas_timm'))) / 'genotypes'
    checkout = Path(__file__).resolve().parents[1] / 'genotypes'
    dirs += [d for d in (installed, checkout) if d.is_dir()]
    return dirs


def list_genotypes() -> List[str]:
    """Names of all bundled genotypes (lower case, file stems)."""
    return sorted({p.stem.lower() for d in bundled_genotype_dirs() for p in d.glob('*.json')})


def load_genotype(name_or_path: Union[str, os.PathLike]) -> Genotype:
    """A bundled genotype by (case-insensitive) name, or a genotype file by path."""
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if path.suffix in ('.json', '.py', '.txt') or os.sep in text or path.is_file():
        if not path.is_file():
            raise GenotypeError(f'genotype file not found (bundled: {", ".join(list_genotypes())})', text)
        return Genotype.load(path)
    for d in bundled_genotype_dirs():
        for p in d.glob('*.json'):
            if p.stem.lower() == text.lower():
                return Genotype.load(p)
    raise GenotypeError(f'no bundled genotype named {text!r}; bundled: {", ".join(list_genotypes())} '
                        '(or give a path to a .json file)', field='genotype')
