"""The genotype: a searched architecture as data (format, validation, limits, resolution, DARTS text).

A genotype holds a normal and a reduction cell. Each cell is a list of intermediate nodes; each node is a
list of ``(op, input)`` connections whose outputs are summed: any number of them (EnTranNAS-DST gives nodes
any in-degree and may put several ops on one edge), ``none`` among them (an explicit zero, as SNAS publishes
its cells), or none at all (an *absent* node, as FairDARTS leaves nodes without inputs: it has no value, no
node reads it and the cell output leaves it out). Inputs 0 and 1 are the cell inputs c_{k-2} and c_{k-1};
input ``i >= 2`` is intermediate node ``i - 2``. The JSON file format is specified in
``docs/genotype-format.md``; this module is its only reader and writer, and :func:`resolve_genotype` is the
one place that turns a name, a path, a dict or DARTS text into a genotype.
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
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from .files import write_atomic
from .ops import OPS, SPACES, make_op

__all__ = [
    'SCHEMA_VERSION', 'LIMITS', 'NETWORK_SETTINGS', 'DROP_PATH_MODES', 'GenotypeError', 'CellSpec', 'Genotype',
    'GenotypeLike', 'resolve_genotype', 'bundled_genotype_dirs', 'list_genotypes', 'load_genotype',
    'INPUT_LABELS', 'node_label',
]

SCHEMA_VERSION = 2
_FORMAT = 'entrannas-genotype'

LIMITS: Mapping[str, int] = MappingProxyType({
    'nodes': 16,
    'connections_per_node': 64,
    'name_length': 128,
    'file_bytes': 1 << 20,
})
"""What a genotype may ask for (docs/genotype-format.md, "Limits"). Genotypes arrive in files, run folders and
Hub ``config.json``: a few kilobytes of JSON must not be able to ask for billions of parameters."""

NETWORK_SETTINGS: Mapping[str, Tuple[int, int]] = MappingProxyType({
    'channels': (2, 1024), 'layers': (3, 64), 'stem_multiplier': (1, 8)})
"""The evaluation-network settings a genotype may carry per family (``network``), with their allowed ranges."""

DROP_PATH_MODES = ('path', 'node')
"""``path``: DARTS drops each connection that is not an identity; ``node``: FairDARTS drops each node's sum."""

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

    @property
    def present(self) -> Tuple[int, ...]:
        """State indices (``j + 2``) of the nodes that have connections, in order."""
        return tuple(j + 2 for j, node in enumerate(self.nodes) if node)

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


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True)
class Genotype:
    """An immutable, validated architecture. Build with :meth:`from_dict`, :meth:`load`, :meth:`parse_darts`
    or :func:`resolve_genotype`.

    Besides the two cells: ``network`` holds, per family (``cifar``, ``imagenet``), the evaluation-network
    settings the cell's authors use where they differ from the family's (GDAS's ImageNet network has 50
    channels); ``drop_path`` says what drop path drops (:data:`DROP_PATH_MODES`); ``bn_after`` names the ops that
    an affine BatchNorm follows where they have no parameters (SNAS: pools; ISTA-NAS one-stage: pools and identity
    skips).
    """
    normal: CellSpec
    reduce: CellSpec
    space: str = 'standard'
    feature_sharing: bool = False
    name: Optional[str] = None
    provenance: Mapping[str, Any] = field(default_factory=_empty, compare=False, hash=False)
    network: Mapping[str, Mapping[str, int]] = field(default_factory=_empty, hash=False)
    drop_path: str = 'path'
    bn_after: Tuple[str, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, 'provenance', _freeze(self.provenance))
        object.__setattr__(self, 'network', _freeze(self.network))
        _validate(self, source=self.name if _printable_name(self.name) else None)

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Any, source: Optional[str] = None) -> Genotype:
        """Build from the JSON object form (any readable schema version); every error names ``source`` and
        the offending field."""
        if not isinstance(data, Mapping):
            raise GenotypeError(f'expected a JSON object, got {type(data).__name__}', source)
        data = _migrate(data, source)
        fmt = data.get('format', _FORMAT)
        if fmt != _FORMAT:
            raise GenotypeError(f'expected {_FORMAT!r}, got {_short(fmt)}', source, 'format')
        unknown = sorted(_cut(k) for k in set(data) - set(_FIELDS))
        if unknown:
            raise GenotypeError(f'unknown field(s) {unknown}; expected only {sorted(_FIELDS)}', source)
        _check_name(data.get('name'), source)
        space = data.get('space', 'standard')
        if not isinstance(space, str) or space not in SPACES:
            raise GenotypeError(f'unknown space {_short(space)}; expected one of {sorted(SPACES)}', source, 'space')
        if not isinstance(data.get('feature_sharing', False), bool):
            raise GenotypeError(f'expected true or false, got {_short(data["feature_sharing"])}', source,
                                'feature_sharing')
        bn_after = data.get('bn_after', [])
        if not isinstance(bn_after, list) or not all(isinstance(op, str) for op in bn_after):
            raise GenotypeError(f'expected a list of op names, got {_short(bn_after)}', source, 'bn_after')
        provenance = data.get('provenance', {})
        if not isinstance(provenance, Mapping):
            raise GenotypeError(f'expected an object, got {type(provenance).__name__}', source, 'provenance')
        _check_text(provenance, source, 'provenance')
        cells = {k: _cell_from_obj(data.get(k), source, k) for k in ('normal', 'reduce')}
        try:
            return cls(cells['normal'], cells['reduce'], space, data.get('feature_sharing', False),
                       data.get('name'), provenance, _network_from_obj(data.get('network', {}), source),
                       data.get('drop_path', 'path'), tuple(bn_after))
        except GenotypeError as e:
            raise GenotypeError(e.reason, source, e.field) from None

    @classmethod
    def load(cls, path: Union[str, os.PathLike], name: Optional[str] = None) -> Genotype:
        """Read a genotype JSON file (or a ``.py``/``.txt`` file holding DARTS ``Genotype(...)`` text; ``name``
        picks one of several, as in :meth:`parse_darts`). Files over ``LIMITS['file_bytes']`` are refused."""
        path = Path(path)
        limit = LIMITS['file_bytes']
        try:
            with open(path, 'rb') as f:
                raw = f.read(limit + 1)
        except OSError as e:
            raise GenotypeError(f'cannot read genotype file: {e.strerror or e}', str(path)) from None
        if len(raw) > limit:
            raise GenotypeError(f'file is larger than {limit:,} bytes, the limit for a genotype', str(path))
        try:
            text = raw.decode('utf-8')
        except UnicodeDecodeError as e:
            raise GenotypeError(f'not UTF-8 text ({e.reason} at byte {e.start})', str(path)) from None
        if path.suffix != '.json' and not text.lstrip().startswith('{'):
            g = cls.parse_darts(text, name=name, source=str(path))
        else:
            g = cls.from_dict(_read_json(text, str(path)), source=str(path))
        return g if g.name else g.replace(name=path.stem)

    @classmethod
    def parse_darts(cls, text: str, name: Optional[str] = None, source: Optional[str] = None,
                    provenance: Optional[Mapping[str, Any]] = None) -> Genotype:
        """Parse the DARTS text form, ``[NAME = ]Genotype(normal=..., normal_concat=..., reduce=...,
        reduce_concat=...)``, as the DARTS family's ``genotypes.py`` files write it.

        A cell is written as consecutive ``('op', input)`` pairs (two per node, DARTS), as a list of nodes each
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
            nodes, form = _darts_nodes(conns, src, kind)
            if form == 'triples':
                nodes, concat = _fairdarts_cell(conns, src, kind)
                triples.append(kind)
            data[kind] = {'nodes': nodes, 'concat': concat}
        if triples and len(triples) != 2:
            raise GenotypeError('one cell is written as (op, to, from) triples and the other is not', src)
        if triples:
            data['drop_path'] = 'node'
        data['space'] = _smallest_space(data)
        return cls.from_dict(data, source=src)

    # ---- export -------------------------------------------------------------------------------
    def to_dict(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {'format': _FORMAT, 'schema_version': SCHEMA_VERSION}
        if self.name:
            out['name'] = self.name
        out.update(space=self.space, feature_sharing=self.feature_sharing)
        if self.network:
            out['network'] = _thaw(self.network)
        if self.drop_path != 'path':
            out['drop_path'] = self.drop_path
        if self.bn_after:
            out['bn_after'] = list(self.bn_after)
        out.update(normal=self.normal.to_dict(), reduce=self.reduce.to_dict(), provenance=_thaw(self.provenance))
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
        """Whether DARTS text can hold this genotype: 2 connections per node, nothing beyond the cells."""
        return (all(len(node) == 2 for cell in (self.normal, self.reduce) for node in cell.nodes)
                and not (self.feature_sharing or self.network or self.bn_after)
                and self.drop_path == 'path')

    def to_darts(self, assign: Optional[str] = None, concat_style: str = 'list') -> str:
        """The DARTS ``Genotype(...)`` text; only for cells with exactly 2 inputs per node.

        ``assign`` prefixes ``NAME = `` (a line of a DARTS ``genotypes.py``); ``concat_style='range'``
        writes a contiguous concat as ``range(a, b)``, as PC-DARTS publishes it.
        """
        if concat_style not in ('list', 'range'):
            raise ValueError(f"concat_style: expected 'list' or 'range', got {concat_style!r}")
        if not all(len(node) == 2 for cell in (self.normal, self.reduce) for node in cell.nodes):
            raise GenotypeError('DARTS text needs exactly 2 connections per node; this genotype has nodes '
                                'with other in-degrees', self.name)
        for key, default in (('feature_sharing', False), ('network', {}), ('drop_path', 'path'), ('bn_after', ())):
            if getattr(self, key) != default:
                raise GenotypeError(f'DARTS text cannot record {key}={_thaw(getattr(self, key))!r}', self.name, key)

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

    def network_settings(self, family: str) -> Dict[str, int]:
        """The evaluation-network settings of ``family`` that differ from the family's (empty if none)."""
        return dict(self.network.get(family, {}))

    def __str__(self) -> str:
        extras = ''.join(f', {k}={_thaw(getattr(self, k))}' for k, default in
                         (('network', {}), ('drop_path', 'path'), ('bn_after', ()))
                         if getattr(self, k) != default)
        lines = [f'{self.name or "genotype"} (space={self.space}, feature_sharing={self.feature_sharing}{extras})']
        for kind, cell in (('normal', self.normal), ('reduce', self.reduce)):
            lines.append(f'  {kind} cell (output = concat of nodes {[c - 2 for c in cell.concat]}):')
            for j, node in enumerate(cell.nodes):
                ins = ', '.join(f'{op}({node_label(i) if i < 2 else "node " + node_label(i)})' for op, i in node)
                lines.append(f'    node {j} = {ins or "(absent: no inputs)"}')
        return '\n'.join(lines)

    @staticmethod
    def looks_like_darts(text: str) -> bool:
        """True for a string of DARTS text (``[NAME = ]Genotype(...)``) rather than a name or a path."""
        return bool(_DARTS_TEXT.match(text))

    @classmethod
    def coerce(cls, value: GenotypeLike) -> Genotype:
        """Accept a Genotype, a bundled name, a file path, a dict or DARTS text (see :func:`resolve_genotype`)."""
        return resolve_genotype(value)


