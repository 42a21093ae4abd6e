"""The genotype file format: its constants and limits, the cell value type, and the checks that hold every
genotype (read from untrusted JSON or built directly) to the rules of ``docs/genotype-format.md``.

:class:`~entrannas_timm.models.genotype.Genotype` is built from what :func:`read_fields` returns and checked by
:func:`check_genotype`; nothing here knows the class, so the format has one home and no import circle.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from .ops import OPS, SPACES

__all__ = [
    'SCHEMA_VERSION', 'FORMAT', 'LIMITS', 'NETWORK_SETTINGS', 'DROP_PATH_MODES', 'STEM_TYPES', 'GenotypeError',
    'CellSpec', 'INPUT_LABELS', 'node_label', 'read_json', 'read_fields', 'check_genotype', 'freeze', 'thaw',
    'short_repr', 'short_text', 'is_int', 'is_printable_name',
]

SCHEMA_VERSION = 2
FORMAT = 'entrannas-genotype'

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

STEM_TYPES = ('cifar', 'imagenet')
"""The network families a genotype's ``network`` settings may name: the stems of
:class:`~entrannas_timm.models.network.CellNetwork`."""

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

    def in_degree(self) -> Tuple[int, ...]:
        """Distinct input states of each node: several ops on one edge count once (DST's topology)."""
        return tuple(len({inp for _, inp in node}) for node in self.nodes)

    def ops_per_edge(self) -> Tuple[Tuple[int, ...], ...]:
        """For each node, how many ops each of its kept edges carries, by input state."""
        return tuple(tuple(sum(1 for _, i in node if i == inp) for inp in sorted({i for _, i in node}))
                     for node in self.nodes)

    def to_dict(self) -> Dict[str, Any]:
        return {'nodes': [[[op, inp] for op, inp in node] for node in self.nodes], 'concat': list(self.concat)}


INPUT_LABELS = ('c_{k-2}', 'c_{k-1}')
"""Names of a cell's two input states (0 and 1): the outputs of the cell two back and of the previous cell."""


def node_label(i: int) -> str:
    """The label of state ``i`` of a cell: ``c_{k-2}``, ``c_{k-1}``, then intermediate nodes ``0, 1, ...``."""
    return INPUT_LABELS[i] if i < 2 else str(i - 2)


def freeze(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in obj.items()})
    if isinstance(obj, (list, tuple)):
        return tuple(freeze(v) for v in obj)
    return obj


