"""The consistency measurement: how well the derived discrete network stands for the super-net it came from
(docs/method.md, *Consistency*).

On a held-out split with evaluation transforms (:func:`search.data.build_heldout_data`) :func:`measure` takes
the accuracy and loss of

1. ``supernet``: the super-net as the search runs it (eval mode);
2. ``inherited``: the derived network, exactly what the genotype builds through the zoo
   (:func:`derived_network`), with the super-net's weights mapped in (:func:`inherit_weights`);
3. ``recalibrated``: the same after re-estimating its batch-norm statistics on N training batches;
4. ``finetuned``: that network after S SGD steps on training batches;
5. ``scratch``: the derived network freshly initialised and trained for the same S steps on the same batches.

Training batches come from the search's weight split, with its training augmentation. The measurement runs on
its own random streams (``torch.random.fork_rng``), so a search measured at some epochs computes exactly what
it computes unmeasured.

Each measurement is one line of ``RUN_DIR/consistency.jsonl`` (:data:`CONSISTENCY_FILE`), written by the search
(``--consistency-epochs``, source ``search``) and by ``python -m search consistency RUN`` (source ``command``),
through the run record's module (``entrannas_timm.reports.records``, re-exported here), which also reads it
back for ``entrannas report``.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import timm
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from entrannas_timm import CellNetwork, Genotype
from entrannas_timm.reports.records import (
    CONSISTENCY_FILE,
    RecordError,
    append_consistency,
    consistency_line,
    keep_consistency,
    read_consistency,
)
from entrannas_timm.reports.records import CONSISTENCY_SOURCES as SOURCES
from entrannas_timm.reports.records import CONSISTENCY_STAGES as STAGES
from entrannas_timm.train.precise_bn import is_batch_norm, recalibrate_bn

from .config import ConfigError, SearchConfig, check_ranges
from .data import HeldOut, SearchData
from .searcher import CHECKPOINT_FORMAT, CHECKPOINT_VERSION, SearchError
from .supernet import SearchNetwork

__all__ = ['CONSISTENCY_FILE', 'STAGES', 'SOURCES', 'ConsistencyError', 'ConsistencySettings', 'Inheritance',
           'Progress', 'derived_network', 'inherit_weights', 'recalibrate_bn', 'measure', 'consistency_line',
           'append_consistency', 'read_consistency', 'keep_consistency', 'summary', 'main']

_SHOWN_NAMES = 20  # names of tensors left initialised listed in a record (the count is always complete)


class ConsistencyError(SearchError):
    """The consistency measurement cannot run on this input; the message names the file or flag."""


@dataclass
class ConsistencySettings:
    """N, S and the training settings of a measurement; ``from_config`` takes them from a search's settings."""
    batches: int = 10                 # N: batch-norm re-calibration batches
    steps: int = 100                  # S: fine-tune and from-scratch steps
    images: Optional[int] = None      # held-out images (None: the whole split)
    lr: float = 0.025                 # constant SGD learning rate of both trainings
    batch_size: int = 64
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    seed: int = 0

    @classmethod
    def from_config(cls, cfg: SearchConfig) -> ConsistencySettings:
        return cls(batches=cfg.consistency_batches, steps=cfg.consistency_steps, images=cfg.consistency_images,
                   lr=cfg.consistency_lr or cfg.lr, batch_size=cfg.batch_size, momentum=cfg.momentum,
                   weight_decay=cfg.weight_decay, grad_clip=cfg.grad_clip, seed=cfg.seed)


# ---- the derived network and its inherited weights -------------------------------------------------------------
def derived_network(supernet: SearchNetwork, genotype: Optional[Genotype] = None) -> CellNetwork:
    """The network the zoo builds for ``genotype`` (default: the super-net's current one) at the super-net's size:
    ``timm.create_model('cellnet_<stem>', genotype=..., channels=, layers=, stem_multiplier=, num_classes=,
    in_chans=)``, on the super-net's device."""
    genotype = supernet.genotype() if genotype is None else genotype
    net = timm.create_model(f'cellnet_{supernet.stem_type}', genotype=genotype, channels=supernet.channels,
                            layers=supernet.layers, stem_multiplier=supernet.stem_multiplier,
                            num_classes=supernet.num_classes, in_chans=supernet.in_chans)
    return net.to(supernet.alphas_normal.device)