GenotypeLike = Union[Genotype, str, os.PathLike, Mapping[str, Any]]

_FIELDS = ('format', 'schema_version', 'name', 'space', 'feature_sharing', 'network', 'drop_path',
           'bn_after', 'normal', 'reduce', 'provenance')
_V1_FIELDS = ('format', 'schema_version', 'name', 'space', 'feature_sharing', 'normal', 'reduce', 'provenance')
_DARTS_TEXT = re.compile(r'\s*([A-Za-z_]\w*\s*=\s*)?Genotype\s*\(')
_FILE_SUFFIXES = ('.json', '.py', '.txt')


# ---- one place that resolves what users give ------------------------------------------------------------
def resolve_genotype(value: GenotypeLike, name: Optional[str] = None, source: Optional[str] = None) -> Genotype:
    """A genotype from anything users give: a :class:`Genotype`, a dict (the JSON form), DARTS text, a file
    (JSON, or ``.py``/``.txt`` DARTS text) or a bundled name (case-insensitive).

    ``name`` picks one genotype of a DARTS ``genotypes.py`` and names the result; ``source`` names text or a
    dict in error messages. Every entry point (``Genotype.coerce``, :func:`load_genotype`, ``genotype=`` of the
    timm entrypoints, the ``entrannas`` command) resolves through here.
    """
    if isinstance(value, Genotype):
        g = value
    elif isinstance(value, Mapping):
        g = Genotype.from_dict(value, source=source or '<dict>')
    elif isinstance(value, (str, os.PathLike)):
        text = os.fspath(value)
        if not isinstance(text, str):
            raise GenotypeError(f'expected a text path, got {type(text).__name__}', field='genotype')
        if Genotype.looks_like_darts(text):
            return Genotype.parse_darts(text, name=name, source=source)
        path = Path(text).expanduser()
        if _is_file(path):
            g = Genotype.load(path, name=name)
        elif path.suffix in _FILE_SUFFIXES or os.sep in text or (os.altsep and os.altsep in text):
            raise GenotypeError(f'genotype file not found (bundled: {", ".join(list_genotypes())})', _cut(text, 200))
        else:
            g = _bundled(text)
    else:
        raise GenotypeError(f'expected a Genotype, bundled name, file path or dict, got {type(value).__name__}',
                            field='genotype')
    return g.replace(name=name) if name is not None and g.name != name else g


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # a name too long for the file system, a NUL character
        return False


