"""Pretrained weights through timm's own loader and a real (local) Hugging Face cache; torch.hub; no network.

The cache is written in the documented layout (hub/models--ORG--NAME/{blobs,refs/main,snapshots/<rev>/...}),
checked with huggingface_hub's own ``scan_cache_dir``, and read by a fresh process with ``HF_HUB_OFFLINE=1``.
"""
import hashlib
import importlib.util
import json
import os
import pickle
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import timm
import torch
from huggingface_hub import scan_cache_dir
from safetensors.torch import load_file, save_file

import entrannas_timm
from entrannas_timm import WeightsNotPublishedError
from entrannas_timm.hub import layout as hub

ROOT = Path(__file__).resolve().parents[1]
TIMM_TESTS = ROOT / '.cache' / 'timm-tests' / f'timm-{timm.__version__}' / 'tests'

CUSTOM_GENOTYPE = json.loads((ROOT / 'tests' / 'fixtures' / 'dst_cell.json').read_text())
CUSTOM_KW = dict(channels=8, layers=5, in_chans=1, num_classes=4)


def _randomise(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Give every parameter and BN statistic distinct values, so loading them is detectable exactly."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for t in list(model.parameters()) + [b for b in model.buffers() if b.is_floating_point()]:
            t.copy_(torch.rand(t.shape, generator=g) * 0.5 + 0.5 if t.dim() == 1 else
                    torch.randn(t.shape, generator=g) * 0.1)
    return model


def _git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b'blob %d\0' % len(data) + data).hexdigest()


def _put_in_cache(cache: Path, repo_id: str, folder: Path) -> str:
    """Place ``folder``'s files in the HF cache as a download would: content-addressed blobs, symlinked snapshot."""
    repo_dir = cache / ('models--' + repo_id.replace('/', '--'))
    files = {p.name: p.read_bytes() for p in sorted(folder.iterdir())}
    commit = hashlib.sha1(b''.join(files.values())).hexdigest()
    (repo_dir / 'blobs').mkdir(parents=True, exist_ok=True)
    (repo_dir / 'refs').mkdir(exist_ok=True)
    snap = repo_dir / 'snapshots' / commit
    snap.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        # LFS files are addressed by sha256, plain git files by their git blob sha1 (as the Hub's etags are)
        blob = hashlib.sha256(data).hexdigest() if name.endswith(('.safetensors', '.bin')) else _git_blob_sha1(data)
        (repo_dir / 'blobs' / blob).write_bytes(data)
        os.symlink(os.path.join('..', '..', 'blobs', blob), snap / name)
    (repo_dir / 'refs' / 'main').write_text(commit)
    return commit