@dataclass
class Inheritance:
    """What :func:`inherit_weights` mapped, counted in tensors (parameters and buffers) of the derived network."""
    copied: int = 0                   # taken from the super-net
    affine_identity: int = 0          # batch-norm weight 1 / bias 0: the super-net's batch norm is affine=False
    initialised: List[str] = field(default_factory=list)  # no super-net tensor of that shape: left as initialised
    dropped: int = 0                  # tensors of the chosen ops with no place in the derived network
    total: int = 0

    def to_dict(self) -> Dict[str, Any]:
        return {'copied': self.copied, 'affine_identity': self.affine_identity, 'initialised': len(self.initialised),
                'initialised_names': self.initialised[:_SHOWN_NAMES], 'dropped': self.dropped, 'total': self.total}


def _zoo_layout(spec, feature_sharing: bool) -> List[List[Tuple[str, int, int]]]:
    """``(op, input state, node state)`` of each op of a zoo cell, source by source, in the order the zoo's cell
    builds them (``entrannas_timm.models.network.Cell``: one op per connection, or per (source, op) when sharing)."""
    present = spec.present
    source_of = {0: 0, 1: 1, **{state: k + 2 for k, state in enumerate(present)}}
    layout: List[List[Tuple[str, int, int]]] = [[] for _ in range(len(present) + 1)]
    for state in present:
        for op, inp in spec.nodes[state - 2]:
            names = layout[source_of[inp]]
            if not (feature_sharing and any(n == op for n, _, _ in names)):
                names.append((op, inp, state))
    return layout


@torch.no_grad()
def _copy_into(src: nn.Module, dst: nn.Module, prefix: str, report: Inheritance) -> None:
    """Copy every tensor of ``src`` into the ``dst`` tensor of the same name and shape; a ``dst`` batch norm whose
    ``src`` counterpart is affine=False gets weight 1 and bias 0."""
    src_t = dict(src.named_parameters())
    src_t.update(dict(src.named_buffers()))
    used = set()
    for name, t in [*dst.named_parameters(), *dst.named_buffers()]:
        report.total += 1
        s = src_t.get(name)
        path, _, leaf = name.rpartition('.')
        if s is not None and s.shape == t.shape:
            t.copy_(s)
            used.add(name)
            report.copied += 1
            continue
        if s is None and leaf in ('weight', 'bias') and is_batch_norm(dst.get_submodule(path)):
            try:
                counterpart = src.get_submodule(path)
            except AttributeError:
                counterpart = None
            if (counterpart is not None and is_batch_norm(counterpart) and not counterpart.affine
                    and counterpart.num_features == t.shape[0]):
                t.fill_(1. if leaf == 'weight' else 0.)
                report.affine_identity += 1
                continue
        report.initialised.append(f'{prefix}.{name}')
    report.dropped += sum(1 for name in src_t if name not in used)


