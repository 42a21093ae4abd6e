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
import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from entrannas_timm import Genotype
from entrannas_timm.hub.export import epochs_done, read_run_records
from entrannas_timm.models.registry import MOBILE_MACS
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
        command=' '.join(['python', '-m', 'search', *search_args(name)]),
        image_size=summary['image_size'], arch_steps=summary['arch_steps'],
        stable_from_epoch=summary['stable_from_epoch'], converged=summary['converged'])
    # records written before search_cost had it (as cpu_s or process_cpu_s): the same sum of the epochs' CPU time
    if search_cost_seconds(prov['search_cost'])['cpu_s'] is None:
        prov['search_cost']['process_cpu_s'] = round(summary['cpu_h'] * 3600, 2)
    Genotype.from_dict(genotype).save(ROOT / 'genotypes' / f'{name}.json')


# One training budget for every cell: a CPU-size network (5 cells, 8 channels) at the searches' 16x16, all 60,000
# training images for 1 epoch, tested on all 10,000 test images; the fashion-mnist preset otherwise, without Cutout
# and drop path (regularisers for long schedules). The last epoch's weights are exported, not the best on test.
TRAIN_PROTOCOL = ['--dataset', 'fashion-mnist', '--channels', '8', '--layers', '5', '--image-size', '16',
                  '--epochs', '1', '--cutout', '0', '--drop-path', '0', '--threads', '1', '--quiet']

# (genotype, seeds): every searched cell, and the published DARTS_V2 and PC-DARTS cells as references
TRAININGS: dict[str, tuple[int, ...]] = {
    'darts_v2': (0, 1), 'pc_darts_cifar': (0,), 'entrannas': (0,), 'entrannas_ext': (0,),
    'entrannas_dst': (0, 1), 'entrannas_dst_lam005': (0,), 'entrannas_dst_lam02': (0,),
    'darts_fmnist': (0,), 'pc_darts_fmnist': (0,),
}


