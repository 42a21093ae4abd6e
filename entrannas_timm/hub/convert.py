"""``entrannas convert SOURCE --model NAME -o DIR``: a cell author's released checkpoint as a zoo model.

The authors' evaluation networks have exactly our networks' tensors under other names. The file is read with
``torch.load(weights_only=True)`` (size-bounded; wrappers such as ``{'state_dict': ...}`` and DataParallel's
``module.`` prefixes undone; files of PyTorch 0.3/0.4 without ``num_batches_tracked`` accepted; the parsed command
line that GDAS's scripts store beside the weights allowed), every tensor is
mapped by the network's structure (which op of which node of which cell), and the result must
fit exactly: a missing, unexpected or mis-shaped tensor stops the conversion with the first few offending keys,
before anything is written. ``DIR`` gets the Hub layout of ``entrannas export`` (``config.json`` with the genotype
and the authors' evaluation preprocessing, ``model.safetensors``, a model card naming the source file, its
sha256, the reported accuracy and the licence), ready for ``entrannas cache`` and ``entrannas publish``.
"""
from __future__ import annotations

import argparse
import hashlib
import pickle
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Set, Tuple

import torch
import torch.nn as nn

from ..models.authors import AUTHORS_CHECKPOINTS, AuthorsCheckpoint
from ..models.genotype import GenotypeError
from ..models.network import CellNetwork, size_from_weights
from ..models.ops import DilConv, FactorizedConv, FactorizedReduce, ReLUConvBN, SepConv
from ..models.registry import HF_ORG, MODEL_GENOTYPES
from ..utils.errors import CLIError

__all__ = ['LAYOUTS', 'SourceCheckpoint', 'read_source', 'darts_layout', 'fairdarts_layout', 'gdas_layout',
           'snas_layout', 'cdarts_layout', 'convert_state', 'convert', 'add_cli']

MAX_SOURCE_BYTES = 1 << 30
"""The largest checkpoint read (the authors' ImageNet networks are about 20 MB)."""

WRAPPER_KEYS = ('state_dict', 'model', 'net', 'model_state_dict', 'network', 'base-model', 'model_main')
"""Keys under which training scripts store the state dict inside a larger checkpoint dict, tried in order
(``base-model``: GDAS's exps/basic/basic-main.py in AutoDL-Projects; ``model_main``: CDARTS's retrain.py)."""

SHOWN = 3  # offending keys named in an error
AUX = 'auxiliary_head.'  # the authors' auxiliary head (training-only), in DARTS's layout and most others

FAMILY_DATASETS = {'cifar': 'cifar10', 'imagenet': 'imagenet'}
"""The data set ``--validate`` reads by default, by network family."""


@dataclass(frozen=True)
class SourceCheckpoint:
    state: Dict[str, torch.Tensor]
    sha256: str
    unwrapped: Tuple[str, ...]   # the wrapper keys undone, outermost first
    prefix: str                  # the prefix stripped from every key ('' or 'module.')
    md5: str = ''                # the checksum some authors publish instead


def _digests(path: Path) -> Tuple[str, str]:
    """The file's sha256 and MD5, in one read."""
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            sha.update(block)
            md5.update(block)
    return sha.hexdigest(), md5.hexdigest()


def _safe_globals() -> List[Any]:
    """What ``weights_only`` loading may build besides tensors and containers: the metadata GDAS's training scripts
    store beside the weights (exps-cnn/train_utils*.py of its original code, exps/basic/basic-main.py of
    AutoDL-Projects): the parsed command line, an ``argparse.Namespace`` (attributes only), and NumPy number scalars
    (FLOP and parameter counts: ``numpy.dtype`` and NumPy's scalar constructor, under NumPy 1's and 2's names)."""
    import numpy as np
    scalar = np._core.multiarray.scalar if hasattr(np, '_core') else np.core.multiarray.scalar
    numbers = [np.dtype, *{type(np.dtype(c)) for c in '?bhilqBHILQefdg'}, scalar]
    if torch.__version__ >= '2.6':  # a global under another name than its own
        numbers += [(scalar, f'numpy.{core}.multiarray.scalar') for core in ('core', '_core')]
    return [argparse.Namespace, *numbers]


def _load_tensors(path: Path) -> Any:
    """``torch.load(weights_only=True)`` with :func:`_safe_globals` allowed."""
    serialization = torch.serialization
    if not hasattr(serialization, 'safe_globals'):  # torch 2.4: only the process-wide allow list
        serialization.add_safe_globals(_safe_globals())
        return torch.load(path, map_location='cpu', weights_only=True)
    with serialization.safe_globals(_safe_globals()):
        return torch.load(path, map_location='cpu', weights_only=True)


