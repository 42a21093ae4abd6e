"""``entrannas export RUN_DIR -o DIR``: a training run's weights in the Hub layout that timm reads.

``DIR`` gets ``config.json`` (the architecture, ``model_args`` with the genotype so ``hf-hub:`` rebuilds it, the
class count and a ``pretrained_cfg`` with the training data's input size, mean, std and crop), ``model.safetensors``
(the inference weights: never the auxiliary head), a ``README.md`` model card in timm's conventions (library
``timm``, tags, data set, the validated metrics, the genotype as text and diagram, the provenance of search and
training, usage, citation, license) and, when Graphviz is installed, ``cells.svg``. ``entrannas publish`` uploads
the folder, ``entrannas cache`` installs it into the local Hugging Face cache.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Dict, List, Optional

from ..data.loader import Augment
from ..models.network import CellNetwork
from ..models.registry import HF_ORG, WEIGHTS_FILE
from ..train.checkpoint import METRICS, build_run_model
from ..utils.errors import CLIError

__all__ = ['export_run', 'add_cli', 'HUB_DATASETS']

HUB_DATASETS = {'cifar10': 'cifar10', 'cifar100': 'cifar100', 'mnist': 'mnist', 'fashion-mnist': 'fashion_mnist',
                'imagenet': 'imagenet-1k'}
"""Our data set names -> Hugging Face dataset ids for the card's ``datasets`` list."""

EXPORT_FILES = ('config.json', WEIGHTS_FILE, 'README.md')


def read_run_records(run_dir: Path) -> List[Dict[str, Any]]:
    """A training run's epoch records from its metrics.jsonl (none when absent; a line cut by a crash skipped)."""
    path = run_dir / METRICS
    records = []
    if path.is_file():
        for line in path.read_text(encoding='utf-8').splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue  # a line cut by a crash
    return records


def epochs_done(run_dir: Path) -> int:
    """The last epoch a training run recorded (0 before its first, or where there is no run)."""
    records = read_run_records(run_dir)
    return int(records[-1].get('epoch', 0)) if records else 0


def _record(records: List[Dict[str, Any]], which: str, ema: bool) -> Optional[Dict[str, Any]]:
    key = 'ema_top1' if ema else 'val_top1'
    scored = [r for r in records if isinstance(r.get(key), (int, float))]
    if not scored:
        return None
    if which == 'last':
        return scored[-1]
    return max(scored, key=lambda r: r[key])  # the first of equals, as the trainer keeps it


def _diagram(genotype) -> Optional[bytes]:
    """The cells as SVG, or None without Graphviz (the card then shows the genotype as text only)."""
    from ..reports.plot import GraphvizNotFoundError, plot_genotype
    try:
        return plot_genotype(genotype, format='svg')  # type: ignore[return-value]
    except (ImportError, GraphvizNotFoundError, OSError, RuntimeError):
        return None


def _card(cfg: Dict[str, Any], rec: Optional[Dict[str, Any]], which: str, ema: bool, diagram: bool,
          text: str = '') -> Dict:
    settings, data = cfg['settings'], cfg['data']
    dataset = data['dataset']
    details: Dict[str, Any] = {'Dataset': HUB_DATASETS.get(dataset, dataset),
                               'Image size': 'x'.join(str(v) for v in data['input_size'])}
    metric = 'ema_' if ema else 'val_'
    if rec is not None:
        details['Metrics'] = {
            'top-1 (%)': round(rec[f'{metric}top1'], 2), 'top-5 (%)': round(rec[f'{metric}top5'], 2),
            'evaluated on': f'{data["val_images"]} {data["val_split"]} images of {dataset}',
            'weights': f'{"EMA of " if ema else ""}epoch {rec["epoch"]} of {settings["epochs"]} ({which})',
        }
    details['Training'] = {
        'command': 'entrannas train (entrannas-timm)', 'preset': settings.get('preset'),
        'epochs': settings['epochs'], 'batch size': settings['batch_size'], 'optimizer': 'SGD, momentum '
        f'{settings["momentum"]}, weight decay {settings["weight_decay"]}', 'lr': f'{settings["lr"]} '
        f'({settings["sched"]})', 'auxiliary weight': settings['aux_weight'], 'drop path': settings['drop_path'],
        'cutout': settings['cutout'], 'crop padding': settings.get('crop_padding', Augment.crop_padding),
        'training images': data['train_images'], 'seed': settings['seed'],
        'versions': ', '.join(f'{k} {v}' for k, v in cfg.get('versions', {}).items()),
    }
    text = '\n\n'.join(t for t in ('![normal and reduction cells](cells.svg)' if diagram else '', text.strip()) if t)
    return dict(details=details, description=text) if text else dict(details=details)


