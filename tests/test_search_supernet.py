"""The search super-net and derivation rules (issue 3's correctness list): tiny nets, 16x16 synthetic data."""
from __future__ import annotations

import json
import math
from collections import Counter

import pytest
import torch
import torch.nn.functional as F

from entrannas_timm import CellNetwork, Genotype
from entrannas_timm.models.network import Cell
from entrannas_timm.models.ops import SPACES, STANDARD_OPS
from search.derive import cell_edges, derive_top2, edge_normalisation, node_slices
from search.methods import ARCH_REGULARIZERS
from search.supernet import SearchNetwork, channel_shuffle

NODES = 4
E = len(cell_edges(NODES))  # 14


pytestmark = pytest.mark.usefixtures('one_thread')


def make(method: str, seed: int = 0, **kw) -> SearchNetwork:
    torch.manual_seed(seed)
    cfg = dict(num_classes=3, channels=8, layers=4)
    cfg.update(kw)
    return SearchNetwork(method=method, **cfg)


def batch(n: int = 4, size: int = 16, chans: int = 3, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, chans, size, size, generator=torch.Generator().manual_seed(seed))


def count_op_calls(net: SearchNetwork) -> tuple[Counter, list]:
    """Forward hooks on every candidate op: Counter of (cell, group, op index) calls.

    Cells run an op's layers after a shared ReLU, so a sequential op is counted at its last layer.
    """
    calls: Counter = Counter()
    handles = []
    for c, cell in enumerate(net.cells):
        for g, group in enumerate(cell.ops):
            for k, op in enumerate(group):
                layer = op[-1] if isinstance(op, torch.nn.Sequential) else op
                handles.append(layer.register_forward_hook(
                    lambda m, i, o, key=(c, g, k): calls.__setitem__(key, calls[key] + 1)))
    return calls, handles


def cell_calls(calls: Counter, c: int) -> set:
    return {(g, k) for (cc, g, k), n in calls.items() if cc == c and n}


def derived_keys(net: SearchNetwork, spec, sharing: bool) -> set:
    """The (group, op index) pairs a cell must run for a derived cell spec."""
    keys = set()
    for j, node in enumerate(spec.nodes):
        for op, i in node:
            e = cell_edges(NODES).index((i, j + 2))
            keys.add((i if sharing else e, net.ops.index(op)))
    return keys


def set_top2_alphas(net: SearchNetwork, kind: str, choice: dict) -> None:
    """``choice[j] = [(input, op, strength), ...]``: those edges dominate node j, all else ~0."""
    with torch.no_grad():
        a = getattr(net, f'alphas_{kind}')
        a.zero_()
        for j, conns in choice.items():
            for i, op, strength in conns:
                a[cell_edges(NODES).index((i, j + 2)), net.ops.index(op)] = strength
    net.rederive()


# ---- DARTS equivalence ----------------------------------------------------------------------------
def test_entrannas_all_engine_without_sharing_equals_darts():
    darts = make('darts', layers=3)
    ent = make('entrannas', seed=5, layers=3, engine_cells='all', feature_sharing=False)
    sd_d, sd_e = darts.state_dict(), ent.state_dict()
    assert list(sd_d) == list(sd_e)
    assert all(sd_d[k].shape == sd_e[k].shape for k in sd_d)
    ent.load_state_dict(sd_d)
    x, y = batch(), torch.tensor([0, 1, 2, 0])
    out_d, out_e = darts(x), ent(x)
    assert torch.equal(out_d, out_e)
    F.cross_entropy(out_d, y).backward()
    F.cross_entropy(out_e, y).backward()
    for a, b in zip(darts.arch_parameters(), ent.arch_parameters()):
        assert torch.equal(a.grad, b.grad)
    assert darts.genotype() == ent.genotype()


def test_darts_zero_op_is_never_computed_and_every_other_op_is():
    net = make('darts', layers=3)
    calls, _ = count_op_calls(net)
    net(batch())
    none = net.ops.index('none')
    for c in range(3):
        assert cell_calls(calls, c) == {(e, k) for e in range(E) for k in range(len(net.ops)) if k != none}