def thaw(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {k: thaw(v) for k, v in obj.items()}
    if isinstance(obj, tuple):
        return [thaw(v) for v in obj]
    return obj


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


_FIELDS = ('format', 'schema_version', 'name', 'space', 'feature_sharing', 'network', 'drop_path',
           'bn_after', 'normal', 'reduce', 'provenance')
_V1_FIELDS = ('format', 'schema_version', 'name', 'space', 'feature_sharing', 'normal', 'reduce', 'provenance')


def read_fields(data: Any, source: Optional[str] = None) -> Dict[str, Any]:
    """The constructor arguments of a genotype from its JSON object form (any readable schema version); every
    error names ``source`` and the offending field."""

    if not isinstance(data, Mapping):
        raise GenotypeError(f'expected a JSON object, got {type(data).__name__}', source)
    data = _migrate(data, source)
    fmt = data.get('format', FORMAT)
    if fmt != FORMAT:
        raise GenotypeError(f'expected {FORMAT!r}, got {short_repr(fmt)}', source, 'format')
    unknown = sorted(short_text(k) for k in set(data) - set(_FIELDS))
    if unknown:
        raise GenotypeError(f'unknown field(s) {unknown}; expected only {sorted(_FIELDS)}', source)
    _check_name(data.get('name'), source)
    space = data.get('space', 'standard')
    if not isinstance(space, str) or space not in SPACES:
        raise GenotypeError(f'unknown space {short_repr(space)}; expected one of {sorted(SPACES)}', source, 'space')
    if not isinstance(data.get('feature_sharing', False), bool):
        raise GenotypeError(f'expected true or false, got {short_repr(data["feature_sharing"])}', source,
                            'feature_sharing')
    bn_after = data.get('bn_after', [])
    if not isinstance(bn_after, list) or not all(isinstance(op, str) for op in bn_after):
        raise GenotypeError(f'expected a list of op names, got {short_repr(bn_after)}', source, 'bn_after')
    provenance = data.get('provenance', {})
    if not isinstance(provenance, Mapping):
        raise GenotypeError(f'expected an object, got {type(provenance).__name__}', source, 'provenance')
    _check_text(provenance, source, 'provenance')
    cells = {k: _cell_from_obj(data.get(k), source, k) for k in ('normal', 'reduce')}
    return dict(normal=cells['normal'], reduce=cells['reduce'], space=space,
                feature_sharing=data.get('feature_sharing', False), name=data.get('name'), provenance=provenance,
                network=_network_from_obj(data.get('network', {}), source), drop_path=data.get('drop_path', 'path'),
                bn_after=tuple(bn_after))


# ---- reading untrusted data ------------------------------------------------------------------------------
class _DuplicateKey(Exception):
    pass


def _no_duplicate_keys(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


def read_json(text: str, source: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as e:
        raise GenotypeError(f'malformed JSON: {e.msg} at line {e.lineno} column {e.colno}', source) from None
    except _DuplicateKey as e:
        raise GenotypeError(f'malformed JSON: key {short_repr(e.args[0])} appears twice in one object',
                            source) from None
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
    if not is_int(version) or version not in (1, SCHEMA_VERSION):
        raise GenotypeError(f'unsupported {short_repr(version)}; this version reads 1 and {SCHEMA_VERSION}',
                            source, 'schema_version')
    if version == 1:
        extra = sorted(short_text(k) for k in set(data) - set(_V1_FIELDS))
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


def short_repr(value: Any, limit: int = 80) -> str:
    """``repr`` of a value read from untrusted input, cut to ``limit`` characters for error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + '...'


def short_text(text: Any, limit: int = 80) -> str:
    """``str`` of untrusted text for error messages: cut to ``limit`` characters, lone surrogates escaped."""
    text = str(text).encode('utf-8', 'backslashreplace').decode('utf-8')
    return text if len(text) <= limit else text[:limit - 3] + '...'


def is_printable_name(name: Any) -> bool:
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
        raise GenotypeError(f'expected a string, got {short_repr(name)}', source, 'name')
    if not 1 <= len(name) <= LIMITS['name_length']:
        raise GenotypeError(f'expected 1 to {LIMITS["name_length"]} characters, got {len(name):,}', source, 'name')
    if not _utf8(name) or not name.isprintable():
        raise GenotypeError(f'expected printable text, got {short_repr(name)}', source, 'name')


def _check_text(obj: Any, source: Optional[str], fld: str, depth: int = 0) -> None:
    """Every string in ``obj`` (provenance) must be encodable, so that printing it cannot fail."""
    if depth > 32:
        raise GenotypeError('nested too deeply', source, fld)
    if isinstance(obj, str):
        if not _utf8(obj):
            raise GenotypeError(f'text that is not valid Unicode: {short_repr(obj)}', source, fld)
    elif isinstance(obj, Mapping):
        for k, v in obj.items():
            _check_text(k, source, fld, depth + 1)
            _check_text(v, source, f'{fld}.{k}' if _utf8(str(k)) else fld, depth + 1)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _check_text(v, source, f'{fld}[{i}]', depth + 1)


def is_int(x: Any) -> bool:
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
    unknown = sorted(short_text(k) for k in set(obj) - {'nodes', 'concat'})
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
                    and isinstance(conn[0], str) and is_int(conn[1])):
                raise GenotypeError(f'expected ["op", input_index], got {short_repr(conn)}', source, f'{fld}[{c}]')
            conns.append((conn[0], conn[1]))
        nodes.append(tuple(conns))
    present = [j + 2 for j, node in enumerate(nodes) if node]
    concat = obj.get('concat', present)
    if not isinstance(concat, list) or not all(is_int(c) for c in concat):
        raise GenotypeError(f'expected a list of node indices, got {short_repr(concat)}', source, f'{kind}.concat')
    _check_count(len(concat), LIMITS['nodes'], 'entries', source, f'{kind}.concat')
    return CellSpec(tuple(nodes), tuple(concat))


def _check_count(n: int, limit: int, what: str, source: Optional[str], fld: str) -> None:
    if n > limit:
        raise GenotypeError(f'{n:,} {what}; a genotype may have at most {limit} (docs/genotype-format.md, Limits)',
                            source, fld)


def check_genotype(g: Any, source: Optional[str]) -> None:
    """Checks on a built genotype, so that direct construction is held to the same rules as files."""
    if not isinstance(g.space, str) or g.space not in SPACES:
        raise GenotypeError(f'unknown space {short_repr(g.space)}; expected one of {sorted(SPACES)}', source, 'space')
    if not isinstance(g.feature_sharing, bool):
        raise GenotypeError(f'expected true or false, got {short_repr(g.feature_sharing)}', source, 'feature_sharing')
    if not isinstance(g.bn_after, tuple) or len(set(g.bn_after)) != len(g.bn_after) or not all(
            isinstance(op, str) and op in SPACES[g.space] and op != 'none' for op in g.bn_after):
        raise GenotypeError(f'expected distinct ops of the {g.space!r} space (not none), got {short_repr(g.bn_after)}',
                            source, 'bn_after')
    _check_name(g.name, source)
    if g.drop_path not in DROP_PATH_MODES:
        raise GenotypeError(f'expected one of {list(DROP_PATH_MODES)}, got {short_repr(g.drop_path)}', source,
                            'drop_path')
    _validate_network(g.network, source)
    allowed = SPACES[g.space]
    for kind, cell in (('normal', g.normal), ('reduce', g.reduce)):
        if not isinstance(cell, CellSpec):
            raise GenotypeError(f'expected a CellSpec, got {type(cell).__name__}', source, kind)
        if not isinstance(cell.nodes, tuple) or not cell.nodes:
            raise GenotypeError('a cell needs a non-empty tuple of intermediate nodes', source, f'{kind}.nodes')
        _check_count(len(cell.nodes), LIMITS['nodes'], 'nodes', source, f'{kind}.nodes')
        if not isinstance(cell.concat, tuple) or not all(is_int(c) for c in cell.concat):
            raise GenotypeError(f'expected a tuple of node indices, got {short_repr(cell.concat)}', source,
                                f'{kind}.concat')
        for j, node in enumerate(cell.nodes):
            _validate_node(node, j, cell, allowed, g.space, source, f'{kind}.nodes[{j}]')
        if not cell.present:
            raise GenotypeError('every node is empty: a cell needs at least one connection', source, f'{kind}.nodes')
        if not cell.concat:
            raise GenotypeError('concat must name at least one node', source, f'{kind}.concat')
        for c in cell.concat:
            if not 2 <= c < cell.num_nodes + 2:
                raise GenotypeError(f'concat names node {short_repr(c)}, which does not exist (nodes are 2..'
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
        if not (isinstance(conn, tuple) and len(conn) == 2 and isinstance(conn[0], str) and is_int(conn[1])):
            raise GenotypeError(f'expected ("op", input_index), got {short_repr(conn)}', source, f'{fld}[{c}]')
        op, inp = conn
        if op not in OPS:
            raise GenotypeError(f'unknown op {short_repr(op)}; expected one of {sorted(OPS)}', source, f'{fld}[{c}]')
        if op not in allowed:
            raise GenotypeError(f'op {op!r} is not in the {space!r} space (set "space": "extended")',
                                source, f'{fld}[{c}]')
        if not 0 <= inp < j + 2:
            raise GenotypeError(f'input {short_repr(inp)} out of range: node {j} may read inputs 0..{j + 1} '
                                '(0, 1 = cell inputs, 2.. = earlier nodes)', source, f'{fld}[{c}]')
        if inp >= 2 and not cell.nodes[inp - 2]:
            raise GenotypeError(f'input {inp} is node {inp - 2}, which is empty (an absent node has no value)',
                                source, f'{fld}[{c}]')
        if (op, inp) in seen:
            raise GenotypeError(f'duplicate connection [{op!r}, {inp}]', source, f'{fld}[{c}]')
        seen.add((op, inp))


def _validate_network(network: Any, source: Optional[str]) -> None:
    if not isinstance(network, Mapping):
        raise GenotypeError(f'expected an object of families, got {type(network).__name__}', source, 'network')
    for family, settings in network.items():
        if family not in STEM_TYPES:
            raise GenotypeError(f'unknown family {short_repr(family)}; expected one of {list(STEM_TYPES)}',
                                source, 'network')
        if not isinstance(settings, Mapping):
            raise GenotypeError(f'expected an object of settings, got {type(settings).__name__}',
                                source, f'network.{family}')
        for key, value in settings.items():
            if key not in NETWORK_SETTINGS:
                raise GenotypeError(f'unknown setting {short_repr(key)}; expected some of {sorted(NETWORK_SETTINGS)}',
                                    source, f'network.{family}')
            low, high = NETWORK_SETTINGS[key]
            if not is_int(value) or not low <= value <= high:
                raise GenotypeError(f'expected an integer in {low}..{high}, got {short_repr(value)}',
                                    source, f'network.{family}.{key}')
