"""Reproduce the EnTranNAS model zoo's CPU-scale Fashion-MNIST searches and trainings.

    python scripts/fmnist_zoo.py search [NAME ...]   # run (or resume) searches; all when no NAME
    python scripts/fmnist_zoo.py collect [NAME ...]  # record + report + bundled genotype of finished searches
    python scripts/fmnist_zoo.py train [NAME ...]    # train the cells under one budget; all when no NAME
    python scripts/fmnist_zoo.py export [NAME ...]   # hub/<name>/ from finished trainings
    python scripts/fmnist_zoo.py list                # the names and their command lines
    python scripts/fmnist_zoo.py tables              # the README's tables from the committed records
    python scripts/fmnist_zoo.py readme              # the same tables written into README.md, in place

Scratch runs (checkpoints) go to runs/zoo/; what is committed goes to records/search/<name>/ (config.json,
metrics.jsonl, genotype.json, report/), genotypes/<name>.json and hub/<name>/. The protocols are stated in
docs/method.md ("The bundled EnTranNAS cells").
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from entrannas_timm import Genotype
from entrannas_timm.hub.export import epochs_done
from entrannas_timm.models.registry import MINI_MODELS, MINI_TAG, MOBILE_MACS
from entrannas_timm.reports.markdown import splice_tables_into
from entrannas_timm.reports.records import (
    CONSISTENCY_STAGES,
    read_config,
    read_consistency,
    read_metrics,
    search_cost_seconds,
)
from entrannas_timm.utils.files import write_atomic

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
ENTRANNAS = [PY, '-m', 'entrannas_timm']  # the `entrannas` command of this interpreter
RUNS = ROOT / 'runs' / 'zoo'

# One protocol for every search: real Fashion-MNIST at 16x16, a super-net of 8 cells and 8 channels, the 60,000
# training images split half/half and 3,200 of each half used (weights / architecture), batch 32: 50 epochs (the
# paper's) of 100 weight and 100 architecture steps, the architecture rate 6e-3 (10x the paper's, so that DST's
# thresholds cut within a CPU budget) decayed by a cosine to 0 so that the cell settles, 1 thread; the consistency
# measurement (docs/method.md, Consistency) after epochs 10, 25 and the last, on the 10,000 test images.
SEARCH_PROTOCOL = ['--dataset', 'fashion-mnist', '--image-size', '16', '--channels', '8', '--layers', '8',
                   '--batch-size', '32', '--subset', '3200', '--epochs', '50', '--arch-lr', '6e-3',
                   '--arch-lr-schedule', 'cosine', '--consistency-epochs', '10,25,end', '--threads', '1',
                   '--workers', '0', '--quiet']

SEARCHES: dict[str, list[str]] = {
    'entrannas': ['--method', 'entrannas'],
    'entrannas_ext': ['--method', 'entrannas', '--space', 'extended'],
    'entrannas_dst_lam005': ['--method', 'entrannas-dst', '--lam', '0.05'],
    'entrannas_dst': ['--method', 'entrannas-dst', '--lam', '0.1'],
    'entrannas_dst_lam02': ['--method', 'entrannas-dst', '--lam', '0.2'],
    'darts_fmnist': ['--method', 'darts'],
    'pc_darts_fmnist': ['--method', 'pc-darts'],
}
# search seeds: three where the claims are compared (EnTranNAS, its DST default, DARTS), one elsewhere
SEARCH_SEEDS: dict[str, tuple[int, ...]] = {'entrannas': (0, 1, 2), 'entrannas_dst': (0, 1, 2),
                                            'darts_fmnist': (0, 1, 2)}


def search_runs() -> dict[str, tuple[str, int]]:
    """Every search run by name: (search, seed). Seed 0 keeps the search's name (the bundled genotype users know),
    the others are ``<search>_s<seed>``."""
    return {(name if seed == 0 else f'{name}_s{seed}'): (name, seed)
            for name in SEARCHES for seed in SEARCH_SEEDS.get(name, (0,))}


def search_args(run: str) -> list[str]:
    name, seed = search_runs()[run]
    return [*SEARCHES[name], *SEARCH_PROTOCOL, '--seed', str(seed)]


def search_command_line(run: str) -> str:
    """The command a bundled genotype's provenance records for its search (the checkout's ``python -m search``)."""
    return ' '.join(['python', '-m', 'search', *search_args(run)])


def search_command(run: str) -> list[str]:
    return [PY, '-m', 'search', *search_args(run), '--output', str(RUNS / 'search' / run)]


def run_search(name: str) -> None:
    out = RUNS / 'search' / name
    cmd = search_command(name)
    if (out / 'genotype.json').exists():
        print(f'{name}: finished ({out})')
        return
    if (out / 'checkpoint.pt').exists():
        cmd.append('--resume')
    print('==', ' '.join(cmd), flush=True)
    subprocess.run(cmd, cwd=ROOT, check=True)


ENTRANNAS_PAPER = ('Towards Improving the Consistency, Efficiency, and Flexibility of Differentiable Neural '
                   'Architecture Search', 'arXiv:2101.11342')
PAPERS = {  # the paper of each search method: (title, id)
    'entrannas': ENTRANNAS_PAPER, 'entrannas-dst': ENTRANNAS_PAPER,
    'darts': ('DARTS: Differentiable Architecture Search', 'arXiv:1806.09055'),
    'pc-darts': ('PC-DARTS: Partial Channel Connections for Memory-Efficient Architecture Search', 'arXiv:1907.05737'),
}


def search_summary(record: Path) -> dict:
    """What a search record shows: cost, when its derived cell stopped changing, the cells' sparsity."""
    config = read_config(record / 'config.json')
    epochs = [r.data for r in read_metrics(record).records]
    cells = [(e['genotype']['normal'], e['genotype']['reduce']) for e in epochs]
    stable = next(i for i in range(len(cells)) if all(c == cells[-1] for c in cells[i:])) + 1
    arch = epochs[0]['arch']
    # the connection count before the first epoch: every op on every edge of both cells
    sizes = [2 * len(arch['edges']) * len(arch['ops'])]
    sizes += [sum(len(node) for cell in c for node in cell['nodes']) for c in cells]
    cuts = [e for e in range(1, len(sizes)) if sizes[e] < sizes[e - 1]]  # sizes[e]: after epoch e
    final = json.loads((record / 'genotype.json').read_text())
    cells = Genotype.from_dict(final)
    steps = -(-config['subset'] // config['batch_size'])
    cpu = [e['epoch_cpu_s'] for e in epochs]
    wall = [e['epoch_time_s'] for e in epochs]
    return dict(
        method=config['method'], space=config['space'], lam=config.get('lam'), image_size=config['image_size'],
        epochs=len(epochs), arch_steps=steps * len(epochs), stable_from_epoch=stable,
        converged=len(epochs) - stable + 1 >= len(epochs) / 5,
        cpu_h_to_stable=sum(cpu[:stable]) / 3600, cpu_h=sum(cpu) / 3600,
        wall_h_to_stable=sum(wall[:stable]) / 3600, wall_h=sum(wall) / 3600,
        connections={k: sum(len(node) for node in final[k]['nodes']) for k in ('normal', 'reduce')},
        in_degree={k: list(getattr(cells, k).in_degree()) for k in ('normal', 'reduce')},  # distinct input nodes
        ops_per_edge={k: [list(e) for e in getattr(cells, k).ops_per_edge()] for k in ('normal', 'reduce')},
        imagenet=imagenet_cost(cells), threshold_decay=config.get('threshold_decay'),
        first_cut_epoch=cuts[0] if cuts else None, last_cut_epoch=cuts[-1] if cuts else None,
        params=final['provenance']['metrics']['params'], macs=final['provenance']['metrics']['macs'],
        supernet_val_acc=epochs[-1]['val_acc'])


def imagenet_cost(genotype: Genotype) -> dict:
    """Params and MACs of the cell's ImageNet-family network (14 cells, 48 channels, 224x224), from shapes only."""
    import timm
    import torch

    from entrannas_timm.models.profile import model_cost
    with torch.device('meta'):
        model = timm.create_model('cellnet_imagenet', genotype=genotype)
    return model_cost(model, (3, 224, 224))


def collect(name: str) -> None:
    """Copy a finished search's record into records/search/<name>/, render its report, bundle its genotype."""
    run = RUNS / 'search' / name
    if not (run / 'genotype.json').exists():
        raise SystemExit(f'{name}: {run}/genotype.json is missing; run `search {name}` to the end first')
    record = ROOT / 'records' / 'search' / name
    record.mkdir(parents=True, exist_ok=True)
    for f in ('config.json', 'metrics.jsonl', 'genotype.json', 'consistency.jsonl'):
        if (run / f).exists():  # consistency.jsonl: searches with the consistency measurement
            shutil.copyfile(run / f, record / f)
    if (record / 'report').exists():
        shutil.rmtree(record / 'report')
    # report.html is self-contained (animation, curves, weights inline): keep it and the final cell's diagram only
    entrannas('report', str(record), '--max-frames', '6')
    for f in (record / 'report').iterdir():
        if f.name not in ('report.html', 'cells.svg'):
            shutil.rmtree(f) if f.is_dir() else f.unlink()
    bundle(name)
    print(f'{name}: records/search/{name}/ and genotypes/{name}.json')


def bundle(name: str) -> None:
    """genotypes/<name>.json: the record's genotype, named, with what the record shows added to its provenance."""
    record = ROOT / 'records' / 'search' / name
    genotype = json.loads((record / 'genotype.json').read_text())
    genotype['name'] = name
    summary = search_summary(record)
    prov = genotype['provenance']
    prov.update(
        paper=PAPERS[summary['method']][0], paper_id=PAPERS[summary['method']][1], record=f'records/search/{name}',
        command=search_command_line(name),
        image_size=summary['image_size'], arch_steps=summary['arch_steps'],
        stable_from_epoch=summary['stable_from_epoch'], converged=summary['converged'])
    # records written before search_cost had it (as cpu_s or process_cpu_s): the same sum of the epochs' CPU time
    if search_cost_seconds(prov['search_cost'])['cpu_s'] is None:
        prov['search_cost']['process_cpu_s'] = round(summary['cpu_h'] * 3600, 2)
    Genotype.from_dict(genotype).save(ROOT / 'genotypes' / f'{name}.json')


def entrannas(*args: str) -> None:
    subprocess.run([*ENTRANNAS, *args], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def _script(name: str):
    """A sibling script as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / 'scripts' / f'{name}.py')
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pilot = _script('fmnist_pilot')
# The training budget the pilot chose (records/train/pilot.json; docs/method.md, "Baselines"): the smallest whose
# seed spread is below the spread between cells. Every model of the grid trains under it with 3 seeds.
TRAIN_BUDGET = '28px-3ep'
TRAIN_PROTOCOL = [*pilot.BASE, *pilot.BUDGETS[TRAIN_BUDGET]]
TRAIN_EPOCHS = pilot.budget_epochs(TRAIN_BUDGET)
TRAIN_SEEDS = pilot.SEEDS
PUBLISHED_CELLS = ('darts_v2', 'pc_darts_cifar')  # DARTS-space cells searched on CIFAR-10 by their authors
TRAINING_RECORD = ROOT / 'records' / 'train' / 'zoo.json'


def trainings() -> dict[str, list[str]]:
    """Every model of the training grid and its flags: each searched cell (a search's other seeds are cells of
    their own), the published cells, the pilot's random cells (all of them) and its two plain references."""
    cells = [*search_runs(), *PUBLISHED_CELLS]
    random = {f'random_s{k}': ['--genotype', f'records/train/cells/random_s{k}.json']
              for k in range(pilot.RANDOM_CELLS)}
    return {**{c: ['--genotype', c] for c in cells}, **random,
            **{m: flags for m, flags in pilot.MODELS.items() if m.startswith('baseline_')}}


def kind(model: str) -> str:
    if model in search_runs():
        return 'searched'
    return 'published' if model in PUBLISHED_CELLS else 'random' if model.startswith('random_') else 'reference'


def train_command(model: str, seed: int) -> list[str]:
    """The same command the pilot runs for its models under TRAIN_BUDGET."""
    return ['entrannas', 'train', *trainings()[model], *TRAIN_PROTOCOL, '--seed', str(seed)]


def train_dir(model: str, seed: int) -> Path:
    """runs/zoo/train/<model>/seed<k>: a search seed is part of a cell's name (``entrannas_s1``), a training
    seed is a folder of its own."""
    return RUNS / 'train' / model / f'seed{seed}'


def _cell(genotype: dict) -> tuple:
    return tuple(json.dumps(genotype.get(k), sort_keys=True) for k in ('normal', 'reduce', 'feature_sharing'))


def _run_cell(run: Path) -> tuple:
    return _cell(json.loads((run / 'config.json').read_text())['model']['args'].get('genotype') or {})


def _bundled_cell(model: str) -> tuple:
    flags = trainings()[model]
    if '--genotype' not in flags:
        return _cell({})  # a reference network: no cell
    genotype = flags[flags.index('--genotype') + 1]
    return _cell(Genotype.coerce(str(ROOT / genotype) if genotype.endswith('.json') else genotype).to_dict())


def cell_digest(cell: tuple) -> str:
    """The cell a record line was trained on, short: a line stays in the record while its model's bundled cell is
    this one, so a machine without the scratch runs neither trains it again nor drops it."""
    return hashlib.sha256(json.dumps(cell).encode()).hexdigest()[:16]


def recorded_runs() -> dict[str, dict]:
    """records/train/zoo.json's lines whose cell is still their model's bundled cell, by ``<model>/seed<k>``."""
    runs = json.loads(TRAINING_RECORD.read_text()) if TRAINING_RECORD.exists() else {}
    grid = trainings()
    return {key: r for key, r in runs.items()
            if r['model'] in grid and r.get('cell') == cell_digest(_bundled_cell(r['model']))}


def stale_search(model: str) -> str:
    """Why a searched cell is not trained yet: its bundled genotype comes from another search protocol (its
    search is still to be run under SEARCH_PROTOCOL), or it is not bundled. Empty when it can be trained."""
    if kind(model) != 'searched':
        return ''
    file = ROOT / 'genotypes' / f'{model}.json'
    if not file.exists():
        return f'genotypes/{model}.json is not bundled yet (`search {model}`, then `collect {model}`)'
    command = json.loads(file.read_text())['provenance'].get('command')
    if command != search_command_line(model):
        return f'genotypes/{model}.json is from an earlier search protocol (`search {model}`, then `collect {model}`)'
    return ''


def run_training(model: str, seed: int) -> None:
    """Train one model of the grid, unless it is finished. A finished pilot run of the same command and cell is
    that same training: it is copied instead of trained again."""
    out = train_dir(model, seed)
    if epochs_done(out) == TRAIN_EPOCHS or f'{model}/seed{seed}' in recorded_runs():
        return
    reason = stale_search(model)
    if reason:
        print(f'{model} seed {seed} waits: {reason}', flush=True)
        return
    same = pilot.RUNS / TRAIN_BUDGET / f'{model}_s{seed}'
    if (model in pilot.MODELS and train_command(model, seed) == pilot.command(TRAIN_BUDGET, model, seed)
            and epochs_done(same) == TRAIN_EPOCHS and _run_cell(same) == _bundled_cell(model) and not out.exists()):
        shutil.copytree(same, out, ignore=shutil.ignore_patterns(pilot.LOCK))
        print(f'{model} seed {seed}: the pilot\'s run ({same.relative_to(ROOT)})', flush=True)
        return
    pilot.train_run(train_command(model, seed)[1:], out, TRAIN_EPOCHS)


def train(models: list[str]) -> None:
    """The grid seed by seed, so that every model has its first seed before any has its third."""
    for seed in TRAIN_SEEDS:
        for model in models:
            run_training(model, seed)


def collect_trainings() -> None:
    """records/train/zoo.json: one line per finished training of the grid whose cell is still the bundled one, from
    the scratch runs here and, for the others, the record's own lines."""
    before = json.loads(TRAINING_RECORD.read_text()) if TRAINING_RECORD.exists() else {}
    runs = recorded_runs()
    for model in trainings():
        for seed in TRAIN_SEEDS:
            out = train_dir(model, seed)
            if epochs_done(out) != TRAIN_EPOCHS:
                continue
            if _run_cell(out) != _bundled_cell(model):
                print(f'{model} seed {seed}: trained an earlier cell of this name; left out', flush=True)
                continue
            runs[f'{model}/seed{seed}'] = dict(model=model, kind=kind(model), seed=seed,
                                               cell=cell_digest(_run_cell(out)),
                                               **pilot.run_result(out, train_command(model, seed)))
    runs = {key: runs[key] for model in trainings() for seed in TRAIN_SEEDS if (key := f'{model}/seed{seed}') in runs}
    for key in sorted(set(before) - set(runs)):
        print(f'{key}: trained a cell that is no longer bundled under this name; left out', flush=True)
    write_atomic(TRAINING_RECORD, json.dumps(runs, indent=1) + '\n')
    print(f'{TRAINING_RECORD}: {len(runs)} runs')


SAMPLE = 1000  # tests/test_zoo_hub.py checks each exported model on the first SAMPLE test images


def _validate(folder: Path, *extra: str) -> dict:
    out = subprocess.run([*ENTRANNAS, 'validate', str(folder), '--dataset', 'fashion-mnist', '--threads', '1',
                          '--json', *extra], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


RESULTS = ROOT / 'records' / 'train' / 'results.json'


def hub_name(model: str) -> str:
    """The Hub name of a cell's checkpoint, in timm's ``<arch>.<tag>`` style: the cell's network at the zoo's CPU
    size (``<cell>_mini``; registered for the EnTranNAS and published cells), trained with the zoo's recipe."""
    arch = next((name for name, genotype in MINI_MODELS.items() if genotype == model), f'{model}_mini')
    return f'{arch}.{MINI_TAG}'


def exportable() -> list[str]:
    """The cells whose best seed goes to the Hub: searched and published ones (random cells and the references
    are baselines, in the records only)."""
    return [m for m in trainings() if kind(m) in ('searched', 'published')]


def _runs_by_model() -> dict[str, list[dict]]:
    """records/train/zoo.json's runs of each model of the grid, in seed order (none yet: an empty list)."""
    runs = json.loads(TRAINING_RECORD.read_text()) if TRAINING_RECORD.exists() else {}
    by_model: dict[str, list[dict]] = {m: [] for m in trainings()}
    for r in sorted(runs.values(), key=lambda r: r['seed']):
        by_model.setdefault(r['model'], []).append(r)
    return by_model


def _card_text(model: str, seed: int) -> str:
    """The model card's account of the grid: every seed of this cell, the baselines under the same budget."""
    by_model = _runs_by_model()
    accs = {r['seed']: r['test_top1'] for r in by_model[model]}
    lines = [f'## Fashion-MNIST zoo ({TRAIN_BUDGET})', '',
             f'Trained with `{" ".join(train_command(model, seed))}`: the zoo\'s budget, the smallest the pilot '
             'found to rank cells above their seed noise (docs/method.md, "Baselines"). These are the weights of '
             f'the best of {len(accs)} training seed(s) on the 10,000 test images (seed {seed}); cite the mean.', '',
             '| model | seeds | test top-1 (%) |', '|---|---|---|',
             f'| this cell | {len(accs)} | {_mean_sd(list(accs.values()))} '
             f'({", ".join(f"s{k}: {a:.2f}" for k, a in sorted(accs.items()))}) |']
    arch = hub_name(model).split('.')[0]
    if arch in MINI_MODELS:
        lines[2:2] = [f'Registered as `{arch}`: once this folder is in the Hugging Face cache, '
                      f'`timm.create_model(\'{hub_name(model)}\', pretrained=True)` loads these weights.', '']
    for other, other_runs in by_model.items():
        if kind(other) in ('random', 'reference') and other_runs:
            other_accs = [r['test_top1'] for r in other_runs]
            lines.append(f'| `{other}` ({kind(other)}) | {len(other_accs)} | {_mean_sd(other_accs)} |')
    return '\n'.join(lines) + '\n'


def export(model: str) -> None:
    """hub/<hub name>/ from the last epoch's weights of the cell's best recorded seed, and its line in
    records/train/results.json: accuracy of the exported files on all test images and on the first SAMPLE."""
    from entrannas_timm.models.profile import model_cost
    from entrannas_timm.train.validate import load_model

    runs = _runs_by_model()[model]
    if not runs:
        print(f'{model}: no finished training in {TRAINING_RECORD.relative_to(ROOT)}; nothing exported')
        return
    best = max(runs, key=lambda r: (r['test_top1'], -r['seed']))
    name = hub_name(model)
    folder = ROOT / 'hub' / name
    card = RUNS / 'train' / f'{name}.card.md'
    write_atomic(card, _card_text(model, best['seed']))
    entrannas('export', str(train_dir(model, best['seed'])), '--last', '-o', str(folder), '--repo-id',
              f'entrannas/{name}', '--card-text', str(card), '--overwrite')
    full, sample = _validate(folder), _validate(folder, '--subset', str(SAMPLE))
    net = load_model(str(folder))[0]
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results[name] = dict(
        model=model, seed=best['seed'], seeds=len(runs), test_top1=round(full['top1'], 2),
        test_images=full['images'], sample_top1=round(sample['top1'], 2), sample_images=sample['images'],
        **model_cost(net, net.pretrained_cfg['input_size']), command=best['command'])
    write_atomic(RESULTS, json.dumps(dict(sorted(results.items())), indent=1) + '\n')
    print(f'{name}: hub/{name}/ (seed {best["seed"]} of {len(runs)}), test top-1 {full["top1"]:.2f} %')


def _mean_sd(values: list[float], scale: float = 1, digits: int = 2) -> str:
    """Mean ± SD (sample SD, over seeds) of ``scale * values``; the SD is left out for one value."""
    mean = f'{scale * statistics.mean(values):.{digits}f}'
    return mean + (f' ± {scale * statistics.stdev(values):.{digits}f}' if len(values) > 1 else '')


def consistency_table() -> list[str]:
    """Per search and measured epoch: each stage's held-out accuracy and the gap super-net − inherited, mean ± SD
    over the search's seeds (the search's own measurements, ``source: search``)."""
    by_search: dict[str, dict[int, list[dict]]] = {}
    for run, (name, _) in search_runs().items():
        record = ROOT / 'records' / 'search' / run
        for m in read_consistency(record) if record.is_dir() else []:
            if m['source'] == 'search':
                by_search.setdefault(name, {}).setdefault(m['epoch'], []).append(m)
    out = ['| search | epoch | seeds | ' + ' | '.join(CONSISTENCY_STAGES) + ' | gap super-net − inherited |',
           '|---|---|---|' + '---|' * len(CONSISTENCY_STAGES) + '---|']
    for name, epochs in by_search.items():
        for epoch, ms in sorted(epochs.items()):
            stages = [_mean_sd([m['acc'][s] for m in ms], 100, 1) for s in CONSISTENCY_STAGES]
            gap = _mean_sd([m['acc']['supernet'] - m['acc']['inherited'] for m in ms], 100, 1)
            out.append(f'| `{name}` | {epoch} of {ms[0]["epochs"]} | {len(ms)} | ' + ' | '.join(stages)
                       + f' | {gap} |')
    return out if len(out) > 2 else []


def training_table(searches: dict[str, dict]) -> list[str]:
    """The grid (records/train/zoo.json), best mean first, then the models still missing seeds: test top-1 mean ±
    SD over the training seeds; and which cells are apart from a baseline beyond noise."""
    by_model = _runs_by_model()
    done = sorted((m for m, rs in by_model.items() if rs), key=lambda m: -statistics.mean(
        r['test_top1'] for r in by_model[m]))
    out = ['| rank | model | kind | origin | params | MACs | seeds | test top-1 (%) | per seed | '
           'CPU min per run (wall) |', '|---|---|---|---|---|---|---|---|---|---|']
    for rank, model in enumerate([*done, *(m for m in by_model if not by_model[m])], 1):
        rs = by_model[model]
        search = searches.get(model)
        origin = {'searched': f'{search["method"]}, {search["cpu_h"]:.2f} CPU h' if search else 'not yet searched',
                  'published': 'published (CIFAR-10)', 'random': 'uniform sampler',
                  'reference': 'plain network'}[kind(model)]
        seeds = f'{len(rs)}' + ('' if len(rs) == len(TRAIN_SEEDS) else f' of {len(TRAIN_SEEDS)}')
        if not rs:
            waits = stale_search(model)
            out.append(f'| – | `{model}` | {kind(model)} | {origin} | – | – | {seeds} | not yet trained'
                       f'{" (its search is to be redone)" if waits else ""} | – | – |')
            continue
        accs = [r['test_top1'] for r in rs]
        cpu = statistics.median(r['train_cpu_s'] for r in rs) / 60
        wall = statistics.median(r['train_wall_s'] for r in rs) / 60
        out.append(f'| {rank} | `{model}` | {kind(model)} | {origin} | {rs[0]["params"]:,} | '
                   f'{rs[0]["macs"] / 1e6:.2f}M | {seeds} | {_mean_sd(accs)} | '
                   f'{" / ".join(f"{a:.2f}" for a in accs)} | {cpu:.0f} ({wall:.0f}) |')
    return [*out, '', *_separations(by_model)]


def _separations(by_model: dict[str, list[dict]]) -> list[str]:
    """Per searched or published cell with 2+ seeds: the random cells and references it is above or below beyond
    noise (their mean ± SD intervals apart)."""
    stats = {m: (statistics.mean(a), statistics.stdev(a)) for m, rs in by_model.items()
             if len(a := [r['test_top1'] for r in rs]) > 1}
    baselines = [m for m in stats if kind(m) in ('random', 'reference')]

    def above(a: str, b: str) -> bool:
        return stats[a][0] - stats[a][1] > stats[b][0] + stats[b][1]

    out = ['| cell (2+ seeds) | above, beyond noise | below, beyond noise | within noise of |', '|---|---|---|---|']
    for cell in (m for m in stats if kind(m) in ('searched', 'published')):
        over, under = [b for b in baselines if above(cell, b)], [b for b in baselines if above(b, cell)]
        near = [b for b in baselines if b not in over + under]
        out.append(f'| `{cell}` | ' + ' | '.join(', '.join(f'`{b}`' for b in group) or '–'
                                                  for group in (over, under, near)) + ' |')
    return out


def tables() -> str:
    """The README's tables (markdown) from the committed records."""
    rows = {n: search_summary(ROOT / 'records' / 'search' / n) for n in search_runs()
            if (ROOT / 'records' / 'search' / n / 'genotype.json').exists()}
    darts = rows.get('darts_fmnist')  # the reference of the cost ratios, once its search is recorded
    out = ['| search | method, space | genotype stable from epoch | CPU h to stable / total |'
           + (' darts total CPU ÷ this |' if darts else '') + ' wall h to stable / total (shared machine) | '
           'super-net val acc |', '|---|---|---|---|' + ('---|' if darts else '') + '---|---|']
    for n, r in rows.items():
        lam = f', λ {r["lam"]}' if r['lam'] is not None else ''
        note = '' if r['converged'] else ' (less than the last fifth)'
        same_protocol = darts and darts['epochs'] == r['epochs']  # a ratio only between searches of one length
        ratio = (f' {darts["cpu_h"] / r["cpu_h"]:.1f}× |' if same_protocol else ' – |') if darts else ''
        out.append(f'| `{n}` | {r["method"]}, {r["space"]}{lam} | {r["stable_from_epoch"]} of {r["epochs"]}{note} | '
                   f'{r["cpu_h_to_stable"]:.2f} / {r["cpu_h"]:.2f} |{ratio} '
                   f'{r["wall_h_to_stable"]:.2f} / {r["wall_h"]:.2f} | {100 * r["supernet_val_acc"]:.1f} % |')
    out += ['', '| search | λ, threshold decay, epochs | in-degree by input node (of 2 3 4 5), normal; reduce | '
            'ops per kept edge, normal; reduce | connections normal / reduce | ImageNet network params / MACs '
            '(mobile: ≤ 600M) | first / last cut (epoch) |', '|---|---|---|---|---|---|---|']
    for n, r in rows.items():
        if r['method'] == 'entrannas-dst':
            deg = '; '.join(' '.join(map(str, r['in_degree'][k])) for k in ('normal', 'reduce'))
            ops = '; '.join(' / '.join(','.join(map(str, e)) for e in r['ops_per_edge'][k])
                            for k in ('normal', 'reduce'))
            net = r['imagenet']
            fits = 'within' if net['macs'] <= MOBILE_MACS else 'over'
            out.append(f'| `{n}` | {r["lam"]}, {r["threshold_decay"]}, {r["epochs"]} | {deg} | {ops} | '
                       f'{r["connections"]["normal"]} / {r["connections"]["reduce"]} | {net["params"] / 1e6:.2f}M / '
                       f'{net["macs"] / 1e6:.0f}M ({fits}) | {r["first_cut_epoch"]} / {r["last_cut_epoch"]} |')
    out += ['', *training_table(rows)]
    consistency = consistency_table()
    if consistency:
        out += ['', *consistency]
    return '\n'.join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('action', choices=('search', 'collect', 'train', 'record', 'export', 'list', 'tables',
                                           'readme'))
    parser.add_argument('names', nargs='*', metavar='NAME',
                        help='searches (search, collect) or models (train, export); all when none')
    args = parser.parse_args()
    if args.action == 'tables':
        print(tables())
        return
    if args.action == 'readme':
        print(f'{splice_tables_into(ROOT / "README.md", tables())}: tables rewritten')
        return
    if args.action == 'record':
        collect_trainings()
        return
    known = {'train': list(trainings()), 'export': exportable()}.get(args.action, list(search_runs()))
    names = args.names or known
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f'{args.action}: unknown name(s) {", ".join(unknown)}; choose from {", ".join(known)}')
    if args.action == 'train':
        train(names)
    elif args.action == 'list':
        for name in names:
            print(f'{name}: {" ".join(search_command(name))}')
        for model in trainings():
            for seed in TRAIN_SEEDS:
                print(f'{model} seed {seed}: {" ".join(train_command(model, seed))}')
    for name in names if args.action in ('search', 'collect', 'export') else []:
        {'search': run_search, 'collect': collect, 'export': export}[args.action](name)


if __name__ == '__main__':
    main()