def read_source(path: str) -> SourceCheckpoint:
    """The state dict inside an authors' checkpoint file, read safely (tensors only)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise CLIError(f'{path}: checkpoint file not found')
    if p.stat().st_size > MAX_SOURCE_BYTES:
        raise CLIError(f'{path}: {p.stat().st_size:,} bytes; expected a checkpoint of at most {MAX_SOURCE_BYTES:,}')
    with open(p, 'rb') as f:
        magic = f.read(4)
    if magic != b'PK\x03\x04' and magic[:1] != b'\x80':  # torch's zip format, or the pickle of PyTorch < 1.6
        raise CLIError(f'{path}: not a PyTorch checkpoint (neither a torch zip file nor a pickle)')
    try:
        obj: Any = _load_tensors(p)
    except pickle.UnpicklingError as e:
        why = next((line.strip() for line in str(e).splitlines() if 'Unpickler error' in line), '')
        raise CLIError(f'{path}: not loadable with weights_only=True: it holds objects other than tensors and '
                       f'containers (a whole pickled model?); re-save its state_dict() with the authors\' code'
                       + (f' ({why})' if why else '')) from None
    except Exception as e:  # not a torch file at all: zip/pickle errors of several types
        raise CLIError(f'{path}: not a PyTorch checkpoint ({type(e).__name__}: {str(e).splitlines()[0]})') from None
    unwrapped: List[str] = []
    while isinstance(obj, Mapping) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
        key = next((k for k in WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if key is None:
            break
        unwrapped.append(key)
        obj = obj[key]
    if not isinstance(obj, Mapping) or not obj:
        raise CLIError(f'{path}: expected a state dict (names -> tensors), possibly under one of '
                       f'{", ".join(WRAPPER_KEYS)}; found {type(obj).__name__}'
                       + (f' with keys {sorted(map(str, obj))[:SHOWN]}' if isinstance(obj, Mapping) else ''))
    bad = [str(k) for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise CLIError(f'{path}: expected a state dict of tensors; {len(bad)} entries are not, e.g. {bad[:SHOWN]}')
    state = dict(obj)
    prefix = 'module.' if all(k.startswith('module.') for k in state) else ''
    state = {k[len(prefix):]: v for k, v in state.items()}
    sha256, md5 = _digests(p)
    return SourceCheckpoint(state, sha256, tuple(unwrapped), prefix, md5)


# ---- layouts: our key -> the authors' key, from the network's structure ------------------------------------
_WRAPPED_OPS = (ReLUConvBN, SepConv, DilConv, FactorizedConv)  # DARTS keeps these layers in an ``op`` Sequential


def _flat(cell: torch.nn.Module) -> List[Tuple[int, int]]:
    """``(source, index)`` of each op module of a cell, in the flat order ``cell.node_inputs`` counts."""
    return [(s, i) for s, group in enumerate(cell.ops) for i in range(len(group))]


def _darts_ops(model: CellNetwork) -> List[Dict[Tuple[int, int], List[str]]]:
    """Per cell, ``(source, index)`` of each op -> its ``_ops`` key in DARTS's ``Cell``: ``m``, the m-th connection
    counted node by node in the genotype's order."""
    out = []
    for cell in model.cells:
        flat, ops = _flat(cell), {}
        for m, pos in enumerate(p for node in cell.node_inputs for p in node):
            ops[flat[pos]] = [str(m)]
        out.append(ops)
    return out


def _fairdarts_ops(model: CellNetwork) -> List[Dict[Tuple[int, int], List[str]]]:
    """Per cell, ``(source, index)`` of each op -> its ``_ops`` key in FairDARTS's ``DCOCell``
    (fairdarts/model.py): ``to.from.n``, a ModuleDict by node and input state (their genotype numbers: absent
    nodes keep their number) holding the n-th op of that edge."""
    g = model.genotype
    out = []
    for cell in model.cells:
        spec = g.reduce if cell.reduction else g.normal
        flat, ops = _flat(cell), {}
        for state, positions in zip(spec.present, cell.node_inputs):
            per_edge: Dict[int, int] = {}
            for (_, inp), pos in zip(spec.nodes[state - 2], positions):
                n = per_edge[inp] = per_edge.get(inp, -1) + 1
                ops[flat[pos]] = [str(state), str(inp), str(n)]
        out.append(ops)
    return out