def entrannas(*args: str) -> None:
    subprocess.run([*ENTRANNAS, *args], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def trained_name(genotype: str, seed: int) -> str:
    return f'{genotype}_fmnist_s{seed}'.replace('_fmnist_fmnist', '_fmnist')


def train_command(genotype: str, seed: int) -> list[str]:
    return ['entrannas', 'train', '--genotype', genotype, *TRAIN_PROTOCOL, '--seed', str(seed),
            '--output', str(RUNS / 'train' / trained_name(genotype, seed))]


def run_training(genotype: str, seed: int) -> None:
    out = RUNS / 'train' / trained_name(genotype, seed)
    if epochs_done(out) == int(TRAIN_PROTOCOL[TRAIN_PROTOCOL.index('--epochs') + 1]):
        print(f'{out.name}: finished')
        return
    cmd = train_command(genotype, seed)[2:]
    if (out / 'checkpoint.pt').exists():
        cmd.append('--resume')
    print('== entrannas train', ' '.join(cmd), flush=True)
    entrannas('train', *cmd)


SAMPLE = 1000  # tests/test_zoo_hub.py checks each exported model on the first SAMPLE test images


def _validate(folder: Path, *extra: str) -> dict:
    out = subprocess.run([*ENTRANNAS, 'validate', str(folder), '--dataset', 'fashion-mnist', '--threads', '1',
                          '--json', *extra], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def export(genotype: str, seed: int) -> None:
    """hub/<name>/ from the last epoch's weights, and its line in records/train/results.json: accuracy of the
    exported files on all test images and on the first SAMPLE, size and cost."""
    from entrannas_timm.models.profile import model_cost
    from entrannas_timm.train.validate import load_model

    name = trained_name(genotype, seed)
    run, folder = RUNS / 'train' / name, ROOT / 'hub' / name
    entrannas('export', str(run), '--last', '-o', str(folder), '--repo-id', f'entrannas/{name}', '--overwrite')
    full, sample = _validate(folder), _validate(folder, '--subset', str(SAMPLE))
    model = load_model(str(folder))[0]
    last = read_run_records(run)[-1]
    results_file = ROOT / 'records' / 'train' / 'results.json'
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    results[name] = dict(
        genotype=genotype, seed=seed, test_top1=round(full['top1'], 2), test_images=full['images'],
        sample_top1=round(sample['top1'], 2), sample_images=sample['images'],
        **model_cost(model, model.pretrained_cfg['input_size']), train_wall_s=round(last['epoch_time_s'], 1),
        **({'train_cpu_s': round(last['epoch_cpu_s'], 1)} if 'epoch_cpu_s' in last else {}),
        command=' '.join(train_command(genotype, seed)[:-2]).replace(str(ROOT) + '/', ''))
    results_file.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(results_file, json.dumps(dict(sorted(results.items())), indent=1) + '\n')
    print(f'{name}: hub/{name}/, test top-1 {full["top1"]:.2f} %')


def _mean_sd(values: list[float]) -> str:
    """Mean ± SD (sample SD, over seeds) in percent points; the SD is left out for one value."""
    mean = f'{100 * statistics.mean(values):.1f}'
    return mean + (f' ± {100 * statistics.stdev(values):.1f}' if len(values) > 1 else '')


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
            stages = [_mean_sd([m['acc'][s] for m in ms]) for s in CONSISTENCY_STAGES]
            gap = _mean_sd([m['acc']['supernet'] - m['acc']['inherited'] for m in ms])
            out.append(f'| `{name}` | {epoch} of {ms[0]["epochs"]} | {len(ms)} | ' + ' | '.join(stages)
                       + f' | {gap} |')
    return out if len(out) > 2 else []


def _trained_is_bundled(result: dict) -> bool:
    """Whether a trained checkpoint's cell (its hub config) is the bundled genotype of its name."""
    folder = ROOT / 'hub' / trained_name(result['genotype'], result['seed'])
    trained = json.loads((folder / 'config.json').read_text())['model_args']['genotype']
    bundled = json.loads((ROOT / 'genotypes' / f'{result["genotype"]}.json').read_text())
    return all(trained[k] == bundled[k] for k in ('normal', 'reduce', 'feature_sharing'))


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
    results_file = ROOT / 'records' / 'train' / 'results.json'
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    out += ['', '| cell | search | params | MACs | test top-1 per seed (%) | mean | '
            'training CPU time (wall time, shared machine) |', '|---|---|---|---|---|---|---|']
    for genotype in TRAININGS:
        runs = [r for r in results.values() if r['genotype'] == genotype]
        if not runs:
            continue
        search = rows.get(genotype) or rows.get(genotype.replace('_fmnist', ''))
        how = (f'{search["method"]}, {search["cpu_h"]:.2f} CPU h' if search else 'published (CIFAR-10)')
        runs.sort(key=lambda r: r['seed'])
        if search and not _trained_is_bundled(runs[0]):
            how = 'an earlier search of this name (the bundled cell is newer; not yet trained)'
        accs = [r['test_top1'] for r in runs]
        minutes = ' / '.join((f"{r['train_cpu_s'] / 60:.0f} min" if 'train_cpu_s' in r else '–') +
                             f" ({r['train_wall_s'] / 60:.0f} min)" for r in runs)
        out.append(f'| `{genotype}` | {how} | {runs[0]["params"]:,} | {runs[0]["macs"] / 1e6:.1f}M | '
                   f'{" / ".join(f"{a:.2f}" for a in accs)} | {sum(accs) / len(accs):.2f} | '
                   f'{minutes} |')
    consistency = consistency_table()
    if consistency:
        out += ['', *consistency]
    return '\n'.join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('action', choices=('search', 'collect', 'train', 'export', 'list', 'tables', 'readme'))
    parser.add_argument('names', nargs='*', metavar='NAME',
                        help='searches (search, collect) or genotypes (train, export); all when none')
    args = parser.parse_args()
    if args.action == 'tables':
        print(tables())
        return
    if args.action == 'readme':
        print(f'{splice_tables_into(ROOT / "README.md", tables())}: tables rewritten')
        return
    known = list(TRAININGS) if args.action in ('train', 'export') else list(search_runs())
    names = args.names or known
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f'{args.action}: unknown name(s) {", ".join(unknown)}; choose from {", ".join(known)}')
    for name in names:
        if args.action == 'list':
            print(f'{name}: {" ".join(search_command(name))}')
        elif args.action == 'search':
            run_search(name)
        elif args.action == 'collect':
            collect(name)
        else:
            for seed in TRAININGS[name]:
                (run_training if args.action == 'train' else export)(name, seed)
    if args.action == 'list':
        for genotype, seeds in TRAININGS.items():
            for seed in seeds:
                print(f'{trained_name(genotype, seed)}: {" ".join(train_command(genotype, seed))}')


if __name__ == '__main__':
    main()
