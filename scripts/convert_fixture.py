"""Record the fixture of ``entrannas convert`` from the authors' own evaluation classes (tests/fixtures/convert/).

    python scripts/convert_fixture.py --darts /path/to/darts/cnn --pdarts /path/to/pdarts \
        --fairdarts /path/to/FairDARTS/fairdarts --gdas /path/to/AutoDL-Projects --gdas-original /path/to/GDAS-af7e82a \
        --snas /path/to/SNAS-Series/SNAS --cdarts /path/to/Cream/CDARTS --sgas /path/to/sgas/cnn \
        --noisydarts /path/to/NoisyDARTS

Each group of checkouts (DARTS, P-DARTS and FairDARTS; the two GDAS ones; SNAS; CDARTS; SGAS and NoisyDARTS) writes
only its own files, so a group may be re-recorded alone.

DARTS's ``NetworkCIFAR`` and ``NetworkImageNet`` (github.com/quark0/darts, cnn/model.py, imported from that
checkout, never copied) are built at a small size with the DARTS V2 cell (the CIFAR one with its auxiliary
head), random weights and random batch-norm statistics, and saved the way the authors save them: the CIFAR
network as ``torch.save(model.state_dict())`` (cnn/utils.py), the ImageNet network as DataParallel's state dict
inside ``{'epoch', 'state_dict', 'best_acc_top1', 'optimizer'}`` (cnn/train_imagenet.py), here without
``num_batches_tracked`` as files of PyTorch 0.3 have. Their eval-mode logits are recorded on the real sample
images foolbox ships (and, for CIFAR, a fixed random batch), preprocessed by the authors' evaluation transforms
(cnn/test.py, cnn/test_imagenet.py), and the CIFAR auxiliary head's output on a fixed feature map.
P-DARTS's copy of those classes (github.com/chenxin061/pdarts, model.py) is recorded the same way with its own
cell, without auxiliary heads. FairDARTS's ``NetworkCIFAR`` with its ``DCOCell``
(github.com/xiaomi-automl/FairDARTS, fairdarts/model.py; ``parse_method='threshold'`` as its README's evaluation
command) is recorded with the FairDARTS-a cell (a node without inputs, nodes with one), saved as its train.py saves
(``{'epoch', 'dur_time', 'state_dict', ..., 'scheduler'}``). GDAS's networks, with its GDAS_V1 cell, go to files of
their own (gdas_*; the files above stay as they were): the ``NetworkCIFAR`` (with its auxiliary head) and
``NetworkImageNet`` of github.com/D-X-Y/AutoDL-Projects (xautodl/nas_infer_model/DXYs, built by its
``obtain_nas_infer_model`` from its configs/archs/NAS-*-GDAS_V1.config), saved as its exps/basic/basic-main.py
saves (``{'epoch', 'args', ..., 'base-model', 'scheduler', 'optimizer'}``), and the ``NetworkImageNet`` of GDAS's
original code (lib/nas of that repository at commit af7e82a; its released ImageNet file is one), saved as its
exps-cnn/train_utils_imagenet.py saves (``{'epoch', 'args', 'state_dict', 'optimizer', 'scheduler',
'accuracies'}``; in torch's reproducible zip format, where PyTorch 1.0 wrote a pickle: tests/test_convert.py reads
that format too). Their inputs come from GDAS's own ``get_datasets`` evaluation transforms. The ImageNet networks
have no auxiliary head (0.4M weights each; tests/test_convert.py refuses GDAS's, which ours cannot hold).
SNAS's ``NetworkCIFAR`` (with its auxiliary head) and ``NetworkImageNet`` of github.com/SNAS-Series/SNAS-Series
(SNAS/model_edge_all.py, what its README's evaluation and released file use) are built with its SNAS_mild_edge_all
cell and saved as its train_edge_all.py saves (the bare state dict), in snas_* files. CDARTS's networks
(github.com/microsoft/Cream, CDARTS/lib/models: ModelTest's parts in ModelAug, with the CIFAR auxiliary head; at its
fixed depths, 20 and 14 cells) with its bundled cells, saved as its retrain.py saves, go to cdarts_* files. SGAS's
copy of DARTS's classes (github.com/lightaime/sgas, cnn/model.py: its ImageNet auxiliary head has a batch norm
DARTS's comments out) with its best cells, both networks with their auxiliary heads, saved as its train.py (the bare
state dict) and train_imagenet.py (DataParallel's keys in a checkpoint dict) save, and NoisyDARTS's
(github.com/xiaomi-automl/NoisyDARTS, model.py) CIFAR network with its NoisyDARTS-a cell, saved as its train.py
saves (the bare state dict), go to sgas_* files.
``tests/test_convert.py`` converts every file and must reproduce every output.
"""
from __future__ import annotations

