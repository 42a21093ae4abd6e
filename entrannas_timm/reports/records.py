"""The run record of a search: what a run directory holds, written and read by this module only.

``python -m search --output RUN_DIR`` writes

- ``config.json``: the run's settings, one JSON object;
- ``metrics.jsonl``: one JSON object per finished epoch (fields in :data:`EPOCH_FIELDS`), strict JSON: no
  ``NaN`` or ``Infinity`` is ever written, and a record with one is refused on reading;
- ``checkpoint.pt``: the search state to resume from (its format belongs to ``search.loop``);
- ``genotype.json``: the final genotype, whose provenance (:func:`search_provenance`) says how it was found;
- ``consistency.jsonl``: with ``--consistency-epochs`` (or after ``python -m search consistency RUN``), one
  consistency measurement per line (:func:`read_consistency`; docs/method.md, *Consistency*).

The search loop writes these files through this module; ``entrannas report`` and ``python -m search.bench
--dst-run`` read them through it. A run directory is untrusted input: file sizes, line lengths and line counts
are bounded (:data:`LIMITS`), every known field is type-checked, and an error names ``file:line`` and the field.
The architecture snapshot (field ``arch``) is produced by ``SearchNetwork.arch_snapshot()``; :func:`check_arch`
is its reader's contract.
"""
from __future__ import annotations

import datetime
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Union

from ..models.genotype import Genotype, GenotypeError
from ..models.ops import OPS
from ..utils.files import write_atomic
from ..utils.finite import non_finite

__all__ = [
    'CONFIG_FILE', 'METRICS_FILE', 'CHECKPOINT_FILE', 'GENOTYPE_FILE', 'RUN_FILES', 'LIMITS', 'EPOCH_FIELDS',
    'CELL_KINDS', 'RecordError', 'EpochRecord', 'MetricsLog', 'epoch_line', 'parse_epoch_line', 'check_arch',
    'write_metrics', 'read_metrics', 'metrics_path', 'write_config', 'read_config', 'read_genotype',
    'search_provenance', 'search_cost_seconds', 'PROVENANCE_SOURCE', 'CONSISTENCY_FILE', 'CONSISTENCY_STAGES',
    'CONSISTENCY_SOURCES', 'consistency_line', 'read_consistency', 'append_consistency', 'keep_consistency',
]

CONFIG_FILE, METRICS_FILE, CHECKPOINT_FILE, GENOTYPE_FILE = 'config.json', 'metrics.jsonl', 'checkpoint.pt', \
    'genotype.json'
RUN_FILES = (CONFIG_FILE, METRICS_FILE, CHECKPOINT_FILE, GENOTYPE_FILE)
CELL_KINDS = ('normal', 'reduce')

# What a reader accepts from a run directory (far above what a real search writes: a 50-epoch DST record on
# the standard space is ~15 KB a line).
LIMITS: Dict[str, int] = {
    'metrics_bytes': 1 << 30,      # metrics.jsonl
    'line_bytes': 4 << 20,         # one epoch record
    'epochs': 100_000,             # lines of metrics.jsonl
    'json_file_bytes': 4 << 20,    # config.json, genotype.json
    'ops': 64, 'edges': 4096, 'nodes': 1024,
}

PROVENANCE_SOURCE = 'entrannas-timm search (python -m search)'

# the consistency measurement's records (docs/method.md, *Consistency*): the stages measured, who measured
CONSISTENCY_FILE = 'consistency.jsonl'
CONSISTENCY_STAGES = ('supernet', 'inherited', 'recalibrated', 'finetuned', 'scratch')
CONSISTENCY_SOURCES = ('search', 'command')


class RecordError(ValueError):
    """A run-record file is malformed; the message names ``file:line`` (or the file) and the field."""


# ---- field checks --------------------------------------------------------------------------------
def _fail(where: str, name: str, expected: str, value: Any) -> RecordError:
    shown = repr(value)
    shown = shown if len(shown) <= 80 else shown[:77] + '...'
    return RecordError(f'{where}: field "{name}": expected {expected}, got {shown}')


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _count(minimum: int) -> Callable[[Any, str, str], Any]:
    def check(v: Any, where: str, name: str) -> Any:
        if not _is_int(v) or v < minimum:
            raise _fail(where, name, f'an integer >= {minimum}', v)
        return v
    return check


