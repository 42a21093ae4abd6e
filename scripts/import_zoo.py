#!/usr/bin/env python
"""Import the DARTS-family zoo: every published DARTS-space cell, read where its authors publish it.

    python scripts/import_zoo.py SOURCES              # (re)write genotypes/*.json
    python scripts/import_zoo.py SOURCES --check      # exit 1 if a bundled file differs from a fresh import
    python scripts/import_zoo.py SOURCES --only gdas_v1 pdarts

``SOURCES`` holds one checkout of each repository listed in :data:`REPOS`, in a folder named ``OWNER+NAME``
(``quark0+darts``, ...): a git work tree, or an exported tree with its commit hash in a file ``.commit``.
Nothing of those repositories is copied into this project. For each cell the script

1. reads the genotype text where the authors publish it and parses it with ``Genotype.parse_darts``, exactly as
   written (``range(2, 6)`` concat, nodes of pairs, FairDARTS triples);
2. builds the authors' own evaluation networks for the CIFAR family (20 cells, 36 channels) and the ImageNet
   family (14 cells, 48 channels or the paper's width) from *their* genotype object, in a child process per
   cell, on the meta device, with ``.cuda()`` made a no-op and Python 2's ``xrange`` supplied, and records their
   parameter counts without the auxiliary head (``tests/test_zoo.py`` checks ours against them);
3. writes ``genotypes/NAME.json`` with the provenance: paper, repository, path, commit, symbol, license, what the
   paper or the repository reports, and notes.

Published figures are recorded with where they were read; a figure we could not read at its source is left out
rather than quoted from memory.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence

if TYPE_CHECKING:
    from entrannas_timm.models.genotype import Genotype

ROOT = Path(__file__).resolve().parents[1]
CIFAR, IMAGENET = 'cifar', 'imagenet'


@dataclass(frozen=True)
class Repo:
    """An authors' repository: where its code is and how its evaluation networks are built."""
    slug: str  # OWNER/NAME on GitHub
    method: str
    paper: str  # title
    arxiv: str
    license: str
    sys_path: Sequence[str]  # folders (relative to the checkout) their imports expect on sys.path
    genotypes: str  # module holding their genotype objects
    builds: Mapping[str, str]  # family -> 'module:expression' building their network from `genotype`
    setup: str = ''  # statements run before building (a module swap, a config object)
    stubs: Sequence[str] = ()  # third-party modules imported at module level but unused by the networks


@dataclass(frozen=True)
class Cell:
    """One published cell: where its genotype is written and what is reported about it."""
    name: str
    repo: Repo
    path: str
    symbol: str
    dataset: str
    method: str = ''  # the method's name for this cell, when it is not the repository's (DARTS first/second order)
    reported: Mapping[str, Any] = field(default_factory=dict)  # published figures; 'source' says where read
    notes: Sequence[str] = ()
    network: Mapping[str, Mapping[str, int]] = field(default_factory=dict)  # the paper's widths, per family
    builds: Mapping[str, str] = field(default_factory=dict)  # overrides of repo.builds for this cell
    semantics: Mapping[str, Any] = field(default_factory=dict)  # Genotype fields the text cannot say


DARTS_BUILDS = {CIFAR: 'model:NetworkCIFAR(36, 10, 20, False, genotype)',
                IMAGENET: 'model:NetworkImageNet(48, 1000, 14, False, genotype)'}



def _repo(slug: str, method: str, paper: str, arxiv: str, license: str, sys_path: Sequence[str], genotypes: str,
          builds: Optional[Mapping[str, str]] = None, **kwargs: Any) -> Repo:
    return Repo(slug, method, paper, arxiv, license, tuple(sys_path), genotypes, builds or DARTS_BUILDS, **kwargs)


NO_LICENSE = 'none stated (the repository has no license file)'
SOTA_BUILDS = {CIFAR: 'sota.cnn.model:Network(36, 10, 20, False, genotype)',
               IMAGENET: 'sota.cnn.model_imagenet:NetworkImageNet(48, 1000, 14, False, genotype)'}
# sota/cnn/model_imagenet.py of SDARTS and beta-DARTS takes its ops from optimizers/darts/operations.py, a NAS-Bench
# table without 'max_pool_3x3': as written it cannot build a DARTS cell with max pooling. Its CIFAR network's table
# (sota/cnn/operations.py) is swapped in.
SOTA_OPS_SWAP = ("_m = importlib.import_module('sota.cnn.model_imagenet'); "
                 "_m.OPS = importlib.import_module('sota.cnn.operations').OPS")
SOTA_OPS_NOTE = ('The repository\'s ImageNet network (sota/cnn/model_imagenet.py) takes its ops from '
                 'optimizers/darts/operations.py, which has no max_pool_3x3, so as written it cannot build this cell; '
                 'the reference ImageNet count uses its CIFAR network\'s op table (sota/cnn/operations.py) instead.')

