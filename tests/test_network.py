"""The evaluation networks: DARTS-exact sizes, feature sharing, any in-degree, heads, drop path, inputs, speed paths."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch
import torch.nn as nn

import entrannas_timm
from entrannas_timm import Genotype, load_genotype
from entrannas_timm.models.network import CellNetwork
from entrannas_timm.models.registry import GENERIC_MODELS

ROOT = Path(__file__).resolve().parents[1]

TINY = dict(channels=8, layers=5)  # reductions at cells 1 and 3


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# Reference counts from the original DARTS code (quark0/darts cnn/model.py NetworkCIFAR(36, 10, 20, ...) and
# NetworkImageNet(48, 1000, 14, ...)), counting every parameter whose name lacks 'auxiliary' as DARTS's
# utils.count_parameters_in_MB does; the PC-DARTS genotypes are copied from yuhuixu1993/PC-DARTS genotypes.py.
DARTS_CODE_PARAMS = {
    'darts_v1_cifar10': 3169414,
    'darts_v2_cifar10': 3349342,
    'darts_v2_imagenet': 4718752,
    'pc_darts_cifar10': 3634678,
    'pc_darts_imagenet': 5342464,
}


@pytest.mark.parametrize('model_name', sorted(DARTS_CODE_PARAMS))
def test_param_count_matches_darts_code(model_name):
    with torch.device('meta'):
        model = timm.create_model(model_name)
    assert n_params(model) == DARTS_CODE_PARAMS[model_name]


@pytest.mark.parametrize('model_name, kwargs, expected', [
    # same DARTS code: NetworkImageNet(48, 1000, 14, False, PC_DARTS_cifar): a CIFAR genotype, ImageNet family
    ('darts_v2_imagenet', dict(genotype='pc_darts_cifar'), 5270560),
    # same DARTS code with auxiliary=True, all parameters (heads included)
    ('darts_v2_cifar10', dict(auxiliary=True), 3825768),
    ('darts_v2_imagenet', dict(auxiliary=True), 5979528),
    # same DARTS code: NetworkCIFAR(16, 10, 8, False, DARTS_V1), the search-sized network
    ('darts_v1_cifar10', dict(channels=16, layers=8), 232890),
])
def test_param_count_other_configs(model_name, kwargs, expected):
    with torch.device('meta'):
        model = timm.create_model(model_name, **kwargs)
    assert n_params(model) == expected


def _genotype(normal, reduce, feature_sharing=False, space='standard'):
    cell = lambda nodes: dict(nodes=nodes, concat=list(range(2, 2 + len(nodes))))
    return Genotype.from_dict(dict(schema_version=1, name='test', space=space, feature_sharing=feature_sharing,
                                   normal=cell(normal), reduce=cell(reduce)))


# variable in-degree: node 0 has one input, node 1 three, node 2 two ops on one edge (as EnTranNAS-DST derives)
DST_NORMAL = [
    [['sep_conv_3x3', 1]],
    [['sep_conv_3x3', 0], ['skip_connect', 1], ['dil_conv_3x3', 2]],
    [['sep_conv_3x3', 3], ['max_pool_3x3', 3]],
    [['avg_pool_3x3', 0], ['sep_conv_5x5', 1], ['skip_connect', 2], ['dil_conv_5x5', 4]],
]
DST_REDUCE = [
    [['max_pool_3x3', 0], ['skip_connect', 1], ['sep_conv_3x3', 1]],
    [['skip_connect', 2]],
    [['sep_conv_3x3', 0], ['sep_conv_3x3', 1], ['avg_pool_3x3', 3], ['dil_conv_3x3', 2]],
    [['max_pool_3x3', 1], ['sep_conv_5x5', 1]],
]


def _count_op_calls(model: CellNetwork, x: torch.Tensor):
    calls = []
    hooks = [op.register_forward_hook(lambda *_: calls.append(1))
             for cell in model.cells for group in cell.ops for op in group]
    model(x)
    for h in hooks:
        h.remove()
    n_ops = sum(len(group) for cell in model.cells for group in cell.ops)
    return len(calls), n_ops


def test_feature_sharing_computes_each_source_op_once():
    # the same op from the same source feeds several nodes: 2x sep_conv_3x3(c_{k-1}), 2x skip(c_{k-2}), ...
    normal = [[['sep_conv_3x3', 1], ['skip_connect', 0]], [['sep_conv_3x3', 1], ['skip_connect', 0]],
              [['sep_conv_3x3', 1], ['dil_conv_3x3', 2]], [['dil_conv_3x3', 2], ['sep_conv_3x3', 0]]]
    reduce = [[['max_pool_3x3', 0], ['max_pool_3x3', 1]], [['max_pool_3x3', 1], ['skip_connect', 2]],
              [['max_pool_3x3', 0], ['skip_connect', 2]], [['max_pool_3x3', 1], ['skip_connect', 2]]]
    x = torch.randn(2, 3, 16, 16)
    stats = {}
    for sharing in (False, True):
        torch.manual_seed(0)
        model = CellNetwork(_genotype(normal, reduce, sharing), **TINY).eval()
        with torch.no_grad():
            stats[sharing] = (*_count_op_calls(model, x), n_params(model))
        pairs = {(c, o, s) for c, cell in enumerate(model.cells) for s, group in enumerate(cell.ops)
                 for o in range(len(group))}
        assert stats[sharing][1] == len(pairs)
    connections = 8 * TINY['layers']  # 8 connections per cell
    calls_plain, ops_plain, params_plain = stats[False]
    calls_shared, ops_shared, params_shared = stats[True]
    assert calls_plain == ops_plain == connections  # one instance, one call per connection (DARTS)
    # normal cells (3): 8 connections -> 4 (source, op) pairs; reduction cells (2): 8 -> 3
    assert calls_shared == ops_shared == 3 * 4 + 2 * 3
    assert params_shared < params_plain


def test_feature_sharing_reuses_one_output_for_every_node():
    # node 0 and node 1 both read sep_conv_3x3(c_{k-1}); with sharing, they are the same tensor
    normal = [[['sep_conv_3x3', 1]], [['sep_conv_3x3', 1]]]
    model = CellNetwork(_genotype(normal, normal, True), **TINY).eval()
    cell = model.cells[0]
    assert [len(g) for g in cell.ops] == [0, 1, 0]
    assert cell.node_inputs == [[0], [0]]
    assert isinstance(cell.preprocess0, nn.Identity)  # no node reads input 0
    with torch.no_grad():
        out = cell(torch.randn(1, 1, 8, 8), torch.randn(1, cell.preprocess1[1].in_channels, 8, 8))
    c = out.shape[1] // 2
    torch.testing.assert_close(out[:, :c], out[:, c:], rtol=0, atol=0)


@pytest.mark.parametrize('model_name, size', [('darts_v2_cifar10', 16), ('darts_v2_imagenet', 64)])
def test_variable_in_degree_builds_and_trains(model_name, size):
    genotype = _genotype(DST_NORMAL, DST_REDUCE, feature_sharing=True)
    assert not genotype.is_darts_representable
    model = timm.create_model(model_name, genotype=genotype, num_classes=5, **TINY).train()
    out = model(torch.randn(2, 3, size, size))
    assert out.shape == (2, 5)
    out.sum().backward()
    assert not [n for n, p in model.named_parameters() if p.grad is None]
    # and without feature sharing
    model = timm.create_model(model_name, genotype=genotype.replace(feature_sharing=False), num_classes=5, **TINY)
    assert model.eval()(torch.randn(1, 3, size, size)).shape == (1, 5)


@pytest.mark.parametrize('model_name, size', [('darts_v2_cifar10', 32), ('darts_v2_imagenet', 224),
                                              ('darts_v2_cifar10', 28), ('darts_v2_imagenet', 64)])
def test_auxiliary_head(model_name, size):
    model = timm.create_model(model_name, auxiliary=True, num_classes=7, **TINY)
    x = torch.randn(2, 3, size, size)
    logits, aux_logits = model.train()(x)
    assert logits.shape == aux_logits.shape == (2, 7)
    (logits.sum() + 0.4 * aux_logits.sum()).backward()
    assert all(p.grad is not None for p in model.aux_head.parameters())
    out = model.eval()(x)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 7)
    model.reset_classifier(3)
    assert [t.shape for t in model.train()(x)] == [(2, 3), (2, 3)]


def test_drop_path():
    model = timm.create_model('darts_v2_cifar10', drop_path_rate=0.3, **TINY)
    assert all(cell.drop_prob == 0.3 for cell in model.cells)
    x = torch.randn(4, 3, 16, 16)
    torch.manual_seed(0)
    a, b = model.train()(x), model(x)
    assert not torch.allclose(a, b), 'train-mode drop path should make two forwards differ'
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), model(x), rtol=0, atol=0)
    model.set_drop_path(0.)
    assert all(cell.drop_prob == 0. for cell in model.cells)
    torch.testing.assert_close(model.train()(x), model(x), rtol=0, atol=0)
    model.set_drop_path(0.1)
    assert all(cell.drop_prob == 0.1 for cell in model.cells)


@pytest.mark.parametrize('rate', [2, 1.0, -0.1, float('nan'), float('inf'), True, '0.2'])
def test_bad_drop_rates_rejected_at_build(rate):
    for arg in ('drop_path_rate', 'drop_rate'):
        with pytest.raises(ValueError, match=rf'^{arg}: expected a probability 0 <= p < 1, got '):
            timm.create_model('darts_v2_cifar10', **{arg: rate}, **TINY)
    model = timm.create_model('darts_v2_cifar10', drop_path_rate=0.2, **TINY)
    with pytest.raises(ValueError, match=r'set_drop_path\(prob\): expected a probability'):
        model.set_drop_path(rate)
    assert all(cell.drop_prob == 0.2 for cell in model.cells), 'a rejected rate changes nothing'


def test_fashion_mnist_shape():
    model = timm.create_model('darts_v2_cifar10', in_chans=1, num_classes=10, auxiliary=True, **TINY)
    x = torch.randn(3, 1, 28, 28)
    logits, aux = model.train()(x)
    assert logits.shape == aux.shape == (3, 10)
    assert model.stem0[0].in_channels == 1
    assert model.eval()(x).shape == (3, 10)


@pytest.mark.parametrize('model_name, sizes', [
    ('darts_v2_cifar10', [(8, 8), (9, 13), (33, 33), (57, 41), (64, 64)]),
    ('darts_v2_imagenet', [(32, 32), (45, 37), (97, 97), (256, 192)]),
])
def test_input_sizes(model_name, sizes):
    model = timm.create_model(model_name, **TINY).eval()
    assert model.pretrained_cfg['min_input_size'][1:] == sizes[0]
    for h, w in sizes:
        with torch.no_grad():
            final, feats = model.forward_intermediates(torch.randn(1, 3, h, w))
            assert model.forward_head(final).shape == (1, model.num_classes)
        for f, info in zip(feats, model.feature_info):
            assert f.shape[1] == info['num_chs']
            assert f.shape[-2:] == (-(-h // info['reduction']), -(-w // info['reduction']))


@pytest.mark.parametrize('model_name', ['darts_v2_cifar10', 'darts_v2_imagenet'])
def test_channel_and_depth_overrides(model_name):
    model = timm.create_model(model_name, channels=12, layers=7)
    assert len(model.cells) == 7
    reductions = [i for i, c in enumerate(model.cells) if c.reduction]
    assert reductions == [7 // 3, 2 * 7 // 3]
    assert model.num_features == 4 * 12 * 4  # 4 concatenated nodes x channels doubled twice
    assert model.cells[0].preprocess1[1].out_channels == 12


def test_channels_last_bf16_autocast_cpu():
    model = timm.create_model('darts_v2_cifar10', **TINY).train().to(memory_format=torch.channels_last)
    x = torch.randn(4, 3, 16, 16).to(memory_format=torch.channels_last)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = model(x)
    assert out.dtype == torch.bfloat16 and torch.isfinite(out.float()).all()
    out.float().logsumexp(1).mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def _compiler_unusable() -> str:
    if not hasattr(torch, 'compile'):
        return 'torch.compile is not available in this torch build'
    if not (shutil.which('cc') or shutil.which('gcc') or shutil.which('g++')):
        return 'torch.compile (inductor) needs a C++ compiler on CPU and none is on PATH'
    return ''


_COMPILE_CHECK = """
import copy, timm, torch, entrannas_timm
torch.manual_seed(0)
eager = timm.create_model('darts_v2_cifar10', channels=8, layers=3, num_classes=5).eval()
compiled_model = copy.deepcopy(eager)
compiled = torch.compile(compiled_model)
x = torch.randn(2, 3, 16, 16)
out_e, out_c = eager(x), compiled(x)
torch.testing.assert_close(out_c, out_e, rtol=1e-4, atol=1e-5)
out_e.square().sum().backward()
out_c.square().sum().backward()
for (n, p), q in zip(eager.named_parameters(), compiled_model.parameters()):
    torch.testing.assert_close(q.grad, p.grad, rtol=1e-3, atol=1e-5, msg=n)