def _number(low: float, high: Optional[float] = None) -> Callable[[Any, str, str], Any]:
    expected = f'a finite number in [{low:g}, {high:g}]' if high is not None else f'a finite number >= {low:g}'

    def check(v: Any, where: str, name: str) -> Any:
        if not _is_num(v) or v < low or (high is not None and v > high):
            raise _fail(where, name, expected, v)
        return v
    return check


def _flag(v: Any, where: str, name: str) -> Any:
    if not isinstance(v, bool):
        raise _fail(where, name, 'true or false', v)
    return v


def _genotype(v: Any, where: str, name: str) -> Genotype:
    try:
        return Genotype.from_dict(v, source=f'{where}: field "{name}"')
    except GenotypeError as e:
        raise RecordError(str(e)) from None


def _per_kind(v: Any, where: str, name: str, item: Callable[[Any], bool], expected: str) -> None:
    if not isinstance(v, dict) or set(v) != set(CELL_KINDS):
        raise _fail(where, name, '{"normal": ..., "reduce": ...}', v)
    for kind in CELL_KINDS:
        if not item(v[kind]):
            raise _fail(where, f'{name}.{kind}', expected, v[kind])


def _numbers(v: Any, limit: int) -> bool:
    return isinstance(v, list) and len(v) <= limit and all(_is_num(x) for x in v)


def check_arch(arch: Any, where: str, name: str = 'arch') -> Dict[str, Any]:
    """Validate an architecture snapshot (``SearchNetwork.arch_snapshot()``): op names, edges, edges x ops
    weights per cell kind; optionally thresholds per node, active connections per node, skip-connect counts and
    the raw architecture ``parameters``. Returns it unchanged."""
    if not isinstance(arch, dict):
        raise _fail(where, name, 'an object', arch)
    ops, edges, weights = arch.get('ops'), arch.get('edges'), arch.get('weights')
    if not (isinstance(ops, list) and 0 < len(ops) <= LIMITS['ops']
            and all(isinstance(o, str) and o in OPS for o in ops)):
        raise _fail(where, f'{name}.ops', f'a list of 1 to {LIMITS["ops"]} known op names', ops)
    if not (isinstance(edges, list) and 0 < len(edges) <= LIMITS['edges']
            and all(isinstance(e, list) and len(e) == 2 and all(_is_int(i) for i in e) and 0 <= e[0] < e[1]
                    for e in edges)):
        raise _fail(where, f'{name}.edges', f'a list of 1 to {LIMITS["edges"]} [input, node] pairs, input < node',
                    edges)
    _per_kind(weights, where, f'{name}.weights',
              lambda w: isinstance(w, list) and len(w) == len(edges) and all(
                  _numbers(row, len(ops)) and len(row) == len(ops) for row in w),
              f'{len(edges)} rows (edges) of {len(ops)} weights (ops)')
    nodes = LIMITS['nodes']
    if arch.get('thresholds') is not None:
        _per_kind(arch['thresholds'], where, f'{name}.thresholds', lambda t: _numbers(t, nodes),
                  'a list of thresholds, one per node')
    if arch.get('active_connections') is not None:
        _per_kind(arch['active_connections'], where, f'{name}.active_connections',
                  lambda a: isinstance(a, list) and len(a) <= nodes and all(_is_int(x) and x >= 0 for x in a),
                  'a list of connection counts, one per node')
    if arch.get('skip_connect') is not None:
        _per_kind(arch['skip_connect'], where, f'{name}.skip_connect', lambda s: _is_int(s) and s >= 0,
                  'a count >= 0')
    params = arch.get('parameters')
    if params is not None and not (isinstance(params, dict) and all(
            isinstance(k, str) and isinstance(v, list) for k, v in params.items())):
        raise _fail(where, f'{name}.parameters', 'an object of named (nested) lists of numbers', params)
    return arch


