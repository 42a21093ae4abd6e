"""A search run directory as the report reads it: records, settings and genotype, checked and bounded."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple, Union

from ..models.genotype import Genotype
from .records import (
    CONFIG_FILE,
    EPOCH_FIELDS,
    GENOTYPE_FILE,
    METRICS_FILE,
    EpochRecord,
    RecordError,
    read_config,
    read_consistency,
    read_genotype,
    read_metrics,
)

if TYPE_CHECKING:
    pass

__all__ = ['ReportError', 'SearchRun', 'load_run', 'printable']

_STATS = ('thresholds', 'active_connections', 'skip_connect')  # per-epoch arch statistics the curves draw


class ReportError(ValueError):
    """A run directory cannot be reported on; the message names the file (and line/field) at fault."""


def printable(text: Any) -> str:
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
    consistency: List[Dict[str, Any]] = field(default_factory=list)  # consistency.jsonl, in the order written

    @property
    def name(self) -> str:
        return printable(self.run_dir.resolve().name or self.run_dir)

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
        return None if value is None else printable(value)


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
    consistency: List[Dict[str, Any]] = []
    try:  # like the final genotype: a bad measurement file leaves the rest of the report standing
        consistency = read_consistency(run_dir)
    except RecordError as e:
        notes.append(f'the consistency measurements could not be read ({e}); they are not shown')
    return SearchRun(run_dir, [r for r, _ in log.records], [g for _, g in log.records], config, final,
                     last_arch['arch'], notes, consistency)