REPOS: Dict[str, Repo] = {r.slug: r for r in [
    _repo('quark0/darts', 'DARTS', 'DARTS: Differentiable Architecture Search', '1806.09055', 'Apache-2.0',
          ['cnn'], 'genotypes'),
    _repo('yuhuixu1993/PC-DARTS', 'PC-DARTS',
          'PC-DARTS: Partial Channel Connections for Memory-Efficient Architecture Search', '1907.05737',
          NO_LICENSE, ['.'], 'genotypes'),
    _repo('chenxin061/pdarts', 'P-DARTS', 'Progressive Differentiable Architecture Search: Bridging the Depth '
          'Gap between Search and Evaluation', '1904.12760',
          'Huawei: non-commercial testing and evaluation purposes only (LICENSE)', ['.'], 'genotypes'),
    _repo('D-X-Y/AutoDL-Projects', 'GDAS', 'Searching for A Robust Neural Architecture in Four GPU Hours',
          '1910.04465', 'MIT', ['.'], 'xautodl.nas_infer_model.DXYs.genotypes',
          {CIFAR: 'xautodl.nas_infer_model.DXYs:CifarNet(36, 6, 3, False, genotype, 10)',
           IMAGENET: 'xautodl.nas_infer_model.DXYs:ImageNet(50, 4, False, genotype, 1000)'}),
    _repo('SNAS-Series/SNAS-Series', 'SNAS', 'SNAS: Stochastic Neural Architecture Search', '1812.09926', 'MIT',
          ['SNAS'], 'genotypes'),
    _repo('xiaomi-automl/FairDARTS', 'FairDARTS',
          'Fair DARTS: Eliminating Unfair Advantages in Differentiable Architecture Search', '1911.12126',
          NO_LICENSE, ['fairdarts'], 'genotypes',
          {CIFAR: "model:NetworkCIFAR(36, 10, 20, False, genotype, parse_method='threshold')",
           IMAGENET: 'model:NetworkImageNet(48, 1000, 14, False, genotype)'},
          # its NetworkImageNet builds the pair-form Cell only; the triple form needs its DCOCell
          setup="_model = importlib.import_module('model'); _model.Cell = _model.DCOCell"),
    _repo('xiangning-chen/DrNAS', 'DrNAS', 'DrNAS: Dirichlet Neural Architecture Search', '2006.10355', NO_LICENSE,
          ['DARTS-space', '.'], 'genotypes'),
    _repo('xiangning-chen/SmoothDARTS', 'SDARTS',
          'Stabilizing Differentiable Architecture Search via Perturbation-based Regularization', '2002.05283',
          'none stated at the repository root (nasbench/ carries the NAS-Bench code\'s Apache-2.0)', ['.'],
          'sota.cnn.genotypes', SOTA_BUILDS, setup=SOTA_OPS_SWAP),
    _repo('lightaime/sgas', 'SGAS', 'SGAS: Sequential Greedy Architecture Search', '1912.00195', 'MIT', ['cnn'],
          'genotypes'),
    _repo('Meituan-AutoML/DARTS-', 'DARTS-',
          'DARTS-: Robustly Stepping out of Performance Collapse Without Indicators', '2009.01027', 'Apache-2.0',
          ['.'], 'src.eval.genotypes',
          {CIFAR: 'src.eval.model:NetworkCIFAR(36, 10, 20, False, genotype)',
           IMAGENET: 'src.eval.model:NetworkImageNet(48, 1000, 14, False, genotype)'}, stubs=['yaml']),
    _repo('ruocwang/darts-pt', 'DARTS-PT', 'Rethinking Architecture Selection in Differentiable NAS', '2108.04392',
          'Apache-2.0', ['.'], 'sota.cnn.genotypes', SOTA_BUILDS,
          # sota/cnn/model_imagenet.py imports optimizers.darts.utils, which this repository lacks
          stubs=['optimizers', 'optimizers.darts', 'optimizers.darts.utils']),
    _repo('Sunshine-Ye/Beta-DARTS', 'beta-DARTS',
          'β-DARTS: Beta-Decay Regularization for Differentiable Architecture Search', '2203.01665',
          'none stated at the repository root (nasbench/ carries the NAS-Bench code\'s Apache-2.0)', ['.'],
          'sota.cnn.genotypes', SOTA_BUILDS, setup=SOTA_OPS_SWAP),
    _repo('xiaomi-automl/NoisyDARTS', 'NoisyDARTS', 'Noisy Differentiable Architecture Search', '2005.03566',
          NO_LICENSE, ['.'], 'genotypes', stubs=['matplotlib', 'matplotlib.pyplot']),
    _repo('iboing/ISTA-NAS', 'ISTA-NAS',
          'ISTA-NAS: Efficient and Consistent Neural Architecture Search by Sparse Coding', '2010.06176', NO_LICENSE,
          ['.', 'tools'], 'genotypes',
          {CIFAR: 'ista_nas.search.models.model:NetworkCIFAR(36, 10, 20, False, genotype)',
           IMAGENET: 'ista_nas.search.models.model:NetworkImageNet(48, 1000, 14, False, genotype)'},
          stubs=['cvxpy', 'mosek', 'mosek.fusion']),
    _repo('chaoyanghe/MiLeNAS', 'MiLeNAS',
          'MiLeNAS: Efficient Neural Architecture Search via Mixed-Level Reformulation', '2003.12238', NO_LICENSE,
          ['.'], 'search_space.genotypes',
          {CIFAR: 'evaluation.model:NetworkCIFAR(36, 10, 20, False, genotype)',
           IMAGENET: 'evaluation.model:NetworkImageNet(48, 1000, 14, False, genotype)'}),
    _repo('microsoft/Cream', 'CDARTS', 'Cyclic Differentiable Architecture Search', '2006.10724',
          'MIT (CDARTS/LICENSE)', ['CDARTS', 'CDARTS/lib'], '',
          {CIFAR: "lib.models.cdarts_controller:cdarts('cifar', 36, 10)",
           IMAGENET: "lib.models.cdarts_controller:cdarts('imagenet', 48, 1000)"},
          # retrain.py's path: AugmentConfig's defaults (stem multiplier 3), a CDARTSController, its
          # build_augment_model on the cell file's per-stage genotypes (its lib.utils.genotypes.from_str)
          setup=textwrap.dedent("""
              import json
              def cdarts(model_type, channels, n_classes):
                  from lib.config import AugmentConfig
                  import lib.utils.genotypes as gt
                  from lib.models.cdarts_controller import CDARTSController
                  sys.argv = ['retrain.py', '--name', 'zoo', '--dataset', model_type, '--model_type', model_type,
                              '--init_channels', str(channels), '--n_classes', str(n_classes)]
                  config = AugmentConfig()
                  controller = CDARTSController(config, None, n_nodes=4, stem_multiplier=config.stem_multiplier)
                  stages = json.loads((ROOT / CELL_FILE).read_text())
                  controller.build_augment_model(controller.init_channel,
                                                 {int(k): gt.from_str(v) for k, v in stages.items()})
                  return controller.model_main
          """), stubs=['tensorboardX', 'apex']),
]}


