"""The run-record format (entrannas_timm.reports.records): what the search writes reads back, and bad records are
refused with a message naming file:line and field."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Dict

import pytest
import torch

from entrannas_timm import Genotype
from entrannas_timm.reports.records import (
    LIMITS,
    RecordError,
    epoch_line,
    read_config,
    read_metrics,
    search_provenance,
    write_config,
    write_metrics,
)
from search.supernet import SearchNetwork


def _record(epoch: int, net: SearchNetwork) -> Dict[str, Any]:
    """An epoch record as the loop builds it, from a real super-net's snapshot and derived genotype."""
    return {'epoch': epoch, 'epochs': 3, 'lr': 0.025, 'train_loss': 2.1, 'train_acc': 0.25, 'val_loss': 2.2,
            'val_acc': 0.2, 'arch_updates': True, 'genotype': net.genotype().to_dict(), 'arch': net.arch_snapshot(),
            'params': 12345, 'macs': 678901, 'epoch_time_s': 1.5, 'epoch_cpu_s': 2.5, 'peak_mem_mb': 300.0,
            'arch_lr': 6e-4}


@pytest.fixture(scope='module')
def dst() -> SearchNetwork:
    return SearchNetwork(method='entrannas-dst', num_classes=10, channels=4, layers=3)


def test_records_round_trip(tmp_path: Path, dst: SearchNetwork) -> None:
    records = [_record(1, dst)]
    with torch.no_grad():
        dst.alphas_normal[:, 0] += 4.  # a different architecture at epoch 2
    dst.rederive()
    records.append(_record(2, dst))
    path = write_metrics(tmp_path / 'metrics.jsonl', [epoch_line(r) for r in records])
    log = read_metrics(tmp_path)
    assert log.path == path and log.notes == []
    assert [dict(r.data) for r in log.records] == records
    assert [r.genotype for r in log.records] == [Genotype.from_dict(r['genotype']) for r in records]
    replay = SearchNetwork(method='entrannas-dst', num_classes=10, channels=4, layers=3)
    replay.load_arch_snapshot(log.records[1].data['arch'])  # the snapshot puts a super-net back into that epoch
    assert replay.genotype() == dst.genotype()

    settings = {'method': 'entrannas-dst', 'lr': 0.025, 'arch_betas': [0.5, 0.999], 'output': None}
    write_config(tmp_path / 'config.json', settings)
    assert read_config(tmp_path / 'config.json') == settings
    prov = search_provenance(method='entrannas-dst', dataset='cifar10', seed=0, epochs=2, search_settings=settings,
                             engine_cells=[1, 2], search_cost={'wall_time_s': 3.0}, code_version={'torch': '2'},
                             metrics={'val_acc': 0.2}, evaluation_network={'stem': 'cifar'}, arch_update_epochs=2)
    assert {'source', 'method', 'dataset', 'seed', 'epochs', 'search_settings', 'engine_cells', 'search_cost',
            'date', 'code_version', 'metrics', 'evaluation_network', 'arch_update_epochs'} == set(prov)


def test_writer_refuses_what_readers_would(dst: SearchNetwork) -> None:
    rec = _record(1, dst)
    with pytest.raises(RecordError, match=r'field "val_loss": not a finite number'):
        epoch_line(dict(rec, val_loss=math.nan))
    with pytest.raises(RecordError, match=r'field "arch.weights.normal\[0\]\[2\]"'):
        bad = json.loads(json.dumps(rec))
        bad['arch']['weights']['normal'][0][2] = math.inf
        epoch_line(bad)
    with pytest.raises(RecordError, match=r"missing field\(s\) \['macs'\]"):
        epoch_line({k: v for k, v in rec.items() if k != 'macs'})
    with pytest.raises(RecordError, match=r'field "train_acc": expected a finite number in \[0, 1\]'):
        epoch_line(dict(rec, train_acc=45.0))
    with pytest.raises(RecordError, match='not a finite number'):
        write_config('unused.json', {'lr': math.inf})


GOOD = '{"epoch": 1, "val_loss": 0.5}\n'