def _cell_network_layout(model: CellNetwork, layout: str,
                         cell_ops: Callable[[CellNetwork], List[Dict[Tuple[int, int], List[str]]]],
                         pool_bn: bool = False) -> Dict[str, str]:
    """Our key -> the authors' for DARTS's ``NetworkCIFAR`` / ``NetworkImageNet`` around any cell class:
    ``stem`` (CIFAR) or ``stem0``/``stem1``, ``cells.i.preprocess{0,1}``, ``cells.i._ops.<cell_ops key>`` (each
    layer stack in an ``op`` Sequential; with ``pool_bn``, a pooling and its batch norm too, as SNAS's),
    ``auxiliary_head.features`` (after a ReLU and a pool, two indices later than ours) and ``classifier``."""
    g = model.genotype
    if g.feature_sharing:  # the only way one op module serves several connections
        raise CLIError(f'--layout {layout}: the genotype shares one op between connections (feature sharing); the '
                       'authors\' layouts have one op per connection')
    if g.bn_after and not (pool_bn and set(g.bn_after) <= set(_POOLS)):
        raise CLIError(f'genotype {g.name or "custom"}: a batch norm after {", ".join(g.bn_after)} has no '
                       f'counterpart in the {layout} layout' + ('' if pool_bn else ' (--layout snas has one after '
                                                                   'poolings)'))
    ops_of = cell_ops(model)
    out: Dict[str, str] = {}
    for key in model.state_dict():
        parts = key.split('.')
        if parts[0] == 'stem0' and model.stem_type == 'cifar':
            theirs = ['stem', *parts[1:]]
        elif parts[0] in ('stem0', 'stem1'):
            theirs = parts
        elif parts[0] == 'cells' and parts[2].startswith('preprocess'):
            module = model.cells[int(parts[1])].get_submodule(parts[2])
            theirs = parts[:3] + (['op'] if isinstance(module, ReLUConvBN) else []) + parts[3:]
        elif parts[0] == 'cells' and parts[2] == 'ops':
            i, s, k = int(parts[1]), int(parts[3]), int(parts[4])
            op = model.cells[i].ops[s][k]
            pooled = pool_bn and isinstance(op, nn.Sequential) and isinstance(op[0], (nn.MaxPool2d, nn.AvgPool2d))
            if not (pooled or isinstance(op, _WRAPPED_OPS + (FactorizedReduce,))):
                raise CLIError(f'{key}: a {type(op).__name__} op has no counterpart in the {layout} layout')
            theirs = ['cells', str(i), '_ops', *ops_of[i][(s, k)]] + (
                ['op'] if pooled or isinstance(op, _WRAPPED_OPS) else []) + parts[5:]
        elif (head := _head_key(parts, AUX, 'classifier')) is not None:
            theirs = head
        else:
            raise CLIError(f'{key}: no counterpart in the {layout} layout')
        out[key] = '.'.join(theirs)
    return out


def _head_key(parts: List[str], aux: str, classifier: str) -> Optional[List[str]]:
    """Our auxiliary head and classifier keys in DARTS's head classes: the head under ``aux`` (a key prefix), its
    features two indices later (after its ReLU and pool); the classifier named ``classifier``; None elsewhere."""
    if parts[:2] == ['aux_head', 'features']:
        return [aux.rstrip('.'), 'features', str(int(parts[2]) + 2), *parts[3:]]
    if parts[0] == 'aux_head':
        return [aux.rstrip('.'), *parts[1:]]
    if parts[:2] == ['head', 'fc']:
        return [classifier, *parts[2:]]
    return None


def _drops_paths(model: CellNetwork, cell: str) -> None:
    """Refuse a genotype that drops whole nodes for a ``cell`` class that drops paths (DARTS's kind)."""
    if model.genotype.drop_path != 'path':
        raise CLIError(f'genotype {model.genotype.name or "custom"}: drops whole nodes, not paths; {cell} drops '
                       'paths (--layout fairdarts has node drop path)')


def darts_layout(model: CellNetwork) -> Dict[str, str]:
    """DARTS's evaluation networks (cnn/model.py; its successors' evaluation code copies the file,
    tests/test_convert.py proves DARTS's own, P-DARTS's and GDAS's original lib/nas): ``cells.i._ops.m`` is
    connection m of the genotype."""
    _drops_paths(model, "DARTS's cell")
    return _cell_network_layout(model, 'darts', _darts_ops)


def fairdarts_layout(model: CellNetwork) -> Dict[str, str]:
    """FairDARTS's ``NetworkCIFAR`` with its ``DCOCell`` (any number of inputs per node, absent nodes; proven by
    tests/test_convert.py): ``cells.i._ops.to.from.n``."""
    return _cell_network_layout(model, 'fairdarts', _fairdarts_ops)


