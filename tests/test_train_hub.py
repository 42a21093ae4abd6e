"""From a training run to weights timm loads: export, the offline Hugging Face cache, validate, publish.

Real runs (tiny networks, real Fashion-MNIST images), a real local Hugging Face cache read by a fresh process
with ``HF_HUB_OFFLINE=1``, and no network.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from huggingface_hub import scan_cache_dir
from safetensors.torch import load_file, save_file

from entrannas_timm.cli import main as cli_main
from entrannas_timm.hub.export import CARD_TEXT_LIMIT, export_run
from entrannas_timm.hub.publish import install_in_cache
from entrannas_timm.models.constants import DATASET_STATS
from entrannas_timm.train import checkpoint
from entrannas_timm.train.config import resolve_config
from entrannas_timm.train.trainer import run
from entrannas_timm.utils.errors import CLIError

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.fashion_mnist
SIZE = dict(channels=4, layers=3, in_chans=1)
TAG_REPO = 'entrannas/darts_v2_cifar10.c10'
CARD_TEXT = '## Other seeds\n\n| seed | top-1 |\n|---|---|\n| 1 | 50.0 |\n'  # what --card-text adds
SEARCHED = json.loads((ROOT / 'tests' / 'fixtures' / 'dst_cell.json').read_text())


def _train(out: Path, **over) -> dict:
    cfg = resolve_config(dict(dataset='fashion-mnist', data_dir='no-such-dir', subset=128, val_subset=64, epochs=2,
                              batch_size=32, channels=4, layers=3, seed=2, quiet=True, output=str(out), **over))
    return run(cfg).best


@pytest.fixture(scope='module')
def hub(tmp_path_factory):
    """Two trained runs (a zoo model, a searched genotype), exported and installed into a fresh HF cache."""
    work = tmp_path_factory.mktemp('train-hub')
    (work / 'searched.json').write_text(json.dumps(SEARCHED))
    best = {'zoo': _train(work / 'zoo', model='darts_v2_cifar10'),
            'custom': _train(work / 'custom', genotype=str(work / 'searched.json'))}
    cache = work / 'hf' / 'hub'
    export_run(str(work / 'zoo'), str(work / 'export-zoo'), repo_id=TAG_REPO)
    export_run(str(work / 'custom'), str(work / 'export-custom'), repo_id='acme/dst-fmnist', card_text=CARD_TEXT)
    install_in_cache(work / 'export-zoo', TAG_REPO, cache)
    install_in_cache(work / 'export-custom', 'acme/dst-fmnist', cache)
    x = torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    refs = {'input': x}
    for name in ('zoo', 'custom'):
        model, _ = checkpoint.build_run_model(work / name)
        with torch.no_grad():
            refs[name] = model(x)
    save_file(refs, work / 'refs.safetensors')
    return dict(work=work, cache=cache, best=best)


_OFFLINE = textwrap.dedent('''
    import json, sys
    import timm, torch
    from safetensors.torch import load_file
    import entrannas_timm
    from entrannas_timm.cli import main
    work, root = sys.argv[1], sys.argv[2]
    refs = load_file(work + '/refs.safetensors')
    size = dict(channels=4, layers=3, in_chans=1)
    out = {}

    def check(model, run):
        best = load_file(f'{work}/{run}/best.safetensors')
        sd = model.state_dict()
        with torch.no_grad():
            logits = model.eval()(refs['input'])
        return dict(state=sorted(sd) == sorted(best) and all(torch.equal(sd[k], best[k]) for k in best),
                    logits=bool(torch.equal(logits, refs[run])))

    m = timm.create_model('hf-hub:acme/dst-fmnist', pretrained=True)
    out['hf_hub_custom'] = dict(check(m, 'custom'), cfg=[list(m.pretrained_cfg['input_size']),
                                list(m.pretrained_cfg['mean']), m.genotype.name])
    out['hf_hub_zoo'] = check(timm.create_model('hf-hub:entrannas/darts_v2_cifar10.c10', pretrained=True), 'zoo')
    out['tag'] = check(timm.create_model('darts_v2_cifar10.c10', pretrained=True, **size), 'zoo')
    out['torch_hub'] = check(torch.hub.load(root, 'darts_v2_cifar10', source='local', pretrained=True, **size), 'zoo')
    print('RESULT ' + json.dumps(out))
    main(['validate', 'hf-hub:acme/dst-fmnist', '--dataset', 'fashion-mnist', '--data-dir', 'none',
          '--subset', '64', '--json'])
''')


def test_offline_cache_loads_the_trained_weights_every_way(hub):
    """hf-hub:, the registry tag and torch.hub give the run's best weights and logits, offline."""
    env = dict(os.environ, HF_HUB_OFFLINE='1', HF_HUB_CACHE=str(hub['cache']), OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable, '-c', _OFFLINE, str(hub['work']), str(ROOT)], capture_output=True,
                          text=True, env=env, cwd=hub['work'], timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    out = json.loads(next(line for line in lines if line.startswith('RESULT '))[7:])
    for way in ('hf_hub_custom', 'hf_hub_zoo', 'tag', 'torch_hub'):
        assert out[way]['state'] and out[way]['logits'], way
    mean = DATASET_STATS['fashion-mnist'][0][0]
    assert out['hf_hub_custom']['cfg'] == [[1, 28, 28], [mean], 'dst_test']
    validated = json.loads(lines[-1])  # entrannas validate hf-hub:... gives the run's recorded accuracy
    assert validated['images'] == 64 and validated['top1'] == pytest.approx(hub['best']['custom']['val_top1'])
    # the cache is the real layout: huggingface_hub's own scanner reads it without complaint
    info = scan_cache_dir(hub['cache'])
    assert not info.warnings and {r.repo_id for r in info.repos} == {TAG_REPO, 'acme/dst-fmnist'}
    assert all(len(r.revisions) == 1 and next(iter(r.revisions)).refs == frozenset({'main'}) for r in info.repos)
    snapshot = install_in_cache(hub['work'] / 'export-custom', 'acme/dst-fmnist', hub['cache'])  # again: a no-op
    assert len(list(snapshot.parent.iterdir())) == 1