# ---- engine and transit cells ---------------------------------------------------------------------
@pytest.mark.parametrize('sharing', [False, True])
def test_transit_cells_compute_only_the_derived_set(sharing):
    net = make('entrannas', feature_sharing=sharing)
    assert net.engine_cell_indices == [2, 3]  # 'last': second reduction cell and last normal cell
    calls, _ = count_op_calls(net)
    net(batch())
    for c, cell in enumerate(net.cells):
        got = cell_calls(calls, c)
        assert all(calls[(c, g, k)] == 1 for g, k in got)  # each op at most once per forward
        if cell.engine:
            groups = NODES + 1 if sharing else E
            assert len(got) == groups * (len(net.ops) - 1)
        else:
            kind = 'reduce' if cell.reduction else 'normal'
            assert got == derived_keys(net, net.derived[kind], sharing)


def test_derived_architecture_follows_alpha_and_transit_cells_run_it():
    net = make('entrannas', feature_sharing=False)
    before = net.genotype()
    choice = {0: [(1, 'sep_conv_5x5', 6.), (0, 'skip_connect', 5.)],
              1: [(2, 'dil_conv_3x3', 6.), (0, 'max_pool_3x3', 5.)],
              2: [(3, 'avg_pool_3x3', 6.), (1, 'sep_conv_3x3', 5.)],
              3: [(4, 'dil_conv_5x5', 6.), (2, 'skip_connect', 5.)]}
    set_top2_alphas(net, 'normal', choice)
    geno = net.genotype()
    assert geno != before
    assert [list(n) for n in geno.normal.nodes] == [[(op, i) for i, op, _ in choice[j]] for j in range(NODES)]
    assert net.derived['normal'] == geno.normal
    calls, _ = count_op_calls(net)
    net(batch())
    assert cell_calls(calls, 0) == derived_keys(net, geno.normal, sharing=False)


def test_transit_cells_receive_no_architecture_gradient():
    net = make('entrannas')  # engine cells 2, 3: transit cells 0, 1 run first
    with torch.no_grad():
        for a in (net.alphas_normal, net.alphas_reduce):
            a.normal_()  # a clear ranking, so a tiny step below keeps the derived set
    net.rederive()
    outs = {}
    net.cells[1].register_forward_hook(lambda m, i, o: outs.__setitem__('transit', o))
    net.cells[2].register_forward_hook(lambda m, i, o: outs.__setitem__('engine', o))
    net.train()
    x = batch()
    net(x)
    grads = torch.autograd.grad(outs['transit'].sum(), net.arch_parameters(), allow_unused=True,
                                retain_graph=True)
    assert all(g is None for g in grads)
    assert torch.autograd.grad(outs['engine'].sum(), net.alphas_reduce, allow_unused=True)[0] is not None
    # alphas move but the derived set does not: the transit output is unchanged, the engine output is not
    transit0, engine0 = outs['transit'].detach(), outs['engine'].detach()
    with torch.no_grad():
        for a in (net.alphas_normal, net.alphas_reduce):
            a.add_(1e-4 * torch.randn_like(a))
    derived = dict(net.derived)
    net.rederive()
    assert net.derived == derived
    net(x)
    assert torch.equal(outs['transit'], transit0) and not torch.equal(outs['engine'], engine0)


def test_engine_cell_placements():
    assert make('entrannas', engine_cells='first').engine_cell_indices == [0, 1]
    assert make('entrannas', engine_cells='last').engine_cell_indices == [2, 3]
    assert make('entrannas', engine_cells='all').engine_cell_indices == [0, 1, 2, 3]
    assert make('entrannas', engine_cells=[3, 1]).engine_cell_indices == [1, 3]
    assert make('entrannas', engine_cells='0, 2').engine_cell_indices == [0, 2]
    assert make('entrannas', layers=8).engine_cell_indices == [5, 7]
    assert make('entrannas', layers=8, engine_cells='first').engine_cell_indices == [0, 2]
    assert make('darts').engine_cell_indices == [0, 1, 2, 3]