import argparse
import builtins
import importlib
import importlib.util
import json
import sys
import types
from pathlib import Path
from typing import Any, Callable, Dict, List

import torch
import torch.nn as nn
from safetensors.torch import load_file, save

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / 'tests' / 'fixtures' / 'convert'
# small networks; the auxiliary head (about 0.4M weights whatever the size) only in the CIFAR one
SIZES = {'cifar': dict(C=4, layers=5, num_classes=10, auxiliary=True),
         'imagenet': dict(C=4, layers=5, num_classes=10, auxiliary=False)}


def _randomise(model: nn.Module, seed: int) -> None:
    """Random weights and batch-norm statistics, so that eval-mode logits read every tensor."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0., 0.1, generator=g)
                m.running_var.uniform_(0.5, 1.5, generator=g)
                if m.affine:
                    m.weight.uniform_(0.5, 1.5, generator=g)
                    m.bias.normal_(0., 0.1, generator=g)
                m.num_batches_tracked.fill_(int(torch.randint(1, 1000, (), generator=g)))
            elif isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.normal_(0., (2. / m.weight[0].numel()) ** .5, generator=g)
                if m.bias is not None:
                    m.bias.normal_(0., 0.1, generator=g)


def _samples() -> Path:
    spec = importlib.util.find_spec('foolbox')
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit('foolbox (its real sample images) is not installed: pip install --no-deps foolbox')
    return Path(list(spec.submodule_search_locations)[0]) / 'data'


def _darts_transform(family: str) -> Callable:
    """The evaluation transform of the family's data set in the DARTS-family checkout imported last."""
    from torchvision import transforms as T
    authors = importlib.import_module('utils')  # the authors' utils.py, imported by their model.py
    if family == 'cifar':
        if hasattr(authors, '_data_transforms_cifar10'):  # DARTS, P-DARTS
            return authors._data_transforms_cifar10(argparse.Namespace(cutout=False, cutout_length=16))[1]
        # FairDARTS (fairdarts/utils.py, as evaluate_model.py calls it)
        return authors._data_transforms_cifar(argparse.Namespace(dataset='cifar10', auto_aug=False, cutout=False))[1]
    # cnn/test_imagenet.py
    return T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(),
                      T.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])])


def _images(family: str, transform: Any = None) -> tuple[List[str], torch.Tensor]:
    """The foolbox samples of the family's data set through the authors' evaluation transform (``transform``, or
    :func:`_darts_transform`'s)."""
    from PIL import Image
    files = sorted(_samples().glob('cifar10_*.png' if family == 'cifar' else 'imagenet_*.jpg'))
    transform = transform or _darts_transform(family)
    return [f.name for f in files], torch.stack([transform(Image.open(f).convert('RGB')) for f in files])


class _TestSet(Exception):
    """Raised by the stand-in for torchvision's data sets, with the evaluation transform it was given."""


def _gdas_transform(datasets: types.ModuleType, name: str) -> Callable:
    """The evaluation transform that GDAS's ``get_datasets`` (``datasets``, its module) builds for data set
    ``name``: torchvision's data sets are stood in for, and the test set's raises with its transform (no data is
    read)."""
    def dataset(root, *args, train=True, transform=None, **kwargs):
        if not train or str(root).endswith('val'):  # CIFAR10(root, train=False, ...), ImageFolder(root/val, t)
            raise _TestSet(transform or args[0])
    real, datasets.dset = datasets.dset, types.SimpleNamespace(CIFAR10=dataset, ImageFolder=dataset)
    try:
        datasets.get_datasets(name, '/no/data', -1)
    except _TestSet as e:
        return e.args[0]
    finally:
        datasets.dset = real
    raise SystemExit(f'{datasets.__name__}.get_datasets({name!r}) built no test set')