def test_export_is_timm_hub_layout_with_a_model_card(hub):
    work = hub['work']
    custom = json.loads((work / 'export-custom' / 'config.json').read_text())
    assert custom['architecture'] == 'cellnet_cifar' and custom['num_classes'] == 10
    assert custom['model_args']['genotype']['normal'] == SEARCHED['normal'] and 'auxiliary' not in custom['model_args']
    cfg = custom['pretrained_cfg']
    assert cfg['input_size'] == [1, 28, 28] and cfg['crop_pct'] == 1.0
    assert (cfg['mean'], cfg['std']) == tuple(list(v) for v in DATASET_STATS['fashion-mnist'])
    zoo = json.loads((work / 'export-zoo' / 'config.json').read_text())
    assert zoo['architecture'] == 'darts_v2_cifar10' and zoo['model_args']['genotype'] == 'darts_v2'
    weights = load_file(work / 'export-custom' / 'model.safetensors')
    best = load_file(work / 'custom' / 'best.safetensors')
    assert weights.keys() == best.keys() and all(torch.equal(weights[k], best[k]) for k in best)
    card = (work / 'export-custom' / 'README.md').read_text()
    top1 = f"{hub['best']['custom']['val_top1']:.2f}".rstrip('0').rstrip('.')
    for text in ('library_name: timm', 'license: apache-2.0', '- fashion_mnist', f'top-1 (%): {top1}',
                 'evaluated on: 64 test images of fashion-mnist', "timm.create_model('hf-hub:acme/dst-fmnist'",
                 '@inproceedings{yang2021entrannas', 'method: entrannas-dst', 'preset: fashion-mnist', CARD_TEXT):
        assert text in card, text
    assert card.index('](cells.svg)') < card.index(CARD_TEXT) < card.index('## Model Details')


def test_validate_reads_every_source_alike(hub, capsys):
    work, expected = hub['work'], hub['best']['custom']['val_top1']
    common = ['--dataset', 'fashion-mnist', '--data-dir', 'none', '--subset', '64', '--json']
    for source in ([str(work / 'custom')], [str(work / 'export-custom')],
                   [str(work / 'custom' / 'best.safetensors'), '--genotype', str(work / 'searched.json')]):
        assert cli_main(['validate', *source, *common]) == 0
        row = json.loads(capsys.readouterr().out)
        assert row['top1'] == pytest.approx(expected) and row['images'] == 64, source
        assert set(row) >= {'top1', 'top5', 'loss', 'images'}


