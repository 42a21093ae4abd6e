"""Atomic file writes: a reader (or a crash) never sees a half-written file, and nothing saved is lost; and the
lock file by which several worker processes share one list of run folders."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import IO, Callable, Union

__all__ = ['claim', 'write_atomic']


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path: Union[str, os.PathLike], data: Union[bytes, str, Callable[[IO[bytes]], object]]) -> Path:
    """Write ``data`` (bytes, UTF-8 text, or a function that writes to a binary file such as
    ``lambda f: torch.save(obj, f)``) to a temp file in the same folder, then rename it over ``path``.

    The file gets the permissions a plain ``open()`` would give it (``mkstemp`` alone makes it 0600).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, 'wb') as f:
            if callable(data):
                data(f)
            else:
                f.write(data.encode('utf-8') if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def claim(folder: Union[str, os.PathLike], lock: str = 'run.lock') -> bool:
    """Take ``folder`` for this process: create ``folder/lock`` holding our pid, atomically (``O_EXCL``), or take
    over one whose process is gone. False while a live process holds it (this one included). The caller deletes
    the lock when done."""
    path = Path(folder) / lock
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        try:
            os.kill(int(path.read_text() or 0), 0)
            return False  # a live worker holds it
        except (ProcessLookupError, ValueError, FileNotFoundError):
            path.unlink(missing_ok=True)  # stale: its worker is gone (or it was just released)
            return claim(folder, lock)
    with os.fdopen(fd, 'w') as f:
        f.write(str(os.getpid()))
    return True
