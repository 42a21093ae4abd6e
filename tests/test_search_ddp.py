"""Distributed search for real: 2 processes, gloo backend, CPU, joined the way torchrun joins them."""
from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import torch
import torch.multiprocessing as mp

ARGS = ['--method', 'entrannas', '--synthetic', '--subset', '32', '--image-size', '16', '--channels', '4',
        '--layers', '5', '--epochs', '2', '--batch-size', '16', '--workers', '0', '--device', 'cpu', '--threads', '1',
        '--eval-channels', '8', '--eval-layers', '5', '--quiet']


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _rank(rank: int, world: int, port: int, out: str, report: str) -> None:
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(world))
    from search.cli import parse_config
    from search.loop import run
    res = run(parse_config([*ARGS, '--output', out]))
    torch.save({'arch': res.arch_parameters, 'genotype': json.dumps(res.genotype.to_dict()['normal'])
                + json.dumps(res.genotype.to_dict()['reduce']), 'files': res.files_written,
                'train_loss': [r['train_loss'] for r in res.records]}, report)


def test_two_process_gloo_search(tmp_path: Path):
    out, port = tmp_path / 'run', _free_port()
    reports = [str(tmp_path / f'rank{r}.pt') for r in range(2)]
    ctx = mp.get_context('spawn')
    procs = [ctx.Process(target=_rank, args=(r, 2, port, str(out), reports[r])) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
        assert p.exitcode == 0
    r0, r1 = (torch.load(r, weights_only=True) for r in reports)
    # identical architecture parameters (bit for bit), derived genotype and epoch losses on both ranks
    assert len(r0['arch']) == len(r1['arch']) == 2
    for a, b in zip(r0['arch'], r1['arch']):
        assert torch.equal(a, b)
    assert r0['genotype'] == r1['genotype']
    assert r0['train_loss'] == r1['train_loss']  # all-reduced over ranks
    # one writer: rank 0 wrote the run directory, rank 1 nothing
    assert {'config.json', 'metrics.jsonl', 'checkpoint.pt', 'genotype.json'} <= set(r0['files'])
    assert r1['files'] == []
    assert len((out / 'metrics.jsonl').read_text().splitlines()) == 2
    g = json.loads((out / 'genotype.json').read_text())
    assert json.dumps(g['normal']) + json.dumps(g['reduce']) == r0['genotype']
    assert g['provenance']['search_cost']['devices'] == 2