# ---- feature sharing ------------------------------------------------------------------------------
def test_feature_sharing_one_op_per_source_and_fewer_evaluations():
    shared = make('entrannas', layers=3, engine_cells='all', feature_sharing=True)
    plain = make('entrannas', layers=3, engine_cells='all', feature_sharing=False)
    K = len(shared.ops)
    for cs, cp in zip(shared.cells, plain.cells):
        assert len(cs.ops) == NODES + 1 and all(len(g) == K for g in cs.ops)
        assert len(cp.ops) == E and all(len(g) == K for g in cp.ops)
    n_params = lambda net: sum(p.numel() for p in net.cells.parameters())  # noqa: E731
    assert n_params(shared) < n_params(plain) * (NODES + 2) / E
    counts = []
    for net in (shared, plain):
        calls, _ = count_op_calls(net)
        net(batch())
        counts.append(sum(calls.values()))
    cells = len(shared.cells)
    assert counts == [cells * (NODES + 1) * (K - 1), cells * E * (K - 1)]


def test_feature_sharing_computes_what_per_edge_copies_compute():
    """Shared ops == an unshared net whose every edge holds a copy of its source's op."""
    shared = make('entrannas', engine_cells='first', feature_sharing=True)
    plain = make('entrannas', engine_cells='first', feature_sharing=False)
    sd = shared.state_dict()
    new = {}
    for key in plain.state_dict():
        parts = key.split('.')
        if len(parts) > 3 and parts[0] == 'cells' and parts[2] == 'ops':
            src = cell_edges(NODES)[int(parts[3])][0]
            key_shared = '.'.join(parts[:3] + [str(src)] + parts[4:])
            new[key] = sd[key_shared]
        else:
            new[key] = sd[key]
    plain.load_state_dict(new)
    x = batch()
    torch.testing.assert_close(shared(x), plain(x), rtol=1e-5, atol=1e-6)


def test_feature_sharing_transit_cell_evaluates_a_shared_op_once():
    net = make('entrannas', feature_sharing=True)
    # nodes 0 and 1 both read sep_conv_3x3 of input 1; node 2 and 3 both read skip_connect of input 0
    choice = {0: [(1, 'sep_conv_3x3', 6.), (0, 'skip_connect', 5.)],
              1: [(1, 'sep_conv_3x3', 6.), (2, 'max_pool_3x3', 5.)],
              2: [(0, 'skip_connect', 6.), (3, 'avg_pool_3x3', 5.)],
              3: [(0, 'skip_connect', 6.), (4, 'dil_conv_3x3', 5.)]}
    set_top2_alphas(net, 'normal', choice)
    calls, _ = count_op_calls(net)
    net(batch())
    assert len(cell_calls(calls, 0)) == 5  # 8 connections, 5 distinct (source, op)
    assert sum(n for (c, _, _), n in calls.items() if c == 0) == 5


# ---- EnTranNAS-DST --------------------------------------------------------------------------------
def test_dst_space_has_no_zero_op():
    for space in SPACES:
        net = make('entrannas-dst', layers=3, space=space)
        assert 'none' not in net.ops and len(net.ops) == len(SPACES[space]) - 1
        assert net.alphas_normal.shape == (E, len(net.ops))
        assert net.genotype().space == space


def test_dst_nothing_is_cut_at_initialisation():
    net = make('entrannas-dst')
    K = len(net.ops)
    for kind in ('normal', 'reduce'):
        q, _ = net.method.sparsified(net, kind)
        assert bool((q > 0).all())
        assert torch.allclose(net.thresholds(kind), torch.full((NODES,), 0.3))
    geno = net.genotype()
    assert [len(n) for n in geno.normal.nodes] == [(j + 2) * K for j in range(NODES)]


