"""The training-budget pilot of the Fashion-MNIST zoo: which budget ranks cells above their seed noise.

    python scripts/fmnist_pilot.py cells               # records/train/cells/random_s<k>.json (the sampler's cells)
    python scripts/fmnist_pilot.py run [BUDGET ...]    # train (or resume) every pilot run; all budgets when none
    python scripts/fmnist_pilot.py collect             # records/train/pilot.json from the finished runs
    python scripts/fmnist_pilot.py table               # the README's pilot table from the committed record
    python scripts/fmnist_pilot.py readme              # the same table written into README.md, in place

Each budget trains the same models with 3 seeds: published and random cells, and the two plain references (a
linear classifier and a small CNN, ``entrannas_timm.models.baselines``). Several ``run`` processes may work the same
list side by side: each run directory is claimed by a lock file holding the worker's pid, so one machine's cores
each take the next unclaimed run. Scratch runs go to runs/zoo/pilot/<budget>/<model>_s<seed>/; docs/method.md
("Training budget") states the protocol and the decision.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from entrannas_timm.hub.export import epochs_done, read_run_records
from entrannas_timm.models.sampling import sample_genotype
from entrannas_timm.reports.markdown import splice_tables_into
from entrannas_timm.utils.files import claim, write_atomic

ROOT = Path(__file__).resolve().parents[1]
ENTRANNAS = [sys.executable, '-m', 'entrannas_timm']
RUNS = ROOT / 'runs' / 'zoo' / 'pilot'
CELLS = ROOT / 'records' / 'train' / 'cells'
RECORD = ROOT / 'records' / 'train' / 'pilot.json'
LOCK = 'pilot.lock'  # a run folder's claim by one worker (entrannas_timm.utils.files.claim)

RANDOM_CELLS = 5  # uniform samples of the standard space: the random-search baseline (Li & Talwalkar 2019)

# Every budget: the zoo's CPU-size network (5 cells, 8 channels), all 60,000 training images, the fashion-mnist
# preset without Cutout and drop path (regularisers of long schedules), channels-last (measured faster on one
# thread: benchmarks/train_levers.py), one thread per run; tested on the 10,000 test images, last epoch's weights.
BASE = ['--dataset', 'fashion-mnist', '--channels', '8', '--layers', '5', '--cutout', '0', '--drop-path', '0',
        '--channels-last', '--threads', '1', '--workers', '0', '--quiet']
BUDGETS: dict[str, list[str]] = {
    '16px-1ep': ['--image-size', '16', '--epochs', '1'],  # the zoo's first budget
    '28px-1ep': ['--image-size', '28', '--epochs', '1'],
    '28px-3ep': ['--image-size', '28', '--epochs', '3'],
}
SEEDS = (0, 1, 2)
# what each budget trains: published cells, random cells, references (MODEL and its extra flags)
MODELS: dict[str, list[str]] = {
    'darts_v2': ['--genotype', 'darts_v2'],
    'entrannas': ['--genotype', 'entrannas'],
    **{f'random_s{k}': ['--genotype', f'records/train/cells/random_s{k}.json'] for k in range(2)},
    'baseline_linear': ['baseline_linear', '--aux-weight', '0', '--crop-padding', '0'],  # shifts defeat a pixel map
    'baseline_cnn': ['baseline_cnn', '--aux-weight', '0'],
}


def write_cells() -> None:
    """The random cells as genotype files with the sampler's provenance (seed, space, the command)."""
    CELLS.mkdir(parents=True, exist_ok=True)
    for k in range(RANDOM_CELLS):
        sample_genotype(k).save(CELLS / f'random_s{k}.json')
        print(CELLS / f'random_s{k}.json')


def command(budget: str, model: str, seed: int) -> list[str]:
    return ['entrannas', 'train', *MODELS[model], *BASE, *BUDGETS[budget], '--seed', str(seed)]


def _out(budget: str, model: str, seed: int) -> Path:
    return RUNS / budget / f'{model}_s{seed}'


def budget_epochs(budget: str) -> int:
    flags = BUDGETS[budget]
    return int(flags[flags.index('--epochs') + 1])