def _authors(folder: Path):
    """The authors' ``model`` and ``genotypes`` modules of one checkout (their module names clash between repos)."""
    for name in ('model', 'genotypes', 'operations', 'utils', 'auto_augment'):
        sys.modules.pop(name, None)
    sys.path.insert(0, str(folder))
    try:
        return importlib.import_module('model'), importlib.import_module('genotypes')
    finally:
        sys.path.remove(str(folder))


def _network(model_py, family: str, size: dict, genotype, seed: int, *extra) -> nn.Module:
    cls = model_py.NetworkCIFAR if family == 'cifar' else model_py.NetworkImageNet
    torch.manual_seed(seed)
    net = cls(size['C'], size['num_classes'], size['layers'], size['auxiliary'], genotype, *extra)
    net.drop_path_prob = 0.
    _randomise(net, seed)
    return net.eval()


def _wrapped(net: nn.Module) -> dict:
    """As cnn/train_imagenet.py saves: DataParallel's keys in a checkpoint dict (here without num_batches_tracked)."""
    old = {f'module.{k}': v for k, v in net.state_dict().items() if not k.endswith('num_batches_tracked')}
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    return {'epoch': 3, 'state_dict': old, 'best_acc_top1': 0.5, 'optimizer': opt.state_dict()}


GDAS_DATA = {'cifar': ('CIFAR', 'cifar10', 96, 16, 4), 'imagenet': ('IMAGENET', 'imagenet-1k', 256, -1, 28)}
"""Per family, GDAS's config name (configs/*/NAS-<name>-*.config), data set name, and the batch size, cutout length
and workers of docs/CVPR-2019-GDAS.md's scripts/nas-infer-train.sh command."""


