"""The ``entrannas`` command (also ``python -m entrannas_timm``).

Built-in subcommands: ``models`` (the registered zoo: genotype, family, params, MACs, input size,
weights status per tag; ``--cells``: every bundled cell against its paper and its authors' code) and ``genotype``
(validate, pretty-print, convert DARTS text to our JSON). The other
commands live in their own modules, each with ``add_cli(subparsers)``, which registers its parser with
``set_defaults(func=handler)``; ``handler(args)`` returns the exit code (``None`` means 0). A failing command
raises :class:`~entrannas_timm.utils.errors.CLIError` (or :class:`GenotypeError`), which ``main`` prints as one line on
stderr with the error's exit code: 2 for bad input, 1 for an environment that cannot do it (a missing tool, a
failed write, a diverged run).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from fnmatch import fnmatch
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from .hub import convert, export, publish
from .models.genotype import GenotypeError, resolve_genotype
from .models.registry import WEIGHTS_FILE
from .reports import plot, report
from .train import cli as train_cli
from .train import validate
from .utils.errors import CLIError

__all__ = ['CLIError', 'build_parser', 'main', 'model_rows', 'weights_status', 'zoo_rows']

PROG = 'entrannas'

COMMAND_MODULES = (train_cli, validate, export, convert, publish, plot, report)
"""The modules whose ``add_cli(subparsers)`` adds the other subcommands, in ``--help`` order."""


# ---- models ------------------------------------------------------------------------------------------
def weights_status(hf_hub_id: str, online: bool = False) -> str:
    """``'published'`` if the tag's safetensors file is in the local Hugging Face cache (or, with
    ``online``, on the Hub), else ``'not published'``. Offline, nothing touches the network."""
    from huggingface_hub import try_to_load_from_cache
    cached = try_to_load_from_cache(hf_hub_id, WEIGHTS_FILE)
    if isinstance(cached, str):
        return 'published'
    if online:
        from huggingface_hub import file_exists
        try:
            return 'published' if file_exists(hf_hub_id, WEIGHTS_FILE) else 'not published'
        except Exception as e:  # noqa: BLE001  (network, auth, ... : say so instead of guessing)
            return f'unknown ({type(e).__name__})'
    return 'not published'


def model_rows(patterns: Sequence[str] = (), online: bool = False) -> List[Dict[str, Any]]:
    """One row per registered model: genotype, family, params, MACs at the default input size, tags."""
    import timm
    import torch
    from timm.models import get_pretrained_cfg

    from .models.profile import count_macs, count_params
    from .models.registry import MODEL_GENOTYPES

    rows = []
    for name, (genotype, family) in MODEL_GENOTYPES.items():
        if patterns and not any(fnmatch(name, p) for p in patterns):
            continue
        tags = timm.list_pretrained(f'{name}.*')
        cfg = get_pretrained_cfg(name)
        input_size = list(cfg.input_size)
        with torch.device('meta'):  # shapes only: counting needs no weights
            model = timm.create_model(name)
        weights = {}
        for tag in tags:
            tag_cfg = get_pretrained_cfg(tag)
            hub_id = tag_cfg.hf_hub_id if tag_cfg is not None else None
            weights[tag.split('.', 1)[1]] = weights_status(hub_id, online) if hub_id else 'not published'
        rows.append(dict(model=name, genotype=genotype, family=family, params=count_params(model),
                         macs=count_macs(model, input_size), input_size=input_size,
                         num_classes=model.num_classes, weights=weights))
    if patterns and not rows:
        raise CLIError(f'no registered model matches {list(patterns)}; registered: {", ".join(MODEL_GENOTYPES)}')
    return rows


def zoo_rows(patterns: Sequence[str] = ()) -> List[Dict[str, Any]]:
    """One row per bundled cell: paper, license, what its paper reports, and our networks' params and MACs next to
    the parameter counts of its authors' own evaluation networks (recorded by ``scripts/import_zoo.py``)."""
    import timm
    import torch

    from .models.genotype import list_genotypes, load_genotype
    from .models.profile import count_macs, count_params
    from .models.registry import FAMILIES

    rows = []
    for name in list_genotypes():
        if patterns and not any(fnmatch(name, p) for p in patterns):
            continue
        g = load_genotype(name)
        prov = g.provenance
        ours = {}
        for family in FAMILIES:
            with torch.device('meta'):  # shapes only: counting needs no weights
                model = timm.create_model(f'cellnet_{family}', genotype=g, auxiliary=True)
            ours[family] = dict(params=count_params(model), params_with_aux=count_params(model, exclude=()),
                                channels=model.channels,
                                macs=count_macs(model, timm.models.get_pretrained_cfg(f'cellnet_{family}').input_size))
        reference = prov.get('reference_params', {})
        rows.append(dict(
            genotype=name, method=prov.get('method'), paper=prov.get('paper'), paper_id=prov.get('paper_id'),
            repository=prov.get('repository'), commit=prov.get('commit'), license=prov.get('license'),
            reported=dict(prov.get('published_metrics', {})), reported_source=prov.get('published_source'),
            ours=ours, authors={f: reference[f]['params'] for f in FAMILIES if f in reference}))
    if patterns and not rows:
        raise CLIError(f'no bundled genotype matches {list(patterns)}')
    return rows


def _format_table(rows: List[Dict[str, Any]], columns: Sequence[str]) -> str:
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
    lines = ['  '.join(c.ljust(w) for c, w in zip(columns, widths)).rstrip(),
             '  '.join('-' * w for w in widths)]
    lines += ['  '.join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]
    return '\n'.join(lines)


def _number(value: Any, unit: str = '') -> str:
    return '-' if value is None else f'{value}{unit}'