def _c10(error: float, params: float, source: str, **more: Any) -> Dict[str, Any]:
    return dict(cifar10_test_error=error, cifar10_params_m=params, source=source, **more)


PDARTS_TABLES = 'the paper\'s Tables 1 and 2, as images in the repository (Table1.png, Table2.png)'
FAIRDARTS_README = ('the repository README ("Evaluation Results on CIFAR-10"; FLOPs counted with thop, batch norm '
                    'excluded; error = 100 - reported accuracy)')
NOISYDARTS_README = 'the repository README ("NoisyDARTS Models Searched on CIFAR-10"; error = 100 - top-1)'
SGAS_COMMENTS = 'the comments above each genotype in cnn/genotypes.py'
MILENAS_PDF = 'the paper (docs/ of the repository), Tables 1 and 2'
NOT_READ = ('The paper\'s figures are not recorded: the repository states none, and the paper\'s tables could '
            'not be read at their source.')


def _cell(name: str, slug: str, path: str, symbol: str, dataset: str = 'CIFAR-10', **kwargs: Any) -> Cell:
    return Cell(name, REPOS[slug], path, symbol, dataset, **kwargs)


FAIRDARTS_NOTE = ('Written as FairDARTS (op, to, from) triples and read with the semantics of its evaluation cell '
                  '(DCOCell, fairdarts/model.py): nodes no triple feeds are absent, the cell output concatenates '
                  'the fed nodes and ignores *_concat, and drop path drops whole nodes.')
NOISY = [  # symbol suffix, (MACs M, params M, top-1 %), search setting as README / genotypes.py comment
    ('a', 534, 3.25, 97.61), ('b', 511, 3.09, 97.53), ('c', 539, 3.33, 97.40), ('d', 501, 3.06, 97.42),
    ('e', 539, 3.24, 97.55), ('f', 443, 2.68, 97.18), ('g', 549, 3.32, 97.49), ('h', 511, 3.01, 97.35),
    ('i', 495, 3.07, 97.28), ('j', 476, 2.94, 97.21)]
FAIRDARTS = [('a', 373, 2.83, 97.46), ('b', 536, 3.88, 97.49), ('c', 400, 2.59, 97.50), ('d', 532, 3.84, 97.51),
             ('e', 414, 3.12, 97.47), ('f', 497, 3.62, 97.35), ('g', 453, 3.38, 97.46)]