def test_dst_strongest_candidate_never_cut_and_q_hat_normalised():
    net = make('entrannas-dst')
    with torch.no_grad():
        net.alphas_normal.normal_(0, 3)
        net.threshold_logits_normal.fill_(math.log(0.99 / 0.01))
    p = net.op_weights('normal')
    q, q_hat = net.method.sparsified(net, 'normal')
    assert bool((q == 0).any())  # something is cut
    for s in node_slices(NODES):
        flat = p[s].flatten().argmax()
        assert q[s].flatten()[flat] > 0
    kept = q.sum(1) > 0
    torch.testing.assert_close(q_hat[kept].sum(1), torch.ones(int(kept.sum())))
    assert bool((q_hat[~kept] == 0).all()) and bool(((q == 0) == (q_hat == 0)).all())


def dst_net_with_cuts() -> SearchNetwork:
    net = make('entrannas-dst', engine_cells='all', feature_sharing=False, layers=3)
    with torch.no_grad():
        for kind in ('normal', 'reduce'):
            getattr(net, f'alphas_{kind}').normal_(0, 2, generator=torch.Generator().manual_seed(3))
            getattr(net, f'threshold_logits_{kind}').fill_(0.)  # t = 0.5
    net.rederive()
    return net


def test_dst_cut_connections_not_computed_and_derived_equals_engine_graph():
    net = dst_net_with_cuts()
    calls, _ = count_op_calls(net)
    net(batch())
    geno = net.genotype()
    assert any(len(n) < (j + 2) * len(net.ops) for j, n in enumerate(geno.normal.nodes))
    for c, cell in enumerate(net.cells):
        spec = geno.reduce if cell.reduction else geno.normal
        assert cell_calls(calls, c) == derived_keys(net, spec, sharing=False)
    assert net.derived['normal'] == geno.normal and net.derived['reduce'] == geno.reduce


def test_dst_cut_connections_get_exactly_zero_gradient():
    net = dst_net_with_cuts()
    q, _ = net.method.sparsified(net, 'normal')
    x, y = batch(), torch.tensor([0, 1, 2, 0])
    F.cross_entropy(net(x), y).backward()
    cell = net.cells[0]
    param_ops = {k for k, name in enumerate(net.ops) if next(cell.ops[0][k].parameters(), None) is not None}
    cut = [(e, k) for e in range(E) for k in param_ops if q[e, k] == 0]
    kept = [(e, k) for e in range(E) for k in param_ops if q[e, k] > 0]
    assert cut and kept
    for e, k in cut:
        assert all(p.grad is None or not p.grad.any() for p in cell.ops[e][k].parameters())
    for e, k in kept:
        assert any(p.grad is not None and p.grad.any() for p in cell.ops[e][k].parameters())
    # a cut op's weights do not influence the loss or the architecture gradient
    grads0 = [p.grad.clone() for p in net.arch_parameters()]
    out0 = net(x)
    with torch.no_grad():
        for e, k in cut:
            for p in cell.ops[e][k].parameters():
                p.add_(torch.randn_like(p))
    net.zero_grad()
    out1 = net(x)
    F.cross_entropy(out1, y).backward()
    assert torch.equal(out0, out1)
    for g0, p in zip(grads0, net.arch_parameters()):
        torch.testing.assert_close(p.grad, g0, rtol=0, atol=0)


def test_dst_nodes_with_one_and_many_inputs():
    net = make('entrannas-dst')
    K = len(net.ops)
    with torch.no_grad():
        net.alphas_normal.zero_()
        net.alphas_normal[cell_edges(NODES).index((1, 2)), net.ops.index('sep_conv_3x3')] = 8.
        net.threshold_logits_normal.fill_(math.log(0.9 / 0.1))
    net.rederive()
    geno = net.genotype()
    assert geno.normal.nodes[0] == (('sep_conv_3x3', 1),)  # 1 input
    assert len({i for _, i in geno.normal.nodes[1]}) == 3 and len(geno.normal.nodes[1]) == 3 * K
    assert len({i for _, i in geno.normal.nodes[3]}) == 5
    snap = net.arch_snapshot()
    assert snap['active_connections']['normal'] == [1, 3 * K, 4 * K, 5 * K]
    CellNetwork(geno, channels=8, layers=3, num_classes=3)(batch())


