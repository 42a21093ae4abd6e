"""Record the fixture of ``entrannas convert`` from the authors' own evaluation classes (tests/fixtures/convert/).

    python scripts/convert_fixture.py --darts /path/to/darts/cnn --pdarts /path/to/pdarts \
        --fairdarts /path/to/FairDARTS/fairdarts

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
(``{'epoch', 'dur_time', 'state_dict', ..., 'scheduler'}``). ``tests/test_convert.py`` converts every file and must
reproduce every output.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import sys
from pathlib import Path
from typing import Dict, List

import torch
import torch.nn as nn
from safetensors.torch import save

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


def _images(family: str) -> tuple[List[str], torch.Tensor]:
    """The foolbox samples of the family's data set through the authors' evaluation transform."""
    from PIL import Image
    from torchvision import transforms as T
    authors = importlib.import_module('utils')  # the authors' utils.py, imported by their model.py
    if family == 'cifar':
        files = sorted(_samples().glob('cifar10_*.png'))
        if hasattr(authors, '_data_transforms_cifar10'):  # DARTS, P-DARTS
            transform = authors._data_transforms_cifar10(argparse.Namespace(cutout=False, cutout_length=16))[1]
        else:  # FairDARTS (fairdarts/utils.py, as evaluate_model.py calls it)
            transform = authors._data_transforms_cifar(argparse.Namespace(dataset='cifar10', auto_aug=False,
                                                                          cutout=False))[1]
    else:  # cnn/test_imagenet.py
        files = sorted(_samples().glob('imagenet_*.jpg'))
        transform = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(),
                               T.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])])
    return [f.name for f in files], torch.stack([transform(Image.open(f).convert('RGB')) for f in files])


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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--darts', required=True, type=Path, help='the cnn/ folder of a github.com/quark0/darts checkout')
    p.add_argument('--pdarts', required=True, type=Path, help='a github.com/chenxin061/pdarts checkout')
    p.add_argument('--fairdarts', required=True, type=Path,
                   help='the fairdarts/ folder of a github.com/xiaomi-automl/FairDARTS checkout')
    args = p.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
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
    (OUT / 'expected.safetensors').write_bytes(save({k: v.contiguous() for k, v in tensors.items()}))
    (OUT / 'fixture.json').write_text(json.dumps(meta, indent=1) + '\n')
    for f in sorted(OUT.iterdir()):
        print(f, f.stat().st_size)


if __name__ == '__main__':
    main()