def inherit_weights(supernet: SearchNetwork, derived: CellNetwork) -> Inheritance:
    """Map the super-net's weights into ``derived`` (a :func:`derived_network` of its genotype), in place.

    Mapped: the stem, each cell's two preprocessing layers, for every op of each derived cell the super-net's
    instance of that op on that edge (DARTS layout) or on that source node (feature sharing: one instance per
    (source node, op)), and the classifier. Batch norms of the super-net's cells are affine=False (DARTS's search
    form) while the derived network's are affine=True: their running statistics are copied and their weight set
    to 1, bias to 0, so in eval mode the derived layer computes what the super-net's did. Nothing else differs
    for DARTS, EnTranNAS and EnTranNAS-DST, except that the batch norm the super-net puts after each pooling op
    has no place in the derived network (DARTS's evaluation form) and is dropped. PC-DARTS's ops hold 1/K of the
    channels: they do not fit the derived network's and stay as initialised (counted in ``initialised``).
    """
    if derived.genotype.feature_sharing != supernet.feature_sharing or len(derived.cells) != len(supernet.cells):
        raise ValueError('derived network: not built from this super-net (feature sharing or depth differ)')
    report = Inheritance()
    _copy_into(supernet.stem0, derived.stem0, 'stem0', report)
    _copy_into(supernet.stem1, derived.stem1, 'stem1', report)
    edge_index = {edge: e for e, edge in enumerate(supernet.edges)}
    for c, (scell, dcell) in enumerate(zip(supernet.cells, derived.cells)):
        _copy_into(scell.preprocess0, dcell.preprocess0, f'cells.{c}.preprocess0', report)
        _copy_into(scell.preprocess1, dcell.preprocess1, f'cells.{c}.preprocess1', report)
        spec = derived.genotype.reduce if dcell.reduction else derived.genotype.normal
        layout = _zoo_layout(spec, supernet.feature_sharing)
        if [len(names) for names in layout] != [len(group) for group in dcell.ops]:
            raise ValueError(f'cell {c}: the zoo cell holds its ops differently than expected; cannot map weights')
        for s, names in enumerate(layout):
            for idx, (op, inp, state) in enumerate(names):
                group = inp if supernet.feature_sharing else edge_index[(inp, state)]
                src = scell.ops[group][supernet.ops.index(op)]
                _copy_into(src, dcell.ops[s][idx], f'cells.{c}.ops.{s}.{idx}', report)
    _copy_into(supernet.classifier, derived.get_classifier(), 'head.fc', report)
    return report


# ---- the stages --------------------------------------------------------------------------------------------------
class Progress:
    """A tqdm bar over every step of a measurement (``bar``), or one plain line per stage through ``write``."""

    def __init__(self, bar: bool = False, write: Optional[Callable[[str], None]] = None):
        self.use_bar, self.write = bar, write
        self._bar: Optional[tqdm] = None

    def start(self, total: int, desc: str) -> None:
        if self.use_bar:
            self._bar = tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True, unit='step')
        elif self.write is not None:
            self.write(f'{desc}:')

    def stage(self, name: str) -> None:
        if self._bar is not None:
            self._bar.set_postfix_str(name)

    def step(self) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def result(self, stage: str, acc: float, loss: Optional[float]) -> None:
        if self._bar is None and self.write is not None:
            shown = 'non-finite' if loss is None else f'{loss:.3f}'
            self.write(f'  {stage:12s} acc {100 * acc:5.1f}%  loss {shown}')

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


@torch.no_grad()
def _evaluate(model: nn.Module, loader: DataLoader, device: torch.device, progress: Progress
              ) -> Tuple[float, Optional[float]]:
    """Accuracy and mean loss (None if not finite) over ``loader`` in eval mode; the mode is restored."""
    was_training = model.training
    model.eval()
    sums = torch.zeros(3, dtype=torch.float64, device=device)
    try:
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            logits = model(x).float()
            sums += torch.stack([F.cross_entropy(logits, y, reduction='sum').double(),
                                 (logits.argmax(1) == y).sum().double(), torch.tensor(float(y.numel()), device=device,
                                                                                      dtype=torch.float64)])
            progress.step()
    finally:
        model.train(was_training)
    loss_sum, correct, n = sums.tolist()
    loss = loss_sum / n
    return correct / n, (loss if math.isfinite(loss) else None)


def _batches(data: Dataset, count: int, settings: ConsistencySettings, workers: int, device: torch.device
             ) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
    """``count`` shuffled training batches, the same ones for the same seed (reshuffled after each pass)."""
    torch.manual_seed(settings.seed)  # augmentation in this process draws from the global generator
    loader = DataLoader(data, batch_size=settings.batch_size, shuffle=True, num_workers=workers,
                        generator=torch.Generator().manual_seed(settings.seed),
                        drop_last=len(data) >= settings.batch_size)
    n = 0
    while n < count:
        for x, y in loader:
            yield x.to(device), y.to(device)
            n += 1
            if n == count:
                return


