"""Search methods as classes: settings checked once, the DST threshold decay, the ImageNet protocol, and a new
method added as one class (the worked example of docs/method.md, run as written)."""
from __future__ import annotations

import json
import re
import sys
import types
from pathlib import Path

import pytest
import torch
from timm.scheduler import create_scheduler_v2

from search.config import ConfigError, resolve_config
from search.derive import derive_top2
from search.loop import run
from search.methods import METHODS, SearchMethod
from search.searcher import Searcher, lr_warmup
from search.supernet import SearchNetwork

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(synthetic=True, subset=16, image_size=16, channels=4, layers=5, epochs=1, batch_size=8, workers=0,
            device='cpu', threads=1, eval_channels=8, eval_layers=5, quiet=True)
pytestmark = pytest.mark.usefixtures('one_thread')


@pytest.fixture
def registry():
    """The method registry, restored after the test (a test may register a method)."""
    saved = dict(METHODS)
    yield METHODS
    METHODS.clear()
    METHODS.update(saved)


def _docs_example() -> str:
    """The code block under docs/method.md's 'Adding a method'."""
    text = (ROOT / 'docs' / 'method.md').read_text()
    section = text[text.index('### Adding a method'):]
    return re.search(r'```python\n(.*?)```', section, re.S).group(1)


def test_a_new_method_is_one_class(registry, tmp_path, monkeypatch):
    module = types.ModuleType('docs_method_example')  # a real module: dataclasses look their class up there
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(_docs_example(), 'docs/method.md', 'exec'), module.__dict__)
    cls = registry['sigmoid-darts']
    assert issubclass(cls, SearchMethod) and cls.settings() == ('zero_one_weight',)
    # the super-net asks the method: sigmoid weights in engine cells, its regulariser in the architecture loss
    net = SearchNetwork(method='sigmoid-darts', num_classes=3, channels=4, layers=3, nodes=2)
    torch.testing.assert_close(net.engine_weights('normal'), torch.sigmoid(net.alphas_normal))
    w = torch.sigmoid(torch.cat([net.alphas_normal, net.alphas_reduce]))
    torch.testing.assert_close(net.arch_regularizer(), -10. * ((w - 0.5) ** 2).mean())
    with pytest.raises(ConfigError, match='--pc-k: a setting of pc-darts only, not of sigmoid-darts'):
        resolve_config(dict(TINY, method='sigmoid-darts', pc_k=2))
    # and a search with it runs end to end
    res = run(resolve_config(dict(TINY, method='sigmoid-darts', arch_lr=0.05, output=str(tmp_path / 'run'))))
    rec = json.loads((tmp_path / 'run' / 'metrics.jsonl').read_text())
    alphas = res.arch_parameters[0]
    assert not torch.allclose(alphas, torch.zeros_like(alphas), atol=1e-2)  # the architecture moved
    torch.testing.assert_close(torch.tensor(rec['arch']['weights']['normal']), torch.sigmoid(alphas))
    assert res.genotype.normal == derive_top2(torch.sigmoid(alphas), net.ops, 4)
    assert res.genotype.provenance['method'] == 'sigmoid-darts'


@pytest.mark.parametrize('setting,value,reason', [
    ('init_threshold', 1.0, r'expected a value in \(0, 1\)'),
    ('lam', -1.0, 'expected >= 0'),
    ('threshold_decay', -1e-3, 'expected >= 0'),
    ('dst_regularizer', 'l1', 'expected one of'),
])
def test_method_settings_are_checked_once_for_config_and_supernet(setting, value, reason):
    """One check, in the method's class: the command line names the flag, the super-net the keyword."""
    with pytest.raises(ConfigError, match=f'--{setting.replace("_", "-")}: {reason}'):
        resolve_config({'method': 'entrannas-dst', setting: value})
    with pytest.raises(ValueError, match=f'^{setting}: {reason}'):
        SearchNetwork(method='entrannas-dst', num_classes=3, channels=4, layers=3, nodes=2, **{setting: value})


def test_placement_and_partial_channel_checks_are_the_methods():
    with pytest.raises(ConfigError, match='--pc-k: expected a divisor of channels=6'):
        resolve_config(dict(method='pc-darts', pc_k=4, channels=6))
    with pytest.raises(ValueError, match='pc_k: expected a divisor of channels=6'):
        SearchNetwork(method='pc-darts', pc_k=4, num_classes=3, channels=6, layers=3)
    # out-of-range engine cells are caught with the other flags, before any data is read
    with pytest.raises(ConfigError, match=r'--engine-cells: indices \[9\] out of range for 8 cells'):
        resolve_config(dict(method='entrannas', engine_cells='2,9'))
    cfg = resolve_config(dict(method='entrannas-dst'))
    assert (cfg.engine_cells, cfg.feature_sharing, cfg.lam, cfg.init_threshold, cfg.dst_regularizer,
            cfg.threshold_decay, cfg.pc_k) == ('last', True, 0.1, 0.3, 'threshold_gap', 0., None)
    cfg = resolve_config(dict(method='darts'))
    assert (cfg.engine_cells, cfg.feature_sharing, cfg.lam, cfg.pc_k) == ('all', False, None, None)