print('compiled matches eager')
"""


@pytest.mark.slow
@pytest.mark.skipif(bool(_compiler_unusable()), reason=_compiler_unusable() or 'compiler usable')
def test_torch_compile_matches_eager():
    # In its own interpreter: loading inductor re-registers some torch.ops packets, which leaves stale ids in
    # TorchScript's builtin table; a later object that reuses such an id makes torch.jit.script fail
    # ("builtin cannot be used as a value") in unrelated tests of the same process.
    proc = subprocess.run([sys.executable, '-c', _COMPILE_CHECK], capture_output=True, text=True, timeout=900,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'compiled matches eager' in proc.stdout


# ---- genotype= in every form, for every entrypoint ---------------------------------------------------------
def _same_arch(a: Genotype, b: Genotype) -> bool:
    return (a.normal, a.reduce, a.space, a.feature_sharing) == (b.normal, b.reduce, b.space, b.feature_sharing)


# the original zoo's entrypoints, and one whose genotype carries its own network settings (GDAS: 50 channels): the
# other entrypoints share _create_network with them
@pytest.mark.parametrize('model_name', ['cellnet_cifar', 'cellnet_imagenet', 'darts_v1_cifar10', 'darts_v2_cifar10',
                                        'darts_v2_imagenet', 'pc_darts_cifar10', 'pc_darts_imagenet', 'gdas_imagenet'])
def test_genotype_argument_forms(model_name, tmp_path):
    default_name = entrannas_timm.MODEL_GENOTYPES[model_name][0]
    # another bundled genotype than the entrypoint's own, so the argument visibly takes effect
    other = 'pc_darts_image' if default_name != 'pc_darts_image' else 'darts_v1'
    expected = load_genotype(other)
    path = tmp_path / 'g.json'
    path.write_text(json.dumps(expected.to_dict()))
    forms = {'name': other, 'NAME': other.upper(), 'path': str(path), 'pathlike': path,
             'dict': expected.to_dict(), 'Genotype': expected}
    with torch.device('meta'):
        assert _same_arch(timm.create_model(model_name, **TINY).genotype, load_genotype(default_name))
        for form, value in forms.items():
            model = timm.create_model(model_name, genotype=value, **TINY)
            assert _same_arch(model.genotype, expected), form


def test_genotype_network_settings_apply_and_keywords_win():
    with torch.device('meta'):
        assert timm.create_model('gdas_imagenet').channels == 50  # GDAS's ImageNet width
        assert timm.create_model('gdas_cifar10').channels == 36
        assert timm.create_model('gdas_imagenet', channels=48).channels == 48
        assert timm.create_model('cellnet_imagenet', genotype='cdarts_imagenet').stem_multiplier == 3
        assert timm.create_model('darts_v2_imagenet', genotype='gdas_v1').channels == 50


def test_bad_genotype_argument_is_a_clear_error():
    with pytest.raises(entrannas_timm.GenotypeError, match='no bundled genotype named'):
        timm.create_model('darts_v2_cifar10', genotype='not_a_genotype')
    with pytest.raises(entrannas_timm.GenotypeError, match='genotype'):
        timm.create_model('darts_v2_cifar10', genotype=3)


def test_unknown_kwarg_raises_type_error():
    with pytest.raises(TypeError):
        timm.create_model('darts_v2_cifar10', not_an_arg=1)


def test_models_are_registered_on_import():
    ours = [m for m in timm.list_models()
            if timm.models.model_entrypoint(m).__module__ == 'entrannas_timm.models.registry']
    assert sorted(ours) == sorted(entrannas_timm.MODEL_GENOTYPES)
    assert timm.list_models('cellnet_*') == ['cellnet_cifar', 'cellnet_imagenet']
    assert timm.list_models('darts*') == ['darts_minus_cifar10', 'darts_minus_imagenet', 'darts_v1_cifar10',
                                          'darts_v2_cifar10', 'darts_v2_imagenet', 'darts_v2_mini']
    assert timm.list_models('pc_darts*', include_tags=True) == ['pc_darts_cifar10.c10', 'pc_darts_imagenet.in1k',
                                                                 'pc_darts_mini.e3_fmnist']
    assert timm.list_models('gdas*', include_tags=True) == ['gdas_cifar10.c10', 'gdas_imagenet.gdas_in1k',
                                                             'gdas_imagenet.in1k']


# ---- the DARTS-family zoo: every bundled cell, checked against its authors' own networks -----------------------
ZOO = [name for name in entrannas_timm.list_genotypes()
       if 'reference_params' in load_genotype(name).provenance]


def test_every_bundled_cell_has_a_reference():
    """Published cells carry their authors' parameter counts; our own searched cells carry their search record
    (tests/test_zoo.py traces those)."""
    searched = [name for name in entrannas_timm.list_genotypes() if 'record' in load_genotype(name).provenance]
    assert len(ZOO) >= 40 and sorted(ZOO + searched) == entrannas_timm.list_genotypes()


@pytest.mark.parametrize('family', ['cifar', 'imagenet'])
@pytest.mark.parametrize('name', ZOO)
def test_param_count_matches_the_authors_network(name, family):
    """Our family network has exactly the parameters of the authors' evaluation network for the same cell
    (counted once with their code by scripts/import_zoo.py, auxiliary head excluded)."""
    reference = load_genotype(name).provenance['reference_params'][family]
    with torch.device('meta'):
        model = timm.create_model(f'cellnet_{family}', genotype=name)
    assert n_params(model) == reference['params'], reference['network']


def test_registered_cells_carry_their_paper():
    for name, (genotype, _) in entrannas_timm.MODEL_GENOTYPES.items():
        if name in GENERIC_MODELS:
            continue
        cfg = timm.models.get_pretrained_cfg(name)
        provenance = load_genotype(genotype).provenance
        assert (cfg.paper_name, cfg.paper_ids) == (provenance['paper'], provenance['paper_id']), name


def test_unpublished_weights_fail_fast_for_every_tag():
    for name in entrannas_timm.MODEL_GENOTYPES:
        if name in GENERIC_MODELS:
            continue
        with pytest.raises(entrannas_timm.WeightsNotPublishedError, match='no pretrained weights'):
            timm.create_model(name, pretrained=True)


def test_readme_zoo_table_lists_every_cell_with_its_counts():
    readme = (ROOT / 'README.md').read_text()
    table = readme.split('<!-- zoo table -->', 2)[1]
    for name in ZOO:
        ref = load_genotype(name).provenance['reference_params']
        row = next((line for line in table.splitlines() if line.startswith(f'| `{name}`')), None)
        assert row is not None, f'{name} is missing from the README zoo table (python scripts/render_docs.py --zoo)'
        assert f'{ref["cifar"]["params"]:,}' in row and f'{ref["imagenet"]["params"]:,}' in row, name
        assert f'docs/cells/{name}.svg' in row


# ---- cell semantics beyond DARTS: absent nodes, none edges, node drop path, BN after parameter-free ops ---------
def test_absent_nodes_are_not_built_and_not_concatenated():
    g = load_genotype('fairdarts_a')  # normal node 1 is absent, concat [2, 4, 5]
    model = timm.create_model('cellnet_cifar', genotype=g, **TINY).eval()
    cell = model.cells[0]
    assert len(cell.ops) == 4 and cell.concat == [2, 3, 4] and cell.multiplier == 3
    x = torch.randn(1, 3, 16, 16)
    assert model(x).shape == (1, 10)


def test_node_drop_path_drops_whole_nodes():
    g = load_genotype('fairdarts_b')
    assert g.drop_path == 'node'
    model = timm.create_model('cellnet_cifar', genotype=g, drop_path_rate=0.5, **TINY).train()
    cell = model.cells[0]
    assert cell.drop_node and not any(any(row) for row in cell.node_drop)
    torch.manual_seed(0)
    s0 = torch.randn(64, cell.preprocess0[1].in_channels, 4, 4)
    s1 = torch.randn(64, cell.preprocess1[1].in_channels, 4, 4)
    out = cell(s0, s1).detach()
    c = out.shape[1] // cell.multiplier
    # each node's block of channels is all zero for about half the samples: the whole sum was dropped
    dropped = [(out[:, k * c:(k + 1) * c].abs().flatten(1).sum(1) == 0).float().mean().item()
               for k in range(cell.multiplier)]
    assert all(0.2 < d < 0.8 for d in dropped), dropped


def test_none_edges_add_zeros():
    g = load_genotype('snas_aggressive')  # reduction nodes 2 and 3 have only none inputs
    model = timm.create_model('cellnet_cifar', genotype=g, **TINY).eval()
    reduce = model.cells[model.reduction_indices[0]]
    outs = {}
    reduce.register_forward_hook(lambda m, i, o: outs.setdefault('y', o))
    model(torch.randn(1, 3, 16, 16))
    c = outs['y'].shape[1] // 4
    assert outs['y'][:, 2 * c:].abs().sum() == 0 and outs['y'][:, :2 * c].abs().sum() > 0


def test_bn_after_follows_pools_and_identities():
    g = load_genotype('ista_nas_one_stage')
    assert g.bn_after == ('max_pool_3x3', 'avg_pool_3x3', 'skip_connect')
    plain = timm.create_model('cellnet_cifar', genotype=g.replace(bn_after=()), **TINY)
    model = timm.create_model('cellnet_cifar', genotype=g, **TINY)
    wrapped = [op for cell in model.cells for group in cell.ops for op in group if isinstance(op, nn.Sequential)
               and isinstance(op[-1], nn.BatchNorm2d) and isinstance(op[0], (nn.MaxPool2d, nn.AvgPool2d, nn.Identity))]
    assert wrapped and n_params(model) == n_params(plain) + sum(2 * op[-1].num_features for op in wrapped)
    # an identity with a BN is dropped like any other op (ISTA-NAS's cell checks isinstance(op, Identity))
    assert all(all(row) for cell in model.cells for row in cell.node_drop)



# cells that leave an input unread, as a learned topology may derive (the bundled EnTranNAS-DST reduction cells
# never read input 1)
READS_BOTH = [[['sep_conv_3x3', 0]], [['skip_connect', 1], ['dil_conv_3x3', 2]]]
READS_ONLY_0 = [[['sep_conv_3x3', 0]], [['skip_connect', 2]], [['max_pool_3x3', 0], ['dil_conv_3x3', 3]]]
READS_ONLY_1 = [[['avg_pool_3x3', 1]], [['sep_conv_3x3', 2]], [['skip_connect', 3]]]


@pytest.mark.parametrize('normal, reduce', [(READS_BOTH, READS_ONLY_0), (READS_ONLY_1, READS_BOTH)])
@pytest.mark.parametrize('model_name, size', [('darts_v2_cifar10', 16), ('darts_v2_imagenet', 64)])
def test_an_input_no_node_reads_has_no_preprocessing_and_every_weight_trains(model_name, size, normal, reduce):
    model = timm.create_model(model_name, genotype=_genotype(normal, reduce, True), num_classes=5, **TINY).train()
    for cell in model.cells:
        spec = reduce if cell.reduction else normal
        unread = [i for i in (0, 1) if not any(inp == i for node in spec for _, inp in node)]
        assert cell.unused_inputs == unread
        for i in (0, 1):
            assert isinstance(cell.get_submodule(f'preprocess{i}'), nn.Identity) == (i in unread)
    model(torch.randn(2, 3, size, size)).sum().backward()
    assert not [n for n, p in model.named_parameters() if p.grad is None]


@pytest.mark.parametrize('normal', [READS_ONLY_0, READS_ONLY_1, READS_BOTH])
@pytest.mark.parametrize('model_name', ['darts_v2_cifar10', 'darts_v2_imagenet'])
def test_bare_weights_tell_their_size_whichever_input_the_first_cell_reads(model_name, normal, tmp_path):
    from entrannas_timm.train.validate import _from_state_dict
    g = _genotype(normal, READS_BOTH, True)
    model = timm.create_model(model_name, genotype=g, num_classes=5, channels=12, layers=5)
    rebuilt = _from_state_dict(model.state_dict(), g, 'w.safetensors')
    assert rebuilt.state_dict().keys() == model.state_dict().keys() and n_params(rebuilt) == n_params(model)