_OFFLINE_CHECKS = textwrap.dedent('''
    import json, sys, time
    import torch, timm
    from safetensors.torch import load_file
    import entrannas_timm
    from huggingface_hub import constants

    work = sys.argv[1]
    spec = json.load(open(work + '/spec.json'))
    out = {'offline': constants.HF_HUB_OFFLINE, 'cache': str(constants.HF_HUB_CACHE)}

    def same_state(model, file):
        ref = load_file(file)
        sd = model.state_dict()
        return sorted(sd) == sorted(ref) and all(torch.equal(sd[k], ref[k]) for k in ref)

    m = timm.create_model('darts_v2_cifar10', pretrained=True)
    out['by_name'] = same_state(m, spec['c10_file'])
    m = timm.create_model('hf-hub:entrannas/darts_v2_cifar10.c10', pretrained=True)
    out['by_hf_hub'] = same_state(m, spec['c10_file'])

    x = load_file(spec['io_file'])
    m = timm.create_model('hf-hub:entrannas/custom-dst', pretrained=True).eval()
    with torch.no_grad():
        out['custom'] = dict(state=same_state(m, spec['custom_file']), genotype=m.genotype.to_dict(),
                             output=bool(torch.equal(m(x['input']), x['output'])), layers=len(m.cells),
                             in_chans=m.in_chans, num_classes=m.num_classes)

    # the overlay describes the checkpoint (as any pretrained cfg): its classes and input channels
    overlay = dict(file=spec['custom_file'], num_classes=4, input_size=(1, 32, 32))
    m = timm.create_model('darts_v2_cifar10', pretrained=True, genotype=spec['genotype'],
                          pretrained_cfg_overlay=overlay, **spec['custom_kw'])
    out['overlay'] = same_state(m, spec['custom_file'])

    for name in ('pc_darts_cifar10', 'darts_v1_cifar10'):
        t = time.perf_counter()
        try:
            timm.create_model(name, pretrained=True)
            out[name] = dict(raised=None)
        except Exception as e:
            out[name] = dict(raised=type(e).__name__, message=str(e), seconds=time.perf_counter() - t)

    m = torch.hub.load(spec['repo'], 'darts_v2_cifar10', source='local', pretrained=True)
    out['torch_hub'] = same_state(m, spec['c10_file'])

    if spec['upstream']:  # timm's own pretrained-loading tests: in_chans=1 / num_classes adaptation, features_only
        import importlib.util
        s = importlib.util.spec_from_file_location('upstream_test_models', spec['upstream'])
        mod = importlib.util.module_from_spec(s)
        s.loader.exec_module(mod)
        mod.test_model_load_pretrained('darts_v2_cifar10', 1)
        mod.test_model_features_pretrained('darts_v2_cifar10', 1)
        out['upstream'] = True
    print('RESULT ' + json.dumps(out))
''')


@pytest.fixture(scope='module')
def offline(tmp_path_factory):
    """Save real weights with entrannas_timm.hub.layout into a local HF cache, then load them in an offline process."""
    work = tmp_path_factory.mktemp('hub')
    cache = work / 'hf' / 'hub'
    cache.mkdir(parents=True)

    c10 = _randomise(timm.create_model('darts_v2_cifar10'), seed=1)
    hub.save_pretrained(c10, work / 'staging' / 'darts_v2_cifar10.c10')
    _put_in_cache(cache, 'entrannas/darts_v2_cifar10.c10', work / 'staging' / 'darts_v2_cifar10.c10')

    custom = _randomise(timm.create_model('darts_v2_cifar10', genotype=CUSTOM_GENOTYPE, **CUSTOM_KW), seed=2).eval()
    hub.save_pretrained(custom, work / 'staging' / 'custom-dst')
    _put_in_cache(cache, 'entrannas/custom-dst', work / 'staging' / 'custom-dst')
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        save_file({'input': x, 'output': custom(x)}, work / 'io.safetensors')

    # a registry tag whose cache holds only a pickle checkpoint: it must never be unpickled
    pickle_dir = work / 'staging' / 'pc_darts_cifar10.c10'
    pickle_dir.mkdir(parents=True)
    torch.save(timm.create_model('pc_darts_cifar10').state_dict(), pickle_dir / 'pytorch_model.bin')
    (pickle_dir / 'config.json').write_text(json.dumps(dict(architecture='pc_darts_cifar10', num_classes=10)))
    _put_in_cache(cache, 'entrannas/pc_darts_cifar10.c10', pickle_dir)

    spec = dict(
        c10_file=str(work / 'staging' / 'darts_v2_cifar10.c10' / 'model.safetensors'),
        custom_file=str(work / 'staging' / 'custom-dst' / 'model.safetensors'),
        io_file=str(work / 'io.safetensors'), genotype=CUSTOM_GENOTYPE, custom_kw=CUSTOM_KW, repo=str(ROOT),
        upstream=str(TIMM_TESTS / 'test_models.py') if (TIMM_TESTS / 'test_models.py').is_file() else '',
    )
    (work / 'spec.json').write_text(json.dumps(spec))
    env = {k: v for k, v in os.environ.items() if not k.startswith(('HF_', 'HUGGINGFACE_'))}
    env.update(HF_HOME=str(work / 'hf'), HF_HUB_CACHE=str(cache), HF_HUB_OFFLINE='1', TORCH_HOME=str(work / 'torch'),
               PYTHONPATH=os.pathsep.join([str(ROOT), env.get('PYTHONPATH', '')]))
    proc = subprocess.run([sys.executable, '-c', _OFFLINE_CHECKS, str(work)], cwd=work, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith('RESULT ')][-1]
    return dict(work=work, cache=cache, result=json.loads(line[len('RESULT '):]))


