"""Record the golden fixture of the original DARTS and PC-DARTS search code (tests/fixtures/golden*).

    python scripts/golden_fixture.py --darts /path/to/darts/cnn --pcdarts /path/to/PC-DARTS

The original code (github.com/quark0/darts, github.com/yuhuixu1993/PC-DARTS) is imported from those checkouts,
never copied; its ``.cuda()`` calls become no-ops for the run. For each case, at a tiny size and in float64, the
original super-net's logits on a fixed batch (train mode), the first-order architecture gradient of the
cross-entropy loss and the derived genotype are recorded, with the original's weights and architecture
parameters mapped into our super-net's state-dict layout (our op order, our module names; parameters only, as
train-mode batch norms do not read their running statistics). Weights and input
are stored as float32 (values chosen exactly representable in float32, so the float64 run is reproduced
exactly); logits and gradients as float64.
``tests/test_search_golden.py`` loads our super-net from that state dict and must reproduce all three.
"""
from __future__ import annotations

import argparse
import importlib
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from entrannas_timm.utils.files import write_atomic  # noqa: E402
from search.supernet import SearchNetwork  # noqa: E402

# case -> which original code, its module, and the matching super-net of ours (tiny: 3 cells, 2-4 channels, 2 nodes)
CASES: Dict[str, Dict[str, Any]] = {
    'darts': dict(repo='darts', module='model_search', image_size=8,
                  supernet=dict(method='darts', channels=2, layers=3, nodes=2, num_classes=3, stem='cifar')),
    'pc-darts': dict(repo='pcdarts', module='model_search', image_size=8,
                     supernet=dict(method='pc-darts', pc_k=4, channels=4, layers=3, nodes=2, num_classes=3,
                                   stem='cifar')),
    'pc-darts-imagenet': dict(repo='pcdarts', module='model_search_imagenet', image_size=32, batch=2,
                              supernet=dict(method='pc-darts', pc_k=2, channels=2, layers=3, nodes=2, num_classes=3,
                                            stem='imagenet')),
}
SOURCES = {'darts': 'https://github.com/quark0/darts (cnn/)', 'pcdarts': 'https://github.com/yuhuixu1993/PC-DARTS'}


def _import_original(path: Path, module: str):
    """``module`` and ``genotypes`` of one original checkout, fresh (both checkouts use the same module names)."""
    for name in ('model_search', 'model_search_imagenet', 'operations', 'genotypes', 'utils'):
        sys.modules.pop(name, None)
    sys.path.insert(0, str(path))
    try:
        return importlib.import_module(module), importlib.import_module('genotypes')
    finally:
        sys.path.remove(str(path))


def _our_key(key: str, perm: List[int]) -> str:
    """Their state-dict key -> ours (``perm[k]``: our index of their op ``k``)."""
    m = re.fullmatch(r'cells\.(\d+)\._ops\.(\d+)\._ops\.(\d+)\.(.*)', key)
    if m:
        cell, edge, k, rest = m.groups()
        key = f'cells.{cell}.ops.{edge}.{perm[int(k)]}.{rest}'
    key = re.sub(r'^stem\.', 'stem0.', key)  # the CIFAR stem: our stem0 (stem1 is the identity)
    return re.sub(r'\.op\.', '.', key)       # their ReLUConvBN / SepConv / DilConv wrap an nn.Sequential 'op'