def export_run(run_dir: str, output: str, ema: bool = False, which: str = 'best', repo_id: Optional[str] = None,
               overwrite: bool = False, card_text: str = '') -> Path:
    """Export ``which`` weights ('best' or 'last', EMA or not) of a training run to ``output``; ``card_text``
    (markdown) is added to the model card after the cells' diagram."""
    from .layout import save_pretrained
    run, out = Path(run_dir), Path(output)
    clash = [f for f in EXPORT_FILES if (out / f).exists()]
    if clash and not overwrite:
        raise CLIError(f'-o: {out} already holds {", ".join(clash)}; choose another folder or pass --overwrite '
                       '(nothing was written)')
    if out.exists() and not out.is_dir():
        raise CLIError(f'-o: {out} exists and is not a directory')
    model, cfg = build_run_model(run, which, ema)
    if not isinstance(model, CellNetwork):
        raise CLIError(f'{run}: a {cfg["model"]["name"]} run is a same-budget reference, not a zoo model; its '
                       f'results are in {run / METRICS} (nothing was written)')
    rec = _record(read_run_records(run), which, ema)
    svg = _diagram(model.genotype)
    files = {'cells.svg': svg} if svg is not None else {}
    name = repo_id or f'{HF_ORG}/{out.resolve().name}'
    data = cfg['data']
    data_config = dict(input_size=tuple(data['input_size']), mean=tuple(data['mean']), std=tuple(data['std']),
                       crop_pct=data['crop_pct'], interpolation=data['interpolation'])
    try:
        return save_pretrained(model, out, architecture=cfg['model']['architecture'], name=name,
                               data_config=data_config, card=_card(cfg, rec, which, ema, svg is not None, card_text),
                               files=files)
    except ValueError as e:
        raise CLIError(f'{run}: {e}') from None


CARD_TEXT_LIMIT = 64 * 1024
"""The most bytes ``--card-text`` may add to a model card."""


def _read_card_text(path: Optional[str]) -> str:
    if path is None:
        return ''
    file = Path(path)
    if not file.is_file():
        raise CLIError(f'--card-text: no file at {path}')
    if file.stat().st_size > CARD_TEXT_LIMIT:
        raise CLIError(f'--card-text: {path} has {file.stat().st_size} bytes; at most {CARD_TEXT_LIMIT} are added '
                       'to a model card')
    try:
        return file.read_text(encoding='utf-8')
    except UnicodeDecodeError as e:
        raise CLIError(f'--card-text: {path} is not UTF-8 text ({e.reason} at byte {e.start})') from None


def _cli_export(args: argparse.Namespace) -> int:
    out = export_run(args.run_dir, args.output, args.ema, 'last' if args.last else 'best', args.repo_id,
                     args.overwrite, _read_card_text(args.card_text))
    for f in sorted(out.iterdir()):
        print(f)
    return 0


def add_cli(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``entrannas export``."""
    p = subparsers.add_parser(
        'export', help="a training run's weights as a Hub folder (config.json, model.safetensors, model card)",
        description=__doc__.split('\n\n')[1].replace('\n', ' '))
    p.add_argument('run_dir', metavar='RUN_DIR', help='training run directory (entrannas train --output)')
    p.add_argument('-o', '--output', required=True, metavar='DIR', help='folder to write (created if missing)')
    p.add_argument('--ema', action='store_true', help='export the EMA weights (runs trained with --ema)')
    p.add_argument('--last', action='store_true', help="the last epoch's weights instead of the best")
    p.add_argument('--repo-id', metavar='ORG/NAME', help=f'Hub repo id the model card names (default '
                   f'{HF_ORG}/<folder name>)')
    p.add_argument('--overwrite', action='store_true', help='replace an earlier export in DIR')
    p.add_argument('--card-text', metavar='FILE', help='markdown added to the model card (e.g. the results of the '
                   f'other training seeds and of baselines; at most {CARD_TEXT_LIMIT // 1024} KiB)')
    p.set_defaults(func=_cli_export)
    return p