GDAS_CIFAR_STEM = ('conv', 'bn')
"""The CIFAR stem's conv and BN in GDAS's ``CifarHEAD`` (xautodl/nas_infer_model/DXYs/head_utils.py), where
DARTS's Sequential has ``stem.0`` and ``stem.1``."""
_GDAS_FACTORIZED = {'conv_1': 'convs.0', 'conv_2': 'convs.1'}  # FactorizedReduce's two convs: a ModuleList in GDAS


def gdas_layout(model: CellNetwork) -> Dict[str, str]:
    """GDAS's evaluation networks in AutoDL-Projects (xautodl/nas_infer_model/DXYs, ``NetworkCIFAR`` and
    ``NetworkImageNet`` with ``InferCell``: what docs/CVPR-2019-GDAS.md trains GDAS_V1 with; proven by
    tests/test_convert.py): DARTS's keys, ``_ops.m`` connection m, except the CIFAR stem (:data:`GDAS_CIFAR_STEM`)
    and ``FactorizedReduce``'s ``convs.0``/``convs.1``. GDAS's original code (lib/nas, which its released
    ImageNet file comes from) is the darts layout."""
    _drops_paths(model, "GDAS's InferCell")
    if model.stem_type == 'imagenet' and model.aux_head is not None:
        raise CLIError('--layout gdas: GDAS\'s ImageNet auxiliary head (AuxiliaryHeadImageNet, DXYs/head_utils.py) '
                       'has a batch norm after its 768-channel conv that ours, DARTS\'s, has not; pass --aux drop '
                       '(the head is training-only)')
    out: Dict[str, str] = {}
    for ours, theirs in _cell_network_layout(model, 'gdas', _darts_ops).items():
        *module, child, _ = ours.split('.')
        parts = theirs.split('.')
        if parts[0] == 'stem':
            parts[1] = GDAS_CIFAR_STEM[int(parts[1])]
        elif child in _GDAS_FACTORIZED and isinstance(model.get_submodule('.'.join(module)), FactorizedReduce):
            parts[-2] = _GDAS_FACTORIZED[child]
        out[ours] = '.'.join(parts)
    return out


_POOLS = ('max_pool_3x3', 'avg_pool_3x3')


def snas_layout(model: CellNetwork) -> Dict[str, str]:
    """SNAS's evaluation networks (SNAS/model_edge_all.py, which its README and released file use; proven by
    tests/test_convert.py): DARTS's classes, but each pooling is followed by a batch norm (``_ops.m.op.1``) and the
    cell is SNAS's edge-all form, ``_ops.m`` counting the ``none`` connections too. So the genotype must hold
    every predecessor of every node in the authors' order, as the bundled ``snas_*`` cells (imported from
    ``SNAS_*_edge_all``) do."""
    _drops_paths(model, "SNAS's cell")
    g = model.genotype
    for kind, spec in (('normal', g.normal), ('reduce', g.reduce)):
        for k, node in enumerate(spec.nodes):
            inputs = sorted(i for _, i in node)
            if inputs != list(range(k + 2)):
                raise CLIError(f'--layout snas: node {k} of the {kind} cell of {g.name or "the genotype"} reads '
                               f'{inputs}; SNAS\'s cell (model_edge_all.py) has one connection '
                               f'from each of its {k + 2} predecessors ("none" included): give the '
                               'SNAS_*_edge_all genotype')
    return _cell_network_layout(model, 'snas', _darts_ops, pool_bn=True)


def _darts_size(state: Mapping[str, torch.Tensor], cifar_stem: str = 'stem.0.weight',
                label: str = 'DARTS') -> Dict[str, Any]:
    """Family, channels, cells, input channels, classes and auxiliary head of a state dict of DARTS's network
    classes (``cifar_stem``: their CIFAR stem's conv)."""
    try:
        imagenet = 'stem1.1.weight' in state
        stem = state['stem0.0.weight' if imagenet else cifar_stem]
        channels = state['cells.0.preprocess1.op.1.weight'].shape[0]
        layers = 1 + max(int(k.split('.')[1]) for k in state if k.startswith('cells.'))
        classes = state['classifier.weight'].shape[0]
    except (KeyError, ValueError, IndexError) as e:
        raise CLIError(f'not a {label}-layout state dict (no {e} key); keys start {sorted(state)[:SHOWN]}') from None
    return _network_size(imagenet, stem, channels, layers, classes, any(k.startswith(AUX) for k in state))


def _network_size(imagenet: bool, stem: torch.Tensor, channels: int, layers: int, classes: int,
                  auxiliary: bool) -> Dict[str, Any]:
    """The ``timm.create_model`` size arguments of a file's network (``stem``: the first conv's weight)."""
    family = 'imagenet' if imagenet else 'cifar'
    return dict(family=family, auxiliary=auxiliary, **size_from_weights(family, stem, channels, layers, classes))