def test_bad_weights_and_folders_get_one_clear_line(hub, capsys, tmp_path):
    work = hub['work']
    truncated = tmp_path / 'truncated.safetensors'
    truncated.write_bytes((work / 'zoo' / 'best.safetensors').read_bytes()[:-100])
    big = tmp_path / 'big.md'
    big.write_text('x' * (CARD_TEXT_LIMIT + 1))
    broken = tmp_path / 'export'
    broken.mkdir()
    for f in (work / 'export-zoo').iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    (broken / 'model.safetensors').write_bytes(truncated.read_bytes())
    cases = [
        (['validate', str(truncated), '--genotype', 'darts_v2', '--dataset', 'fashion-mnist'],
         'not a readable safetensors file'),
        (['validate', str(work / 'zoo' / 'best.safetensors'), '--genotype', 'pc_darts_cifar', '--dataset',
          'fashion-mnist'], 'these weights do not fit the model'),
        (['validate', 'darts_v2_cifar10', '--pretrained', '--dataset', 'cifar10'], 'no pretrained weights for'),
        (['export', str(work / 'custom'), '-o', str(work / 'export-custom')], 'already holds'),
        (['export', str(work / 'custom'), '-o', str(work / 'export-custom'), '--overwrite', '--card-text',
          str(tmp_path / 'missing.md')], '--card-text: no file at'),
        (['export', str(work / 'custom'), '-o', str(work / 'export-custom'), '--overwrite', '--card-text',
          str(big)], f'at most {CARD_TEXT_LIMIT} are added'),
        (['export', str(work / 'custom'), '-o', str(work / 'export-custom'), '--overwrite', '--card-text',
          str(truncated)], 'is not UTF-8 text'),
        (['cache', str(broken), '--repo-id', 'acme/broken', '--cache-dir', str(tmp_path / 'cache')],
         'not a readable safetensors file'),
        (['cache', str(work / 'export-zoo'), '--repo-id', 'not a repo id', '--cache-dir', str(tmp_path / 'cache')],
         '--repo-id'),
    ]
    before = {p.name: p.read_bytes() for p in (work / 'export-custom').iterdir()}
    for args, message in cases:
        try:
            code = cli_main(args)
        except SystemExit as e:
            code = e.code
        err = capsys.readouterr().err
        assert code == 2 and err.count('\n') == 1 and message in err, (args, err)
    assert {p.name: p.read_bytes() for p in (work / 'export-custom').iterdir()} == before
    assert not (tmp_path / 'cache').exists()


def test_class_count_mismatch_is_refused(hub):
    from entrannas_timm.train.validate import _data_for, load_model
    model, _, _ = load_model(str(hub['work'] / 'export-zoo'))
    model.reset_classifier(7)
    with pytest.raises(CLIError, match='the model has 7 classes but fashion-mnist has 10'):
        _data_for(model, None, 'fashion-mnist', 'none', 'test', 8, None)


def test_publish_is_a_dry_run_and_needs_a_token(hub, tmp_path):
    folder = hub['work'] / 'export-custom'
    env = dict(os.environ, HF_HOME=str(tmp_path / 'hf-home'), HF_HUB_OFFLINE='1')
    env.pop('HF_TOKEN', None)
    cmd = [sys.executable, '-m', 'entrannas_timm', 'publish', str(folder), '--repo-id', 'acme/dst-fmnist']
    dry = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert dry.returncode == 0, dry.stderr
    for f in folder.iterdir():
        assert f'{f.stat().st_size:,d}  {f.name}' in dry.stdout
    assert 'run again with --yes to upload' in dry.stdout
    real = subprocess.run([*cmd, '--yes'], capture_output=True, text=True, env=env, timeout=120)
    assert real.returncode == 1 and real.stdout == ''
    assert real.stderr == ('entrannas publish: error: no Hugging Face token: log in with `hf auth login` or set '
                           'HF_TOKEN (nothing was uploaded)\n')