# Fields of an epoch record: check(value, where, name). The loop writes all of them; a reader needs only
# ``epoch`` (a record may predate a field) and ignores fields it does not know.
EPOCH_FIELDS: Dict[str, Callable[[Any, str, str], Any]] = {
    'epoch': _count(1),                  # 1-based, the epoch just finished
    'epochs': _count(1),                 # planned epochs of the run
    'lr': _number(0),                    # weight learning rate of the epoch
    'arch_lr': _number(0),               # architecture learning rate of the epoch
    'train_loss': _number(0), 'train_acc': _number(0, 1),
    'val_loss': _number(0), 'val_acc': _number(0, 1),
    'arch_updates': _flag,               # whether the architecture was updated in this epoch
    'genotype': _genotype,               # the genotype derived at the end of the epoch
    'arch': check_arch,                  # architecture snapshot
    'params': _count(0), 'macs': _count(0),   # of the evaluation network of that genotype
    'epoch_time_s': _number(0),          # wall time of the epoch
    'epoch_cpu_s': _number(0),           # CPU time of the process (all its threads): less sensitive to other jobs
    'peak_mem_mb': _number(0),
}


# ---- epoch records -------------------------------------------------------------------------------
@dataclass(frozen=True)
class EpochRecord:
    """One validated line of ``metrics.jsonl``: the JSON object, its parsed genotype, and where it was read."""
    data: Mapping[str, Any]
    genotype: Optional[Genotype]
    where: str

    @property
    def epoch(self) -> int:
        return self.data['epoch']

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)


def _loads_strict(text: str, where: str) -> Any:
    """json.loads that names the field holding NaN / Infinity (or a float too large, such as 1e999)."""
    bad = []

    def constant(c: str) -> float:
        bad.append(c)
        return float(c)

    def number(s: str) -> float:
        v = float(s)
        if not math.isfinite(v):
            bad.append(s)
        return v
    try:
        obj = json.loads(text, parse_constant=constant, parse_float=number)
    except json.JSONDecodeError as e:
        raise RecordError(f'{where}: malformed JSON: {e.msg} at column {e.colno}') from None
    except RecursionError:
        raise RecordError(f'{where}: malformed JSON: nested too deeply') from None
    except ValueError as e:  # e.g. an integer with thousands of digits
        raise RecordError(f'{where}: malformed JSON: {e}') from None
    if bad:
        raise RecordError(f'{where}: field "{non_finite(obj)[0]}": {bad[0]} is not a finite number '
                          '(records are strict JSON)')
    return obj


def parse_epoch_line(text: str, where: str, complete: bool = False) -> EpochRecord:
    """One epoch record from its JSON text; ``complete`` also requires every field of :data:`EPOCH_FIELDS`."""
    obj = _loads_strict(text, where)
    if not isinstance(obj, dict):
        raise RecordError(f'{where}: expected a JSON object per line, got {type(obj).__name__}')
    if 'epoch' not in obj:
        raise RecordError(f'{where}: field "epoch": missing')
    if complete:
        missing = [k for k in EPOCH_FIELDS if k not in obj]
        unknown = [k for k in obj if k not in EPOCH_FIELDS]
        if missing or unknown:
            raise RecordError(f'{where}: missing field(s) {missing}, unknown field(s) {unknown}')
    genotype = None
    for name, check in EPOCH_FIELDS.items():
        if name in obj and obj[name] is not None:
            value = check(obj[name], where, name)
            if name == 'genotype':
                genotype = value
    if 'epochs' in obj and obj['epoch'] > obj['epochs']:
        raise RecordError(f'{where}: field "epoch": {obj["epoch"]} is past "epochs" {obj["epochs"]}')
    return EpochRecord(obj, genotype, where)


def epoch_line(record: Mapping[str, Any]) -> str:
    """The ``metrics.jsonl`` line of a finished epoch (no newline): strict JSON, every field present and valid.

    The line is read back with :func:`parse_epoch_line`, so what is written is what readers accept.
    """
    where = f'epoch record {record.get("epoch")!r}'
    try:
        text = json.dumps(dict(record), allow_nan=False)
    except ValueError:
        raise RecordError(f'{where}: field "{non_finite(dict(record))[0]}": not a finite number; a record '
                          'holds finite numbers only') from None
    parse_epoch_line(text, where, complete=True)
    return text