def _gdas(root: Path, inputs: Dict[str, torch.Tensor], tensors: Dict[str, torch.Tensor]) -> Dict[str, Any]:
    """AutoDL-Projects's GDAS networks (xautodl/nas_infer_model/DXYs), as exps/basic/basic-main.py builds and saves
    them; their outputs on the DARTS networks' ``inputs`` and the samples into ``tensors``, their sizes returned."""
    sys.path.insert(0, str(root))
    try:
        from xautodl.config_utils import load_config, obtain_basic_args
        from xautodl.datasets import get_dataset_with_transform
        from xautodl.nas_infer_model import obtain_nas_infer_model
        from xautodl.procedures import get_optim_scheduler
        from xautodl.utils import get_model_infos
    finally:
        sys.path.remove(str(root))
    meta: Dict[str, Any] = {'source': 'github.com/D-X-Y/AutoDL-Projects xautodl/nas_infer_model/DXYs',
                            'genotype': 'GDAS_V1'}
    for seed, (family, size) in enumerate(SIZES.items(), start=5):
        base, dataset, batch, cutout, workers = GDAS_DATA[family]
        size = dict(size, auxiliary=family == 'cifar')  # their config's N counts the cells of one stage
        extra = {'class_num': size['num_classes'], 'ichannel': size['C'], 'layers': (size['layers'] - 2) // 3,
                 'auxiliary': size['auxiliary']}
        model_config = load_config(root / 'configs' / 'archs' / f'NAS-{base}-GDAS_V1.config', extra, None)
        optim_config = load_config(root / 'configs' / 'opts' / f'NAS-{base}.config',
                                   {'class_num': size['num_classes']}, None)
        torch.manual_seed(seed)
        net = obtain_nas_infer_model(model_config)
        _randomise(net, seed)
        net.eval()
        names, images = _images(family, _gdas_transform(get_dataset_with_transform, dataset))
        with torch.no_grad():  # their forward returns (features, logits)
            tensors[f'gdas_{family}_sample_logits'] = net(images)[1]
            if family == 'cifar':
                tensors['gdas_cifar_logits'] = net(inputs['cifar_input'])[1]
                tensors['gdas_cifar_aux_logits'] = net.auxiliary_head(inputs['cifar_aux_input'])
        # scripts/nas-infer-train.sh's command line, with a fixed seed (-1 draws one)
        argv, sys.argv = sys.argv, [
            'basic-main.py', '--dataset', dataset, '--data_path', '/data', '--model_source', 'nas',
            '--model_config', f'./configs/archs/NAS-{base}-GDAS_V1.config',
            '--optim_config', f'./configs/opts/NAS-{base}.config', '--procedure', 'basic',
            '--save_dir', f'./output/nas-infer/{dataset}-GDAS_V1-{batch}', '--cutout_length', str(cutout),
            '--batch_size', str(batch), '--rand_seed', '1', '--workers', str(workers), '--eval_frequency', '1',
            '--print_freq', '500', '--print_freq_eval', '1000']
        try:
            args = obtain_basic_args()
        finally:
            sys.argv = argv
        optimizer, scheduler, _ = get_optim_scheduler(net.parameters(), optim_config)
        flop, param = get_model_infos(net, (1, 3, 32, 32) if family == 'cifar' else (1, 3, 224, 224))
        torch.save({'epoch': 0, 'args': args, 'max_bytes': {0: 1e9}, 'FLOP': flop, 'PARAM': param,
                    'valid_accuracies': {'best': 50.0, 0: 50.0}, 'model-config': model_config._asdict(),
                    'optim-config': optim_config._asdict(), 'base-model': net.state_dict(),
                    'scheduler': scheduler.state_dict(), 'optimizer': optimizer.state_dict()},
                   OUT / f'gdas_{family}_seed-1-basic.pth')  # basic-main.py, save_checkpoint to logger.path('model')
        meta[family] = dict(size, samples=names, N=extra['layers'])
    return meta


def _gdas_original(root: Path, tensors: Dict[str, torch.Tensor]) -> Dict[str, Any]:
    """GDAS's original ``NetworkImageNet`` (lib/nas), as exps-cnn/train_utils_imagenet.py builds and saves it."""
    for name in ('utils', 'datasets', 'nas'):  # module names of the other checkouts
        sys.modules.pop(name, None)
    stub = 'cv2' not in sys.modules and importlib.util.find_spec('cv2') is None
    if stub:  # lib/datasets/__init__.py imports its TieredImageNet, which imports OpenCV; nothing here uses it
        sys.modules['cv2'] = types.ModuleType('cv2')
    sys.path.insert(0, str(root / 'lib'))
    try:
        nas = importlib.import_module('nas')
        datasets = importlib.import_module('datasets.get_dataset_with_transform')
    finally:
        sys.path.remove(str(root / 'lib'))
        if stub:
            del sys.modules['cv2']
    size = dict(SIZES['imagenet'])
    torch.manual_seed(7)
    net = nas.NetworkImageNet(size['C'], size['num_classes'], size['layers'], size['auxiliary'],
                              nas.model_types['GDAS_V1'])
    _randomise(net, 7)
    net.eval()
    images = _images('imagenet', _gdas_transform(datasets, 'imagenet-1k'))[1]
    with torch.no_grad():
        tensors['gdas_original_imagenet_sample_logits'] = net(images)
    # scripts-cnn/train-imagenet.sh's command line (exps-cnn/train_base.py's arguments)
    args = argparse.Namespace(data_path='/data/ILSVRC2012', dataset='imagenet', arch='GDAS_V1', grad_clip=5.0,
                              init_channels=size['C'], layers=size['layers'],
                              model_config='./configs/nas-imagenet-B256.config', workers=20,
                              save_path='./output/NAS-CNN/GDAS_V1-imagenet-C4-L5-B256-E250', print_freq=200,
                              manualSeed=1)
    optimizer = torch.optim.SGD(net.parameters(), 0.1, momentum=0.9, weight_decay=3e-5, nesterov=True)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1, gamma=0.97)
    torch.save({'epoch': 250, 'args': args, 'state_dict': net.state_dict(), 'optimizer': optimizer.state_dict(),
                'scheduler': scheduler.state_dict(), 'accuracies': {249: (74.0, 91.5)}},
               OUT / 'gdas_original_imagenet_model.pth')
    return {'source': 'github.com/D-X-Y/AutoDL-Projects lib/nas at af7e82a (GDAS\'s original code)',
            'genotype': 'GDAS_V1', 'imagenet': size}


