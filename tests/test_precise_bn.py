"""Precise BN: batch-norm statistics re-estimated for the final weights (docs/method.md, Training protocols)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from safetensors.torch import load_file

from entrannas_timm.train.precise_bn import recalibrate_bn

ROOT = Path(__file__).resolve().parents[1]


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 6, 3), nn.BatchNorm2d(6), nn.ReLU(), nn.Conv2d(6, 4, 1), nn.BatchNorm2d(4))


def test_statistics_are_the_plain_average_over_the_batches():
    net = _net().eval()
    net[1].num_batches_tracked.fill_(7)  # training steps so far
    batches = [(torch.randn(8, 3, 7, 7) * (1 + k) + k, torch.zeros(8)) for k in range(4)]
    assert recalibrate_bn(net, iter(batches)) == 4
    feats = [net[0](x) for x, _ in batches]
    bn = net[1]
    mean = torch.stack([f.mean((0, 2, 3)) for f in feats]).mean(0)
    var = torch.stack([f.var((0, 2, 3), unbiased=True) for f in feats]).mean(0)
    torch.testing.assert_close(bn.running_mean, mean, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(bn.running_var, var, rtol=1e-5, atol=1e-5)
    assert bn.momentum == 0.1 and not net.training  # momentum and the eval mode are restored
    assert int(bn.num_batches_tracked) == 7  # re-estimating is not a training step


def test_no_batches_leaves_the_statistics_as_they_were():
    net = _net().train()
    net(torch.randn(4, 3, 7, 7))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    assert recalibrate_bn(net, iter([])) == 0
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items()) and net.training


@pytest.mark.fashion_mnist
def test_a_short_run_validates_with_statistics_of_its_final_weights(tmp_path):
    """The tiny-run regression: after 10 steps the running averages describe older weights and the network tests
    near chance; precise BN (the fashion-mnist preset) changes only the BN buffers and lifts test top-1."""
    runs = {}
    for pb in ('0', None):
        out = tmp_path / f'pb{pb}'
        cmd = [sys.executable, '-m', 'entrannas_timm.train', 'darts_v2_cifar10', '--dataset', 'fashion-mnist',
               '--layers', '3', '--channels', '4', '--epochs', '1', '--subset', '960', '--val-subset', '1000',
               '--threads', '1', '--quiet', '--output', str(out)] + (['--precise-bn', pb] if pb else [])
        subprocess.run(cmd, cwd=ROOT, check=True, timeout=300)
        record = json.loads((out / 'metrics.jsonl').read_text().splitlines()[-1])
        settings = json.loads((out / 'config.json').read_text())['settings']
        runs[pb] = record, settings, load_file(out / 'last.safetensors')
    (plain, plain_cfg, plain_w), (precise, precise_cfg, precise_w) = runs['0'], runs[None]
    assert plain_cfg['precise_bn'] == 0 and precise_cfg['precise_bn'] == 20
    assert plain['train_top1'] == precise['train_top1']  # training is unaffected
    buffers = {k for k in plain_w if k.endswith(('running_mean', 'running_var', 'num_batches_tracked'))}
    assert buffers and all(torch.equal(plain_w[k], precise_w[k]) for k in plain_w if k not in buffers)
    assert not all(torch.equal(plain_w[k], precise_w[k]) for k in buffers)
    assert precise['val_top1'] > plain['val_top1'] + 10, (plain['val_top1'], precise['val_top1'])
