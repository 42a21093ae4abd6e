"""``entrannas convert``: the authors' checkpoints (DARTS's own classes, tests/fixtures/convert/, recorded by
scripts/convert_fixture.py) become zoo models that give the authors' logits, through timm's loaders."""
from __future__ import annotations

import argparse
import importlib.util
import json
import pickle
import re
from pathlib import Path

import pytest
import timm
import torch
from huggingface_hub import constants
from PIL import Image
from safetensors.torch import load_file
from timm.data import create_transform, resolve_data_config

from entrannas_timm import WeightsNotPublishedError
from entrannas_timm.cli import main
from entrannas_timm.hub.convert import convert, read_source
from entrannas_timm.hub.publish import install_in_cache
from entrannas_timm.models.authors import AUTHORS_CHECKPOINTS, GDAS_CIFAR_MEAN, GDAS_CIFAR_STD
from entrannas_timm.utils.errors import CLIError

FIXTURE = Path(__file__).parent / 'fixtures' / 'convert'
CIFAR = FIXTURE / 'darts_cifar10_model.pt'
IMAGENET = FIXTURE / 'darts_imagenet_model.pt'
# GDAS's outputs in files of their own (the same inputs and sample images)
EXPECTED = {k: v for f in ('expected', 'gdas_expected', 'snas_expected', 'cdarts_expected', 'sgas_expected')
            for k, v in load_file(str(FIXTURE / f'{f}.safetensors')).items()}
META = json.loads((FIXTURE / 'fixture.json').read_text())
GDAS_META = json.loads((FIXTURE / 'gdas_fixture.json').read_text())
TAGS = {'cifar': 'darts_v2_cifar10.darts_c10', 'imagenet': 'darts_v2_imagenet.darts_in1k'}
SOURCES = {'cifar': CIFAR, 'imagenet': IMAGENET}
# P-DARTS's own copy of the DARTS classes, with its cell (the DARTS layout's claim for a successor)
PDARTS = {'cifar': ('pdarts_cifar10.pdarts_c10', FIXTURE / 'pdarts_cifar10_model.pt'),
          'imagenet': ('pdarts_imagenet.pdarts_in1k', FIXTURE / 'pdarts_imagenet_model.pt')}
# FairDARTS's DCOCell layout (its own NetworkCIFAR with the FairDARTS-a cell: an absent node, single-input nodes)
FAIRDARTS = ('fairdarts_a_cifar10.fairdarts_c10', FIXTURE / 'fairdarts_a_cifar10.tar')
# GDAS: AutoDL-Projects's NetworkCIFAR (with its auxiliary head) and NetworkImageNet, --layout gdas (no released files,
# so no tag), and its original code's NetworkImageNet, the darts layout of the tag of its released ImageNet file
GDAS = {'cifar': ('gdas_cifar10', FIXTURE / 'gdas_cifar_seed-1-basic.pth'),
        'imagenet': ('gdas_imagenet', FIXTURE / 'gdas_imagenet_seed-1-basic.pth')}
GDAS_ORIGINAL = ('gdas_imagenet.gdas_in1k', FIXTURE / 'gdas_original_imagenet_model.pth')
# SNAS's model_edge_all.py networks with the SNAS_mild_edge_all cell, --layout snas; the tag of its released file
# checks the authors' MD5, which these files do not have
SNAS = {'cifar': ('snas_mild_cifar10', FIXTURE / 'snas_cifar_weights.pt'),
        'imagenet': ('snas_mild_imagenet', FIXTURE / 'snas_imagenet_weights.pt')}
SNAS_META = json.loads((FIXTURE / 'snas_fixture.json').read_text())['snas']
# CDARTS's ModelAug (ModelTest's stem, stages and classifier; the CIFAR one with its auxiliary head), --layout cdarts
CDARTS = {'cifar': ('cdarts_cifar10', FIXTURE / 'cdarts_cifar_best.pth.tar'),
          'imagenet': ('cdarts_imagenet', FIXTURE / 'cdarts_imagenet_best.pth.tar')}