def _cmd_cells(args: argparse.Namespace) -> int:
    rows = zoo_rows(args.patterns)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table = []
    for r in rows:
        rep, ours, authors = r['reported'], r['ours'], r['authors']
        table.append([r['genotype'], r['method'] or '-', r['paper_id'] or '-',
                      f"{_number(rep.get('cifar10_test_error'))} / {_number(rep.get('cifar10_params_m'), 'M')}",
                      f"{ours['cifar']['params']:,}", 'yes' if authors.get('cifar') == ours['cifar']['params'] else '-',
                      f"{_number(rep.get('imagenet_top1_error'))} / {_number(rep.get('imagenet_params_m'), 'M')}",
                      f"{ours['imagenet']['params']:,}", f"{ours['imagenet']['macs'] / 1e6:.0f}M",
                      'yes' if authors.get('imagenet') == ours['imagenet']['params'] else '-'])
    print(_format_table(table, ('cell', 'method', 'paper', 'C10 err/params (paper)', 'C10 params', '= authors',
                                'IN top-1/params (paper)', 'IN params', 'IN MACs', '= authors')))
    print('(= authors: our parameter count equals that of the authors\' own evaluation network; '
          'entrannas models --cells --json for sources and licenses)')
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    if args.cells:
        return _cmd_cells(args)
    rows = model_rows(args.patterns, online=args.online)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table = [[r['model'], r['genotype'], r['family'], f"{r['params'] / 1e6:.2f}M", f"{r['macs'] / 1e6:.0f}M",
              'x'.join(map(str, r['input_size'])), ', '.join(f'{t}: {s}' for t, s in r['weights'].items())]
             for r in rows]
    print(_format_table(table, ('model', 'genotype', 'family', 'params', 'MACs', 'input', 'weights')))
    if not args.online:
        print('(weights: local Hugging Face cache only; --online asks the Hub)')
    return 0


# ---- genotype ------------------------------------------------------------------------------------------
def _cmd_genotype(args: argparse.Namespace) -> int:
    if (args.genotype is None) == (args.random is None):
        raise CLIError('genotype: give a NAME|FILE|TEXT or --random SEED (one of them)')
    if args.random is not None:
        from .models.sampling import sample_genotype
        g = sample_genotype(args.random, args.space)
    else:
        if args.space != 'standard':
            raise CLIError('--space: only with --random (a given genotype names its own space)')
        g = resolve_genotype(args.genotype, name=args.name, source='<command line>')
    if args.to_json:
        try:
            out = g.save(args.to_json)
        except OSError as e:  # a folder, a read-only folder, a full disk: the old file is left as it was
            raise CLIError(f'cannot write {args.to_json}: {e.strerror or e}', exit_code=1) from None
        print(f'wrote {out}', file=sys.stderr)
    if args.json:
        sys.stdout.write(g.to_json())
    elif args.darts:
        print(g.to_darts(assign=g.name))
    elif not args.to_json:
        print(g)
        print(f'  ops: {", ".join(g.ops_used())}')
        prov = dict(g.provenance)
        for key in ('method', 'dataset', 'source'):
            if key in prov:
                print(f'  {key}: {prov[key]}')
    return 0


# ---- parser and entry point ------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The full parser: the built-in subcommands plus those of :data:`COMMAND_MODULES`."""
    from .version import __version__
    parser = argparse.ArgumentParser(prog=PROG, description='EnTranNAS and DARTS-family models for timm.')
    parser.add_argument('--version', action='version', version=f'%(prog)s {__version__}')
    sub = parser.add_subparsers(dest='command', metavar='COMMAND')
    sub.required = True

    p = sub.add_parser('models', help='list registered models: params, MACs, input size, weights per tag')
    p.add_argument('patterns', nargs='*', metavar='PATTERN', help="shell-style filters, e.g. 'darts*'")
    p.add_argument('--json', action='store_true', help='machine-readable output')
    p.add_argument('--online', action='store_true', help='ask the Hugging Face Hub for weights not in the cache')
    p.add_argument('--cells', action='store_true',
                   help='list every bundled cell instead: paper, reported figures, ours against the authors\' code')
    p.set_defaults(func=_cmd_models)

    p = sub.add_parser('genotype', help='validate and show a genotype; convert DARTS text to JSON; sample a random '
                       'cell')
    p.add_argument('genotype', metavar='NAME|FILE|TEXT', nargs='?',
                   help="bundled name (case-insensitive), .json file, .py/.txt file of DARTS text, or the text "
                        "itself: \"Genotype(normal=[...], ...)\"")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument('--json', action='store_true', help='print our JSON format')
    fmt.add_argument('--darts', action='store_true', help='print DARTS Genotype(...) text (2 inputs per node)')
    p.add_argument('--to-json', metavar='OUT.json', type=Path, help='write our JSON format (atomic)')
    p.add_argument('--name', help='name of the genotype; selects one of several in a DARTS genotypes.py')
    p.add_argument('--random', type=int, metavar='SEED', help='instead: the cell pair sampled uniformly from the '
                   'space with this seed (the random-search baseline; 2 inputs per node, any op but none)')
    p.add_argument('--space', default='standard', choices=('standard', 'extended'), help='the space --random '
                   'samples (default standard)')
    p.set_defaults(func=_cmd_genotype)

    for module in COMMAND_MODULES:
        module.add_cli(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Console entry point; returns the exit code (2 for bad input, 1 for the environment; one line on stderr)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
    except (CLIError, GenotypeError) as e:
        if os.environ.get('ENTRANNAS_DEBUG'):
            raise
        print(f'{PROG} {args.command}: error: {e}', file=sys.stderr)
        return e.exit_code if isinstance(e, CLIError) else 2
    except KeyboardInterrupt:
        return 130
    return 0 if code is None else int(code)