def test_dst_regulariser_pushes_thresholds_up():
    net = make('entrannas-dst', layers=3)
    reg = net.arch_regularizer()  # lam = 0.1 by default
    assert reg.item() == pytest.approx(0.1 * 0.7, rel=1e-5)  # t = 0.3 everywhere at init
    reg.backward()
    assert bool((net.threshold_logits_normal.grad < 0).all())  # descent raises thresholds
    assert set(ARCH_REGULARIZERS) >= {'threshold_gap'}
    assert make('entrannas', layers=3).arch_regularizer().item() == 0.
    assert make('entrannas-dst', layers=3, lam=0.5).arch_regularizer().item() == pytest.approx(0.5 * 0.7, rel=1e-5)


# ---- PC-DARTS -------------------------------------------------------------------------------------
def test_channel_shuffle_interleaves_groups():
    x = torch.arange(8.).reshape(1, 8, 1, 1)
    assert channel_shuffle(x, 4).flatten().tolist() == [0., 2., 4., 6., 1., 3., 5., 7.]


def test_pc_darts_partial_channels_and_edge_normalisation():
    net = make('pc-darts', layers=3, channels=8, pc_k=4)
    assert [p.shape for p in net.arch_parameters()] == [(E, 8), (E, 8), (E,), (E,)]
    shapes = []
    sep = net.ops.index('sep_conv_3x3')
    # the first conv after the (shared) ReLU sees the op's input shape and applies its stride
    net.cells[0].ops[0][sep][1].register_forward_hook(lambda m, i, o: shapes.append((i[0].shape, o.shape)))
    net.cells[1].ops[0][sep][1].register_forward_hook(lambda m, i, o: shapes.append((i[0].shape, o.shape)))
    assert net(batch()).shape == (4, 3)
    assert shapes == [((4, 2, 16, 16), (4, 2, 16, 16)), ((4, 4, 16, 16), (4, 4, 8, 8))]  # C/K channels
    for kind in ('normal', 'reduce'):
        w = net.method.edge_weights(net, kind)
        for s in node_slices(NODES):
            torch.testing.assert_close(w[s].sum(), torch.tensor(1.))


def test_pc_darts_cell_matches_reference_formula():
    """Node j = sum_i beta_ij * shuffle(cat(sum_k p_k o_k(x_i[:C/K]), x_i[C/K:] (max-pooled if strided)))."""
    net = make('pc-darts', layers=3, channels=8, pc_k=4)
    with torch.no_grad():
        for p in net.arch_parameters():
            p.normal_()
    for c in (0, 1):
        cell = net.cells[c]
        kind = 'reduce' if cell.reduction else 'normal'
        C_prev = 24 if c == 0 else 32
        s0, s1 = torch.randn(2, 24, 16, 16), torch.randn(2, C_prev, 16, 16)
        p, beta = net.op_weights(kind), net.method.edge_weights(net, kind)
        states = [cell.preprocess0(s0), cell.preprocess1(s1)]
        e = 0
        for j in range(NODES):
            node = 0
            for i in range(j + 2):
                x = states[i]
                q = x.shape[1] // 4
                mixed = sum(p[e, k] * op(x[:, :q]) for k, op in enumerate(cell.ops[e]) if net.ops[k] != 'none')
                rest = x[:, q:]
                if cell.reduction and i < 2:
                    rest = F.max_pool2d(rest, 2, 2)
                y = torch.cat([mixed, rest], 1)
                y = y.view(2, 4, y.shape[1] // 4, *y.shape[2:]).transpose(1, 2).reshape(y.shape)
                node = node + beta[e] * y
                e += 1
            states.append(node)
        ref = torch.cat(states[2:], 1)
        w = [r.unbind(0) for r in p.unbind(0)]
        got = cell.forward_partial(s0, s1, w, beta.unbind(0), net.active_ops)
        torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)