def test_cache_layout_is_valid(offline):
    info = scan_cache_dir(offline['cache'])
    assert not info.warnings, info.warnings
    repos = {r.repo_id: r for r in info.repos}
    assert set(repos) == {'entrannas/darts_v2_cifar10.c10', 'entrannas/custom-dst', 'entrannas/pc_darts_cifar10.c10'}
    files = {f.file_name for rev in repos['entrannas/custom-dst'].revisions for f in rev.files}
    assert files == {'config.json', 'model.safetensors', 'README.md'}
    assert all(rev.refs == frozenset({'main'}) for r in info.repos for rev in r.revisions)


def test_saved_config_rebuilds_the_architecture(offline):
    cfg = json.loads((offline['work'] / 'staging' / 'custom-dst' / 'config.json').read_text())
    assert cfg['architecture'] == 'darts_v2_cifar10'
    args = cfg['model_args']
    assert args['genotype']['normal'] == CUSTOM_GENOTYPE['normal'] and args['genotype']['feature_sharing'] is True
    assert {k: args[k] for k in CUSTOM_KW} == CUSTOM_KW
    assert cfg['pretrained_cfg']['hf_hub_filename'] == 'model.safetensors'
    assert cfg['pretrained_cfg']['input_size'] == [1, 32, 32]
    # the entrypoint's own genotype is recorded by its bundled name
    c10 = json.loads((offline['work'] / 'staging' / 'darts_v2_cifar10.c10' / 'config.json').read_text())
    assert c10['model_args']['genotype'] == 'darts_v2' and c10['model_args']['channels'] == 36
    card = (offline['work'] / 'staging' / 'custom-dst' / 'README.md').read_text()
    assert 'dst_test' in card and 'entrannas-dst' in card and 'hf-hub:entrannas/custom-dst' in card


def test_offline_process_saw_the_cache(offline):
    r = offline['result']
    assert r['offline'] is True and r['cache'] == str(offline['cache'])


def test_pretrained_by_registered_name(offline):
    assert offline['result']['by_name'] is True


def test_pretrained_by_hf_hub_id(offline):
    assert offline['result']['by_hf_hub'] is True


def test_custom_genotype_round_trips_through_hf_hub(offline):
    custom = offline['result']['custom']
    assert custom['state'] and custom['output']
    assert custom['genotype']['normal'] == CUSTOM_GENOTYPE['normal']
    assert custom['genotype']['reduce'] == CUSTOM_GENOTYPE['reduce']
    assert custom['genotype']['feature_sharing'] is True
    assert (custom['layers'], custom['in_chans'], custom['num_classes']) == (5, 1, 4)


def test_pretrained_cfg_overlay_file(offline):
    assert offline['result']['overlay'] is True


def test_torch_hub_pretrained_offline(offline):
    assert offline['result']['torch_hub'] is True


def test_upstream_pretrained_tests(offline):
    if not (TIMM_TESTS / 'test_models.py').is_file():
        pytest.skip('timm tests not unpacked; run scripts/setup.sh')
    assert offline['result']['upstream'] is True


@pytest.mark.parametrize('name', ['pc_darts_cifar10', 'darts_v1_cifar10'])
def test_unpublished_weights_fail_fast_offline(offline, name):
    # pc_darts_cifar10.c10 has only a pickle (pytorch_model.bin) in the cache: it is refused, never unpickled
    r = offline['result'][name]
    assert r['raised'] == 'WeightsNotPublishedError', r
    assert f'{name}.c10' in r['message'] and 'HF_HUB_OFFLINE' in r['message'] and 'pretrained=False' in r['message']
    assert r['seconds'] < 2.0


