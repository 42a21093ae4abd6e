"""The trained evaluation networks that cell authors released, as facts: which file, where, what it reports.

Each entry becomes a registry tag ``<model>.<tag>`` whose Hub repo is the one ``entrannas convert`` +
``entrannas publish`` create, with the preprocessing of the authors' own evaluation script, so the converted
weights see the images they were trained on. The files are pickles on the authors' pages; they are read only by
``entrannas convert`` (``torch.load(weights_only=True)``), never by ``pretrained=True``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

__all__ = ['AuthorsCheckpoint', 'AUTHORS_CHECKPOINTS', 'DARTS_CIFAR_MEAN', 'DARTS_CIFAR_STD', 'GDAS_CIFAR_MEAN',
           'GDAS_CIFAR_STD']

# the normalisation of DARTS's CIFAR scripts (cnn/utils.py, _data_transforms_cifar10), used by its successors
DARTS_CIFAR_MEAN = (0.49139968, 0.48215827, 0.44653124)
DARTS_CIFAR_STD = (0.24703233, 0.24348505, 0.26158768)
# GDAS's CIFAR-10 normalisation, other than DARTS's (get_datasets in lib/datasets/get_dataset_with_transform.py of its
# original code and in xautodl/datasets/ of AutoDL-Projects); its ImageNet evaluation transform is DARTS's
GDAS_CIFAR_MEAN = tuple(x / 255 for x in (125.3, 123.0, 113.9))
GDAS_CIFAR_STD = tuple(x / 255 for x in (63.0, 62.1, 66.7))
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class AuthorsCheckpoint:
    """One released file. ``layout`` names the state-dict layout ``entrannas convert`` maps (by structure);
    ``sha256`` is None until someone converting the file records it (``entrannas convert`` prints it); ``md5`` is
    the checksum the authors publish, where they do (``entrannas convert`` checks both); ``aux_head`` says why our
    auxiliary head cannot hold the file's, where it cannot (``entrannas convert`` then drops it: training-only)."""
    model: str                       # the registered architecture whose network the file fits
    tag: str                         # the registry tag: '<model>.<tag>'
    layout: str                      # key layout of the authors' evaluation class
    file: Optional[str]              # the file name the authors publish (None: not stated on their page)
    url: str                         # where they publish it
    code: str                        # the repository of the evaluation class and script
    reported: str                    # the accuracy the authors report for this file
    license: str                     # Hub licence id of that repository's licence (its weights come with it)
    license_text: str                # that licence, in words
    dataset: str                     # our data set name
    input_size: Tuple[int, int, int]
    mean: Tuple[float, ...]
    std: Tuple[float, ...]
    crop_pct: float
    interpolation: str
    sha256: Optional[str] = None
    md5: Optional[str] = None
    aux_head: Optional[str] = None

    @property
    def name(self) -> str:
        return f'{self.model}.{self.tag}'

    @property
    def file_arg(self) -> str:
        """The file as a command line names it."""
        return self.file or 'DOWNLOADED_FILE'


_CIFAR = dict(dataset='cifar10', input_size=(3, 32, 32), mean=DARTS_CIFAR_MEAN, std=DARTS_CIFAR_STD, crop_pct=1.0,
              interpolation='bilinear')
# cnn/test_imagenet.py of DARTS: Resize(256) (bilinear), CenterCrop(224), ImageNet normalisation
_IMAGENET = dict(dataset='imagenet', input_size=(3, 224, 224), mean=IMAGENET_MEAN, std=IMAGENET_STD,
                 crop_pct=0.875, interpolation='bilinear')

_NO_LICENSE = 'none stated (the repository has no licence file): ask the authors before redistributing'
# github.com/lightaime/sgas cnn/README.md, "Pretrained models" (one Google Drive folder for the four files its test
# commands name); test.py loads the bare state dict (utils.load), test_imagenet.py the 'state_dict' of a DataParallel
# model; the figures are the README's "Expected result" lines
_SGAS_FILES = 'https://drive.google.com/drive/folders/1sjLfOpYUYyBSI14G8-vFScZPRaZCXart'
_SGAS_CODE = 'https://github.com/lightaime/sgas'
_SGAS_AUX = ("SGAS's AuxiliaryHeadImageNet (cnn/model.py) has a batch norm after its 768-channel conv, which DARTS's, "
             'and ours, comment out')