def test_pc_darts_derivation_uses_edge_weights():
    net = make('pc-darts', layers=3)
    node1 = node_slices(NODES)[1]  # node 1 reads inputs 0, 1, 2
    sep = net.ops.index('sep_conv_3x3')
    with torch.no_grad():
        net.alphas_normal.zero_()
        net.alphas_normal[node1.start + 0, sep] = 3.  # input 0: strongest op weight ...
        net.alphas_normal[node1.start + 1, sep] = 2.
        net.alphas_normal[node1.start + 2, sep] = 2.
        net.betas_normal.zero_()
        net.betas_normal[node1.start + 0] = -4.  # ... but a tiny edge weight
    geno = net.genotype()
    assert {i for _, i in geno.normal.nodes[1]} == {1, 2}
    # the plain DARTS rule (no edge weights) would keep input 0
    plain = derive_top2(net.op_weights('normal').detach(), net.ops, NODES)
    assert 0 in {i for _, i in plain.nodes[1]}
    snap = net.arch_snapshot()
    expected = net.op_weights('normal') * edge_normalisation(net.betas_normal, NODES).unsqueeze(1)
    torch.testing.assert_close(torch.tensor(snap['weights']['normal']), expected.detach())


# ---- genotypes, snapshots, state --------------------------------------------------------------------
@pytest.mark.parametrize('method', ['darts', 'pc-darts', 'entrannas', 'entrannas-dst'])
@pytest.mark.parametrize('stem', ['cifar', 'imagenet'])
def test_genotype_builds_in_both_families(method, stem):
    size = 16 if stem == 'cifar' else 32
    net = make(method, layers=3, stem=stem, in_chans=1)
    x = batch(2, size, chans=1)
    assert net(x).shape == (2, 3)
    geno = net.genotype()
    assert geno.feature_sharing == method.startswith('entrannas')
    assert geno.space == 'standard' and 'none' not in geno.ops_used()
    if method != 'entrannas-dst':
        assert all(len(n) == 2 for n in geno.normal.nodes + geno.reduce.nodes)
    assert Genotype.from_dict(json.loads(geno.to_json())) == geno
    for family in ('cifar', 'imagenet'):
        model = CellNetwork(geno, stem_type=family, channels=8, layers=3, num_classes=3, in_chans=1).eval()
        assert model(batch(1, 32, chans=1)).shape == (1, 3)


@pytest.mark.parametrize('method', ['darts', 'pc-darts', 'entrannas', 'entrannas-dst'])
def test_arch_snapshot_schema(method):
    net = make(method, layers=3)
    snap = json.loads(json.dumps(net.arch_snapshot()))
    K = len(net.ops)
    assert snap['ops'] == list(net.ops) and (('none' in snap['ops']) == (method != 'entrannas-dst'))
    assert snap['edges'] == [[i, j] for i, j in cell_edges(NODES)]
    for kind in ('normal', 'reduce'):
        w = torch.tensor(snap['weights'][kind])
        assert w.shape == (E, K)
        geno_cell = getattr(net.genotype(), kind)
        assert snap['active_connections'][kind] == [len(n) for n in geno_cell.nodes]
        assert snap['skip_connect'][kind] == sum(op == 'skip_connect' for _, op, _ in geno_cell.connections())
    if method == 'entrannas-dst':
        assert snap['thresholds']['normal'] == pytest.approx([0.3] * NODES)
    else:
        assert snap['thresholds'] is None
        if method != 'pc-darts':
            torch.testing.assert_close(torch.tensor(snap['weights']['normal']),
                                       F.softmax(net.alphas_normal.detach(), -1))