CDARTS_AUX = 'aux_head.'  # CDARTS's ModelAug keeps its auxiliary head (DARTS's class) under this name
_CDARTS_FACTORIZED = {'conv_1': 'conv1', 'conv_2': 'conv2', 'bn': 'bn'}  # its FactorizedReduce


def _cdarts_op(module: torch.nn.Module, rest: List[str], key: str) -> List[str]:
    """The key inside one of CDARTS's op classes (pt.darts's: layers in a ``net`` Sequential, a SepConv as two
    DilConvs) for ``rest`` inside ours."""
    if isinstance(module, FactorizedReduce):
        return [_CDARTS_FACTORIZED[rest[0]], *rest[1:]]
    if isinstance(module, SepConv):  # ours: ReLU, conv, conv, BN twice over (0-3, 4-7)
        half, layer = divmod(int(rest[0]), 4)
        return ['net', str(half), 'net', str(layer), *rest[1:]]
    if isinstance(module, (ReLUConvBN, DilConv)):
        return ['net', *rest]
    raise CLIError(f'{key}: a {type(module).__name__} op has no counterpart in the cdarts layout')


def _node_ops(model: CellNetwork) -> List[Dict[Tuple[int, int], List[str]]]:
    """Per cell, ``(source, index)`` of each op -> ``node.k``: connection k of that node, in the genotype's order
    (CDARTS's ``dag``, a ModuleList of nodes of connections)."""
    out = []
    for cell in model.cells:
        flat = _flat(cell)
        out.append({flat[pos]: [str(n), str(k)] for n, node in enumerate(cell.node_inputs)
                    for k, pos in enumerate(node)})
    return out


def _cdarts_stages(model: CellNetwork) -> List[Tuple[int, int]]:
    """``(stage, index)`` of each cell in CDARTS's stages, which end at each reduction cell."""
    where, stage, j = [], 0, 0
    for cell in model.cells:
        where.append((stage, j))
        stage, j = (stage + 1, 0) if cell.reduction else (stage, j + 1)
    return where


def cdarts_layout(model: CellNetwork) -> Dict[str, str]:
    """CDARTS's evaluation networks (microsoft/Cream CDARTS/lib/models: ``ModelAug``, which its retrain.py saves,
    and ``ModelTest``, which its test.py loads the file into; proven by tests/test_convert.py): the stems in
    ``feature_extractor.0/1``, the cells in stages that end at each reduction cell (``nas_layers.<stage>.<j>``),
    ``preproc0/1``, ``dag.<node>.<k>.0`` for connection k of a node (inside its drop-path Sequential), pt.darts's
    op classes, ``fc`` and ``aux_head``."""
    _drops_paths(model, "CDARTS's AugmentCell")
    g = model.genotype
    if g.feature_sharing or g.bn_after or any(len(c.present) != len(c.nodes) for c in (g.normal, g.reduce)):
        raise CLIError(f'--layout cdarts: genotype {g.name or "custom"} has shared ops, a batch norm after '
                       'parameter-free ops or an absent node, none of which CDARTS\'s AugmentCell has')
    where = _cdarts_stages(model)
    ops_of = _node_ops(model)
    out: Dict[str, str] = {}
    for key in model.state_dict():
        parts = key.split('.')
        if parts[0] in ('stem0', 'stem1'):
            theirs = ['feature_extractor', parts[0][-1], *parts[1:]]
        elif parts[0] == 'cells':
            i = int(parts[1])
            cell, head = model.cells[i], ['nas_layers', *map(str, where[i])]
            if parts[2].startswith('preprocess'):
                theirs = head + [f'preproc{parts[2][-1]}', *_cdarts_op(cell.get_submodule(parts[2]), parts[3:], key)]
            else:  # cells.i.ops.<source>.<k>
                src, k = int(parts[3]), int(parts[4])
                theirs = head + ['dag', *ops_of[i][(src, k)], '0', *_cdarts_op(cell.ops[src][k], parts[5:], key)]
        elif (last := _head_key(parts, CDARTS_AUX, 'fc')) is not None:
            theirs = last
        else:
            raise CLIError(f'{key}: no counterpart in the cdarts layout')
        out[key] = '.'.join(theirs)
    return out