def _dst_searcher(**settings) -> Searcher:
    torch.manual_seed(0)
    cfg = resolve_config(dict(TINY, method='entrannas-dst', layers=3, channels=4, nodes=2, **settings))
    net = SearchNetwork(method='entrannas-dst', num_classes=10, channels=4, layers=3, nodes=2,
                        **cfg.method_settings())
    return Searcher(net, cfg, torch.device('cpu'))


def _arch_step(searcher: Searcher) -> None:
    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(4, 3, 16, 16, generator=gen), torch.randint(0, 10, (4,), generator=gen)
    searcher.arch_step(x, y)


def test_threshold_decay_is_its_own_adam_group():
    equal = _dst_searcher(threshold_decay=1e-3)
    assert [g['weight_decay'] for g in equal.arch_optimizer.param_groups] == [1e-3, 1e-3]
    assert [g['weight_decay'] for g in _dst_searcher().arch_optimizer.param_groups] == [1e-3, 0.]  # the default
    # equal decays equal one Adam over every architecture parameter with --arch-weight-decay
    one_group = _dst_searcher()
    one_group.arch_optimizer = torch.optim.Adam(one_group.arch_params, lr=6e-4, betas=(0.5, 0.999),
                                                weight_decay=1e-3)
    for s in (equal, one_group):
        _arch_step(s)
    for a, b in zip(equal.arch_params, one_group.arch_params):
        assert torch.equal(a, b)
    # a strong threshold decay (t starts at 0.7: beta > 0) outweighs the regulariser and lowers the thresholds;
    # the alphas take the very same step
    weak, strong = _dst_searcher(init_threshold=0.7), _dst_searcher(init_threshold=0.7, threshold_decay=10.)
    for s in (weak, strong):
        _arch_step(s)
    t0 = torch.tensor(0.7)
    assert bool((weak.model.thresholds('normal') > t0).all()) and bool((strong.model.thresholds('normal') < t0).all())
    assert torch.equal(weak.model.alphas_normal, strong.model.alphas_normal)


def test_imagenet_preset_is_pc_darts_imagenet_protocol():
    pc = resolve_config(dict(preset='imagenet', method='pc-darts'))
    assert (pc.pc_k, pc.batch_size, pc.lr, pc.lr_warmup_epochs, pc.arch_lr, pc.arch_grad_clip,
            pc.arch_warmup_epochs, pc.stem) == (2, 1024, 0.5, 5, 6e-3, 5.0, 35, 'imagenet')
    # the partial-channel K is PC-DARTS's own: other methods take the rest of the protocol without it
    ent = resolve_config(dict(preset='imagenet', method='entrannas-dst'))
    assert (ent.pc_k, ent.lr_warmup_epochs, ent.arch_grad_clip) == (None, 5, 5.0)
    # warm-up as PC-DARTS: lr * (e + 1) / 5 in the first epochs, then the cosine schedule
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=pc.lr)
    sched, _ = create_scheduler_v2(opt, sched='cosine', num_epochs=pc.epochs, min_lr=pc.min_lr, **lr_warmup(pc))
    lrs = []
    for epoch in range(7):
        sched.step(epoch)
        lrs.append(opt.param_groups[0]['lr'])
    assert lrs[:4] == pytest.approx([0.1, 0.2, 0.3, 0.4])
    assert lrs[4:] == pytest.approx([0.5 * (1 + torch.cos(torch.tensor(torch.pi * e / 50)).item()) / 2
                                     for e in (4, 5, 6)])
    assert lr_warmup(resolve_config(dict(method='darts'))) == {}


def test_arch_grad_clip_bounds_the_architecture_gradient():
    clipped = _dst_searcher(arch_grad_clip=1e-4)
    _arch_step(clipped)
    norm = torch.cat([p.grad.reshape(-1) for p in clipped.arch_params]).norm()
    assert norm == pytest.approx(1e-4, rel=1e-3)
    free = _dst_searcher()
    _arch_step(free)
    assert torch.cat([p.grad.reshape(-1) for p in free.arch_params]).norm() > 1e-3
