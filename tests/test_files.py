"""write_atomic: whole files or nothing, with the permissions open() would give."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import torch

from entrannas_timm.utils.files import write_atomic


def test_writes_bytes_text_and_writer_functions(tmp_path: Path) -> None:
    assert write_atomic(tmp_path / 'a' / 'b.txt', 'héllo\n').read_text(encoding='utf-8') == 'héllo\n'
    assert write_atomic(tmp_path / 'c.bin', b'\x00\x01').read_bytes() == b'\x00\x01'
    state = {'w': torch.arange(3.)}
    path = write_atomic(tmp_path / 'ckpt.pt', lambda f: torch.save(state, f))
    assert torch.equal(torch.load(path, weights_only=True)['w'], state['w'])


def test_permissions_follow_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        path = write_atomic(tmp_path / 'x.json', '{}')
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    path = write_atomic(tmp_path / 'metrics.jsonl', 'old\n')

    def broken(f) -> None:
        f.write(b'half a rec')
        raise RuntimeError('disk full')

    with pytest.raises(RuntimeError, match='disk full'):
        write_atomic(path, broken)
    assert path.read_text() == 'old\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['metrics.jsonl']


def test_a_claim_holds_while_its_process_lives_and_a_stale_one_is_taken_over(tmp_path):
    import subprocess
    import sys

    from entrannas_timm.utils.files import claim
    run = tmp_path / 'run'
    assert claim(run, 'w.lock') and (run / 'w.lock').read_text() == str(os.getpid())
    assert not claim(run, 'w.lock')  # held by a live process (this one)
    gone = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'], capture_output=True, text=True)
    (run / 'w.lock').write_text(gone.stdout.strip())  # a worker that died holding it
    assert claim(run, 'w.lock') and (run / 'w.lock').read_text() == str(os.getpid())
