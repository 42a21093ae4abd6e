"""The error every ``entrannas`` command raises when it cannot do what was asked.

Its own module so that command modules (train, validate, plot, report, ...) raise it without importing the
``cli`` module that imports them.
"""
from __future__ import annotations

__all__ = ['CLIError']


class CLIError(Exception):
    """A command that cannot be carried out: printed as one line, no traceback, exit code ``exit_code``
    (2, the default: bad input; 1: the environment lacks a tool, a write failed, or the run diverged)."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code