def _snas(folder: Path) -> tuple[Dict[str, torch.Tensor], Dict[str, Any]]:
    """SNAS's ``model_edge_all.py`` networks with its SNAS_mild_edge_all cell, saved as its train_edge_all.py saves
    (utils.save: the bare state dict); their outputs and sizes."""
    for name in ('model', 'model_edge_all', 'genotypes', 'operations', 'utils'):
        sys.modules.pop(name, None)
    builtins.xrange = range  # type: ignore[attr-defined]  # its NetworkImageNet is Python 2 code
    sys.path.insert(0, str(folder))
    try:
        model_py, genotypes = importlib.import_module('model_edge_all'), importlib.import_module('genotypes')
    finally:
        sys.path.remove(str(folder))
    tensors: Dict[str, torch.Tensor] = {}
    meta: Dict[str, Any] = {'source': 'github.com/SNAS-Series/SNAS-Series SNAS/model_edge_all.py',
                            'genotype': 'SNAS_mild_edge_all'}
    for seed, (family, size) in enumerate(SIZES.items(), start=8):
        net = _network(model_py, family, size, genotypes.SNAS_mild_edge_all, seed)
        names, images = _images(family)  # its utils.py: DARTS's CIFAR transform; DARTS's ImageNet one
        with torch.no_grad():
            tensors[f'snas_{family}_sample_logits'] = net(images)[0]
            if family == 'cifar':
                x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(300))
                tensors['snas_cifar_input'], tensors['snas_cifar_logits'] = x, net(x)[0]
                f = torch.randn(2, net.auxiliary_head.features[2].in_channels, 8, 8,
                                generator=torch.Generator().manual_seed(400))
                tensors['snas_cifar_aux_input'], tensors['snas_cifar_aux_logits'] = f, net.auxiliary_head(f)
        torch.save(net.state_dict(), OUT / f'snas_{family}_weights.pt')
        meta[family] = dict(size, samples=names)
    return tensors, meta