CELLS: List[Cell] = [
    _cell('darts_v1', 'quark0/darts', 'cnn/genotypes.py', 'DARTS_V1', method='DARTS (first order)',
          reported=_c10(3.00, 3.3, PDARTS_TABLES + ' (citing DARTS); the PC-DARTS README gives the same')),
    _cell('darts_v2', 'quark0/darts', 'cnn/genotypes.py', 'DARTS_V2', method='DARTS (second order)',
          reported=dict(cifar10_test_error=2.76, cifar10_params_m=3.3, imagenet_top1_error=26.7,
                        imagenet_params_m=4.7, imagenet_macs_m=574,
                        source='the repository README (2.76 ± 0.09 % over 10 runs, 3.3M; ImageNet 26.7 % top-1, '
                               '4.7M); multiply-adds 574M from the PC-DARTS README and P-DARTS Table 2 (citing '
                               'DARTS)'),
          notes=['The README\'s released CIFAR-10 model reaches 2.63 % (its expected result); 2.76 is the mean of '
                 '10 runs.']),
    _cell('pc_darts_cifar', 'yuhuixu1993/PC-DARTS', 'genotypes.py', 'PC_DARTS_cifar',
          reported=_c10(2.57, 3.6, 'the repository README ("Results on CIFAR10")')),
    _cell('pc_darts_image', 'yuhuixu1993/PC-DARTS', 'genotypes.py', 'PC_DARTS_image', dataset='ImageNet',
          reported=dict(imagenet_top1_error=24.2, imagenet_macs_m=597, imagenet_params_m=5.3,
                        source='the repository README ("Results on ImageNet": 24.2 % top-1, 597M); params 5.3M as '
                               'cited in the DrNAS README')),
    _cell('pdarts', 'chenxin061/pdarts', 'genotypes.py', 'PDARTS',
          reported=dict(cifar10_test_error=2.50, cifar10_params_m=3.4, imagenet_top1_error=24.4,
                        imagenet_params_m=4.9, imagenet_macs_m=557, source=PDARTS_TABLES),
          notes=['The README says the repository provides the cells of one CIFAR-10 search run while "the paper '
                 'included those from another run": this cell need not be the one of the paper\'s tables.']),
    _cell('gdas_v1', 'D-X-Y/AutoDL-Projects', 'xautodl/nas_infer_model/DXYs/genotypes.py', 'GDAS_V1',
          network={IMAGENET: {'channels': 50}},
          reported=dict(imagenet_top1_error=26.0, imagenet_params_m=5.3, imagenet_macs_m=581,
                        source='ImageNet as cited in the MiLeNAS paper, Table 2 (GDAS: 26.0 % top-1, 5.3M, 581M); '
                               'the GDAS abstract\'s 2.82 % / 2.5M cannot be this cell, which has 3.37M parameters'),
          notes=['The ImageNet network has 50 channels (configs/archs/NAS-IMAGENET-GDAS_V1.config); the CIFAR '
                 'network 36 channels and 6 cells per stage (NAS-CIFAR-GDAS_V1.config).',
                 'The authors\' 2019 copy (others/GDAS/lib/nas/genotypes.py, commit c72e66b of this repository) '
                 'writes the same cell with sampling probabilities as third tuple elements. The copy in '
                 'xiaomi-automl/FairDARTS fairdarts/genotypes.py differs: its last reduction connection reads node '
                 '0 (input 2) instead of c_{k-1}.',
                 'GDAS (FRC), whose reduction cell is hand-designed (grouped 1x3/3x1 convolutions, 8 groups, and '
                 'max pooling with batch norm; GDAS_F1 at commit c72e66b), is not imported: that cell is outside '
                 'the 8-op space and has no genotype.',
                 'CIFAR-10 figures of GDAS (without FRC) are not recorded: the repository states none and the '
                 'paper\'s table could not be read at its source.']),
    *[_cell(f'snas_{level}', 'SNAS-Series/SNAS-Series', 'SNAS/genotypes.py', f'SNAS_{level}_edge_all',
            semantics=dict(bn_after=['max_pool_3x3', 'avg_pool_3x3']),
            builds={CIFAR: f'model_edge_all:NetworkCIFAR(36, 10, 20, False, genotypes.SNAS_{level}_edge_all)',
                    'cifar_plain': f'model:NetworkCIFAR(36, 10, 20, False, genotypes.SNAS_{level})',
                    IMAGENET: f'model_edge_all:NetworkImageNet(48, 1000, 14, False, genotypes.SNAS_{level}_edge_all)'},
            reported=reported, notes=[
                f'SNAS_{level}_edge_all, the form its README evaluates (train_edge_all.py, test_edge_all.py) and '
                f'its released CIFAR-10 file holds: the cell of SNAS_{level} with an explicit "none" connection '
                'from every other predecessor, in the authors\' order (node i holds i + 2 connections; '
                f'`entrannas convert --layout snas` needs that order). model.py with SNAS_{level} gives the same '
                'parameter counts.',
                'SNAS\'s evaluation ops (SNAS/operations.py) follow both poolings with an affine batch norm '
                '(bn_after).', *extra])
      for level, reported, extra in [
          ('mild', dict(cifar10_test_error=2.98, cifar10_params_m=2.9, imagenet_top1_error=27.3,
                        imagenet_params_m=4.3, imagenet_macs_m=522,
                        source='CIFAR-10: the paper\'s Table 2, as an image in the repository (SNAS/img/'
                               'snas_result.png); ImageNet as cited in P-DARTS Table 2 (the MiLeNAS paper cites '
                               '4.2M, the PC-DARTS README 522M)'), []),
          ('moderate', _c10(2.85, 2.8, 'the paper\'s Table 2 (SNAS/img/snas_result.png); 2.85 ± 0.02 %'), []),
          ('aggressive', _c10(3.10, 2.3, 'the paper\'s Table 2 (SNAS/img/snas_result.png); 3.10 ± 0.04 %'),
           ['Its reduction cell keeps explicit "none" connections: nodes 2 and 3 have no other input, so their '
            'output is zero, still concatenated into the cell output.'])]],
    *[_cell(f'fairdarts_{x}', 'xiaomi-automl/FairDARTS', 'fairdarts/genotypes.py', f'FairDARTS_{x}',
            reported=_c10(round(100 - acc, 2), params, FAIRDARTS_README, cifar10_macs_m=macs),
            notes=[FAIRDARTS_NOTE, 'No ImageNet network of the repository builds the triple form: the reference '
                   'ImageNet count is its NetworkImageNet with its Cell replaced by its DCOCell at run time. '
                   'The repository has no ImageNet genotype of the DARTS space; FairDARTS\'s ImageNet models are '
                   'not imported.'])
      for x, macs, params, acc in FAIRDARTS],
    _cell('drnas_cifar10', 'xiangning-chen/DrNAS', 'DARTS-space/genotypes.py', 'DrNAS_cifar10',
          reported=_c10(2.46, 4.1, 'the repository README ("On DARTS Space (CIFAR-10)"); 2.46 ± 0.03 %')),
    _cell('drnas_imagenet', 'xiangning-chen/DrNAS', 'DARTS-space/genotypes.py', 'DrNAS_imagenet',
          dataset='ImageNet',
          reported=dict(imagenet_top1_error=23.7, imagenet_params_m=5.7,
                        source='the repository README ("On DARTS Space (ImageNet)")')),
    *[_cell(f'sdarts_{v}', 'xiangning-chen/SmoothDARTS', 'sota/cnn/genotypes.py', f'c10_s5_{sym}',
            notes=[f'SDARTS-{v.upper()}: the DARTS-space (s5) CIFAR-10 cell searched with --perturb_alpha='
                   f'{"random" if v == "rs" else "pgd_linf"}. The repository\'s other cells are in the reduced '
                   'RobustDARTS spaces s1-s4 and are not imported; its train_imagenet.py defaults to c10_s3_pgd, '
                   'and it does not say which cell the paper\'s ImageNet rows use.', NOT_READ,
                   'The beta-DARTS repository\'s genotypes.py re-evaluates these cells (c10_s5_pgd 97.39/3.34MB, '
                   'c10_s5_random 97.51/3.61MB, its own runs).', SOTA_OPS_NOTE])
      for v, sym in (('rs', 'random'), ('adv', 'pgd'))],
    _cell('sgas_cri1', 'lightaime/sgas', 'cnn/genotypes.py', 'Cri1_CIFAR_Best',
          reported=dict(cifar10_test_error=2.39, cifar10_params_m=3.80, imagenet_top1_error=24.22,
                        imagenet_params_m=5.29, imagenet_macs_m=585, source=SGAS_COMMENTS),
          notes=['Cri1_CIFAR_Best = Cri1_CIFAR_3 = Cri1_ImageNet_3 = Cri1_ImageNet_Best: the best of 10 criterion-1 '
                 'searches on CIFAR-10 and on ImageNet.']),
    _cell('sgas_cri2', 'lightaime/sgas', 'cnn/genotypes.py', 'Cri2_CIFAR_Best',
          reported=dict(cifar10_test_error=2.44, cifar10_params_m=4.09, imagenet_top1_error=24.44,
                        imagenet_params_m=5.70, imagenet_macs_m=621, source=SGAS_COMMENTS),
          notes=['Cri2_CIFAR_Best = Cri2_CIFAR_3 = Cri2_ImageNet_1: the best criterion-2 cell on CIFAR-10; on '
                 'ImageNet the best criterion-2 cell is another one (sgas_cri2_imagenet).']),
    _cell('sgas_cri2_imagenet', 'lightaime/sgas', 'cnn/genotypes.py', 'Cri2_ImageNet_Best',
          reported=dict(cifar10_test_error=2.49, cifar10_params_m=3.91, imagenet_top1_error=24.13,
                        imagenet_params_m=5.44, imagenet_macs_m=598, source=SGAS_COMMENTS),
          notes=['Cri2_ImageNet_Best = Cri2_ImageNet_2 = Cri2_CIFAR_4 (searched on CIFAR-10).']),
    _cell('darts_minus', 'Meituan-AutoML/DARTS-', 'src/eval/genotypes.py', 'cifar10_s0_best',
          notes=['cifar10_s0_best = cifar10_s0_0, labelled in genotypes.py as the best of the five DARTS-space '
                 '(S0, "S5 in the code") CIFAR-10 searches; cifar10_s0_1..4 and the reduced-space cells are not '
                 'imported. The repository has no ImageNet genotype.', NOT_READ]),
    *[_cell(f'darts_pt_{i}', 'ruocwang/darts-pt', 'sota/cnn/genotypes.py', f'darts_pt_s5_{i}',
            notes=[f'darts_pt_s5_{i}: one of four DARTS-space ("s5") cells of DARTS-PT; the repository does not say '
                   'which of them the paper reports as its best. The blank_pt_* (fixed-alpha) and reduced-space '
                   'cells are not imported.', NOT_READ,
                   'The reference ImageNet count builds sota/cnn/model_imagenet.py with its import of '
                   'optimizers.darts.utils (absent from the repository) stubbed.'])
      for i in range(4)],
    _cell('beta_darts', 'Sunshine-Ye/Beta-DARTS', 'sota/cnn/genotypes.py', 'genotype',
          notes=['The repository\'s own DARTS-space cell: `genotype` (aliased as DARTS, train.py\'s default '
                 '--arch), drawn in fig/genotypes/cnn/DARTS_normal and DARTS_reduction; the other cells in the '
                 'file are copies of SDARTS\'s. The repository does not label it as the paper\'s cell.',
                 NOT_READ, SOTA_OPS_NOTE]),
    *[_cell(f'noisy_darts_{x}', 'xiaomi-automl/NoisyDARTS', 'genotypes.py', f'noisy_darts_{x}',
            reported=_c10(round(100 - acc, 2), params, NOISYDARTS_README, cifar10_macs_m=macs),
            notes=['NoisyDARTS-A, the ImageNet model of the README, is in another search space and is not '
                   'imported.'] + ([f'The README lists NoisyDARTS-{x} as Gaussian multiplicative noise with std '
                                    f'{"0.1" if x == "e" else "0.2"}; the comment above noisy_darts_{x} in '
                                    f'genotypes.py says sigma={"0.2" if x == "e" else "0.1"}.'] if x in 'ef' else []))
      for x, macs, params, acc in NOISY],
    _cell('ista_nas_two_stage', 'iboing/ISTA-NAS', 'tools/genotypes.py', 'ISTA_twostage', notes=[NOT_READ]),
    _cell('ista_nas_one_stage', 'iboing/ISTA-NAS', 'tools/genotypes.py', 'ISTA_onestage',
          builds={CIFAR: 'ista_nas_single.search.models.model:NetworkCIFAR(36, 10, 20, False, genotype)',
                  IMAGENET: 'ista_nas_single.search.models.model:NetworkImageNet(48, 1000, 14, False, genotype)'},
          semantics=dict(bn_after=['max_pool_3x3', 'avg_pool_3x3', 'skip_connect']),
          notes=['One-stage ISTA-NAS networks (ista_nas_single/, evaluation.py --onestage) put an affine batch norm '
                 'after every pooling op and every identity skip (bn_after).', NOT_READ]),
    _cell('ista_nas_imagenet', 'iboing/ISTA-NAS', 'tools/genotypes.py', 'ISTA_ImageNet', dataset='ImageNet',
          notes=['The repository does not say how ISTA_ImageNet was found or which network evaluates it '
                 '(evaluation_imagenet.py imports a model module it does not contain); the reference counts use '
                 'the two-stage networks (ista_nas/search/models/model.py).', NOT_READ]),
    _cell('milenas', 'chaoyanghe/MiLeNAS', 'search_space/genotypes.py', 'GDAS_MIXED_LEVEL2',
          notes=['The README evaluates and visualises GDAS_MIXED_LEVEL2 as "our best cells" (visualization/normal and '
                 'reduction draw it); the name says it was searched by MiLeNAS with GDAS sampling.',
                 f'The paper ({MILENAS_PDF}) lists four MiLeNAS CIFAR-10 cells without naming them (2.51 % / 3.87M, '
                 '2.80 % / 2.87M, 2.50 % / 2.86M, 2.76 % / 2.09M) and two ImageNet results (25.4 % / 4.9M / 570M, '
                 '24.7 % / 5.3M / 584M). This cell\'s networks (4.03M and 5.59M without the auxiliary head, 4.51M '
                 'with it on CIFAR-10) match none of those rows, so no published figure is attributed to it.']),
    _cell('cdarts_cifar', 'microsoft/Cream', 'CDARTS/CDARTS/cells/cifar_genotype.json', '0',
          network={IMAGENET: {'stem_multiplier': 3}},
          reported=dict(cifar10_test_error=2.48, imagenet_top1_error=23.7,
                        source='the paper\'s abstract (97.52 % top-1 on CIFAR-10 and 76.3 % on ImageNet in the '
                               'DARTS space)'),
          notes=['The cell file holds one genotype per stage ("0", "1", "2"); all three are this cell. It matches '
                 'the paper\'s figure of the CIFAR-10 cells (CDARTS/demo/cell.png).',
                 'The README lists six CIFAR-10 cells (97.45-97.77 %) as downloads without saying which one this '
                 'file holds.',
                 'CDARTS\'s ImageNet network has a stem of 3 x channels (its imagenet_stem(init_channels * '
                 'stem_multiplier), stem_multiplier 3 by default); the repository does not include the ImageNet '
                 'retrain script, so the reference count assumes --init_channels 48.']),
    _cell('cdarts_imagenet', 'microsoft/Cream', 'CDARTS/CDARTS/cells/imagenet_genotype.json', '0',
          dataset='ImageNet', network={IMAGENET: {'stem_multiplier': 3}},
          reported=dict(imagenet_top1_error=23.7, source='the paper\'s abstract (76.3 % top-1 on ImageNet in the '
                                                         'DARTS space)'),
          notes=['The cell file holds one genotype per stage; all three are this cell. It matches the paper\'s '
                 'figure of the ImageNet cells (CDARTS/demo/cell.png). The README lists five ImageNet cells '
                 '(75.90-76.60 %) as downloads without saying which one this file holds.',
                 'CDARTS\'s ImageNet network has a stem of 3 x channels; the reference count assumes '
                 '--init_channels 48 (the ImageNet retrain script is not in the repository).']),
]