def test_unpublished_weights_fail_fast_without_offline_mode(tmp_path):
    # no HF_HUB_OFFLINE in this process: an unpublished tag still fails before any network request
    assert 'darts_v2_imagenet.in1k' not in entrannas_timm.models.registry.PUBLISHED_TAGS
    t = time.perf_counter()
    with pytest.raises(WeightsNotPublishedError, match=r"darts_v2_imagenet\.in1k.*no published weights"):
        timm.create_model('darts_v2_imagenet', pretrained=True, cache_dir=tmp_path)
    assert time.perf_counter() - t < 2.0


def test_save_pretrained_is_atomic_and_replaces(tmp_path):
    model = timm.create_model('darts_v2_imagenet', channels=8, layers=4, num_classes=3)
    target = tmp_path / 'ckpt'
    hub.save_pretrained(model, target)
    first = load_file(target / 'model.safetensors')
    _randomise(model, seed=3)
    hub.save_pretrained(model, target)
    second = load_file(target / 'model.safetensors')
    assert sorted(p.name for p in tmp_path.iterdir()) == ['ckpt']  # no temporary folder left behind
    assert sorted(p.name for p in target.iterdir()) == ['README.md', 'config.json', 'model.safetensors']
    assert any(not torch.equal(first[k], second[k]) for k in first)
    cfg = json.loads((target / 'config.json').read_text())
    assert cfg['architecture'] == 'darts_v2_imagenet' and cfg['model_args']['layers'] == 4


def test_save_pretrained_of_a_directly_built_network(tmp_path):
    net = entrannas_timm.CellNetwork('pc_darts_image', stem_type='imagenet', channels=8, layers=4, num_classes=3)
    hub.save_pretrained(net, tmp_path / 'net')
    assert not hasattr(net, 'pretrained_cfg')
    cfg = json.loads((tmp_path / 'net' / 'config.json').read_text())
    assert cfg['architecture'] == 'cellnet_imagenet'  # the family's generic entrypoint: the genotype is data
    assert cfg['model_args']['genotype']['normal'] == entrannas_timm.load_genotype('pc_darts_image').to_dict()['normal']
    with pytest.raises(ValueError, match='architecture'):
        hub.save_pretrained(net, tmp_path / 'bad', architecture='darts_v2_cifar10')


