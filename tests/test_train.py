"""``entrannas train``: presets, DARTS's augmentation, the run directory, exact resume, DDP, and bad input.

Training runs use real Fashion-MNIST images (the Debian package's files, found by the reader) and tiny networks.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
import torchvision.transforms.v2.functional as TF
from safetensors.torch import load_file

from entrannas_timm.cli import main as cli_main
from entrannas_timm.data import loader
from entrannas_timm.models.constants import DATASET_STATS
from entrannas_timm.train import checkpoint
from entrannas_timm.train.config import resolve_config
from entrannas_timm.train.trainer import NonFiniteError, run
from entrannas_timm.utils.errors import CLIError

ROOT = Path(__file__).resolve().parents[1]
TINY = ['--dataset', 'fashion-mnist', '--data-dir', 'no-such-dir', '--subset', '128', '--val-subset', '64',
        '--channels', '4', '--layers', '3', '--batch-size', '32', '--seed', '1']
TIMING = ('images_per_s', 'train_time_s', 'epoch_time_s', 'epoch_cpu_s', 'peak_mem_mb')


def _config(**over):
    """Tiny settings of the fashion-mnist preset, in this process."""
    explicit = dict(dataset='fashion-mnist', data_dir='no-such-dir', subset=128, val_subset=64, channels=4, layers=3,
                    batch_size=32, seed=1, quiet=True)
    return resolve_config(dict(explicit, **over))


def _records(out: Path) -> list:
    return [json.loads(line) for line in (out / checkpoint.METRICS).read_text().splitlines()]


def _no_timing(records: list) -> list:
    return [{k: v for k, v in r.items() if k not in TIMING} for r in records]


# ---- settings -------------------------------------------------------------------------------------------------
def test_presets_follow_the_data_and_flags_override_them():
    cfg = resolve_config({'dataset': 'cifar10'})
    assert (cfg.preset, cfg.epochs, cfg.batch_size, cfg.lr, cfg.cutout, cfg.drop_path, cfg.aux_weight) == \
        ('cifar', 600, 96, 0.025, 16, 0.2, 0.4)
    cfg = resolve_config({'preset': 'imagenet'})
    assert (cfg.dataset, cfg.sched, cfg.decay_rate, cfg.label_smoothing, cfg.weight_decay) == \
        ('imagenet', 'step', 0.97, 0.1, 3e-5)
    cfg = resolve_config({'preset': 'imagenet-pc-darts', 'epochs': 20})
    assert (cfg.batch_size, cfg.lr, cfg.warmup_epochs, cfg.sched, cfg.epochs) == (1024, 0.5, 5, 'linear', 20)
    cfg = resolve_config({'dataset': 'mnist', 'lr': 0.01})
    assert (cfg.preset, cfg.lr, cfg.channels, cfg.layers) == ('fashion-mnist', 0.01, 16, 8)


@pytest.mark.parametrize('explicit, message', [
    ({'preset': 'cifar100'}, "--preset: unknown preset 'cifar100'"),
    ({'dataset': 'svhn'}, "--dataset: unknown data set 'svhn'"),
    ({'model': 'resnet18'}, "MODEL: 'resnet18' is not a registered model of the zoo"),
    ({'layers': 2}, '--layers: a network needs at least 3 cells'),
    ({'channels': 7}, '--channels: expected an even number'),
    ({'warmup_epochs': 10, 'epochs': 10}, '--warmup-epochs 10 >= --epochs 10'),
    ({'drop_path': 1.5}, '--drop-path: expected a value in [0.0, 1.0)'),
    ({'sched': 'exp'}, "--sched: expected one of cosine, step, linear"),
])
def test_bad_settings_name_the_flag(explicit, message):
    with pytest.raises(CLIError, match=message.replace('[', r'\[').replace(')', r'\)').replace('(', r'\(')):
        resolve_config(explicit)


def test_learning_rate_schedules_are_the_papers():
    from entrannas_timm.train.trainer import _scheduler

    def lrs(preset: str, epochs: int) -> list:
        cfg = resolve_config({'preset': preset, 'epochs': epochs})
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=cfg.lr)
        sched, out = _scheduler(opt, cfg), []
        for e in range(epochs):
            sched.step(e)
            out.append(opt.param_groups[0]['lr'])
        return out
    assert lrs('imagenet', 3) == pytest.approx([0.1, 0.097, 0.1 * 0.97 ** 2])   # DARTS: x0.97 per epoch
    cos = lrs('cifar', 4)                                                       # cosine to 0 over the epochs
    assert cos[0] == pytest.approx(0.025) and cos[2] == pytest.approx(0.0125)
    pc = lrs('imagenet-pc-darts', 250)         # PC-DARTS: warm-up from lr / 5 over 5 epochs, then linear to 0
    assert pc[0] == pytest.approx(0.1) and pc[0] < pc[2] < pc[4] < pc[5] == pytest.approx(0.5 * 245 / 250)
    assert pc[249] == pytest.approx(0.5 / 250)


# ---- augmentation ---------------------------------------------------------------------------------------------
def _darts_cutout(img: torch.Tensor, y: int, x: int, length: int) -> torch.Tensor:
    """DARTS's utils.Cutout with the centre given (its numpy code, restated)."""
    h, w = img.shape[-2:]
    y1, y2 = min(max(y - length // 2, 0), h), min(max(y + length // 2, 0), h)
    x1, x2 = min(max(x - length // 2, 0), w), min(max(x + length // 2, 0), w)
    mask = torch.ones(h, w)
    mask[y1:y2, x1:x2] = 0.
    return img * mask


def test_cutout_is_darts_form_not_random_erasing():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, 32, 32, generator=g)
    centres = torch.randint(0, 32, (64, 2), generator=g)
    out = loader.cutout_(x.clone(), centres, 16)
    for i in range(64):
        assert torch.equal(out[i], _darts_cutout(x[i], int(centres[i, 0]), int(centres[i, 1]), 16))
    zeroed = (out == 0).flatten(1).sum(1)
    assert int(zeroed.max()) == 3 * 256 and int(zeroed.min()) < 3 * 256  # whole squares inside, clipped at borders


def test_batch_augmentation_equals_per_image_crop_flip_normalise():
    x = torch.randint(0, 256, (16, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    data = loader.ImageData('fashion-mnist', 'train', 1, 10, 28, *DATASET_STATS['fashion-mnist'], images=x,
                            labels=torch.zeros(16, dtype=torch.long))
    aug = loader.Augment(cutout=0)
    plan = loader._Plan(16, 28, aug, seed=3, epoch=2, flip=True)
    idx = torch.arange(16)
    out = loader._small_train_batch(x, idx, plan, data, aug)
    assert plan.flips.any() and not plan.flips.all() and len(set(map(tuple, plan.offsets.tolist()))) > 4
    for i in range(16):
        ref = TF.crop(TF.pad(x[i], [4]), int(plan.offsets[i, 0]), int(plan.offsets[i, 1]), 28, 28)
        if plan.flips[i]:
            ref = TF.horizontal_flip(ref)
        ref = TF.normalize(ref.float() / 255., *DATASET_STATS['fashion-mnist'])
        torch.testing.assert_close(out[i], ref, rtol=0, atol=1e-6)


def test_crop_padding_zero_leaves_the_pixels_in_place():
    x = torch.randint(0, 256, (8, 1, 12, 12), dtype=torch.uint8, generator=torch.Generator().manual_seed(4))
    data = loader.ImageData('fashion-mnist', 'train', 1, 10, 12, *DATASET_STATS['fashion-mnist'], images=x,
                            labels=torch.zeros(8, dtype=torch.long))
    aug = loader.Augment(crop_padding=0, cutout=0)
    plan = loader._Plan(8, 12, aug, seed=3, epoch=0, flip=True)
    out = loader._small_train_batch(x, torch.arange(8), plan, data, aug)
    for i in range(8):
        ref = TF.horizontal_flip(x[i]) if plan.flips[i] else x[i]
        torch.testing.assert_close(out[i], TF.normalize(ref.float() / 255., *DATASET_STATS['fashion-mnist']),
                                   rtol=0, atol=1e-6)


@pytest.mark.fashion_mnist
def test_crop_padding_flag_reaches_the_training_batches(tmp_path, monkeypatch):
    from entrannas_timm.train import trainer
    seen = []

    def spy(*args, **kwargs):
        seen.append(args[4])
        return loader.train_batches(*args, **kwargs)
    monkeypatch.setattr(trainer, 'train_batches', spy)
    run(_config(epochs=1, crop_padding=0, output=str(tmp_path / 'run')))
    assert seen and all(aug.crop_padding == 0 for aug in seen)
    saved = json.loads((tmp_path / 'run' / checkpoint.CONFIG).read_text())['settings']
    assert saved['crop_padding'] == 0
    with pytest.raises(CLIError, match='--crop-padding'):
        _config(crop_padding=-1)


def test_every_split_of_a_global_batch_sees_the_same_images():
    n, size = 96, 8
    x = torch.randint(0, 256, (n, 1, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    data = loader.ImageData('fashion-mnist', 'train', 1, 10, size, (0.5,), (0.5,), images=x, labels=torch.arange(n))
    aug, dev = loader.Augment(cutout=4), torch.device('cpu')
    single = list(loader.train_batches(data, 32, 5, 0, aug, dev))
    ranks = [list(loader.train_batches(data, 32, 5, 0, aug, dev, rank=r, world=2)) for r in range(2)]
    assert len(single) == 3 and [len(r) for r in ranks] == [3, 3]
    for k, (xs, ys) in enumerate(single):
        for r in range(2):  # rank r of 2 holds the micro-batch r of a 2-way accumulation split
            xr, yr = ranks[r][k]
            assert torch.equal(loader.split_micro(ys, 2)[r], yr) and torch.equal(loader.split_micro(xs, 2)[r], xr)
    assert not torch.equal(single[0][1], list(loader.train_batches(data, 32, 6, 0, aug, dev))[0][1])  # reshuffled


# ---- a run ----------------------------------------------------------------------------------------------------
@pytest.mark.fashion_mnist
def test_run_directory_holds_safe_complete_records(tmp_path):
    out = tmp_path / 'run'
    res = run(_config(epochs=2, ema=True, output=str(out)))
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ['config.json', 'metrics.jsonl', 'checkpoint.pt', 'best.safetensors', 'last.safetensors',
         'best_ema.safetensors', 'last_ema.safetensors'])
    recs = _records(out)
    assert [r['epoch'] for r in recs] == [1, 2] and recs == res.records
    for key in ('lr', 'train_loss', 'train_aux_loss', 'train_top1', 'train_top5', 'val_loss', 'val_top1', 'val_top5',
                'ema_top1', 'images_per_s', 'epoch_time_s', 'epoch_cpu_s', 'peak_mem_mb', 'drop_path'):
        assert all(isinstance(r[key], float) for r in recs), key
    assert recs[0]['drop_path'] == 0. and recs[1]['drop_path'] == pytest.approx(0.05)  # 0.1 ramped over 2 epochs
    assert recs[1]['lr'] < recs[0]['lr']
    weights = load_file(out / 'best.safetensors')
    assert weights and not any(k.startswith('aux_head') for k in weights)
    ckpt = torch.load(out / 'checkpoint.pt', weights_only=True)
    assert any(k.startswith('aux_head') for k in ckpt['model']) and ckpt['epoch'] == 2 and 'optimizer' in ckpt
    cfg = json.loads((out / 'config.json').read_text())
    assert cfg['model']['name'] == 'cellnet_cifar' and cfg['model']['args']['in_chans'] == 1
    assert cfg['data']['input_size'] == [1, 28, 28] and cfg['data']['val_images'] == 64
    # the best weights validate to the recorded figure
    model, _ = checkpoint.build_run_model(out)
    best = max(recs, key=lambda r: r['val_top1'])
    val = loader.load_data('fashion-mnist', 'no-such-dir', 'test', 64)
    from entrannas_timm.train.validate import evaluate
    r = evaluate(model, val, 50, torch.device('cpu'))
    assert r['images'] == 64 and r['top1'] == pytest.approx(best['val_top1']) and r['loss'] == pytest.approx(
        best['val_loss'], rel=1e-5)


def _train_proc(out: Path, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS='1')
    return subprocess.Popen([sys.executable, '-m', 'entrannas_timm.train', *TINY, '--epochs', '2', '--threads', '1',
                             '--json', '--output', str(out), *extra], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.fashion_mnist
def test_killed_and_resumed_run_ends_bit_exact(tmp_path):
    full, killed = tmp_path / 'full', tmp_path / 'killed'
    ref, victim = _train_proc(full), _train_proc(killed)
    deadline = time.time() + 300
    while not (killed / checkpoint.CHECKPOINT).exists() and victim.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.kill(victim.pid, signal.SIGKILL)
    victim.communicate()
    assert victim.returncode == -signal.SIGKILL
    assert torch.load(killed / checkpoint.CHECKPOINT, weights_only=True)['epoch'] < 2, 'finished before the kill'
    resumed = subprocess.run([sys.executable, '-m', 'entrannas_timm.train', '--resume', '--output', str(killed),
                              '--json'], cwd=ROOT, env=dict(os.environ, OMP_NUM_THREADS='1'), capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    _, err = ref.communicate(timeout=300)
    assert ref.returncode == 0, err
    for name in ('last.safetensors', 'best.safetensors'):
        a, b = load_file(full / name), load_file(killed / name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    assert _no_timing(_records(full)) == _no_timing(_records(killed)) and len(_records(killed)) == 2
    lines = [json.loads(line) for line in resumed.stdout.splitlines()]
    assert lines[-1]['event'] == 'done' and all('epoch' in r for r in lines[:-1])


@pytest.mark.fashion_mnist
def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    out = tmp_path / 'run'
    run(_config(epochs=2, output=str(out)))
    ckpt = torch.load(out / checkpoint.CHECKPOINT, weights_only=True)
    ckpt['epoch'], ckpt['metrics'] = 1, ckpt['metrics'][:1]
    ckpt['model']['head.fc.weight'].fill_(float('nan'))
    torch.save(ckpt, out / checkpoint.CHECKPOINT)
    (out / checkpoint.METRICS).write_text(ckpt['metrics'][0] + '\n')
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(NonFiniteError, match=r'non-finite values in epoch 2 .*last good checkpoint .* epoch 1\) is '
                                             'kept'):
        run(_config(epochs=2, output=str(out), resume=True), {'output': str(out), 'resume': True})
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


# ---- bad input: one clear line, nothing damaged -------------------------------------------------------------------
def _cli(capsys, *args: str) -> tuple:
    try:
        code = cli_main(list(args))
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.fashion_mnist
def test_bad_input_is_one_line_and_damages_nothing(capsys, tmp_path):
    out = tmp_path / 'run'
    run(_config(epochs=1, output=str(out)))
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    cases = [
        (['no_such_model', *TINY], "MODEL: 'no_such_model' is not a registered model"),
        (['--genotype', 'no_such_cell', *TINY, '--output', str(tmp_path / 'x')], "no bundled genotype named"),
        (['--dataset', 'imagefolder', '--data-dir', str(tmp_path / 'none'), '--output', str(tmp_path / 'y')],
         'no train folder under'),
        ([*TINY, '--epochs', '1', '--output', str(out)], f'--output: {out} already holds a run'),
        (['--resume', '--output', str(out), '--lr', '0.5'], '--resume: the run in'),
        (['--resume', '--output', str(tmp_path / 'empty')], 'holds no run to resume'),
    ]
    for args, message in cases:
        code, stdout, err = _cli(capsys, 'train', *args)
        assert code == 2 and err.startswith('entrannas train: error: ') and err.count('\n') == 1, (args, err)
        assert message in err, (message, err)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not (tmp_path / 'x').exists() and not (tmp_path / 'y').exists()


# ---- torchrun: two gloo processes = one process with the same global batch ------------------------------------
DDP_ARGS = dict(epochs=2, drop_path=0., ema=True, cutout=8)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _rank(rank: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE='2')
    torch.set_num_threads(1)
    run(_config(output=out, **DDP_ARGS))


@pytest.mark.fashion_mnist
def test_two_gloo_processes_train_the_weights_of_one(tmp_path):
    port, ddp = _free_port(), tmp_path / 'ddp'
    ctx = mp.get_context('spawn')
    procs = [ctx.Process(target=_rank, args=(r, port, str(ddp))) for r in range(2)]
    for p in procs:
        p.start()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each rank: the same reduction order in every kernel
    try:
        single = run(_config(output=str(tmp_path / 'single'), grad_accum=2, **DDP_ARGS))
    finally:
        torch.set_num_threads(threads)
    for p in procs:
        p.join(timeout=300)
        assert p.exitcode == 0
    for name in ('last.safetensors', 'last_ema.safetensors'):
        a, b = load_file(tmp_path / 'single' / name), load_file(ddp / name)
        assert a.keys() == b.keys()
        for k in a:  # parameters and BN statistics alike
            torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-5, msg=f'{name}: {k}')
    # losses and accuracies are averaged over ranks in another summation order: equal to float tolerance
    assert _no_timing(single.records) == [pytest.approx(r, rel=1e-5) for r in _no_timing(_records(ddp))]
    assert json.loads((ddp / 'config.json').read_text())['world_size'] == 2


@pytest.mark.fashion_mnist
def test_throughput_benchmark_runs_side_by_side(tmp_path):
    import importlib.util
    spec = importlib.util.spec_from_file_location('train_throughput', ROOT / 'benchmarks' / 'train_throughput.py')
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / 'throughput.jsonl'
    assert bench.main(['--rounds', '2', '--steps', '2', '--batch-size', '16', '--channels', '4', '--layers', '3',
                       '--data-dir', 'no-such-dir', '--output', str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    rounds, summary = lines[1:-1], lines[-1]
    assert [(r['round'], r['variant']) for r in rounds] == [(0, 'bare'), (0, 'pipeline'), (1, 'pipeline'),
                                                             (1, 'bare')]
    assert summary['ratio'] == pytest.approx(summary['pipeline_images_per_s'] / summary['bare_images_per_s'])
    assert len(summary['ratio_per_round']) == 2 and all(r > 0 for r in summary['ratio_per_round'])


def _foolbox_samples() -> Path:
    import importlib.util
    spec = importlib.util.find_spec('foolbox')
    if spec is None or not spec.submodule_search_locations:
        pytest.skip('foolbox (real sample images) is not installed')
    return Path(list(spec.submodule_search_locations)[0]) / 'data'


def test_image_folder_trains_with_timm_transforms_seeded_per_image(tmp_path):
    samples = _foolbox_samples()
    for split, names in (('train', range(0, 8)), ('val', range(8, 12))):
        for cls in ('cifar10', 'cifar100'):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in names:
                src = next(samples.glob(f'{cls}_{i:02d}_*.png'))
                (tmp_path / split / cls / src.name).write_bytes(src.read_bytes())
    data = loader.load_data('imagefolder', str(tmp_path), 'train', image_size=32)
    assert (len(data), data.num_classes, data.in_chans) == (16, 2, 3)
    aug, dev = loader.Augment(cutout=8), torch.device('cpu')
    alone = list(loader.train_batches(data, 8, 1, 0, aug, dev, workers=0))
    pooled = list(loader.train_batches(data, 8, 1, 0, aug, dev, workers=2))
    assert len(alone) == 2 and all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(alone, pooled))
    assert alone[0][0].shape == (8, 3, 32, 32) and (alone[0][0] == 0).any()  # Cutout on folder data too
    res = run(resolve_config(dict(model='cellnet_cifar', dataset='imagefolder', data_dir=str(tmp_path), image_size=32,
                                  channels=4, layers=3, epochs=1, batch_size=8, quiet=True,
                                  output=str(tmp_path / 'run'))))
    rec = res.records[0]
    assert (rec['val_top1'] * 8 / 100).is_integer() and rec['images_per_s'] > 0  # 8 validation images
    cfg = json.loads((tmp_path / 'run' / 'config.json').read_text())
    assert cfg['data']['val_images'] == 8 and cfg['data']['crop_pct'] == 0.875 and cfg['model']['args']['in_chans'] == 3