@pytest.mark.parametrize('method', ['pc-darts', 'entrannas', 'entrannas-dst'])
def test_arch_snapshot_replays_the_architecture_state(method):
    src, dst = make(method, seed=1, layers=3), make(method, seed=2, layers=3)
    if method == 'entrannas-dst':
        with torch.no_grad():
            src.threshold_logits_normal.fill_(0.5)  # cut some connections: not the initial state
            src.alphas_normal.mul_(3000.)
        src.rederive()
    snap = json.loads(json.dumps(src.arch_snapshot()))
    assert dst.genotype() != src.genotype()
    dst.load_arch_snapshot(snap)
    for a, b in zip(src.arch_parameters(), dst.arch_parameters()):
        assert torch.equal(a, b)
    assert dst.derived == src.derived and dst.genotype() == src.genotype()
    with pytest.raises(ValueError, match='parameters.alphas_normal has shape'):
        make(method, layers=3, nodes=3).load_arch_snapshot(snap)
    with pytest.raises(ValueError, match='no "parameters"'):
        dst.load_arch_snapshot({k: v for k, v in snap.items() if k != 'parameters'})


def test_temperature_scales_the_softmax():
    net = make('entrannas', layers=3, temperature=0.5)
    torch.testing.assert_close(net.op_weights('normal'), F.softmax(net.alphas_normal / 0.5, -1))


def test_arch_and_weight_parameters_partition_the_module():
    for method, n_arch in (('darts', 2), ('pc-darts', 4), ('entrannas', 2), ('entrannas-dst', 4)):
        net = make(method, layers=3)
        arch, weights = net.arch_parameters(), net.weight_parameters()
        assert len(arch) == n_arch
        assert len(arch) + len(weights) == len(list(net.parameters()))
        assert not {id(p) for p in arch} & {id(p) for p in weights}


def test_loading_a_state_dict_rederives_transit_cells():
    src = make('entrannas', seed=1)
    dst = make('entrannas', seed=2)
    assert src.genotype() != dst.genotype()
    dst.load_state_dict(src.state_dict())
    assert dst.derived == src.derived and dst.genotype() == src.genotype()


def test_extended_space_and_bad_settings():
    net = make('entrannas', layers=3, space='extended')
    assert net.ops == SPACES['extended'] and net.alphas_normal.shape == (E, 13)
    assert net(batch()).shape == (4, 3)
    assert make('darts', layers=3).ops == STANDARD_OPS
    with pytest.raises(ValueError, match='method'):
        make('enas')
    with pytest.raises(ValueError, match='space'):
        make('darts', space='huge')
    with pytest.raises(ValueError, match='feature_sharing'):
        make('darts', feature_sharing=True)
    with pytest.raises(ValueError, match='engine_cells'):
        make('pc-darts', engine_cells='last')
    with pytest.raises(ValueError, match='engine_cells'):
        make('entrannas', engine_cells=[0, 3])  # no reduction cell
    with pytest.raises(ValueError, match='engine_cells'):
        make('entrannas', engine_cells='middle')
    with pytest.raises(ValueError, match='out of range'):
        make('entrannas', engine_cells=[1, 9])
    with pytest.raises(ValueError, match='pc_k'):
        make('pc-darts', channels=6, pc_k=4)
    with pytest.raises(ValueError, match='init_threshold'):
        make('entrannas-dst', init_threshold=1.0)