def _train(model: nn.Module, batches: Iterator[Tuple[torch.Tensor, torch.Tensor]], settings: ConsistencySettings,
           progress: Progress) -> None:
    """SGD at a constant learning rate over ``batches`` (momentum, weight decay and gradient clip of the search)."""
    opt = torch.optim.SGD(model.parameters(), lr=settings.lr, momentum=settings.momentum,
                          weight_decay=settings.weight_decay)
    model.train()
    for x, y in batches:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        if settings.grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
        opt.step()
        progress.step()


def measure(supernet: SearchNetwork, data: SearchData, heldout: HeldOut, settings: ConsistencySettings, *,
            epoch: int, epochs: int, method: str, source: str, workers: int = 0,
            progress: Optional[Progress] = None) -> Dict[str, Any]:
    """The five stages (module docstring) on the super-net's current state; returns the consistency record.

    The super-net is left as it was (mode, weights, statistics) and every random stream of the caller too.
    """
    if source not in SOURCES:
        raise ValueError(f'source: expected one of {SOURCES}, got {source!r}')
    progress = progress or Progress()
    device = supernet.alphas_normal.device
    t0, cpu0 = time.perf_counter(), time.process_time()
    genotype = supernet.genotype()
    evaluation = DataLoader(heldout.data, batch_size=settings.batch_size, shuffle=False, num_workers=workers)
    acc: Dict[str, float] = {}
    loss: Dict[str, Optional[float]] = {}

    def evaluate(stage: str, model: nn.Module) -> None:
        progress.stage(stage)
        acc[stage], loss[stage] = _evaluate(model, evaluation, device, progress)
        progress.result(stage, acc[stage], loss[stage])

    progress.start(len(evaluation) * len(STAGES) + settings.batches + 2 * settings.steps,
                   f'consistency epoch {epoch}')
    cuda = [device.index or 0] if device.type == 'cuda' else []
    try:
        with torch.random.fork_rng(devices=cuda):
            evaluate('supernet', supernet)
            torch.manual_seed(settings.seed)
            net = derived_network(supernet, genotype)
            inheritance = inherit_weights(supernet, net)
            evaluate('inherited', net)
            progress.stage('recalibrating')
            recalibrate_bn(net, _batches(data.train, settings.batches, settings, workers, device), progress.step)
            net.eval()
            evaluate('recalibrated', net)
            progress.stage('fine-tuning')
            _train(net, _batches(data.train, settings.steps, settings, workers, device), settings, progress)
            evaluate('finetuned', net)
            torch.manual_seed(settings.seed)
            scratch = derived_network(supernet, genotype)
            progress.stage('from scratch')
            _train(scratch, _batches(data.train, settings.steps, settings, workers, device), settings, progress)
            evaluate('scratch', scratch)
    finally:
        progress.close()
    return {
        'epoch': epoch, 'epochs': epochs, 'source': source, 'method': method, 'genotype': genotype.to_dict(),
        'heldout': {'split': heldout.split, 'images': len(heldout.data), 'transform': heldout.transform},
        'train_batches': 'the weight split, with its training augmentation',
        'settings': asdict(settings),
        'network': {'entrypoint': f'cellnet_{supernet.stem_type}', 'channels': supernet.channels,
                    'layers': supernet.layers, 'stem_multiplier': supernet.stem_multiplier,
                    'num_classes': supernet.num_classes, 'in_chans': supernet.in_chans,
                    'params': sum(p.numel() for p in net.parameters())},
        'inherited_tensors': inheritance.to_dict(),
        'acc': acc, 'loss': loss,
        'cpu_s': round(time.process_time() - cpu0, 3), 'wall_s': round(time.perf_counter() - t0, 3),
        'device': device.type,
        'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
    }