def _cdarts(folder: Path) -> tuple[Dict[str, torch.Tensor], Dict[str, Any]]:
    """CDARTS's evaluation networks (microsoft/Cream CDARTS/lib/models) with its bundled cells (CDARTS/cells/
    <family>_genotype.json, one genotype per stage, read by its own ``from_str``): ``ModelTest``'s stem, stages and
    classifier composed into ``ModelAug`` with the auxiliary head its controller's ``build_augment_model`` adds
    (CIFAR only), saved as its retrain.py saves (``utils.save_checkpoint``: the bare state dict)."""
    from torchvision import transforms as T
    for name in [m for m in sys.modules if m == 'lib' or m.startswith('lib.')]:
        del sys.modules[name]
    sys.path.insert(0, str(folder))
    try:
        gt = importlib.import_module('lib.utils.genotypes')
        ModelTest = importlib.import_module('lib.models.model_test').ModelTest
        ModelAug = importlib.import_module('lib.models.model_augment').ModelAug
        heads = importlib.import_module('lib.models.aux_head')
        cifar_transform = importlib.import_module('lib.datasets.cifar').data_transforms_cifar(
            argparse.Namespace(use_aa=False))[1]
    finally:
        sys.path.remove(str(folder))
    # lib/datasets/imagenet.py's test transform
    transforms = {'cifar': cifar_transform, 'imagenet': T.Compose([
        T.Resize(256), T.CenterCrop(224), T.ToTensor(),
        T.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])])}
    tensors: Dict[str, torch.Tensor] = {}
    meta: Dict[str, Any] = {'source': 'github.com/microsoft/Cream CDARTS/lib/models (ModelTest, ModelAug)'}
    for seed, family in enumerate(SIZES, start=10):
        cells = json.loads((folder / 'CDARTS' / 'cells' / f'{family}_genotype.json').read_text())
        genotypes = {int(k): gt.from_str(v) for k, v in cells.items()}
        torch.manual_seed(seed)
        size = dict(C=SIZES[family]['C'], num_classes=SIZES[family]['num_classes'], auxiliary=family == 'cifar',
                    layers=20 if family == 'cifar' else 14)  # its stage lengths are fixed: 7, 7, 6 and 5, 5, 4
        test = ModelTest(genotypes, family, init_channel=size['C'], num_classes=size['num_classes'])
        aux = None
        if size['auxiliary']:  # build_augment_model: AuxiliaryHeadCIFAR(c_aux, 5, n) on the second stage's output
            c_aux = test.nas_layers[2][0].preproc1.net[1].in_channels
            aux = heads.AuxiliaryHeadCIFAR(c_aux, 5, size['num_classes'])
        net = ModelAug(test.feature_extractor, test.nas_layers, test.fc, aux_head=aux)
        _randomise(net, seed)
        net.eval()
        names, images = _images(family, transforms[family])
        with torch.no_grad():  # both return (logits, auxiliary logits)
            tensors[f'cdarts_{family}_sample_logits'] = net(images)[0]
            if aux is not None:
                x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(500))
                tensors['cdarts_cifar_input'], tensors['cdarts_cifar_logits'] = x, net(x)[0]
                f = torch.randn(2, c_aux, 8, 8, generator=torch.Generator().manual_seed(600))
                tensors['cdarts_cifar_aux_input'], tensors['cdarts_cifar_aux_logits'] = f, aux(f)
        torch.save(net.state_dict(), OUT / f'cdarts_{family}_best.pth.tar')
        meta[family] = dict(size, samples=names, cells=f'CDARTS/cells/{family}_genotype.json')
    return tensors, meta


def _darts_copies(sgas: Path, noisydarts: Path) -> tuple[Dict[str, torch.Tensor], Dict[str, Any]]:
    """SGAS's and NoisyDARTS's copies of DARTS's classes, with the cells of their released files; their outputs and
    sizes. SGAS's ImageNet network keeps its auxiliary head (the one with a batch norm ours lacks), so that the test
    sees the tag drop it."""
    tensors: Dict[str, torch.Tensor] = {}
    meta: Dict[str, Any] = {}
    model_py, genotypes = _authors(sgas)
    cells = {'cifar': 'Cri1_CIFAR_Best', 'imagenet': 'Cri2_ImageNet_Best'}
    meta['sgas'] = {'source': 'github.com/lightaime/sgas cnn/model.py', 'genotype': cells}
    for seed, (family, size) in enumerate(SIZES.items(), start=12):
        size = dict(size, auxiliary=True)
        net = _network(model_py, family, size, getattr(genotypes, cells[family]), seed)
        names, images = _images(family)  # its utils.py: DARTS's CIFAR transform; test_imagenet.py: DARTS's ImageNet one
        with torch.no_grad():
            tensors[f'sgas_{family}_sample_logits'] = net(images)[0]
        if family == 'cifar':
            x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(700))
            f = torch.randn(2, net.auxiliary_head.features[2].in_channels, 8, 8,
                            generator=torch.Generator().manual_seed(800))
            with torch.no_grad():
                tensors.update(sgas_cifar_input=x, sgas_cifar_logits=net(x)[0], sgas_cifar_aux_input=f,
                               sgas_cifar_aux_logits=net.auxiliary_head(f))
            torch.save(net.state_dict(), OUT / 'sgas_cifar10_weights.pt')  # cnn/utils.py save()
        else:  # cnn/train_imagenet.py: utils.save_checkpoint of the DataParallel model (PyTorch 1.4: with the counts)
            opt = torch.optim.SGD(net.parameters(), lr=0.5, momentum=0.9)
            torch.save({'epoch': 250, 'state_dict': {f'module.{k}': v for k, v in net.state_dict().items()},
                        'best_acc_top1': 50.0, 'optimizer': opt.state_dict()}, OUT / 'sgas_imagenet_model_best.pth.tar')
        meta['sgas'][family] = dict(size, samples=names)
    model_py, genotypes = _authors(noisydarts)
    size = SIZES['cifar']
    net = _network(model_py, 'cifar', size, genotypes.noisy_darts_a, 14)
    with torch.no_grad():
        tensors['noisydarts_cifar_sample_logits'] = net(_images('cifar')[1])[0]
        tensors['noisydarts_cifar_logits'] = net(tensors['sgas_cifar_input'])[0]
    torch.save(net.state_dict(), OUT / 'noisydarts_cifar10_weights.pt')  # train.py: utils.save
    meta['noisydarts'] = {'source': 'github.com/xiaomi-automl/NoisyDARTS model.py', 'genotype': 'noisy_darts_a',
                          'cifar': size}
    return tensors, meta


