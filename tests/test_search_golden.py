"""Our super-net against the original DARTS and PC-DARTS code: logits, architecture gradients and genotype.

``tests/fixtures/golden*`` were recorded once from the original search code (quark0/darts, yuhuixu1993/PC-DARTS)
by ``scripts/golden_fixture.py``, with the original's weights mapped into our layout. Everything runs in float64,
so agreement is to rounding: a wrong op, op order, channel split, shuffle, edge normalisation or derivation rule
fails here.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from entrannas_timm.models.genotype import CellSpec
from search.supernet import SearchNetwork

FIXTURES = Path(__file__).resolve().parent / 'fixtures'
GOLDEN = json.loads((FIXTURES / 'golden.json').read_text())
pytestmark = pytest.mark.usefixtures('one_thread')


def _cell(obj: dict) -> CellSpec:
    return CellSpec(tuple(tuple((op, i) for op, i in node) for node in obj['nodes']), tuple(obj['concat']))


@pytest.mark.parametrize('case', sorted(GOLDEN))
def test_supernet_matches_the_original_code(case):
    meta = GOLDEN[case]
    tensors = load_file(FIXTURES / f'golden_{case}.safetensors')
    net = SearchNetwork(**meta['supernet'], dtype=torch.float64)
    state = {k[len('state/'):]: v for k, v in tensors.items() if k.startswith('state/')}
    missing, unexpected = net.load_state_dict(state, strict=False)
    # every parameter comes from the original; only batch-norm statistics (unused in train mode) keep defaults
    assert not unexpected and all(k.endswith(('running_mean', 'running_var', 'num_batches_tracked')) for k in missing)
    net.train()
    x = tensors['input'].double()
    logits = net(x)
    torch.testing.assert_close(logits, tensors['logits'], rtol=1e-10, atol=1e-12)
    grads = torch.autograd.grad(F.cross_entropy(logits, tensors['target']), net.arch_parameters())
    assert [f'grad/{n}' for n in net.arch_parameter_names()] == sorted(k for k in tensors if k.startswith('grad/'))
    for name, g in zip(net.arch_parameter_names(), grads):
        torch.testing.assert_close(g, tensors[f'grad/{name}'], rtol=1e-8, atol=1e-12, msg=name)
    geno = net.genotype()
    assert geno.normal == _cell(meta['genotype']['normal'])
    assert geno.reduce == _cell(meta['genotype']['reduce'])