def _cdarts_size(state: Mapping[str, torch.Tensor]) -> Dict[str, Any]:
    """The network size of a state dict of CDARTS's ``ModelAug`` / ``ModelTest``."""
    try:
        cells = {tuple(k.split('.')[1:3]) for k in state if k.startswith('nas_layers.')}
        return _network_size('feature_extractor.1.1.weight' in state, state['feature_extractor.0.0.weight'],
                             state['nas_layers.0.0.preproc1.net.1.weight'].shape[0], len(cells),
                             state['fc.weight'].shape[0], any(k.startswith(CDARTS_AUX) for k in state))
    except (KeyError, ValueError, IndexError) as e:
        raise CLIError(f'not a CDARTS-layout state dict (no {e} key); keys start {sorted(state)[:SHOWN]}') from None


def _darts_preprocess(model: CellNetwork, cell: int, inp: int) -> str:
    """The key prefix of cell ``cell``'s preprocessing of input ``inp`` in DARTS's network classes."""
    return f'cells.{cell}.preprocess{inp}.'


def _cdarts_preprocess(model: CellNetwork, cell: int, inp: int) -> str:
    """The same prefix in CDARTS's stages."""
    stage, j = _cdarts_stages(model)[cell]
    return f'nas_layers.{stage}.{j}.preproc{inp}.'


class Layout(NamedTuple):
    keys: Callable[[CellNetwork], Dict[str, str]]   # our key -> theirs, for a network
    size: Callable[[Mapping], Dict[str, Any]]       # the network's size, read from their state dict
    aux: str = AUX                                  # the key prefix of their auxiliary head
    preprocess: Callable[[CellNetwork, int, int], str] = _darts_preprocess  # a cell input's preprocessing prefix


LAYOUTS: Dict[str, Layout] = {
    'darts': Layout(darts_layout, _darts_size),
    'fairdarts': Layout(fairdarts_layout, _darts_size),  # DARTS's stem, preprocessing, heads: the same size keys
    'gdas': Layout(gdas_layout, partial(_darts_size, cifar_stem=f'stem.{GDAS_CIFAR_STEM[0]}.weight', label='GDAS')),
    'snas': Layout(snas_layout, _darts_size),
    'cdarts': Layout(cdarts_layout, _cdarts_size, CDARTS_AUX, _cdarts_preprocess),
}
"""Key layout -> how a network's keys, its size and the auxiliary head read there."""


def _layouts_reading(state: Mapping[str, torch.Tensor], layout: str) -> List[str]:
    """The other layouts whose size keys ``state`` has (a hint for a file given the wrong ``--layout``)."""
    names = []
    for name, lay in LAYOUTS.items():
        try:
            lay.size(state)
        except CLIError:
            continue
        if name != layout:
            names.append(name)
    return names


def _unexpected(model: CellNetwork, state: Mapping[str, torch.Tensor], layout: str, theirs: Set[str],
                keep_aux: bool) -> List[str]:
    """The keys of ``state`` that have no place in ``model`` under ``layout`` (``theirs``: its mapped keys): not
    mapped, not the auxiliary head being dropped, not the preprocessing of a cell input no node reads."""
    lay = LAYOUTS[layout]
    unread = tuple(lay.preprocess(model, i, inp) for i, cell in enumerate(model.cells) for inp in cell.unused_inputs)
    return [k for k in state if k not in theirs and not (not keep_aux and k.startswith(lay.aux))
            and not k.startswith(unread)]


def _layouts_fitting(model: CellNetwork, state: Mapping[str, torch.Tensor], layout: str, keep_aux: bool) -> List[str]:
    """The other layouts under which ``state`` holds exactly ``model``'s tensors (the same hint, a step later)."""
    names = []
    for name, lay in LAYOUTS.items():
        try:
            theirs = set(lay.keys(model).values())
        except CLIError:  # the genotype has no counterpart there
            continue
        if (name != layout and {k for k in theirs if not k.endswith('num_batches_tracked')} <= set(state)
                and not _unexpected(model, state, name, theirs, keep_aux)):
            names.append(name)
    return names