# ---- local weights: a saved folder, a weights file ----------------------------------------------------------
class _TouchOnUnpickle:
    """A pickle that creates ``path`` if it is ever unpickled (what an unsafe torch.load would do)."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return Path.touch, (self.path,)


def _same_state(model: torch.nn.Module, ref: torch.nn.Module) -> bool:
    a, b = model.state_dict(), ref.state_dict()
    return sorted(a) == sorted(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_local_dir_loads_a_saved_folder(tmp_path):
    model = _randomise(timm.create_model('darts_v2_cifar10', genotype=CUSTOM_GENOTYPE, **CUSTOM_KW), seed=4)
    hub.save_pretrained(model, tmp_path / 'saved')
    loaded = timm.create_model(f'local-dir:{tmp_path / "saved"}', pretrained=True)
    assert loaded.genotype == model.genotype and _same_state(loaded, model)
    with pytest.raises(FileNotFoundError, match=str(tmp_path / 'missing')):
        timm.create_model(f'local-dir:{tmp_path / "missing"}', pretrained=True)


def test_weights_file_overlay_safetensors_or_weights_only_pickle(tmp_path):
    tiny = dict(channels=8, layers=5, num_classes=3)
    model = _randomise(timm.create_model('darts_v2_cifar10', **tiny), seed=5)
    save_file(model.state_dict(), tmp_path / 'w.safetensors')
    torch.save({'state_dict': model.state_dict(), 'epoch': 3}, tmp_path / 'w.pth')
    for file in ('w.safetensors', 'w.pth'):
        overlay = dict(file=str(tmp_path / file), num_classes=3)
        loaded = timm.create_model('darts_v2_cifar10', pretrained=True, pretrained_cfg_overlay=overlay, **tiny)
        assert _same_state(loaded, model), file
    marker = tmp_path / 'unpickled'
    torch.save({'state_dict': model.state_dict(), 'payload': _TouchOnUnpickle(marker)}, tmp_path / 'evil.pth')
    with pytest.raises((pickle.UnpicklingError, RuntimeError), match='weights_only'):  # torch's or timm's wording
        timm.create_model('darts_v2_cifar10', pretrained=True, **tiny,
                          pretrained_cfg_overlay=dict(file=str(tmp_path / 'evil.pth'), num_classes=3))
    assert not marker.exists(), 'a pickle in a weights file must never run'


def test_missing_weights_file_is_named(tmp_path):
    missing = tmp_path / 'no' / 'model.safetensors'
    with pytest.raises(FileNotFoundError, match=rf"pretrained_cfg_overlay\['file'\]: no weights file at '{missing}'"):
        timm.create_model('darts_v2_cifar10', pretrained=True, pretrained_cfg_overlay=dict(file=str(missing)))
    with pytest.raises(FileNotFoundError, match=rf"pretrained_cfg\['file'\]: no weights file at '{tmp_path}'"):
        timm.create_model('darts_v2_cifar10', pretrained=True, pretrained_cfg=dict(file=str(tmp_path)))  # a folder


# ---- torch.hub ---------------------------------------------------------------------------------------------
def test_torch_hub_local():
    model = torch.hub.load(str(ROOT), 'darts_v2_cifar10', source='local')
    assert sum(p.numel() for p in model.parameters()) == 3349342  # DARTS code's count, see test_network.py


def test_hubconf_documents_every_model(tmp_path):
    # torch.hub.list / help for a GitHub repo, offline: the checkout stands where torch.hub caches a download
    hub_dir = torch.hub.get_dir()
    os.symlink(ROOT, tmp_path / 'entrannas_entrannas-timm_main')
    torch.hub.set_dir(str(tmp_path))
    try:
        repo = dict(github='entrannas/entrannas-timm:main', skip_validation=True, trust_repo=True)
        assert sorted(torch.hub.list(**repo)) == sorted(entrannas_timm.MODEL_GENOTYPES)
        docs = {name: torch.hub.help(model=name, **repo) for name in entrannas_timm.MODEL_GENOTYPES}
    finally:
        torch.hub.set_dir(hub_dir)
    spec = importlib.util.spec_from_file_location('hubconf', ROOT / 'hubconf.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert {'torch', 'timm'} <= set(mod.dependencies)
    for name, (genotype, family) in entrannas_timm.MODEL_GENOTYPES.items():
        size = entrannas_timm.models.registry.network_size(name)
        summary = timm.models.model_entrypoint(name).__doc__.strip().splitlines()[0]
        assert docs[name].startswith(summary), name
        assert f'``{genotype}``' in docs[name] and f'family ``{family}``' in docs[name], name
        assert f"{size['layers']} cells, {size['channels']} channels" in docs[name], name
        model = getattr(mod, name)(channels=8, layers=5, num_classes=3)  # the entrypoint builds its own model
        assert model.pretrained_cfg['architecture'] == name and model.num_classes == 3
        assert model.genotype == entrannas_timm.load_genotype(genotype) and model.stem_type == size['stem_type']


def test_torch_hub_local_genotype_kwarg():
    model = torch.hub.load(str(ROOT), 'darts_v2_cifar10', source='local', genotype='PC_DARTS_CIFAR',
                           channels=8, layers=5, num_classes=3)
    g = entrannas_timm.load_genotype('pc_darts_cifar')
    assert (model.genotype.normal, model.genotype.reduce) == (g.normal, g.reduce)
    assert model.eval()(torch.randn(1, 3, 32, 32)).shape == (1, 3)