def metrics_path(run: Union[str, os.PathLike]) -> Path:
    """``RUN_DIR/metrics.jsonl`` for a run directory, or the path itself for a file."""
    p = Path(run).expanduser()
    return p / METRICS_FILE if p.is_dir() else p


def write_metrics(path: Union[str, os.PathLike], lines: Sequence[str]) -> Path:
    """Replace ``metrics.jsonl`` with ``lines`` (from :func:`epoch_line`) atomically: never a half line."""
    return write_atomic(path, ''.join(line + '\n' for line in lines))


@dataclass
class MetricsLog:
    """``metrics.jsonl`` as read: one record per epoch in epoch order (a later line for the same epoch, as a
    resumed run may leave, replaces an earlier one) and notes on what was skipped or replaced."""
    path: Path
    records: List[Any]
    notes: List[str] = field(default_factory=list)


def _lines(path: Path) -> Iterator[tuple]:
    """(line number, text, ends with newline) of a bounded text file, one line at a time."""
    try:
        size = path.stat().st_size
        f = path.open('rb')
    except OSError as e:
        raise RecordError(f'{path}: cannot read: {e.strerror or e}') from None
    if size > LIMITS['metrics_bytes']:
        f.close()
        raise RecordError(f'{path}: {size} bytes; a run record is read up to {LIMITS["metrics_bytes"]} bytes')
    with f:
        for n in range(1, LIMITS['epochs'] + 2):
            raw = f.readline(LIMITS['line_bytes'] + 1)
            if not raw:
                return
            if n > LIMITS['epochs']:
                raise RecordError(f'{path}: more than {LIMITS["epochs"]} lines; a run record holds one per epoch')
            if len(raw) > LIMITS['line_bytes']:
                raise RecordError(f'{path}:{n}: line longer than {LIMITS["line_bytes"]} bytes')
            try:
                text = raw.decode('utf-8')
            except UnicodeDecodeError as e:
                raise RecordError(f'{path}:{n}: not UTF-8 ({e.reason} at byte {e.start})') from None
            yield n, text, raw.endswith(b'\n')


def read_metrics(run: Union[str, os.PathLike], keep: Callable[[EpochRecord], Any] = lambda r: r) -> MetricsLog:
    """Read ``metrics.jsonl`` (or ``RUN_DIR/metrics.jsonl``) line by line.

    ``keep`` maps each record to what is stored (a reader of long runs keeps only what it needs). A last line
    without its newline that does not parse is a record still being written: it is skipped with a note.
    """
    path = metrics_path(run)
    if not path.is_file():
        raise RecordError(f'{path}: not found')
    by_epoch: Dict[int, Any] = {}
    notes: List[str] = []
    repeated: List[int] = []
    for n, text, newline in _lines(path):
        if not text.strip():
            continue
        where = f'{path}:{n}'
        try:
            rec = parse_epoch_line(text, where)
        except RecordError:
            if newline:
                raise
            try:  # a half-written last line is not JSON; a complete one with bad fields is an error
                json.loads(text)
            except ValueError:
                notes.append(f'{METRICS_FILE} line {n} is incomplete (the run is still writing it); skipped')
                continue
            raise
        if rec.epoch in by_epoch:
            repeated.append(rec.epoch)
        by_epoch[rec.epoch] = keep(rec)
    if repeated:
        shown = ', '.join(map(str, sorted(set(repeated))[:10])) + (' ...' if len(set(repeated)) > 10 else '')
        notes.append(f'epoch(s) {shown} recorded more than once (resumed run); the last record of each is used')
    return MetricsLog(path, [by_epoch[e] for e in sorted(by_epoch)], notes)