def _worker(spec: Dict[str, Any]) -> Dict[str, Any]:
    """Runs in a child process: build the authors' networks with their code and count their parameters."""
    import builtins
    import importlib
    import importlib.util
    import types

    import torch
    import torch.nn as nn

    class _Stub(types.ModuleType):
        def __getattr__(self, key: str) -> Any:
            if key.startswith('__'):
                raise AttributeError(key)
            return _Stub(f'{self.__name__}.{key}')

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return self

    builtins.xrange = range  # Python 2 code
    torch.Tensor.cuda = lambda self, *a, **k: self
    nn.Module.cuda = lambda self, *a, **k: self
    root = Path(spec['root'])
    for p in reversed(spec['sys_path']):
        sys.path.insert(0, str(root / p))
    missing = {n.split('.')[0] for n in spec['stubs'] if importlib.util.find_spec(n.split('.')[0]) is None}
    for name in spec['stubs']:  # only where the package is not there
        if name.split('.')[0] in missing:
            sys.modules[name] = _Stub(name)
    scope: Dict[str, Any] = {'torch': torch, 'nn': nn, 'importlib': importlib, 'sys': sys, 'ROOT': root,
                             'CELL_FILE': spec['path']}
    if spec['genotypes']:
        genotypes = importlib.import_module(spec['genotypes'])
        scope['genotypes'] = genotypes
        scope['genotype'] = getattr(genotypes, spec['symbol'])
    exec(spec['setup'], scope)  # noqa: S102  (this script's own statements, see Repo.setup)
    counts, files = {}, {}
    for family, build in spec['builds'].items():
        module, expression = build.split(':', 1)
        mod = importlib.import_module(module)
        with torch.device('meta'):
            net = eval(expression, dict(scope, **vars(mod)))  # noqa: S307  (this script's own expressions, see REPOS)
        counts[family] = sum(p.numel() for n, p in net.named_parameters()
                             if 'auxiliary' not in n and not n.startswith('aux_head'))
        files[family] = Path(mod.__file__).resolve().relative_to(root.resolve()).as_posix()
    return dict(counts=counts, files=files)