def convert_state(model: CellNetwork, state: Mapping[str, torch.Tensor], layout: str = 'darts',
                  keep_aux: bool = True, source: str = 'checkpoint') -> Dict[str, torch.Tensor]:
    """``state`` (the authors' keys) as ``model``'s state dict; every tensor accounted for, or a :class:`CLIError`.

    Missing ``num_batches_tracked`` (files older than PyTorch 0.4.1) become 0; with ``keep_aux=False`` the
    authors' auxiliary head is dropped (it is training-only); so is their preprocessing of a cell input that no
    node reads (ours has none: it cannot change the output).
    """
    mapping, aux = LAYOUTS[layout].keys(model), LAYOUTS[layout].aux
    own = model.state_dict()
    out: Dict[str, torch.Tensor] = {}
    missing, shapes = [], []
    for ours, theirs in mapping.items():
        if theirs not in state:
            if ours.endswith('num_batches_tracked'):
                out[ours] = torch.zeros_like(own[ours])
                continue
            missing.append(f'{theirs} (for {ours})')
        elif tuple(state[theirs].shape) != tuple(own[ours].shape):
            shapes.append(f'{theirs}: file {tuple(state[theirs].shape)}, expected {tuple(own[ours].shape)}')
        else:
            out[ours] = state[theirs].to(own[ours].dtype)
    unexpected = _unexpected(model, state, layout, set(mapping.values()), keep_aux)
    if missing or shapes or unexpected:
        parts = []
        for what, keys in (('mis-shaped', shapes), ('missing', missing), ('unexpected', unexpected)):
            if keys:
                parts.append(f'{len(keys)} {what}: {"; ".join(keys[:SHOWN])}' + (' ...' if len(keys) > SHOWN else ''))
        fitting = _layouts_fitting(model, state, layout, keep_aux)
        hint = (f' (its keys are the {fitting[0]} layout\'s: pass --layout {fitting[0]})' if fitting else
                ' (the file has an auxiliary head: pass --aux drop, or build with it)'
                if unexpected and all(k.startswith(aux) for k in unexpected) else
                ' (a checkpoint of another cell, size or class count?)')
        raise CLIError(f'{source}: does not fit {model.genotype.name or "the genotype"} in the {layout} layout: '
                       + ' | '.join(parts) + hint + '; nothing was written')
    return out


def _build(model_name: str, genotype: Optional[str], size: Dict[str, Any]) -> CellNetwork:
    """``model_name`` (an architecture, or ``arch.tag`` for that tag's pretrained cfg) at the file's size."""
    import timm
    arch = model_name.split('.')[0]
    if arch not in MODEL_GENOTYPES:
        raise CLIError(f'--model: {model_name!r} is not a registered model; expected one of '
                       f'{", ".join(sorted(MODEL_GENOTYPES))} (or a tag such as {next(iter(AUTHORS_CHECKPOINTS))})')
    family = size.pop('family')
    if MODEL_GENOTYPES[arch][1] != family:
        raise CLIError(f'--model: {arch} is a {MODEL_GENOTYPES[arch][1]} network but the checkpoint has the '
                       f'{family} stem')
    kwargs = dict(size)
    if genotype is not None:
        kwargs['genotype'] = genotype
    try:
        return timm.create_model(model_name, pretrained=False, **kwargs).eval()
    except (GenotypeError, ValueError) as e:
        raise CLIError(f'--genotype: {e}') from None


def _card(c: Optional[AuthorsCheckpoint], source: str, src: SourceCheckpoint, layout: str, keep_aux: bool,
          model_name: str) -> Dict[str, Any]:
    details: Dict[str, Any] = {
        'Converted from': f'`{Path(source).name}` (sha256 `{src.sha256}`) by `entrannas convert --model {model_name}`'
                          f' ({layout} layout{", auxiliary head kept" if keep_aux else ", auxiliary head dropped"})'}
    card: Dict[str, Any] = {'details': details}
    if c is not None:
        details.update({'Source': f'{c.url} (code: {c.code})', 'Reported by the authors': c.reported,
                        'Weights licence': f'{c.license_text} (the licence of {c.code})'})
        card['license'] = c.license
        card['description'] = (f'The authors\' own trained weights ({c.file or c.url}), converted to this layout; they '
                               f'report {c.reported}. Preprocessing in `config.json` is their evaluation '
                               'script\'s.')
    return card