CDARTS_META = json.loads((FIXTURE / 'cdarts_fixture.json').read_text())['cdarts']
# SGAS's and NoisyDARTS's copies of DARTS's classes with the cells of their released files, through their tags; SGAS's
# ImageNet network keeps its auxiliary head, which has a batch norm ours lacks
DARTS_COPIES = {
    'sgas_cifar': ('sgas_cri1_cifar10.sgas_c10', FIXTURE / 'sgas_cifar10_weights.pt'),
    'sgas_imagenet': ('sgas_cri2_imagenet.sgas_in1k', FIXTURE / 'sgas_imagenet_model_best.pth.tar'),
    'noisydarts_cifar': ('noisy_darts_a_cifar10.noisy_darts_c10', FIXTURE / 'noisydarts_cifar10_weights.pt')}


def _samples() -> Path:
    spec = importlib.util.find_spec('foolbox')
    if spec is None or not spec.submodule_search_locations:
        pytest.skip('foolbox (real sample images) is not installed')
    return Path(list(spec.submodule_search_locations)[0]) / 'data'


@pytest.fixture(scope='module')
def converted(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp('converted')
    folders = {family: convert(str(SOURCES[family]), tag, str(out / tag))[0] for family, tag in TAGS.items()}
    folders.update({f'pdarts_{family}': convert(str(src), tag, str(out / tag))[0]
                    for family, (tag, src) in PDARTS.items()})
    folders['fairdarts_cifar'] = convert(str(FAIRDARTS[1]), FAIRDARTS[0], str(out / FAIRDARTS[0]))[0]
    folders.update({f'gdas_{family}': convert(str(src), arch, str(out / arch), layout='gdas')[0]
                    for family, (arch, src) in GDAS.items()})
    folders['gdas_original_imagenet'] = convert(str(GDAS_ORIGINAL[1]), GDAS_ORIGINAL[0], str(out / GDAS_ORIGINAL[0]))[0]
    folders.update({f'{name}_{family}': convert(str(src), arch, str(out / arch), layout=name)[0]
                    for name, files in (('snas', SNAS), ('cdarts', CDARTS)) for family, (arch, src) in files.items()})
    folders.update({case: convert(str(src), tag, str(out / tag))[0] for case, (tag, src) in DARTS_COPIES.items()})
    return folders


def _preprocessing(case: str) -> dict:
    """The authors' evaluation transform as timm data-config overrides: none where the conversion has a tag (its
    pretrained cfg is that transform); AutoDL-Projects's GDAS networks have no released file, so no tag: GDAS's own
    CIFAR normalisation, and for ImageNet the transform of the tag of GDAS's released file."""
    if case == 'gdas_cifar':
        return dict(mean=GDAS_CIFAR_MEAN, std=GDAS_CIFAR_STD)
    tag = {'gdas_imagenet': GDAS_ORIGINAL[0], 'snas_cifar': TAGS['cifar'], 'snas_imagenet': TAGS['imagenet'],
           'cdarts_cifar': TAGS['cifar'], 'cdarts_imagenet': TAGS['imagenet']}.get(case)  # DARTS's transforms
    if tag:
        cfg = timm.models.get_pretrained_cfg(tag).to_dict()
        return {k: cfg[k] for k in ('input_size', 'interpolation', 'crop_pct', 'mean', 'std')}
    return {}


def _load(folder: Path) -> torch.nn.Module:
    return timm.create_model(f'local-dir:{folder}', pretrained=True).eval()


@pytest.mark.parametrize('case, tag', [('cifar', 'darts_c10'), ('gdas_cifar', 'c10')])
def test_cifar_checkpoint_gives_the_authors_logits_and_auxiliary_head(converted, case, tag, one_thread):
    model = _load(converted[case])
    assert model.pretrained_cfg['tag'] == tag and model.aux_head is not None
    with torch.no_grad():
        torch.testing.assert_close(model(EXPECTED['cifar_input']), EXPECTED[f'{case}_logits'], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(model.aux_head(EXPECTED['cifar_aux_input']), EXPECTED[f'{case}_aux_logits'],
                                   atol=1e-5, rtol=1e-5)


def test_fairdarts_checkpoint_gives_the_authors_logits(converted, one_thread):
    model = _load(converted['fairdarts_cifar'])
    assert model.pretrained_cfg['tag'] == 'fairdarts_c10' and model.genotype.drop_path == 'node'
    with torch.no_grad():
        torch.testing.assert_close(model(EXPECTED['cifar_input']), EXPECTED['fairdarts_cifar_logits'], atol=1e-5,
                                   rtol=1e-5)
    card = (converted['fairdarts_cifar'] / 'README.md').read_text()
    assert 'FairDARTS-a.tar' in card and '97.46 %' in card and 'no licence file' in card


@pytest.mark.parametrize('case', ['cifar', 'imagenet', 'pdarts_cifar', 'pdarts_imagenet', 'fairdarts_cifar',
                                  'gdas_cifar', 'gdas_imagenet', 'gdas_original_imagenet', 'snas_cifar',
                                  'snas_imagenet', 'cdarts_cifar', 'cdarts_imagenet', *DARTS_COPIES])
def test_real_images_through_the_tags_preprocessing_give_the_authors_logits(converted, case, one_thread):
    """The tag's pretrained cfg is the authors' evaluation transform: timm's eval transform built from it turns the
    real sample images into exactly the inputs their script fed their network (GDAS's untagged networks: with its
    normalisation, :func:`_preprocessing`)."""
    samples = _samples()
    family = case.split('_')[-1]
    model = _load(converted[case])
    transform = create_transform(**resolve_data_config(_preprocessing(case), model=model))
    x = torch.stack([transform(Image.open(samples / name).convert('RGB')) for name in META[family]['samples']])
    with torch.no_grad():
        logits = model(x)
    expected = EXPECTED[f'{case}_sample_logits']
    # kernels sum float32 in CPU-dependent orders, and untrained deep networks reach logits of 1e6 and more (CDARTS's
    # 14 ImageNet cells): the tolerance is relative to the largest logit, far below what a wrong mapping changes
    torch.testing.assert_close(logits, expected, atol=1e-4 * max(1.0, expected.abs().max().item()), rtol=1e-4)
    assert logits.shape == (len(META[family]['samples']), META[family]['num_classes'])


def test_snas_checkpoint_gives_the_authors_logits_and_its_tag_checks_the_published_md5(converted, tmp_path,
                                                                                        one_thread):
    model = _load(converted['snas_cifar'])
    assert model.genotype.name == 'snas_mild' and model.channels == SNAS_META['cifar']['C']
    with torch.no_grad():
        torch.testing.assert_close(model(EXPECTED['snas_cifar_input']), EXPECTED['snas_cifar_logits'], atol=1e-5,
                                   rtol=1e-5)
        torch.testing.assert_close(model.aux_head(EXPECTED['snas_cifar_aux_input']), EXPECTED['snas_cifar_aux_logits'],
                                   atol=1e-5, rtol=1e-5)
    features = timm.create_model(f'local-dir:{converted["snas_cifar"]}', pretrained=True, features_only=True).eval()
    assert [m.shape[1] for m in features(EXPECTED['snas_cifar_input'])] == features.feature_info.channels()
    known = AUTHORS_CHECKPOINTS['snas_mild_cifar10.snas_c10']
    with pytest.raises(CLIError, match=rf'MD5 [0-9a-f]{{32}} is not the one the authors publish .*\({known.md5}\); '
                                       'nothing was written'):
        convert(str(SNAS['cifar'][1]), known.name, str(tmp_path / 'tag'))
    # by structure: pools with a batch norm are not DARTS's, and SNAS's cell needs every predecessor of every node
    with pytest.raises(CLIError, match=r'batch norm after max_pool_3x3, avg_pool_3x3 has no counterpart in the '
                                       r'darts layout \(--layout snas'):
        convert(str(SNAS['cifar'][1]), 'snas_mild_cifar10', str(tmp_path / 'darts'))
    with pytest.raises(CLIError, match=r"node 1 of the normal cell of darts_v2 reads \[0, 1\]; SNAS's cell "
                                       r"\(model_edge_all.py\) has one connection from each of its 3 predecessors"):
        convert(str(SNAS['cifar'][1]), 'darts_v2_cifar10', str(tmp_path / 'v2'), layout='snas')
    assert not any((tmp_path / name).exists() for name in ('tag', 'darts', 'v2'))


def test_sgas_and_noisydarts_checkpoints_give_the_authors_logits_and_sgas_imagenet_head_is_dropped(converted,
                                                                                                  tmp_path, one_thread):
    """The darts layout on SGAS's and NoisyDARTS's own copies of DARTS's classes. SGAS's ImageNet auxiliary head has a
    batch norm ours lacks: its tag drops the head unasked and refuses to keep it; untagged, the file is refused."""
    for case, genotype in (('sgas_cifar', 'sgas_cri1'), ('noisydarts_cifar', 'noisy_darts_a')):
        model = _load(converted[case])
        assert model.genotype.name == genotype and model.aux_head is not None
        with torch.no_grad():
            torch.testing.assert_close(model(EXPECTED['sgas_cifar_input']), EXPECTED[f'{case}_logits'], atol=1e-5,
                                       rtol=1e-5)
    with torch.no_grad():
        torch.testing.assert_close(_load(converted['sgas_cifar']).aux_head(EXPECTED['sgas_cifar_aux_input']),
                                   EXPECTED['sgas_cifar_aux_logits'], atol=1e-5, rtol=1e-5)
    imagenet = _load(converted['sgas_imagenet'])
    assert imagenet.genotype.name == 'sgas_cri2_imagenet' and imagenet.aux_head is None
    assert 'auxiliary head dropped' in (converted['sgas_imagenet'] / 'README.md').read_text()
    tag, src = DARTS_COPIES['sgas_imagenet']
    with pytest.raises(CLIError, match=r"--aux keep: SGAS's AuxiliaryHeadImageNet .* batch norm after its "
                                       r'768-channel conv.*can only drop it'):
        convert(str(src), tag, str(tmp_path / 'keep'), keep_aux=True)
    with pytest.raises(CLIError, match=r'5 unexpected: auxiliary_head\.features\.6\.weight.*pass --aux drop'):
        convert(str(src), 'sgas_cri2_imagenet', str(tmp_path / 'untagged'))
    assert not any((tmp_path / name).exists() for name in ('keep', 'untagged'))


def test_cdarts_checkpoint_gives_the_authors_logits_in_its_own_layout(converted, tmp_path, one_thread):
    """CDARTS's stages, dag and pt.darts op classes mapped by structure; its retrain.py's periodic checkpoint
    (``{'model_main': ...}``) unwrapped; a CDARTS file under the default layout names the one that reads it."""
    model = _load(converted['cdarts_cifar'])
    assert model.genotype.name == 'cdarts_cifar' and len(model.cells) == CDARTS_META['cifar']['layers']
    with torch.no_grad():
        torch.testing.assert_close(model(EXPECTED['cdarts_cifar_input']), EXPECTED['cdarts_cifar_logits'], atol=1e-5,
                                   rtol=1e-5)
        torch.testing.assert_close(model.aux_head(EXPECTED['cdarts_cifar_aux_input']),
                                   EXPECTED['cdarts_cifar_aux_logits'], atol=1e-5, rtol=1e-5)
    state = torch.load(CDARTS['imagenet'][1], weights_only=True)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1, momentum=0.9)
    torch.save({'model_main': state, 'optimizer': opt.state_dict(), 'lr_scheduler': {'last_epoch': 3}},
               tmp_path / 'checkpoint.pth.tar')
    folder, _ = convert(str(tmp_path / 'checkpoint.pth.tar'), 'cdarts_imagenet', str(tmp_path / 'wrapped'),
                        layout='cdarts')
    ours, wrapped = (load_file(str(f / 'model.safetensors')) for f in (converted['cdarts_imagenet'], folder))
    assert ours.keys() == wrapped.keys() and all(torch.equal(ours[k], wrapped[k]) for k in ours)
    with pytest.raises(CLIError, match=r"not a DARTS-layout state dict .*\(it reads as --layout cdarts\)"):
        convert(str(CDARTS['cifar'][1]), 'cdarts_cifar10', str(tmp_path / 'darts'))
    assert not (tmp_path / 'darts').exists()
    folder, _ = convert(str(CDARTS['cifar'][1]), 'cdarts_cifar10', str(tmp_path / 'noaux'), layout='cdarts',
                        keep_aux=False)  # its head is under aux_head., not DARTS's auxiliary_head.
    assert not any(k.startswith('aux_head') for k in load_file(str(folder / 'model.safetensors')))


def test_old_wrapped_dataparallel_file_is_read_as_its_state_dict(tmp_path):
    src = read_source(str(IMAGENET))
    assert src.unwrapped == ('state_dict',) and src.prefix == 'module.'
    assert not any(k.endswith('num_batches_tracked') for k in src.state)  # as PyTorch 0.3 wrote it
    assert len(src.sha256) == 64
    # the pickle format of PyTorch before 1.6 (torch.save's documented legacy switch)
    torch.save(torch.load(IMAGENET, weights_only=True), tmp_path / 'legacy.pt', _use_new_zipfile_serialization=False)
    legacy = read_source(str(tmp_path / 'legacy.pt'))
    assert legacy.state.keys() == src.state.keys() and all(torch.equal(legacy.state[k], v)
                                                            for k, v in src.state.items())


@pytest.mark.parametrize('case, tag', [('cifar', TAGS['cifar']), ('gdas_original_imagenet', GDAS_ORIGINAL[0])])
def test_registry_tag_loads_the_cached_conversion_and_keeps_the_timm_contract(converted, case, tag, tmp_path,
                                                                              monkeypatch, one_thread):
    monkeypatch.setattr(constants, 'HF_HUB_OFFLINE', True)
    args = json.loads((converted[case] / 'config.json').read_text())['model_args']
    # the fixture's 10 classes: timm keeps a pretrained classifier only at the cfg's class count
    size = dict(channels=args['channels'], layers=args['layers'], num_classes=args['num_classes'],
                pretrained_cfg_overlay=dict(num_classes=args['num_classes']), cache_dir=str(tmp_path))
    file = re.escape(AUTHORS_CHECKPOINTS[tag].file)
    with pytest.raises(WeightsNotPublishedError, match=rf'{file}.*entrannas convert {file} --model {re.escape(tag)}'):
        timm.create_model(tag, pretrained=True, **size)
    card, known = (converted[case] / 'README.md').read_text(), AUTHORS_CHECKPOINTS[tag]
    assert known.file in card and known.reported in card and known.license_text in card
    install_in_cache(converted[case], f'entrannas/{tag}', cache_dir=tmp_path)
    model = timm.create_model(tag, pretrained=True, auxiliary=bool(args.get('auxiliary')), **size).eval()
    if case == 'cifar':
        x, expected = EXPECTED['cifar_input'], EXPECTED['cifar_logits']
    else:  # the authors' logits on real images: test_real_images_through_the_tags_preprocessing_...
        x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
        expected = _load(converted[case])(x).detach()
    with torch.no_grad():
        torch.testing.assert_close(model(x), expected, atol=1e-5, rtol=1e-5)
    features = timm.create_model(tag, pretrained=True, features_only=True, **size).eval()
    maps = features(x)
    assert [m.shape[1] for m in maps] == features.feature_info.channels()
    model.reset_classifier(3)
    assert model.eval()(x).shape == (len(x), 3)


@pytest.mark.parametrize('family', ['cifar', 'imagenet'])
def test_gdas_conversion_keeps_the_timm_contract(converted, family, one_thread):
    """AutoDL-Projects's GDAS networks (--layout gdas, no tag) through timm's local-dir loader."""
    folder = converted[f'gdas_{family}']
    x = torch.randn(1, 3, *((32, 32) if family == 'cifar' else (224, 224)), generator=torch.Generator().manual_seed(1))
    features = timm.create_model(f'local-dir:{folder}', pretrained=True, features_only=True).eval()
    assert [m.shape[1] for m in features(x)] == features.feature_info.channels()
    model = _load(folder)
    assert model.genotype.name == 'gdas_v1' and model.channels == GDAS_META['gdas'][family]['C']
    model.reset_classifier(3)
    assert model.eval()(x).shape == (1, 3)


def test_wrong_cell_or_tensors_stop_before_anything_is_written(tmp_path):
    with pytest.raises(CLIError, match=r'does not fit darts_v1 .* missing: cells\.0\._ops\.\d+\.op.* '
                                       r'unexpected: .*nothing was written'):
        convert(str(CIFAR), 'darts_v1_cifar10', str(tmp_path / 'v1'))
    assert not (tmp_path / 'v1').exists()
    state = torch.load(CIFAR, weights_only=True)
    state['classifier.weight'] = state['classifier.weight'][:, :-1]
    state['extra.weight'] = torch.zeros(1)
    del state['cells.2.preprocess0.conv_1.weight']
    torch.save(state, tmp_path / 'broken.pt')
    with pytest.raises(CLIError) as e:
        convert(str(tmp_path / 'broken.pt'), 'darts_v2_cifar10', str(tmp_path / 'broken'))
    msg = str(e.value)
    assert ('1 mis-shaped: classifier.weight: file (10, 63), expected (10, 64)' in msg and
            '1 missing: cells.2.preprocess0.conv_1.weight' in msg and '1 unexpected: extra.weight' in msg)
    assert not (tmp_path / 'broken').exists()
    # a layout that is not the file's: refused by structure, before any tensor is read into the network
    with pytest.raises(CLIError, match=r'drops whole nodes, not paths.*--layout fairdarts'):
        convert(str(FAIRDARTS[1]), 'fairdarts_a_cifar10', str(tmp_path / 'fd'), layout='darts')
    with pytest.raises(CLIError, match=r'does not fit darts_v2 in the fairdarts layout: .*'
                                       r'missing: cells\.0\._ops\.2\.'):
        convert(str(CIFAR), 'darts_v2_cifar10', str(tmp_path / 'fd'), layout='fairdarts')
    assert not (tmp_path / 'fd').exists()


def test_gdas_files_name_their_layout_and_gdas_imagenet_auxiliary_head_is_refused_by_name(converted, tmp_path):
    """A GDAS file under another layout names the right one; GDAS's ImageNet auxiliary head, with a batch norm
    that ours (DARTS's) has not, is refused unless dropped."""
    with pytest.raises(CLIError, match=r"not a DARTS-layout state dict \(no 'stem\.0\.weight' key\).*"
                                       r"\(it reads as --layout gdas\)"):
        convert(str(GDAS['cifar'][1]), 'gdas_cifar10', str(tmp_path / 'a'))  # the default layout, darts
    with pytest.raises(CLIError, match=r'in the darts layout: .*missing: cells\.0\.preprocess0\.conv_1\.weight.*'
                                       r'pass --layout gdas\); nothing was written'):
        convert(str(GDAS['imagenet'][1]), 'gdas_imagenet', str(tmp_path / 'b'))
    with pytest.raises(CLIError, match=r'in the gdas layout: .*pass --layout darts\)'):  # the original code's file
        convert(str(GDAS_ORIGINAL[1]), GDAS_ORIGINAL[0], str(tmp_path / 'c'), layout='gdas')
    # GDAS's AuxiliaryHeadImageNet (xautodl/nas_infer_model/DXYs/head_utils.py): conv, BN, conv, BN at features 2, 3,
    # 5, 6 and a classifier, on the 64 channels of this network's second reduction
    head = torch.nn.ModuleDict(dict(features=torch.nn.Sequential(
        torch.nn.ReLU(), torch.nn.AvgPool2d(5), torch.nn.Conv2d(64, 128, 1, bias=False), torch.nn.BatchNorm2d(128),
        torch.nn.ReLU(), torch.nn.Conv2d(128, 768, 2, bias=False), torch.nn.BatchNorm2d(768)),
        classifier=torch.nn.Linear(768, 10)))
    state = dict(read_source(str(GDAS['imagenet'][1])).state,
                 **{f'auxiliary_head.{k}': v for k, v in head.state_dict().items()})
    torch.save({'base-model': state}, tmp_path / 'aux.pth')
    with pytest.raises(CLIError, match=r"GDAS's ImageNet auxiliary head .* batch norm after its 768-channel conv.*"
                                       r'pass --aux drop'):
        convert(str(tmp_path / 'aux.pth'), 'gdas_imagenet', str(tmp_path / 'd'), layout='gdas')
    assert not any((tmp_path / name).exists() for name in 'abcd')
    folder, _ = convert(str(tmp_path / 'aux.pth'), 'gdas_imagenet', str(tmp_path / 'd'), layout='gdas', keep_aux=False)
    ours, dropped = (load_file(str(f / 'model.safetensors')) for f in (converted['gdas_imagenet'], folder))
    assert ours.keys() == dropped.keys() and all(torch.equal(ours[k], dropped[k]) for k in ours)


def test_gdas_checkpoints_are_read_with_their_metadata_and_nothing_else(tmp_path):
    """GDAS's scripts store an argparse Namespace (and NumPy counts) beside the weights: read, as data only."""
    for path, wrapper in ((GDAS['cifar'][1], 'base-model'), (GDAS['imagenet'][1], 'base-model'),
                          (GDAS_ORIGINAL[1], 'state_dict')):
        with pytest.raises(pickle.UnpicklingError):  # not by torch's allow list alone
            torch.load(path, weights_only=True)
        src = read_source(str(path))
        assert src.unwrapped == (wrapper,) and src.prefix == '' and all(isinstance(v, torch.Tensor)
                                                                        for v in src.state.values())
    torch.save({'args': argparse.Namespace(model=torch.nn.Linear(2, 2)), 'state_dict': {'w': torch.zeros(1)}},
               tmp_path / 'namespace.pt')  # a Namespace is allowed, a module inside it is not
    with pytest.raises(CLIError, match='not loadable with weights_only=True'):
        read_source(str(tmp_path / 'namespace.pt'))


def test_files_that_are_not_state_dicts_are_refused_safely(tmp_path):
    torch.save(torch.nn.Linear(2, 2), tmp_path / 'module.pt')  # a whole pickled model: never unpickled
    torch.save({'epoch': 3, 'best': [1, 2]}, tmp_path / 'nostate.pt')
    (tmp_path / 'text.pt').write_text('not a checkpoint')
    for name, match in (('module.pt', 'not loadable with weights_only=True'),
                        ('nostate.pt', r"a state dict of tensors; 2 entries are not, e.g. \['epoch', 'best'\]"),
                        ('text.pt', 'not a PyTorch checkpoint'), ('missing.pt', 'not found')):
        with pytest.raises(CLIError, match=match):
            read_source(str(tmp_path / name))


def test_auxiliary_head_can_be_dropped(tmp_path):
    folder, _ = convert(str(CIFAR), TAGS['cifar'], str(tmp_path / 'noaux'), keep_aux=False)
    config = json.loads((folder / 'config.json').read_text())
    assert not config['model_args'].get('auxiliary')
    assert not any(k.startswith('aux_head') for k in load_file(str(folder / 'model.safetensors')))
    card = (folder / 'README.md').read_text()
    assert 'auxiliary head dropped' in card and '2.63 % test error' in card and 'cifar10_model.pt' in card


def test_command_converts_and_validates_on_real_images(tmp_path, capsys, one_thread):
    """A smoke test of --validate on the real CIFAR-10 samples (an ImageFolder of 10 classes; the two classes the
    samples lack hold a CIFAR-100 sample): real accuracy needs the real weights."""
    samples = _samples()
    data = tmp_path / 'data'
    for f in samples.glob('cifar10_*.png'):
        (data / 'val' / f.stem.split('_')[-1]).mkdir(parents=True, exist_ok=True)
        (data / 'val' / f.stem.split('_')[-1] / f.name).write_bytes(f.read_bytes())
    for label, f in zip(('2', '4'), sorted(samples.glob('cifar100_*.png'))):
        (data / 'val' / label).mkdir(parents=True, exist_ok=True)
        (data / 'val' / label / f.name).write_bytes(f.read_bytes())
    out = tmp_path / 'hub'
    assert main(['convert', str(CIFAR), '--model', TAGS['cifar'], '-o', str(out), '--validate', str(data),
                 '--validate-dataset', 'imagefolder']) == 0
    text = capsys.readouterr().out
    assert f'sha256 {read_source(str(CIFAR)).sha256}' in text and 'imagefolder test (22 images): top-1' in text
    assert main(['convert', str(CIFAR), '--model', TAGS['cifar'], '-o', str(out)]) == 2  # no silent overwrite
    assert 'already holds' in capsys.readouterr().err


@pytest.mark.parametrize('layout', ['darts', 'cdarts'])
def test_the_authors_preprocessing_of_an_input_no_node_reads_is_dropped_and_nothing_else(layout):
    from entrannas_timm import Genotype
    from entrannas_timm.hub.convert import LAYOUTS, convert_state
    cell = lambda nodes: dict(nodes=nodes, concat=list(range(2, 2 + len(nodes))))
    reads_both = [[['sep_conv_3x3', 0], ['sep_conv_3x3', 1]], [['skip_connect', 0], ['dil_conv_3x3', 2]]]
    reads_only_0 = [[['max_pool_3x3', 0], ['sep_conv_3x3', 0]], [['skip_connect', 2], ['avg_pool_3x3', 0]]]
    g = Genotype.from_dict(dict(schema_version=1, name='unread', normal=cell(reads_both), reduce=cell(reads_only_0)))
    model = timm.create_model('cellnet_cifar', genotype=g, num_classes=10, channels=8, layers=5).eval()
    assert [c.unused_inputs for c in model.cells] == [[], [1], [], [1], []]
    theirs = {LAYOUTS[layout].keys(model)[k]: v for k, v in model.state_dict().items()}
    # the authors' network preprocesses the unread input all the same (a 1x1 ReLUConvBN, as input 1 always is)
    for i in (1, 3):
        prefix = LAYOUTS[layout].preprocess(model, i, 1)
        theirs[prefix + ('net' if layout == 'cdarts' else 'op') + '.1.weight'] = torch.zeros(8, 8, 1, 1)
    out = convert_state(model, theirs, layout)
    assert all(torch.equal(out[k], v) for k, v in model.state_dict().items())
    with pytest.raises(CLIError, match=r'1 unexpected: .*preproc.*extra'):
        convert_state(model, {**theirs, LAYOUTS[layout].preprocess(model, 2, 0) + 'extra': torch.zeros(1)}, layout)
    # given the other layout, the hint still names the file's own (its unread preprocessing counts there too)
    other = 'cdarts' if layout == 'darts' else 'darts'
    with pytest.raises(CLIError, match=rf'its keys are the {layout} layout\'s: pass --layout {layout}'):
        convert_state(model, theirs, other)