def _write(prefix: str, tensors: Dict[str, torch.Tensor], meta: Dict[str, Any]) -> None:
    (OUT / f'{prefix}expected.safetensors').write_bytes(save({k: v.contiguous() for k, v in tensors.items()}))
    (OUT / f'{prefix}fixture.json').write_text(json.dumps(meta, indent=1) + '\n')


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--darts', type=Path, help='the cnn/ folder of a github.com/quark0/darts checkout')
    p.add_argument('--pdarts', type=Path, help='a github.com/chenxin061/pdarts checkout')
    p.add_argument('--fairdarts', type=Path, help='the fairdarts/ folder of a github.com/xiaomi-automl/FairDARTS '
                   'checkout')
    p.add_argument('--gdas', type=Path, help='a github.com/D-X-Y/AutoDL-Projects checkout (xautodl/)')
    p.add_argument('--gdas-original', type=Path,
                   help="GDAS's original code: github.com/D-X-Y/AutoDL-Projects at commit af7e82a (its lib/)")
    p.add_argument('--snas', type=Path, help='the SNAS/ folder of a github.com/SNAS-Series/SNAS-Series checkout')
    p.add_argument('--cdarts', type=Path, help='the CDARTS/ folder of a github.com/microsoft/Cream checkout')
    p.add_argument('--sgas', type=Path, help='the cnn/ folder of a github.com/lightaime/sgas checkout')
    p.add_argument('--noisydarts', type=Path, help='a github.com/xiaomi-automl/NoisyDARTS checkout')
    args = p.parse_args()
    groups = {'darts': (args.darts, args.pdarts, args.fairdarts), 'gdas': (args.gdas, args.gdas_original),
              'snas': (args.snas,), 'cdarts': (args.cdarts,), 'sgas': (args.sgas, args.noisydarts)}
    given = [g for g, paths in groups.items() if all(paths)]
    half = [g for g, paths in groups.items() if any(paths) and not all(paths)]
    if half or not given:
        p.error('give every checkout of a group: --darts --pdarts --fairdarts | --gdas --gdas-original | --snas | '
                '--cdarts | --sgas --noisydarts '
                f'(each group rewrites only its own files){"; incomplete: " + ", ".join(half) if half else ""}')
    OUT.mkdir(parents=True, exist_ok=True)
    if 'darts' in given:
        _darts_group(args)
    if 'gdas' in given:  # files of its own, so that the DARTS group's stay byte-identical
        inputs = load_file(str(OUT / 'expected.safetensors'))  # the DARTS group's random inputs
        gdas: Dict[str, torch.Tensor] = {}
        _write('gdas_', gdas, {'gdas': _gdas(args.gdas, inputs, gdas),
                               'gdas_original': _gdas_original(args.gdas_original, gdas)})
    if 'snas' in given:
        tensors, meta = _snas(args.snas)
        _write('snas_', tensors, {'snas': meta})
    if 'cdarts' in given:
        tensors, meta = _cdarts(args.cdarts)
        _write('cdarts_', tensors, {'cdarts': meta})
    if 'sgas' in given:
        tensors, meta = _darts_copies(args.sgas, args.noisydarts)
        _write('sgas_', tensors, meta)
    for f in sorted(OUT.iterdir()):
        print(f, f.stat().st_size)