# ---- transit cells against the evaluation network ---------------------------------------------------
@pytest.mark.parametrize('method,sharing', [('entrannas', True), ('entrannas', False), ('entrannas-dst', True)])
def test_transit_cell_is_the_evaluation_cell_of_its_derived_genotype(method, sharing):
    """A transit cell computes what ``entrannas_timm.models.network.Cell`` builds from the derived cell, same weights.

    Pools are kept out of the derived cells: in search they are followed by a batch norm (DARTS's search form),
    in evaluation they are not. Batch norms run in train mode, where affine=False equals a fresh affine BN.
    """
    net = make(method, feature_sharing=sharing)  # engine cells 2, 3: cells 0 (normal) and 1 (reduce) transit
    pools = [k for k, op in enumerate(net.ops) if 'pool' in op or op == 'none']
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for kind in ('normal', 'reduce'):
            a = getattr(net, f'alphas_{kind}')
            a.copy_(torch.randn(a.shape, generator=gen))
            a[:, pools] = -10.
            if method == 'entrannas-dst':
                getattr(net, f'threshold_logits_{kind}').zero_()  # t = 0.5: DST cuts, nodes keep 1..many inputs
    net.rederive()
    seen = {}
    for c in (0, 1):
        net.cells[c].register_forward_hook(lambda m, args, out, c=c: seen.__setitem__(c, (args[0], args[1], out)))
    net.train()
    net(batch())
    for c in (0, 1):
        cell = net.cells[c]
        kind = 'reduce' if cell.reduction else 'normal'
        spec = net.derived[kind]
        assert not cell.engine and not any('pool' in op for _, op, _ in spec.connections())
        C_prev_prev, C_prev, C = cell.preprocess0[1].in_channels, cell.preprocess1[1].in_channels, \
            cell.preprocess1[1].out_channels
        ref = Cell(spec, C_prev_prev, C_prev, C, cell.reduction, reduction_prev=False, feature_sharing=sharing)
        ref.preprocess0.load_state_dict(cell.preprocess0.state_dict(), strict=False)  # BN affine stays 1, 0
        ref.preprocess1.load_state_dict(cell.preprocess1.state_dict(), strict=False)
        # the evaluation cell's op instances, in its own compile order: one per connection, or per (source, op)
        built: list = [[] for _ in ref.ops]
        for j, op, src in spec.connections():
            if sharing and op in built[src]:
                continue
            built[src].append(op)
            group = src if sharing else cell_edges(NODES).index((src, j + 2))
            ref.ops[src][len(built[src]) - 1].load_state_dict(cell.ops[group][net.ops.index(op)].state_dict(),
                                                            strict=False)
        s0, s1, out = seen[c]
        torch.testing.assert_close(ref(s0, s1), out, rtol=1e-6, atol=1e-6)
    if method == 'entrannas-dst':  # the derived cells are not top-2 cells
        assert any(len(node) != 2 for node in net.derived['normal'].nodes + net.derived['reduce'].nodes)


# ---- EnTranNAS-DST: transit cells follow every architecture step ---------------------------------------------
def test_every_architecture_step_rederives_what_transit_cells_run():
    """A strong sparsity weight and a large architecture rate make DST cut connections within a few steps. After
    every step the transit cells run exactly the cell derived from the current parameters; without the
    re-derivation in ``Searcher.arch_step`` they would keep running the cell derived before the cuts."""
    from search.config import resolve_config
    from search.searcher import Searcher

    cfg = resolve_config(dict(method='entrannas-dst', synthetic=True, image_size=16, channels=8, layers=4,
                              arch_lr=0.2, lam=2.0, device='cpu', threads=1, quiet=True))
    net = make('entrannas-dst', **cfg.method_settings())
    searcher = Searcher(net, cfg, torch.device('cpu'))
    transit = [c for c, cell in enumerate(net.cells) if not cell.engine]
    assert transit
    gen = torch.Generator().manual_seed(3)
    x, y = torch.randn(8, 3, 16, 16, generator=gen), torch.randint(0, 3, (8,), generator=gen)
    counts = [sum(len(list(spec.connections())) for spec in net.derived.values())]
    for _ in range(12):
        searcher.arch_step(x, y)
        fresh = net.genotype()
        assert net.derived == {'normal': fresh.normal, 'reduce': fresh.reduce}
        calls, handles = count_op_calls(net)
        with torch.no_grad():
            net(x)
        for h in handles:
            h.remove()
        for c in transit:
            kind = 'reduce' if net.cells[c].reduction else 'normal'
            assert cell_calls(calls, c) == derived_keys(net, net.derived[kind], sharing=True), (c, kind)
        counts.append(sum(len(list(spec.connections())) for spec in net.derived.values()))
    assert counts[-1] < counts[0], counts  # connections were actually cut during the run