def convert(source: str, model_name: str, output: str, genotype: Optional[str] = None, layout: Optional[str] = None,
            keep_aux: Optional[bool] = None, repo_id: Optional[str] = None,
            overwrite: bool = False) -> Tuple[Path, str]:
    """Convert ``source`` into the Hub folder ``output``; the folder and the file's sha256. ``keep_aux`` None: keep
    the file's auxiliary head unless the tag says ours cannot hold it."""
    from .export import EXPORT_FILES
    from .layout import save_pretrained
    c = AUTHORS_CHECKPOINTS.get(model_name)
    if '.' in model_name and c is None:
        raise CLIError(f'--model: {model_name!r} is not a known authors\' checkpoint tag; known: '
                       f'{", ".join(AUTHORS_CHECKPOINTS)} (or give a registered architecture with --layout)')
    if c is not None and c.aux_head:
        if keep_aux:
            raise CLIError(f'--aux keep: {c.aux_head}, so {model_name} can only drop it (--aux drop, the default for '
                           'this tag; the head is training-only)')
        keep_aux = False
    keep_aux = True if keep_aux is None else keep_aux
    layout = layout or (c.layout if c else 'darts')
    if layout not in LAYOUTS:
        raise CLIError(f'--layout: expected one of {", ".join(LAYOUTS)}, got {layout!r}')
    out = Path(output)
    clash = [f for f in EXPORT_FILES if (out / f).exists()]
    if clash and not overwrite:
        raise CLIError(f'-o: {out} already holds {", ".join(clash)}; choose another folder or pass --overwrite '
                       '(nothing was written)')
    src = read_source(source)
    if c is not None and c.sha256 and src.sha256 != c.sha256:
        raise CLIError(f'{source}: sha256 {src.sha256} is not the published {c.file} ({c.sha256}); nothing was '
                       'written')
    if c is not None and c.md5 and src.md5 != c.md5:
        raise CLIError(f'{source}: MD5 {src.md5} is not the one the authors publish for {c.file_arg} ({c.md5}); '
                       'nothing was written')
    try:
        size = LAYOUTS[layout].size(src.state)
    except CLIError as e:
        reading = _layouts_reading(src.state, layout)
        raise CLIError(f'{source}: {e}' + (f' (it reads as --layout {reading[0]})' if reading else '')) from None
    keep_aux = keep_aux and size['auxiliary']
    model = _build(model_name, genotype, dict(size, auxiliary=keep_aux))
    model.load_state_dict(convert_state(model, src.state, layout, keep_aux, source), strict=True)
    arch = model_name.split('.')[0]  # a tag's preprocessing comes with its pretrained cfg
    try:
        folder = save_pretrained(model, out, architecture=arch, name=repo_id or f'{HF_ORG}/{out.resolve().name}',
                                 card=_card(c, source, src, layout, keep_aux, model_name))
    except ValueError as e:
        raise CLIError(f'{source}: {e}') from None
    return folder, src.sha256


def _cli_convert(args: argparse.Namespace) -> int:
    keep_aux = None if args.aux is None else args.aux == 'keep'
    folder, sha = convert(args.source, args.model, args.output, args.genotype, args.layout, keep_aux, args.repo_id,
                          args.overwrite)
    print(f'{args.source}: sha256 {sha}')
    for f in sorted(folder.iterdir()):
        print(f)
    if args.validate:  # entrannas validate FOLDER, with its own defaults
        from ..train import validate
        family = MODEL_GENOTYPES[args.model.split('.')[0]][1]
        known = AUTHORS_CHECKPOINTS.get(args.model)
        dataset = args.validate_dataset or (known.dataset if known else FAMILY_DATASETS[family])
        argv = [str(folder), '--dataset', dataset, '--data-dir', args.validate]
        argv += ['--subset', str(args.validate_subset)] if args.validate_subset else []
        row = validate.validate(validate.add_cli(argparse.ArgumentParser().add_subparsers()).parse_args(argv))
        print(validate.format_row(row))
    return 0


def add_cli(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``entrannas convert``."""
    p = subparsers.add_parser(
        'convert', help="an authors' released checkpoint as a Hub folder (config.json, model.safetensors, card)",
        description=__doc__.split('\n\n')[1].replace('\n', ' '))
    p.add_argument('source', metavar='SOURCE_CHECKPOINT', help="the authors' file (e.g. DARTS's cifar10_model.pt)")
    p.add_argument('--model', required=True, metavar='NAME',
                   help=f'an authors\' checkpoint tag ({", ".join(AUTHORS_CHECKPOINTS)}) or a registered architecture')
    p.add_argument('--genotype', help="the cell, where not the model's own (bundled name or genotype file)")
    p.add_argument('--layout', choices=sorted(LAYOUTS), help="the authors' key layout (default: the tag's, else "
                   'darts)')
    p.add_argument('--aux', choices=('keep', 'drop'),
                   help="the auxiliary head (training only): keep the file's as ours (default, unless the tag's "
                   'head has layers ours lacks, as SGAS\'s ImageNet one) or drop it')
    p.add_argument('-o', '--output', required=True, metavar='DIR', help='folder to write (created if missing)')
    p.add_argument('--repo-id', metavar='ORG/NAME', help=f'Hub repo id the card names (default {HF_ORG}/<folder>)')
    p.add_argument('--overwrite', action='store_true', help='replace an earlier conversion in DIR')
    p.add_argument('--validate', metavar='DATA', help='then report top-1 on this data directory (CIFAR layout or '
                   'ImageFolder with val/)')
    p.add_argument('--validate-dataset', help='its data set (default: the checkpoint\'s: cifar10 or imagenet)')
    p.add_argument('--validate-subset', type=int, metavar='N', help='validate on the first N images only')
    p.set_defaults(func=_cli_convert)
    return p