_PDARTS_LICENSE = 'Huawei: non-commercial testing and evaluation purposes only (LICENSE)'
# GDAS's original code, github.com/D-X-Y/GDAS (now D-X-Y/AutoDL-Projects) at af7e82a, its last README change
_GDAS_CODE = 'https://github.com/D-X-Y/AutoDL-Projects/tree/af7e82a97b8eece27aef8aeeec5b05a0757ce22d'

AUTHORS_CHECKPOINTS: Dict[str, AuthorsCheckpoint] = {c.name: c for c in (
    # github.com/quark0/darts README, "Pretrained models"
    AuthorsCheckpoint('darts_v2_cifar10', 'darts_c10', 'darts', 'cifar10_model.pt',
                      'https://drive.google.com/file/d/1Y13i4zKGKgjtWBdC0HWLavjO7wvEiGOc/view',
                      'https://github.com/quark0/darts', '2.63 % test error on CIFAR-10 (3.3M params)',
                      'apache-2.0', 'Apache-2.0 (LICENSE)', **_CIFAR),
    AuthorsCheckpoint('darts_v2_imagenet', 'darts_in1k', 'darts', 'imagenet_model.pt',
                      'https://drive.google.com/file/d/1AKr6Y_PoYj7j0Upggyzc26W0RVdg4CVX/view',
                      'https://github.com/quark0/darts', '26.7 % top-1 / 8.7 % top-5 error on ImageNet (4.7M params)',
                      'apache-2.0', 'Apache-2.0 (LICENSE)', **_IMAGENET),
    # github.com/chenxin061/pdarts README ("We also provide pre-trained models"; Google Drive and BaiduYun)
    AuthorsCheckpoint('pdarts_cifar10', 'pdarts_c10', 'darts', None,
                      'https://drive.google.com/open?id=1XsU7Lsh8gyFvIE-mP7LATiHbBr2f_FMH',
                      'https://github.com/chenxin061/pdarts', '97.58 % test accuracy on CIFAR-10',
                      'other', _PDARTS_LICENSE, **_CIFAR),
    AuthorsCheckpoint('pdarts_imagenet', 'pdarts_in1k', 'darts', None,
                      'https://drive.google.com/open?id=1w8DiQInnDnUZCYgb49mo9YsLLBibY-gX',
                      'https://github.com/chenxin061/pdarts', '75.6 % top-1 / 92.6 % top-5 accuracy on ImageNet',
                      'other', _PDARTS_LICENSE, **_IMAGENET),
    # github.com/xiaomi-automl/FairDARTS README, "Single Model Evaluation" (best_model/, loaded by evaluate_model.py
    # with --parse_method threshold); accuracies from its "Comparison with Other State-of-the-art Results" table
    AuthorsCheckpoint('fairdarts_a_cifar10', 'fairdarts_c10', 'fairdarts', 'FairDARTS-a.tar',
                      'https://github.com/xiaomi-automl/FairDARTS/tree/master/best_model',
                      'https://github.com/xiaomi-automl/FairDARTS', '97.46 % test accuracy on CIFAR-10 (2.83M params)',
                      'unknown', _NO_LICENSE, **_CIFAR),
    AuthorsCheckpoint('fairdarts_b_cifar10', 'fairdarts_c10', 'fairdarts', 'FairDARTS-b.tar',
                      'https://github.com/xiaomi-automl/FairDARTS/tree/master/best_model',
                      'https://github.com/xiaomi-automl/FairDARTS', '97.49 % test accuracy on CIFAR-10 (3.88M params)',
                      'unknown', _NO_LICENSE, **_CIFAR),
    # GDAS's README ("Evaluate a trained CNN model": exps-cnn/evaluate.py --checkpoint GDAS-V1-C50-N14-ImageNet.pth;
    # "some pre-trained models in Google Driver"); the file is lib/nas's NetworkImageNet (the darts layout), saved by
    # exps-cnn/train_utils_imagenet.py. The README gives no accuracy for the file: the figure is the best epoch of
    # the ImageNet training log it links (data/logs/GDAS-V1-imagenet-seed-3993.txt, C50 L14, 5.345M parameters)
    AuthorsCheckpoint('gdas_imagenet', 'gdas_in1k', 'darts', 'GDAS-V1-C50-N14-ImageNet.pth',
                      'https://drive.google.com/open?id=1Ofhc49xC1PLIX4O708gJZ1ugzz4td_RJ', _GDAS_CODE,
                      '26.00 % top-1 / 8.51 % top-5 error on ImageNet (best epoch of the training log '
                      'data/logs/GDAS-V1-imagenet-seed-3993.txt; 5.3M params)', 'mit', 'MIT (LICENSE)', **_IMAGENET),
    # SNAS-Series README (SNAS/README.md, "Trained models"): the mild-constraint CIFAR-10 network of
    # model_edge_all.py, evaluated by its test_edge_all.py --auxiliary --arch SNAS_mild_edge_all, with its MD5
    AuthorsCheckpoint('snas_mild_cifar10', 'snas_c10', 'snas', None,
                      'https://drive.google.com/open?id=1tjy4Nx7rSv6gc8efQcJAaEbDcdawT-6c',
                      'https://github.com/SNAS-Series/SNAS-Series', '97.02 % test accuracy on CIFAR-10',
                      'mit', 'MIT (LICENSE)', **_CIFAR, md5='aebc72d18b2c79925fafcebcd68ec745'),
    AuthorsCheckpoint('sgas_cri1_cifar10', 'sgas_c10', 'darts', 'Cri1_CIFAR_Best.pt', _SGAS_FILES, _SGAS_CODE,
                      '2.39 % test error on CIFAR-10 (3.8M params)', 'mit', 'MIT (LICENSE)', **_CIFAR),
    AuthorsCheckpoint('sgas_cri2_cifar10', 'sgas_c10', 'darts', 'Cri2_CIFAR_Best.pt', _SGAS_FILES, _SGAS_CODE,
                      '2.44 % test error on CIFAR-10 (4.1M params)', 'mit', 'MIT (LICENSE)', **_CIFAR),
    # Cri1_ImageNet_Best is Cri1_CIFAR_Best's cell; Cri2_ImageNet_Best is criterion 2's other cell (sgas_cri2_imagenet)
    AuthorsCheckpoint('sgas_cri1_imagenet', 'sgas_in1k', 'darts', 'Cri1_ImageNet_Best.pt', _SGAS_FILES, _SGAS_CODE,
                      '24.2 % top-1 test error on ImageNet (5.3M params)', 'mit', 'MIT (LICENSE)', **_IMAGENET,
                      aux_head=_SGAS_AUX),
    AuthorsCheckpoint('sgas_cri2_imagenet', 'sgas_in1k', 'darts', 'Cri2_ImageNet_Best.pt', _SGAS_FILES, _SGAS_CODE,
                      '24.1 % top-1 test error on ImageNet (5.4M params)', 'mit', 'MIT (LICENSE)', **_IMAGENET,
                      aux_head=_SGAS_AUX),
    # github.com/xiaomi-automl/NoisyDARTS README, "Pre-trained Models" (one Google Drive folder); its
    # scripts/run_verify.sh names the file, verify.py loads the bare state dict into DARTS's NetworkCIFAR; the figure is
    # the README's table (NoisyDARTS-a: 534M MACs, 3.25M params). Its ImageNet model is in another search space.
    AuthorsCheckpoint('noisy_darts_a_cifar10', 'noisy_darts_c10', 'darts', 'noisy_darts_a.pt',
                      'https://drive.google.com/drive/folders/1sf5D-7Le0_MLE5w39rZ5ErY2Wd42dEs8',
                      'https://github.com/xiaomi-automl/NoisyDARTS',
                      '97.61 % top-1 accuracy on CIFAR-10 (3.25M params)', 'unknown', _NO_LICENSE, **_CIFAR),
)}
"""Every known authors' checkpoint by registry tag (README, "Authors' checkpoints")."""