def measure(cell: Cell, checkout: Path) -> Dict[str, Dict[str, Any]]:
    """Parameter counts of the authors' evaluation networks for ``cell`` and the files that define them (a child
    process per cell)."""
    spec = dict(root=str(checkout), sys_path=list(cell.repo.sys_path), stubs=list(cell.repo.stubs),
                genotypes=cell.repo.genotypes, symbol=cell.symbol, setup=cell.repo.setup, path=cell.path,
                builds={**cell.repo.builds, **cell.builds})
    proc = subprocess.run([sys.executable, __file__, '--worker'], input=json.dumps(spec), capture_output=True,
                          text=True, cwd=checkout)
    if proc.returncode:
        raise RuntimeError(f'{cell.name}: building the authors\' networks failed:\n{proc.stderr[-3000:]}')
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _commit(checkout: Path) -> str:
    marker = checkout / '.commit'
    if marker.is_file():
        return marker.read_text().strip()
    return subprocess.run(['git', '-C', str(checkout), 'rev-parse', 'HEAD'], capture_output=True, text=True,
                          check=True).stdout.strip()


def read_genotype(cell: Cell, checkout: Path) -> Genotype:
    """The cell as its authors write it, parsed by the project's own DARTS-text reader."""
    from entrannas_timm.models.genotype import Genotype, GenotypeError
    text = (checkout / cell.path).read_text(encoding='utf-8')
    source = f'{cell.repo.slug}/{cell.path}'
    if cell.path.endswith('.json'):  # CDARTS: {"stage": "Genotype(...)"} for each of the three stages
        stages = json.loads(text)
        if len(set(stages.values())) != 1:
            raise GenotypeError('stages have different cells, which one network here cannot build', source)
        return Genotype.parse_darts(stages[cell.symbol], source=f'{source} ["{cell.symbol}"]')
    return Genotype.parse_darts(text, name=cell.symbol, source=source)