def summary(rec: Mapping[str, Any]) -> str:
    """One line: the five accuracies of a consistency record and what the measurement cost."""
    accs = '  '.join(f'{stage} {100 * rec["acc"][stage]:.1f}%' for stage in STAGES)
    return (f'consistency after epoch {rec["epoch"]} ({rec["heldout"]["split"]}, {rec["heldout"]["images"]} images): '
            f'{accs}  ({rec["cpu_s"]:.1f}s CPU, {rec["wall_s"]:.1f}s wall)')


# ---- python -m search consistency RUN ----------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage block
        raise ConfigError(f'{message} (see python -m search consistency --help)')


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        v = 0
    if v < 1:
        raise argparse.ArgumentTypeError(f'expected a positive integer, got {text!r}')
    return v


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = math.nan
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f'expected a finite number > 0, got {text!r}')
    return v


def _device(text: str) -> str:
    if not re.fullmatch(r'cpu|cuda(:\d{1,4})?', text):
        raise argparse.ArgumentTypeError(f'expected cpu, cuda or cuda:N (N = GPU index), got {text!r}')
    return text


def _workers(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f'expected an integer >= 0, got {text!r}')
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog='python -m search consistency', description='Measure how well the derived network stands for '
                'the super-net of a search run (docs/method.md, Consistency): the super-net, the derived network '
                'with inherited weights, after batch-norm re-calibration on N batches, after S fine-tune steps, and '
                'trained from scratch for S steps, on the held-out split. Appends the record to '
                f'RUN/{CONSISTENCY_FILE}.', argument_default=argparse.SUPPRESS)
    p.add_argument('run', metavar='RUN', help='a search run directory (config.json and checkpoint.pt)')
    p.add_argument('--checkpoint', help='the search checkpoint to measure (default RUN/checkpoint.pt)')
    p.add_argument('--batches', type=_positive_int, metavar='N',
                   help="batch-norm re-calibration batches (default: the run's --consistency-batches, 10)")
    p.add_argument('--steps', type=_positive_int, metavar='S',
                   help="fine-tune and from-scratch steps (default: the run's --consistency-steps, 100)")
    p.add_argument('--images', type=_positive_int, metavar='M',
                   help='measure the first M held-out images (default: the whole held-out split)')
    p.add_argument('--lr', type=_positive_float, help="SGD learning rate of both trainings (default: the run's "
                   '--consistency-lr or --lr)')
    p.add_argument('--batch-size', type=_positive_int, help="default: the run's --batch-size")
    p.add_argument('--data-dir', help="where the data set lives (default: the run's)")
    p.add_argument('--device', type=_device, help='cpu, cuda or cuda:N (default cuda if available)')
    p.add_argument('--threads', type=_positive_int, help='CPU threads (default: torch default)')
    p.add_argument('--workers', type=_workers, help='data loader processes (default 0)')
    p.add_argument('--json', action='store_true', help='print the record as one JSON line')
    p.add_argument('--quiet', action='store_true', help='print nothing but errors')
    return p