# ---- config.json and genotype.json ---------------------------------------------------------------
def _read_bounded(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > LIMITS['json_file_bytes']:
            raise RecordError(f'{path}: {size} bytes; read up to {LIMITS["json_file_bytes"]} bytes')
        return path.read_bytes().decode('utf-8')
    except OSError as e:
        raise RecordError(f'{path}: cannot read: {e.strerror or e}') from None
    except UnicodeDecodeError as e:
        raise RecordError(f'{path}: not UTF-8 ({e.reason} at byte {e.start})') from None


def write_config(path: Union[str, os.PathLike], settings: Mapping[str, Any]) -> Path:
    """``config.json``: the run's settings, strict JSON."""
    try:
        text = json.dumps(dict(settings), indent=2, allow_nan=False)
    except ValueError:
        raise RecordError(f'{path}: setting "{non_finite(dict(settings))[0]}" is not a finite number') from None
    return write_atomic(path, text + '\n')


def read_config(path: Union[str, os.PathLike]) -> Dict[str, Any]:
    """``config.json`` as a JSON object (size-bounded, strict JSON)."""
    path = Path(path)
    data = _loads_strict(_read_bounded(path), str(path))
    if not isinstance(data, dict):
        raise RecordError(f'{path}: expected a JSON object, got {type(data).__name__}')
    return data


def read_genotype(path: Union[str, os.PathLike]) -> Genotype:
    """The final ``genotype.json`` of a run (size-bounded; the genotype module validates it)."""
    path = Path(path)
    _read_bounded(path)
    try:
        return Genotype.load(path)
    except GenotypeError as e:
        raise RecordError(str(e)) from None


def search_provenance(*, method: str, dataset: str, seed: int, epochs: int, search_settings: Mapping[str, Any],
                      engine_cells: Sequence[int], search_cost: Mapping[str, Any], code_version: Mapping[str, Any],
                      metrics: Mapping[str, Any], evaluation_network: Mapping[str, Any],
                      arch_update_epochs: int) -> Dict[str, Any]:
    """The provenance a searched ``genotype.json`` carries (``Genotype.provenance``), strict JSON.

    ``arch_update_epochs`` counts the epochs that updated the architecture: 0 means the genotype was derived
    from the initial architecture (written only when the user asked for it).
    """
    prov = {
        'source': PROVENANCE_SOURCE, 'method': method, 'dataset': dataset, 'seed': seed, 'epochs': epochs,
        'search_settings': dict(search_settings), 'engine_cells': list(engine_cells),
        'arch_update_epochs': arch_update_epochs, 'search_cost': dict(search_cost),
        'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        'code_version': dict(code_version), 'metrics': dict(metrics),
        'evaluation_network': dict(evaluation_network),
    }
    try:
        json.dumps(prov, allow_nan=False)
    except ValueError:
        raise RecordError(f'provenance: field "{non_finite(prov)[0]}" is not a finite number') from None
    return prov


def search_cost_seconds(search_cost: Mapping[str, Any]) -> Dict[str, Optional[float]]:
    """``wall_s``, ``cpu_s`` and ``consistency_cpu_s`` of a provenance's ``search_cost``, in either form.

    Searches record ``wall_s`` (wall time), ``cpu_s`` (the process's CPU time, summed over the epochs) and, when
    the consistency measurement ran, ``consistency_cpu_s``. Older records hold ``wall_time_s``, ``process_cpu_s``
    (when present) and ``cpu_hours``, which despite its name is wall time x processes / 3600 (``gpu_days`` on
    CUDA: / 86400). A value a record does not hold is None.
    """
    def num(key: str) -> Optional[float]:
        v = search_cost.get(key)
        return float(v) if _is_num(v) else None
    wall = num('wall_s')
    if wall is None:
        wall = num('wall_time_s')
    if wall is None and num('cpu_hours') is not None:
        wall = num('cpu_hours') * 3600 / (num('devices') or 1)  # type: ignore[operator]
    cpu = num('cpu_s')
    return {'wall_s': wall, 'cpu_s': cpu if cpu is not None else num('process_cpu_s'),
            'consistency_cpu_s': num('consistency_cpu_s')}


# ---- consistency.jsonl ----------------------------------------------------------------------------------------
def _consistency_path(run: Union[str, Path]) -> Path:
    p = Path(run).expanduser()
    return p / CONSISTENCY_FILE if p.is_dir() else p


def _check_consistency(text: str, where: str) -> Dict[str, Any]:
    """A consistency record from its JSON text: strict JSON and the fields it shares with an epoch record
    (epoch, epochs, genotype) checked as in ``metrics.jsonl``, then its own."""
    data = dict(parse_epoch_line(text, where).data)

    def bad(name: str, expected: str) -> RecordError:
        shown = repr(data.get(name, '<missing>'))
        return RecordError(f'{where}: field "{name}": expected {expected}, got '
                           + (shown if len(shown) <= 80 else shown[:77] + '...'))

    def number(v: Any, high: float = math.inf) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= high
    if data.get('source') not in CONSISTENCY_SOURCES:
        raise bad('source', f'one of {list(CONSISTENCY_SOURCES)}')
    for name, high, nullable in (('acc', 1., False), ('loss', math.inf, True)):
        v = data.get(name)
        if not (isinstance(v, dict) and set(v) == set(CONSISTENCY_STAGES)
                and all(number(x, high) or (nullable and x is None) for x in v.values())):
            kinds = '(numbers >= 0 or null)' if nullable else '(numbers in [0, 1])'
            raise bad(name, f'an object of {", ".join(CONSISTENCY_STAGES)} {kinds}')
    for name in ('cpu_s', 'wall_s'):
        if not number(data.get(name)):
            raise bad(name, 'a number >= 0')
    if not isinstance(data.get('heldout'), dict) or not isinstance(data['heldout'].get('split'), str):
        raise bad('heldout', 'an object naming its "split"')
    return data


def consistency_line(record: Mapping[str, Any]) -> str:
    """The ``consistency.jsonl`` line of a measurement (no newline): strict JSON, read back as its reader does."""
    try:
        text = json.dumps(dict(record), allow_nan=False)
    except ValueError:
        raise RecordError(f'consistency record of epoch {record.get("epoch")!r}: not a finite number') from None
    _check_consistency(text, f'consistency record of epoch {record.get("epoch")!r}')
    return text


def _consistency_lines(path: Path) -> List[str]:
    try:
        size = path.stat().st_size
        if size > LIMITS['metrics_bytes']:
            raise RecordError(f'{path}: {size} bytes; a run record is read up to {LIMITS["metrics_bytes"]} bytes')
        text = path.read_bytes().decode('utf-8')
    except OSError as e:
        raise RecordError(f'{path}: cannot read: {e.strerror or e}') from None
    except UnicodeDecodeError as e:
        raise RecordError(f'{path}: not UTF-8 ({e.reason} at byte {e.start})') from None
    return text.splitlines()


def read_consistency(run: Union[str, Path]) -> List[Dict[str, Any]]:
    """Every measurement of ``RUN_DIR/consistency.jsonl`` (or of that file), in the order written; [] if the run
    has none. A malformed line is a :class:`RecordError` naming ``file:line`` and the field."""
    path = _consistency_path(run)
    if not path.is_file():
        return []
    out = []
    for n, line in enumerate(_consistency_lines(path), 1):
        if len(line) > LIMITS['line_bytes']:
            raise RecordError(f'{path}:{n}: line longer than {LIMITS["line_bytes"]} bytes')
        if line.strip():
            out.append(_check_consistency(line, f'{path}:{n}'))
    return out


def append_consistency(run: Union[str, Path], record: Mapping[str, Any]) -> Path:
    """Add a measurement to ``RUN_DIR/consistency.jsonl`` (the whole file is replaced atomically)."""
    path = Path(run) / CONSISTENCY_FILE
    line = consistency_line(record)
    old = ''.join(f'{x}\n' for x in _consistency_lines(path) if x.strip()) if path.is_file() else ''
    return write_atomic(path, old + line + '\n')


def keep_consistency(run: Union[str, Path], epoch: int) -> List[Dict[str, Any]]:
    """For a search resumed from its checkpoint of ``epoch``: drop the search's measurements of later epochs (the
    interrupted run's, measured again) and return the search's measurements that remain."""
    path = Path(run) / CONSISTENCY_FILE
    records = read_consistency(path)
    kept = [r for r in records if r['source'] != 'search' or r['epoch'] <= epoch]
    if len(kept) != len(records):
        write_atomic(path, ''.join(json.dumps(r, allow_nan=False) + '\n' for r in kept))
    return [r for r in kept if r['source'] == 'search']