def provenance(cell: Cell, commit: str, measured: Mapping[str, Mapping[str, Any]]) -> Dict[str, Any]:
    repo = cell.repo
    reported = dict(cell.reported)
    source = reported.pop('source', None)
    counts, files = measured['counts'], measured['files']
    out: Dict[str, Any] = dict(
        method=cell.method or repo.method, dataset=cell.dataset,
        source=f'published by the {repo.method} authors ({repo.slug}, {cell.path} {cell.symbol})',
        paper=repo.paper, paper_id=f'arXiv:{repo.arxiv}', repository=f'https://github.com/{repo.slug}',
        path=cell.path, commit=commit, symbol=cell.symbol, license=repo.license)
    if reported:
        out.update(published_metrics=reported, published_source=source)
    builds = {**repo.builds, **cell.builds}
    out['reference_params'] = {
        family: dict(params=count, network=f'{builds[family].split(":", 1)[1]} of {files[family]}')
        for family, count in counts.items()}
    if cell.notes:
        out['notes'] = list(cell.notes)
    return out


def import_cell(cell: Cell, sources: Path) -> Genotype:
    checkout = sources / cell.repo.slug.replace('/', '+')
    if not checkout.is_dir():
        raise FileNotFoundError(f'{cell.name}: no checkout of {cell.repo.slug} at {checkout}')
    g = read_genotype(cell, checkout)
    measured = measure(cell, checkout)
    counts = measured['counts']
    for key, value in counts.items():  # a second network of the same family (SNAS: model.py) must agree
        if key not in (CIFAR, IMAGENET) and value != counts[key.split('_')[0]]:
            raise RuntimeError(f'{cell.name}: {key} has {value:,} parameters, {key.split("_")[0]} '
                               f'{counts[key.split("_")[0]]:,}')
    return g.replace(name=cell.name, network=dict(cell.network),
                     provenance=provenance(cell, _commit(checkout), measured), **cell.semantics)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('sources', type=Path, nargs='?', help='folder of OWNER+NAME checkouts')
    parser.add_argument('--only', nargs='+', metavar='NAME', help='import only these cells')
    parser.add_argument('--check', action='store_true', help='compare with genotypes/; write nothing')
    parser.add_argument('--out', type=Path, default=ROOT / 'genotypes', help='output folder')
    parser.add_argument('--jobs', type=int, default=1, help='cells imported at once (each builds in a child process)')
    parser.add_argument('--worker', action='store_true', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(json.loads(sys.stdin.read()))))
        return 0
    if args.sources is None:
        parser.error('SOURCES is required')
    sys.path.insert(0, str(ROOT))
    cells = [c for c in CELLS if not args.only or c.name in args.only]
    unknown = set(args.only or ()) - {c.name for c in CELLS}
    if unknown:
        parser.error(f'unknown cells {sorted(unknown)}')
    stale = []
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        imported = list(pool.map(lambda c: import_cell(c, args.sources), cells))
    for cell, g in zip(cells, imported):
        path = args.out / f'{cell.name}.json'
        current = path.read_text(encoding='utf-8') if path.is_file() else None
        if current == g.to_json():
            print(f'{cell.name}: unchanged')
        elif args.check:
            stale.append(cell.name)
            print(f'{cell.name}: differs from a fresh import', file=sys.stderr)
        else:
            g.save(path)
            ref = g.provenance['reference_params']
            print(f'{cell.name}: wrote {path} ({ref[CIFAR]["params"]:,} / {ref[IMAGENET]["params"]:,} parameters)')
    return 1 if stale else 0


if __name__ == '__main__':
    sys.exit(main())