def _load(run: Path, args: Dict[str, Any]) -> Tuple[SearchConfig, Dict[str, Any], Path]:
    """The run's settings (with the command's overrides) and its checkpoint."""
    from entrannas_timm.reports.records import CHECKPOINT_FILE, CONFIG_FILE, read_config
    from entrannas_timm.train.checkpoint import read_checkpoint

    if not run.is_dir():
        raise ConsistencyError(f'{run}: not a directory; expected a search run directory (python -m search --output)')
    if not (run / CONFIG_FILE).is_file():
        raise ConsistencyError(f'{run}: not a search run directory (no {CONFIG_FILE})')
    try:
        cfg = SearchConfig.from_dict(read_config(run / CONFIG_FILE), source=str(run / CONFIG_FILE))
    except (RecordError, ConfigError) as e:
        raise ConsistencyError(str(e)) from None
    except TypeError as e:
        raise ConsistencyError(f'{run / CONFIG_FILE}: {e}') from None
    for flag, name in (('data_dir', 'data_dir'), ('device', 'device'), ('threads', 'threads'),
                       ('batches', 'consistency_batches'), ('steps', 'consistency_steps'),
                       ('images', 'consistency_images'), ('lr', 'consistency_lr'), ('batch_size', 'batch_size')):
        if flag in args:
            setattr(cfg, name, args[flag])
    cfg.workers = args.get('workers', 0)
    try:
        check_ranges(cfg)
    except ConfigError as e:
        raise ConsistencyError(f'{run / CONFIG_FILE}: {e}') from None  # the command's flags are checked already
    path = Path(args['checkpoint']) if 'checkpoint' in args else run / CHECKPOINT_FILE
    if not path.is_file():
        raise ConsistencyError(f'{path}: no checkpoint (the run has not finished an epoch yet?)' if 'checkpoint' not in
                               args else f'--checkpoint: {path} not found')
    try:
        ckpt = read_checkpoint(path, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, 'a search checkpoint')
    except ValueError as e:  # torch's reasons can run over many lines: the first says it
        first = str(e).split('\n')[0].rstrip()
        raise ConsistencyError(first + (' ...)' if first.count('(') > first.count(')') else '')) from None
    if not isinstance(ckpt.get('model'), dict) or not isinstance(ckpt.get('epoch'), int) or ckpt['epoch'] < 1:
        raise ConsistencyError(f'{path}: no super-net state of a finished epoch (fields "model", "epoch")')
    return cfg, ckpt, path


def measure_run(run: Union[str, Path], **args: Any) -> Dict[str, Any]:
    """``python -m search consistency RUN``: measure the run's checkpoint and append the record; returns it.

    ``args`` are the command's flags by name (``steps=5``, ``device='cpu'``, ``progress=Progress(...)``).
    """
    from .data import build_heldout_data, build_search_data
    from .distributed import resolve_device
    from .searcher import build_model
    run = Path(run).expanduser()
    progress = args.pop('progress', None)
    cfg, ckpt, path = _load(run, args)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    data = build_search_data(cfg)
    heldout = build_heldout_data(cfg, cfg.consistency_images)
    model = build_model(cfg, data.in_chans, data.num_classes, device)
    try:
        model.load_state_dict(ckpt['model'])
    except (RuntimeError, KeyError, ValueError) as e:
        raise ConsistencyError(f'{path}: does not fit the super-net of {run / "config.json"} ({e})') from None
    rec = measure(model, data, heldout, ConsistencySettings.from_config(cfg), epoch=ckpt['epoch'], epochs=cfg.epochs,
                  method=cfg.method, source='command', workers=cfg.workers, progress=progress)
    try:
        append_consistency(run, rec)
    except OSError as e:
        raise ConsistencyError(f'cannot write {run / CONSISTENCY_FILE}: {e.strerror or e}') from None
    return rec


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command line; errors are one line on stderr (exit 2 for flags, 1 for the rest)."""
    from .data import DataError
    try:
        args = vars(build_parser().parse_args(argv))
        quiet, as_json = args.pop('quiet', False), args.pop('json', False)
        if quiet and as_json:
            raise ConfigError('--quiet and --json contradict each other: --json already prints only one JSON line')
        tty = sys.stderr.isatty()
        progress = Progress(bar=tty and not quiet,
                            write=None if quiet else (lambda line: print(line, file=sys.stderr, flush=True)))
        run = args.pop('run')
        rec = measure_run(run, progress=progress, **args)
    except ConfigError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    except (SearchError, DataError, RecordError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print('interrupted; nothing was written', file=sys.stderr)
        return 130
    if as_json:
        print(json.dumps(rec), flush=True)
    elif not quiet:
        print(summary(rec))
        print(f'written to {Path(run).expanduser() / CONSISTENCY_FILE}')
    return 0
