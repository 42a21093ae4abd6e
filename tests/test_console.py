"""Progress output of the long-running commands (``entrannas train``, ``python -m search``): tqdm bars on a
terminal (a real pseudo-terminal here), one summary line per epoch and no bar redraws in a log file."""
from __future__ import annotations

import fcntl
import io
import os
import pty
import re
import select
import struct
import sys
import termios
import threading
from pathlib import Path
from typing import Callable, List, Sequence

import pytest

from entrannas_timm.cli import main as entrannas_main
from search.cli import main as search_main

EPOCHS = 2
TRAIN = ['train', 'darts_v2_cifar10', '--dataset', 'fashion-mnist', '--data-dir', 'no-such-dir', '--subset', '128',
         '--val-subset', '64', '--channels', '4', '--layers', '3', '--batch-size', '16', '--epochs', str(EPOCHS),
         '--threads', '1', '--workers', '0', '--seed', '1']
SEARCH = ['--method', 'entrannas', '--synthetic', '--subset', '32', '--image-size', '16', '--channels', '4',
          '--layers', '3', '--epochs', str(EPOCHS), '--batch-size', '8', '--workers', '0', '--device', 'cpu',
          '--threads', '1', '--eval-channels', '8', '--eval-layers', '3']


def _on_terminal(monkeypatch, command: Callable[[List[str]], int], argv: Sequence[str]) -> str:
    """Run ``command(argv)`` with stderr on a pseudo-terminal; return what the terminal received."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack('HHHH', 24, 100, 0, 0))  # a terminal's size (tqdm asks)
    received: List[bytes] = []
    done = threading.Event()

    def read() -> None:  # drains the terminal while the command writes, and after it, before the slave closes
        while True:
            if select.select([master], [], [], 0.05)[0]:
                received.append(os.read(master, 65536))
            elif done.is_set():
                return
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    terminal = io.TextIOWrapper(io.FileIO(slave, 'wb', closefd=True), encoding='utf-8', line_buffering=True)
    monkeypatch.setattr(sys, 'stderr', terminal)
    try:
        assert command(list(argv)) == 0
    finally:
        monkeypatch.undo()
        terminal.flush()
        done.set()
        reader.join(timeout=10)
        terminal.close()
        os.close(master)
    return b''.join(received).decode('utf-8', 'replace')


def _epoch_lines(text: str) -> List[str]:
    return [line for line in text.splitlines() if re.match(r'epoch \d+/\d+', line.strip())]


@pytest.mark.fashion_mnist
def test_train_draws_bars_on_a_terminal_and_prints_one_line_per_epoch_in_a_log(capsys, monkeypatch, tmp_path: Path):
    assert entrannas_main([*TRAIN, '--output', str(tmp_path / 'log')]) == 0
    log = capsys.readouterr().err
    assert '\r' not in log and 'step/s' not in log and 'it/s' not in log  # no bar, not even its last state
    assert len(_epoch_lines(log)) == EPOCHS

    terminal = _on_terminal(monkeypatch, entrannas_main, [*TRAIN, '--output', str(tmp_path / 'tty')])
    assert '\r' in terminal and f'epoch 1/{EPOCHS}' in terminal and 'step' in terminal  # a tqdm bar, redrawn
    assert len(_epoch_lines(terminal.replace('\r', '\n'))) >= EPOCHS


def test_search_draws_bars_on_a_terminal_and_prints_one_line_per_epoch_in_a_log(capsys, monkeypatch,
                                                                                tmp_path: Path):
    assert search_main([*SEARCH, '--output', str(tmp_path / 'log')]) == 0
    out, err = capsys.readouterr()
    assert '\r' not in out + err and 'step/s' not in err and 'it/s' not in err
    assert len(_epoch_lines(out)) == EPOCHS and 'genotype written to' in out

    terminal = _on_terminal(monkeypatch, search_main, [*SEARCH, '--output', str(tmp_path / 'tty')])
    assert '\r' in terminal and f'epoch 1/{EPOCHS}' in terminal and 'step' in terminal
    assert capsys.readouterr().out.count('genotype written to') == 1  # the text lines stay on stdout