def train_run(args: list[str], out: Path, epochs: int) -> None:
    """``entrannas <args> --output out``: trained, or resumed from its checkpoint, unless it has all ``epochs`` or
    another worker holds it (the zoo's grid trains the same way)."""
    if epochs_done(out) == epochs or not claim(out, LOCK):
        return
    try:
        cmd = [*ENTRANNAS, *args, '--output', str(out)]
        if (out / 'checkpoint.pt').exists():
            cmd.append('--resume')
        elif (out / 'config.json').exists():  # stopped before its first epoch ended: nothing to keep
            (out / 'config.json').unlink()
        print('==', ' '.join(cmd[2:]), flush=True)
        subprocess.run(cmd, cwd=ROOT, check=True)
    finally:
        (out / LOCK).unlink(missing_ok=True)


def run(budgets: list[str]) -> None:
    for budget in budgets:
        for seed in SEEDS:
            for model in MODELS:
                train_run(command(budget, model, seed)[1:], _out(budget, model, seed), budget_epochs(budget))


def run_result(out: Path, command: list[str]) -> dict:
    """A finished run's line in a record: final test top-1 (all 10,000 test images), per-epoch test top-1, size,
    cost, and the command that reproduces it."""
    records, config = read_run_records(out), json.loads((out / 'config.json').read_text())
    return dict(test_top1=round(records[-1]['val_top1'], 2), test_images=config['data']['val_images'],
                epoch_top1=[round(r['val_top1'], 2) for r in records],
                params=config['model']['params'], macs=config['model']['macs'],
                train_cpu_s=round(sum(r['epoch_cpu_s'] for r in records), 1),
                train_wall_s=round(sum(r['epoch_time_s'] for r in records), 1), command=' '.join(command))


def collect() -> None:
    runs = {}
    for budget in BUDGETS:
        for model in MODELS:
            for seed in SEEDS:
                out = _out(budget, model, seed)
                if epochs_done(out) == budget_epochs(budget):
                    runs[f'{budget}/{model}_s{seed}'] = dict(budget=budget, model=model, seed=seed,
                                                             **run_result(out, command(budget, model, seed)))
    write_atomic(RECORD, json.dumps(runs, indent=1) + '\n')
    print(f'{RECORD}: {len(runs)} runs')


def table() -> str:
    """Per budget and model: test top-1 mean ± SD over seeds; per budget: the median seed SD of the cells against
    the SD between the cells' means (what ranking needs: the second clearly larger)."""
    runs = json.loads(RECORD.read_text()) if RECORD.exists() else {}
    models = list(MODELS)
    out = ['| budget | ' + ' | '.join(f'`{m}`' for m in models) + ' | cells: median seed SD / SD between cells '
           '| CPU min per run (cells) |', '|---|' + '---|' * (len(models) + 2)]
    for budget in BUDGETS:
        cells, means, sds, cpu = [], [], [], []
        for model in models:
            accs = [r['test_top1'] for r in runs.values() if r['budget'] == budget and r['model'] == model]
            if not accs:
                cells.append('–')
                continue
            sd = statistics.stdev(accs) if len(accs) > 1 else None
            cells.append(f'{statistics.mean(accs):.2f}' + (f' ± {sd:.2f}' if sd is not None else '')
                         + ('' if len(accs) == len(SEEDS) else f' ({len(accs)} seeds)'))
            if not model.startswith('baseline_'):
                means.append(statistics.mean(accs))
                if sd is not None:
                    sds.append(sd)
                cpu += [r['train_cpu_s'] / 60 for r in runs.values() if r['budget'] == budget and r['model'] == model]
        spread = (f'{statistics.median(sds):.2f} / {statistics.stdev(means):.2f}' if sds and len(means) > 1 else '–')
        out.append(f'| {budget} | ' + ' | '.join(cells) + f' | {spread} | '
                   + (f'{statistics.median(cpu):.0f}' if cpu else '–') + ' |')
    return '\n'.join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('action', choices=('cells', 'run', 'collect', 'table', 'readme'))
    parser.add_argument('budgets', nargs='*', metavar='BUDGET', help=f'run: of {", ".join(BUDGETS)}; all when none')
    args = parser.parse_args()
    unknown = [b for b in args.budgets if b not in BUDGETS]
    if unknown:
        raise SystemExit(f'{args.action}: unknown budget(s) {", ".join(unknown)}; choose from {", ".join(BUDGETS)}')
    if args.action == 'cells':
        write_cells()
    elif args.action == 'run':
        run(args.budgets or list(BUDGETS))
    elif args.action == 'collect':
        collect()
    elif args.action == 'readme':
        print(f'{splice_tables_into(ROOT / "README.md", table())}: pilot table rewritten')
    else:
        print(table())


if __name__ == '__main__':
    main()
