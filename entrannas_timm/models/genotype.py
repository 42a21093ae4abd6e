"""The genotype: a searched architecture as data, and the one place that resolves what users give into one.

A genotype holds a normal and a reduction cell. Each cell is a list of intermediate nodes; each node is a
list of ``(op, input)`` connections whose outputs are summed: any number of them (EnTranNAS-DST gives nodes
any in-degree and may put several ops on one edge), ``none`` among them (an explicit zero, as SNAS publishes
its cells), or none at all (an *absent* node, as FairDARTS leaves nodes without inputs: it has no value, no
node reads it and the cell output leaves it out). Inputs 0 and 1 are the cell inputs c_{k-2} and c_{k-1};
input ``i >= 2`` is intermediate node ``i - 2``. The JSON file format is specified in
``docs/genotype-format.md`` and checked in :mod:`.genotype_format`; DARTS text is read and written in
:mod:`.darts_text`; :func:`resolve_genotype` is the one place that turns a name, a path, a dict or DARTS text
into a genotype.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from ..utils.files import write_atomic
from .darts_text import looks_like_darts, parse_darts, to_darts
from .genotype_format import (
    DROP_PATH_MODES,
    FORMAT,
    INPUT_LABELS,
    LIMITS,
    NETWORK_SETTINGS,
    SCHEMA_VERSION,
    CellSpec,
    GenotypeError,
    check_genotype,
    freeze,
    is_printable_name,
    node_label,
    read_fields,
    read_json,
    short_repr,
    short_text,
    thaw,
)

__all__ = [
    'Genotype', 'GenotypeLike', 'resolve_genotype', 'bundled_genotype_dirs', 'list_genotypes', 'load_genotype',
    # the format's names, so that this module offers the whole genotype API
    'SCHEMA_VERSION', 'LIMITS', 'NETWORK_SETTINGS', 'DROP_PATH_MODES', 'GenotypeError', 'CellSpec', 'INPUT_LABELS',
    'node_label',
]

_FILE_SUFFIXES = ('.json', '.py', '.txt')


def _empty() -> Mapping[str, Any]:
    return freeze({})


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
        object.__setattr__(self, 'provenance', freeze(self.provenance))
        object.__setattr__(self, 'network', freeze(self.network))
        check_genotype(self, source=self.name if is_printable_name(self.name) else None)

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Any, source: Optional[str] = None) -> Genotype:
        """Build from the JSON object form (any readable schema version); every error names ``source`` and
        the offending field."""
        try:
            return cls(**read_fields(data, source))
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
            g = cls.from_dict(read_json(text, str(path)), source=str(path))
        return g if g.name else g.replace(name=path.stem)

    @classmethod
    def parse_darts(cls, text: str, name: Optional[str] = None, source: Optional[str] = None,
                    provenance: Optional[Mapping[str, Any]] = None) -> Genotype:
        """Parse DARTS text (see :func:`~entrannas_timm.models.darts_text.parse_darts` for the forms it reads).

        ``name`` picks the assignment when the text defines several and names the result; without it, the assigned
        variable does."""
        return cls.from_dict(parse_darts(text, name, source, provenance), source=source or '<DARTS text>')

    # ---- export -------------------------------------------------------------------------------
    def to_dict(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {'format': FORMAT, 'schema_version': SCHEMA_VERSION}
        if self.name:
            out['name'] = self.name
        out.update(space=self.space, feature_sharing=self.feature_sharing)
        if self.network:
            out['network'] = thaw(self.network)
        if self.drop_path != 'path':
            out['drop_path'] = self.drop_path
        if self.bn_after:
            out['bn_after'] = list(self.bn_after)
        out.update(normal=self.normal.to_dict(), reduce=self.reduce.to_dict(), provenance=thaw(self.provenance))
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
        return to_darts(self, assign, concat_style)

    def replace(self, **changes: Any) -> Genotype:
        data = self.to_dict()
        data.update({k: (v.to_dict() if isinstance(v, CellSpec) else thaw(v)) for k, v in changes.items()})
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
        extras = ''.join(f', {k}={thaw(getattr(self, k))}' for k, default in
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
        return looks_like_darts(text)

    @classmethod
    def coerce(cls, value: GenotypeLike) -> Genotype:
        """Accept a Genotype, a bundled name, a file path, a dict or DARTS text (see :func:`resolve_genotype`)."""
        return resolve_genotype(value)


GenotypeLike = Union[Genotype, str, os.PathLike, Mapping[str, Any]]


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
            raise GenotypeError(f'genotype file not found (bundled: {", ".join(list_genotypes())})',
                                short_text(text, 200))
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
    raise GenotypeError(f'no bundled genotype named {short_repr(name)}; bundled: {", ".join(list_genotypes())} '
                        '(or give a path to a .json file)', field='genotype')


# ---- bundled genotypes ------------------------------------------------------------------------
def bundled_genotype_dirs() -> List[Path]:
    """Where bundled genotypes live: ``$ENTRANNAS_GENOTYPE_PATH`` entries, the installed copy, the checkout."""
    dirs = [Path(p) for p in os.environ.get('ENTRANNAS_GENOTYPE_PATH', '').split(os.pathsep) if p]
    installed = Path(str(resources.files('entrannas_timm'))) / 'genotypes'
    checkout = Path(__file__).resolve().parents[2] / 'genotypes'
    dirs += [d for d in (installed, checkout) if d.is_dir()]
    return dirs


def list_genotypes() -> List[str]:
    """Names of all bundled genotypes (lower case, file stems)."""
    return sorted({p.stem.lower() for d in bundled_genotype_dirs() for p in d.glob('*.json')})


def load_genotype(name_or_path: Union[str, os.PathLike]) -> Genotype:
    """A bundled genotype by (case-insensitive) name, or a genotype file by path (see :func:`resolve_genotype`)."""
    return resolve_genotype(name_or_path)