def _darts_group(args: argparse.Namespace) -> None:
    """DARTS's, P-DARTS's and FairDARTS's networks: expected.safetensors and fixture.json."""
    tensors: Dict[str, torch.Tensor] = {}
    meta: Dict[str, object] = {'source': 'github.com/quark0/darts cnn/model.py', 'genotype': 'DARTS_V2'}
    model_py, genotypes = _authors(args.darts)
    for seed, (family, size) in enumerate(SIZES.items()):
        net = _network(model_py, family, size, genotypes.DARTS_V2, seed)
        names, images = _images(family)
        with torch.no_grad():
            tensors[f'{family}_sample_logits'] = net(images)[0]
            if family == 'cifar':  # a random batch too, and the auxiliary head alone on the 8x8 map it reads
                x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(100))
                tensors['cifar_input'], tensors['cifar_logits'] = x, net(x)[0]
                c_aux = net.auxiliary_head.features[2].in_channels
                f = torch.randn(2, c_aux, 8, 8, generator=torch.Generator().manual_seed(200))
                tensors['cifar_aux_input'], tensors['cifar_aux_logits'] = f, net.auxiliary_head(f)
        if family == 'cifar':
            torch.save(net.state_dict(), OUT / 'darts_cifar10_model.pt')  # cnn/utils.py save()
        else:
            torch.save(_wrapped(net), OUT / 'darts_imagenet_model.pt')
        meta[family] = dict(size, samples=names)
    # P-DARTS's own copy of the classes (its model.py and operations.py), with its cell; its test.py loads the
    # CIFAR file into a DataParallel model when a plain one refuses it, so that file has the module. prefix
    model_py, genotypes = _authors(args.pdarts)
    meta['pdarts'] = {'source': 'github.com/chenxin061/pdarts model.py', 'genotype': 'PDARTS'}
    for seed, (family, size) in enumerate(SIZES.items(), start=2):
        size = dict(size, auxiliary=False)
        net = _network(model_py, family, size, genotypes.PDARTS, seed)
        with torch.no_grad():
            tensors[f'pdarts_{family}_sample_logits'] = net(_images(family)[1])[0]
        if family == 'cifar':
            torch.save({f'module.{k}': v for k, v in net.state_dict().items()}, OUT / 'pdarts_cifar10_model.pt')
        else:
            torch.save(_wrapped(net), OUT / 'pdarts_imagenet_model.pt')
        meta['pdarts'][family] = size
    # FairDARTS's DCOCell; CIFAR only (its NetworkImageNet builds DARTS's Cell, and only CIFAR files are released)
    model_py, genotypes = _authors(args.fairdarts)
    size = dict(SIZES['cifar'], auxiliary=False)  # the same head class as DARTS's, proven above
    net = _network(model_py, 'cifar', size, genotypes.FairDARTS_a, 4, 'threshold')
    with torch.no_grad():
        tensors['fairdarts_cifar_sample_logits'] = net(_images('cifar')[1])[0]
        tensors['fairdarts_cifar_logits'] = net(tensors['cifar_input'])[0]
    opt = torch.optim.SGD(net.parameters(), lr=0.025, momentum=0.9)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, 600)
    torch.save({'epoch': 600, 'dur_time': 1.5, 'state_dict': net.state_dict(), 'drop_path_prob': 0.2,
                'best_acc_top1': 0.5, 'optimizer': opt.state_dict(), 'scheduler': sched.state_dict()},
               OUT / 'fairdarts_a_cifar10.tar')  # fairdarts/train.py, utils.save_checkpoint
    meta['fairdarts'] = {'source': 'github.com/xiaomi-automl/FairDARTS fairdarts/model.py', 'genotype': 'FairDARTS_a',
                         'parse_method': 'threshold', 'cifar': size}
    _write('', tensors, meta)


if __name__ == '__main__':
    main()
