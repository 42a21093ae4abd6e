"""Generated markdown tables kept inside a hand-written document (the README's result tables)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import List, Union

from ..utils.files import write_atomic


def _tables(text: str) -> List[List[str]]:
    """The markdown tables of ``text``: runs of consecutive lines that start with ``|``."""
    tables: List[List[str]] = []
    current: List[str] = []
    for line in text.split('\n') + ['']:
        if line.startswith('|'):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    return tables


def splice_tables(document: str, tables: str) -> str:
    """``document`` with each of its tables whose header row is that of a table in ``tables`` replaced by it.

    A header names its table: the generated table replaces exactly the rows of the one it matches, so the prose
    around it stays as written. A generated table whose header is not in the document (or is there twice) is an
    error that names it, rather than a silently stale document.
    """
    lines = document.split('\n')
    for table in _tables(tables):
        starts = [i for i, line in enumerate(lines) if line == table[0]]
        if len(starts) != 1:
            raise ValueError(f'table header {table[0][:80]!r}: found {len(starts)} times in the document, '
                             'expected once')
        end = starts[0]
        while end < len(lines) and lines[end].startswith('|'):
            end += 1
        lines[starts[0]:end] = table
    return '\n'.join(lines)


def splice_tables_into(path: Union[str, os.PathLike], tables: str) -> Path:
    """:func:`splice_tables` on the file ``path``, rewritten atomically (nothing is written on an error)."""
    path = Path(path)
    return write_atomic(path, splice_tables(path.read_text(encoding='utf-8'), tables))