def _commit(path: Path) -> str:
    proc = subprocess.run(['git', '-C', str(path), 'rev-parse', 'HEAD'], capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else 'unknown'


def record(case: str, spec: Dict[str, Any], path: Path) -> tuple:
    model_search, genotypes = _import_original(path, spec['module'])
    net_cfg = spec['supernet']
    torch.manual_seed(0)
    theirs = model_search.Network(net_cfg['channels'], net_cfg['num_classes'], net_cfg['layers'],
                                  nn.CrossEntropyLoss(), steps=net_cfg['nodes'], multiplier=net_cfg['nodes']).double()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in theirs.named_parameters():  # non-trivial affine parameters, so a mis-mapped one shows
            if p.dim() == 1:
                p.copy_(1. + 0.3 * torch.randn(p.shape, generator=gen, dtype=p.dtype) if name.endswith('weight')
                        else 0.3 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
        for t in theirs.state_dict().values():
            if t.is_floating_point():
                t.copy_(t.float())  # representable in float32: stored as float32 without loss
    # architecture parameters spread far enough apart that the genotype does not hinge on rounding
    arch = [torch.randn(a.shape, generator=gen).double().requires_grad_() for a in theirs.arch_parameters()]
    theirs._arch_parameters = arch
    names = ['alphas_normal', 'alphas_reduce', 'betas_normal', 'betas_reduce'][:len(arch)]
    for name, a in zip(names, arch):
        setattr(theirs, name, a)
    size, batch = spec['image_size'], spec.get('batch', 4)
    x = torch.randn(batch, 3, size, size, generator=gen).double()
    y = torch.randint(0, net_cfg['num_classes'], (batch,), generator=gen)
    # the parameters only: train-mode batch norms do not read their running statistics
    weights = {k: v.detach().clone() for k, v in theirs.named_parameters()}
    theirs.train()
    logits = theirs(x)
    grads = torch.autograd.grad(F.cross_entropy(logits, y), arch)
    geno = theirs.genotype()

    ours = SearchNetwork(**net_cfg, dtype=torch.float64)
    perm = [list(ours.ops).index(op) for op in genotypes.PRIMITIVES]
    cols = [genotypes.PRIMITIVES.index(op) for op in ours.ops]  # alphas: their columns in our op order
    to_ours = lambda t: t.detach()[:, cols] if t.dim() == 2 else t.detach()  # noqa: E731
    state = {_our_key(k, perm): v for k, v in weights.items()}
    state.update({name: to_ours(a) for name, a in zip(names, arch)})
    expected = dict(ours.named_parameters())
    if set(state) != set(expected) or any(state[k].shape != expected[k].shape for k in expected):
        only_theirs, only_ours = sorted(set(state) - set(expected)), sorted(set(expected) - set(state))
        raise SystemExit(f'{case}: the state dicts do not map onto each other: only theirs {only_theirs[:5]}, '
                         f'only ours {only_ours[:5]}')
    tensors = {'input': x.float(), 'target': y, 'logits': logits.detach()}
    tensors.update({f'grad/{name}': to_ours(g) for name, g in zip(names, grads)})
    tensors.update({f'state/{k}': v.float().contiguous() for k, v in state.items()})

    def cell(pairs, concat) -> Dict[str, Any]:
        pairs = [[op, int(i)] for op, i in pairs]
        return {'nodes': [pairs[2 * j:2 * j + 2] for j in range(len(pairs) // 2)], 'concat': list(concat)}
    meta = {'supernet': net_cfg, 'image_size': size, 'batch': batch, 'dtype': 'float64', 'mode': 'train',
            'genotype': {'normal': cell(geno.normal, geno.normal_concat),
                         'reduce': cell(geno.reduce, geno.reduce_concat)},
            'source': {'code': SOURCES[spec['repo']], 'module': spec['module'], 'commit': _commit(path)}}
    # our side, for the record of this run (the test is what guards it)
    ours.load_state_dict(state, strict=False)
    ours.train()
    diff = (ours(x) - logits).abs().max().item()
    print(f'{case}: max |logits ours - original| = {diff:.3g}; original genotype {meta["genotype"]}')
    return tensors, meta


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--darts', type=Path, required=True, help='the cnn/ folder of github.com/quark0/darts')
    p.add_argument('--pcdarts', type=Path, required=True, help='a checkout of github.com/yuhuixu1993/PC-DARTS')
    p.add_argument('--output', type=Path, default=ROOT / 'tests' / 'fixtures', help='where to write (default '
                   'tests/fixtures)')
    args = p.parse_args(argv)
    paths = {'darts': args.darts.expanduser().resolve(), 'pcdarts': args.pcdarts.expanduser().resolve()}
    for key, path in paths.items():
        if not (path / 'model_search.py').is_file():
            raise SystemExit(f'--{key}: {path} has no model_search.py')
    torch.Tensor.cuda = lambda self, *a, **k: self  # the original code calls .cuda() unconditionally
    nn.Module.cuda = lambda self, *a, **k: self
    metas = {}
    for case, spec in CASES.items():
        tensors, metas[case] = record(case, spec, paths[spec['repo']])
        out = args.output / f'golden_{case}.safetensors'
        write_atomic(out, save(tensors, metadata={'format': 'pt'}))
    write_atomic(args.output / 'golden.json', json.dumps(metas, indent=1) + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