def _bundled(name: str) -> Genotype:
    for d in bundled_genotype_dirs():
        for p in d.glob('*.json'):
            if p.stem.lower() == name.lower():
                return Genotype.load(p)
    raise GenotypeError(f'no bundled genotype named {_short(name)}; bundled: {", ".join(list_genotypes())} '
                        '(or give a path to a .json file)', field='genotype')


# ---- reading --------------------------------------------------------------------------------------------
class _DuplicateKey(Exception):
    pass


def _no_duplicate_keys(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


def _read_json(text: str, source: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as e:
        raise GenotypeError(f'malformed JSON: {e.msg} at line {e.lineno} column {e.colno}', source) from None
    except _DuplicateKey as e:
        raise GenotypeError(f'malformed JSON: key {_short(e.args[0])} appears twice in one object', source) from None
    except ValueError as e:  # a number with more digits than Python converts
        raise GenotypeError(f'malformed JSON: {str(e).split(";")[0]}', source) from None
    except RecursionError:
        raise GenotypeError('malformed JSON: nested too deeply', source) from None


def _migrate(data: Mapping[str, Any], source: Optional[str]) -> Dict[str, Any]:
    """The data in the current schema's layout. Version 1 files read unchanged: version 2 only adds what
    version 1 refused (``none`` connections, absent nodes, ``network``, ``drop_path``, ``bn_after``)."""
    version = data.get('schema_version')
    if version is None:
        raise GenotypeError(f'missing; expected schema_version: {SCHEMA_VERSION}', source, 'schema_version')
    if not _is_int(version) or version not in (1, SCHEMA_VERSION):
        raise GenotypeError(f'unsupported {_short(version)}; this version reads 1 and {SCHEMA_VERSION}',
                            source, 'schema_version')
    if version == 1:
        extra = sorted(_cut(k) for k in set(data) - set(_V1_FIELDS))
        if extra:
            raise GenotypeError(f'unknown field(s) {extra} in schema_version 1; expected only '
                                f'{sorted(_V1_FIELDS)} (write schema_version {SCHEMA_VERSION} to use them)', source)
        for kind in ('normal', 'reduce'):
            cell = data.get(kind)
            nodes = cell.get('nodes') if isinstance(cell, Mapping) else None
            for j, node in enumerate(nodes if isinstance(nodes, list) else []):
                if node == [] or (isinstance(node, list) and any(
                        isinstance(c, list) and c[:1] == ['none'] for c in node)):
                    raise GenotypeError(f'empty nodes and "none" connections need schema_version {SCHEMA_VERSION}',
                                        source, f'{kind}.nodes[{j}]')
    return dict(data, schema_version=SCHEMA_VERSION)


def _short(value: Any, limit: int = 80) -> str:
    """``repr`` of a value read from untrusted input, cut to ``limit`` characters for error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + '...'


def _cut(text: Any, limit: int = 80) -> str:
    """``str`` of untrusted text for error messages: cut to ``limit`` characters, lone surrogates escaped."""
    text = str(text).encode('utf-8', 'backslashreplace').decode('utf-8')
    return text if len(text) <= limit else text[:limit - 3] + '...'


def _printable_name(name: Any) -> bool:
    return isinstance(name, str) and len(name) <= LIMITS['name_length'] and name.isprintable() and _utf8(name)


def _utf8(text: str) -> bool:
    try:
        text.encode('utf-8')
    except UnicodeEncodeError:  # a lone surrogate ("\ud800") from JSON
        return False
    return True


def _check_name(name: Any, source: Optional[str]) -> None:
    if name is None:
        return
    if not isinstance(name, str):
        raise GenotypeError(f'expected a string, got {_short(name)}', source, 'name')
    if not 1 <= len(name) <= LIMITS['name_length']:
        raise GenotypeError(f'expected 1 to {LIMITS["name_length"]} characters, got {len(name):,}', source, 'name')
    if not _utf8(name) or not name.isprintable():
        raise GenotypeError(f'expected printable text, got {_short(name)}', source, 'name')


def _check_text(obj: Any, source: Optional[str], fld: str, depth: int = 0) -> None:
    """Every string in ``obj`` (provenance) must be encodable, so that printing it cannot fail."""
    if depth > 32:
        raise GenotypeError('nested too deeply', source, fld)
    if isinstance(obj, str):
        if not _utf8(obj):
            raise GenotypeError(f'text that is not valid Unicode: {_short(obj)}', source, fld)
    elif isinstance(obj, Mapping):
        for k, v in obj.items():
            _check_text(k, source, fld, depth + 1)
            _check_text(v, source, f'{fld}.{k}' if _utf8(str(k)) else fld, depth + 1)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _check_text(v, source, f'{fld}[{i}]', depth + 1)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _network_from_obj(obj: Any, source: Optional[str]) -> Dict[str, Dict[str, int]]:
    if not isinstance(obj, Mapping):
        raise GenotypeError(f'expected an object of families, got {type(obj).__name__}', source, 'network')
    return {k: dict(v) if isinstance(v, Mapping) else v for k, v in obj.items()}


def _cell_from_obj(obj: Any, source: Optional[str], kind: str) -> CellSpec:
    if obj is None:
        raise GenotypeError('missing; expected {"nodes": [...], "concat": [...]}', source, kind)
    if not isinstance(obj, Mapping):
        raise GenotypeError(f'expected an object with "nodes" and "concat", got {type(obj).__name__}', source, kind)
    unknown = sorted(_cut(k) for k in set(obj) - {'nodes', 'concat'})
    if unknown:
        raise GenotypeError(f'unknown field(s) {unknown}; expected "nodes" and "concat"', source, kind)
    nodes_obj = obj.get('nodes')
    if not isinstance(nodes_obj, list) or not nodes_obj:
        raise GenotypeError('expected a non-empty list of nodes', source, f'{kind}.nodes')
    _check_count(len(nodes_obj), LIMITS['nodes'], 'nodes', source, f'{kind}.nodes')
    nodes = []
    for j, node in enumerate(nodes_obj):
        fld = f'{kind}.nodes[{j}]'
        if not isinstance(node, list):
            raise GenotypeError(f'expected a list of [op, input] pairs, got {type(node).__name__}', source, fld)
        _check_count(len(node), LIMITS['connections_per_node'], 'connections', source, fld)
        conns = []
        for c, conn in enumerate(node):
            if not (isinstance(conn, (list, tuple)) and len(conn) == 2
                    and isinstance(conn[0], str) and _is_int(conn[1])):
                raise GenotypeError(f'expected ["op", input_index], got {_short(conn)}', source, f'{fld}[{c}]')
            conns.append((conn[0], conn[1]))
        nodes.append(tuple(conns))
    present = [j + 2 for j, node in enumerate(nodes) if node]
    concat = obj.get('concat', present)
    if not isinstance(concat, list) or not all(_is_int(c) for c in concat):
        raise GenotypeError(f'expected a list of node indices, got {_short(concat)}', source, f'{kind}.concat')
    _check_count(len(concat), LIMITS['nodes'], 'entries', source, f'{kind}.concat')
    return CellSpec(tuple(nodes), tuple(concat))


def _check_count(n: int, limit: int, what: str, source: Optional[str], fld: str) -> None:
    if n > limit:
        raise GenotypeError(f'{n:,} {what}; a genotype may have at most {limit} (docs/genotype-format.md, Limits)',
                            source, fld)


def _validate(g: Genotype, source: Optional[str]) -> None:
    """Checks on the built object, so that direct construction is held to the same rules as files."""
    if not isinstance(g.space, str) or g.space not in SPACES:
        raise GenotypeError(f'unknown space {_short(g.space)}; expected one of {sorted(SPACES)}', source, 'space')
    if not isinstance(g.feature_sharing, bool):
        raise GenotypeError(f'expected true or false, got {_short(g.feature_sharing)}', source, 'feature_sharing')
    if not isinstance(g.bn_after, tuple) or len(set(g.bn_after)) != len(g.bn_after) or not all(
            isinstance(op, str) and op in SPACES[g.space] and op != 'none' for op in g.bn_after):
        raise GenotypeError(f'expected distinct ops of the {g.space!r} space (not none), got {_short(g.bn_after)}',
                            source, 'bn_after')
    _check_name(g.name, source)
    if g.drop_path not in DROP_PATH_MODES:
        raise GenotypeError(f'expected one of {list(DROP_PATH_MODES)}, got {_short(g.drop_path)}', source, 'drop_path')
    _validate_network(g.network, source)
    allowed = SPACES[g.space]
    for kind, cell in (('normal', g.normal), ('reduce', g.reduce)):
        if not isinstance(cell, CellSpec):
            raise GenotypeError(f'expected a CellSpec, got {type(cell).__name__}', source, kind)
        if not isinstance(cell.nodes, tuple) or not cell.nodes:
            raise GenotypeError('a cell needs a non-empty tuple of intermediate nodes', source, f'{kind}.nodes')
        _check_count(len(cell.nodes), LIMITS['nodes'], 'nodes', source, f'{kind}.nodes')
        if not isinstance(cell.concat, tuple) or not all(_is_int(c) for c in cell.concat):
            raise GenotypeError(f'expected a tuple of node indices, got {_short(cell.concat)}', source,
                                f'{kind}.concat')
        for j, node in enumerate(cell.nodes):
            _validate_node(node, j, cell, allowed, g.space, source, f'{kind}.nodes[{j}]')
        if not cell.present:
            raise GenotypeError('every node is empty: a cell needs at least one connection', source, f'{kind}.nodes')
        if not cell.concat:
            raise GenotypeError('concat must name at least one node', source, f'{kind}.concat')
        for c in cell.concat:
            if not 2 <= c < cell.num_nodes + 2:
                raise GenotypeError(f'concat names node {_short(c)}, which does not exist (nodes are 2..'
                                    f'{cell.num_nodes + 1})', source, f'{kind}.concat')
            if c not in cell.present:
                raise GenotypeError(f'concat names node {c}, which is empty (an absent node has no value)',
                                    source, f'{kind}.concat')
        if len(set(cell.concat)) != len(cell.concat):
            raise GenotypeError(f'duplicate entries in {list(cell.concat)}', source, f'{kind}.concat')


def _validate_node(node: Any, j: int, cell: CellSpec, allowed: Sequence[str], space: str,
                   source: Optional[str], fld: str) -> None:
    if not isinstance(node, tuple):
        raise GenotypeError(f'expected a tuple of (op, input) pairs, got {type(node).__name__}', source, fld)
    _check_count(len(node), LIMITS['connections_per_node'], 'connections', source, fld)
    seen = set()
    for c, conn in enumerate(node):
        if not (isinstance(conn, tuple) and len(conn) == 2 and isinstance(conn[0], str) and _is_int(conn[1])):
            raise GenotypeError(f'expected ("op", input_index), got {_short(conn)}', source, f'{fld}[{c}]')
        op, inp = conn
        if op not in OPS:
            raise GenotypeError(f'unknown op {_short(op)}; expected one of {sorted(OPS)}', source, f'{fld}[{c}]')
        if op not in allowed:
            raise GenotypeError(f'op {op!r} is not in the {space!r} space (set "space": "extended")',
                                source, f'{fld}[{c}]')
        if not 0 <= inp < j + 2:
            raise GenotypeError(f'input {_short(inp)} out of range: node {j} may read inputs 0..{j + 1} '
                                '(0, 1 = cell inputs, 2.. = earlier nodes)', source, f'{fld}[{c}]')
        if inp >= 2 and not cell.nodes[inp - 2]:
            raise GenotypeError(f'input {inp} is node {inp - 2}, which is empty (an absent node has no value)',
                                source, f'{fld}[{c}]')
        if (op, inp) in seen:
            raise GenotypeError(f'duplicate connection [{op!r}, {inp}]', source, f'{fld}[{c}]')
        seen.add((op, inp))


def _validate_network(network: Any, source: Optional[str]) -> None:
    from .network import STEM_TYPES  # families are the network's stem types (network.py imports this module)
    if not isinstance(network, Mapping):
        raise GenotypeError(f'expected an object of families, got {type(network).__name__}', source, 'network')
    for family, settings in network.items():
        if family not in STEM_TYPES:
            raise GenotypeError(f'unknown family {_short(family)}; expected one of {list(STEM_TYPES)}',
                                source, 'network')
        if not isinstance(settings, Mapping):
            raise GenotypeError(f'expected an object of settings, got {type(settings).__name__}',
                                source, f'network.{family}')
        for key, value in settings.items():
            if key not in NETWORK_SETTINGS:
                raise GenotypeError(f'unknown setting {_short(key)}; expected some of {sorted(NETWORK_SETTINGS)}',
                                    source, f'network.{family}')
            low, high = NETWORK_SETTINGS[key]
            if not _is_int(value) or not low <= value <= high:
                raise GenotypeError(f'expected an integer in {low}..{high}, got {_short(value)}',
                                    source, f'network.{family}.{key}')


# ---- DARTS text -------------------------------------------------------------------------------------------
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
        miss = f'; {_short(name)} is none of them' if name else ''
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
        if not 1 <= len(args) <= 3 or not all(_is_int(a) for a in args) or node.keywords:
            raise GenotypeError('expected range(start, stop[, step]) with integer bounds', src, fld)
        bound = LIMITS['nodes'] + 2
        if not all(-bound <= a <= bound for a in args):
            raise GenotypeError(f'range{tuple(args) if len(str(args)) < 60 else "(...)"} names nodes beyond any '
                                f'cell (at most {LIMITS["nodes"]} nodes)', src, fld)
        if len(args) == 3 and args[2] == 0:
            raise GenotypeError('range() step must not be zero', src, fld)
        return list(range(*args))
    value = _literal(node, src, fld)
    if not isinstance(value, (list, tuple)) or not all(_is_int(v) for v in value):
        raise GenotypeError('expected a list of node indices or range(a, b)', src, fld)
    return list(value)


def _is_pair(x: Any) -> bool:
    return isinstance(x, (list, tuple)) and len(x) == 2 and isinstance(x[0], str) and _is_int(x[1])


def _darts_nodes(conns: Any, src: str, kind: str) -> Tuple[List[List[List[Any]]], str]:
    """The nodes of a cell written as flat pairs (DARTS), nodes of pairs (GDAS, CDARTS) or triples (FairDARTS)."""
    if not isinstance(conns, (list, tuple)) or not conns:
        raise GenotypeError("expected a non-empty list of ('op', input) tuples", src, kind)
    if len(conns) > LIMITS['nodes'] * LIMITS['connections_per_node']:
        raise GenotypeError(f'{len(conns):,} entries; far more than any cell may have', src, kind)
    if all(_is_pair(c) for c in conns):
        if len(conns) % 2:
            raise GenotypeError(f'DARTS text needs 2 connections per node, got {len(conns)}', src, kind)
        return [[list(c) for c in conns[i:i + 2]] for i in range(0, len(conns), 2)], 'pairs'
    if all(isinstance(n, (list, tuple)) and all(_is_pair(c) for c in n) for n in conns):
        return [[list(c) for c in node] for node in conns], 'nodes'
    if all(isinstance(c, (list, tuple)) and len(c) == 3 and isinstance(c[0], str) and _is_int(c[1])
           and _is_int(c[2]) for c in conns):
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
            raise GenotypeError(f'({op!r}, {_short(to)}, {_short(frm)}): expected (op, to, from) with '
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


INPUT_LABELS = ('c_{k-2}', 'c_{k-1}')
"""Names of a cell's two input states (0 and 1): the outputs of the cell two back and of the previous cell."""


def node_label(i: int) -> str:
    """The label of state ``i`` of a cell: ``c_{k-2}``, ``c_{k-1}``, then intermediate nodes ``0, 1, ...``."""
    return INPUT_LABELS[i] if i < 2 else str(i - 2)


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
    """A bundled genotype by (case-insensitive) name, or a genotype file by path (see :func:`resolve_genotype`)."""
    return resolve_genotype(name_or_path)