@pytest.mark.parametrize('text, line, message', [
    (GOOD + '{"epoch": 2, "val_loss": NaN}\n', 2, 'field "val_loss": NaN is not a finite number'),
    ('{"epoch": 1, "train_loss": Infinity}\n', 1, 'field "train_loss": Infinity is not a finite number'),
    ('{"epoch": 1, "train_loss": 1e999}\n', 1, 'field "train_loss": 1e999 is not a finite number'),
    ('{"epoch": 1, "arch": {"weights": {"normal": [[0.5, -Infinity]]}}}\n', 1,
     'field "arch.weights.normal[0][1]": -Infinity'),
    (GOOD + '{oops\n' + GOOD, 2, 'malformed JSON'),
    ('{"epoch": 1, "params": ' + '9' * 5000 + '}\n', 1, 'malformed JSON'),
    ('[' * 100_000 + ']' * 100_000 + '\n', 1, 'malformed JSON'),
    ('[1, 2]\n', 1, 'expected a JSON object per line'),
    ('{"val_loss": 0.5}\n', 1, 'field "epoch": missing'),
    ('{"epoch": 0}\n', 1, 'field "epoch": expected an integer >= 1'),
    ('{"epoch": true}\n', 1, 'field "epoch": expected an integer >= 1'),
    ('{"epoch": 4, "epochs": 3}\n', 1, 'field "epoch": 4 is past "epochs" 3'),
    ('{"epoch": 1, "arch_updates": "yes"}\n', 1, 'field "arch_updates": expected true or false'),
    ('{"epoch": 1, "genotype": {"schema_version": 1}}\n', 1, 'field "genotype": normal'),
    ('{"epoch": 1, "arch": {"ops": ["rm -rf"], "edges": [[0, 2]], "weights": {}}}\n', 1,
     'field "arch.ops": expected a list of 1 to 64 known op names'),
    ('{"epoch": 1, "arch": {"ops": ["skip_connect"], "edges": [[2, 0]], "weights": {}}}\n', 1, 'field "arch.edges"'),
    ('{"epoch": 1, "arch": {"ops": ["skip_connect"], "edges": [[0, 2]], "weights": {"normal": [[1, 2]], '
     '"reduce": [[1]]}}}\n', 1, 'field "arch.weights.normal": expected 1 rows (edges) of 1 weights'),
    ('{"epoch": 1, "arch": {"ops": ["skip_connect"], "edges": [[0, 2]], "weights": {"normal": [[1]], '
     '"reduce": [[1]]}, "thresholds": {"normal": ["x"], "reduce": []}}}\n', 1, 'field "arch.thresholds.normal"'),
    (GOOD + '{"epoch": 2, "val_loss": 0.4}\n{"epoch": 3, "val_loss": 0.3}', 3, None),  # complete, no newline: read
])
def test_reader_rejects_malformed_records(tmp_path: Path, text: str, line: int, message: str) -> None:
    (tmp_path / 'metrics.jsonl').write_text(text)
    if message is None:
        assert [r.epoch for r in read_metrics(tmp_path).records] == [1, 2, 3]
        return
    with pytest.raises(RecordError) as info:
        read_metrics(tmp_path)
    assert str(info.value).startswith(f'{tmp_path / "metrics.jsonl"}:{line}: ')
    assert message in str(info.value)


def test_reader_bounds_and_partial_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / 'metrics.jsonl'
    path.write_text(GOOD + '{"epoch": 2, "val_loss": 0.4}\n' + GOOD + '{"epoch": 3, "val_lo')  # being written
    log = read_metrics(path)
    assert [(r.epoch, r.get('val_loss')) for r in log.records] == [(1, 0.5), (2, 0.4)]  # a repeated epoch: last wins
    assert log.notes == ['metrics.jsonl line 4 is incomplete (the run is still writing it); skipped',
                         'epoch(s) 1 recorded more than once (resumed run); the last record of each is used']
    path.write_text(GOOD + '{"epoch": 3, "val_lo\n')  # a finished line that is not JSON is an error, not a note
    with pytest.raises(RecordError, match=':2: malformed JSON'):
        read_metrics(path)
    path.write_bytes(GOOD.encode() + b'{"epoch": 2, "x": "\xff"}\n')
    with pytest.raises(RecordError, match=':2: not UTF-8'):
        read_metrics(path)
    monkeypatch.setitem(LIMITS, 'line_bytes', 64)
    path.write_text(GOOD + '{"epoch": 2, "note": "' + 'x' * 100 + '"}\n')
    with pytest.raises(RecordError, match=':2: line longer than 64 bytes'):
        read_metrics(path)
    monkeypatch.setitem(LIMITS, 'epochs', 3)
    path.write_text(''.join(f'{{"epoch": {e}}}\n' for e in range(1, 5)))
    with pytest.raises(RecordError, match='more than 3 lines'):
        read_metrics(path)
    monkeypatch.setitem(LIMITS, 'json_file_bytes', 10)
    (tmp_path / 'config.json').write_text('{"lr": 0.025}')
    with pytest.raises(RecordError, match='config.json: 13 bytes'):
        read_config(tmp_path / 'config.json')
    with pytest.raises(RecordError, match='not found'):
        read_metrics(tmp_path / 'missing')
