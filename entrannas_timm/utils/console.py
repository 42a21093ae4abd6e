"""What a long-running command prints while it works: the same for ``entrannas train`` and ``python -m search``.

tqdm bars are drawn only when stderr is a terminal. In a log file (``bash scripts/run.sh > log 2>&1``) every bar
redraw would be kept, so there the command prints its one summary line per epoch and nothing else.
"""
from __future__ import annotations

import json
import sys
from typing import Any, Mapping, TextIO

__all__ = ['Console']


class Console:
    """Progress bars and text lines (``'text'``), JSON lines on stdout only (``'json'``), or nothing (``'off'``).

    ``text_to`` is the stream of the text lines: ``'stderr'`` (default) or ``'stdout'``. Streams are looked up
    at each call, so a redirected ``sys.stderr`` is the one written to.
    """

    MODES = ('text', 'json', 'off')

    def __init__(self, mode: str, text_to: str = 'stderr'):
        if mode not in self.MODES:
            raise ValueError(f'console mode: expected one of {self.MODES}, got {mode!r}')
        if text_to not in ('stderr', 'stdout'):
            raise ValueError(f"console text stream: expected 'stderr' or 'stdout', got {text_to!r}")
        self.mode, self._text_to = mode, text_to

    @classmethod
    def for_command(cls, quiet: bool, as_json: bool, is_main: bool = True, text_to: str = 'stderr') -> Console:
        """``--quiet`` and non-main ranks print nothing; ``--json`` prints JSON lines only."""
        return cls('off' if quiet or not is_main else ('json' if as_json else 'text'), text_to)

    @property
    def bars(self) -> bool:
        """Whether progress bars are drawn: text mode on a terminal."""
        isatty = getattr(sys.stderr, 'isatty', None)
        return self.mode == 'text' and bool(isatty and isatty())

    def bar(self, total: int, desc: str, unit: str = 'step'):
        """A tqdm bar on stderr; disabled (updates cost nothing, nothing is printed) unless :attr:`bars`."""
        from tqdm import tqdm
        return tqdm(total=total, desc=desc, disable=not self.bars, leave=False, dynamic_ncols=True, unit=unit,
                    file=sys.stderr)

    def text(self, line: str) -> None:
        """A line above any bar (text mode only), flushed so a log shows it as it happens."""
        if self.mode == 'text':
            stream: TextIO = sys.stderr if self._text_to == 'stderr' else sys.stdout
            if self.bars:
                from tqdm import tqdm
                tqdm.write(line, file=stream)
            else:
                print(line, file=stream)
            stream.flush()

    def json(self, obj: Mapping[str, Any]) -> None:
        """One JSON line on stdout (json mode only)."""
        if self.mode == 'json':
            print(json.dumps(obj), flush=True)
