"""`entrannas report`: run directories (finished, in progress, broken) -> frames, GIF, curves, heat map, HTML.

The run directories are synthetic but follow the search package's format exactly (metrics.jsonl records with
Genotype.to_dict() genotypes and arch snapshots); the architectures come from the EnTranNAS-DST rule
q = ReLU(p / max p - t_j) applied to weights that sharpen while thresholds rise, so connections are cut
gradually as in a real DST search. The HTML page is opened in real headless Chromium.
"""
from __future__ import annotations

import base64
import json
import math
import os
import random
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple
from xml.etree import ElementTree

import pytest
from PIL import Image, ImageChops, ImageStat

from entrannas_timm import Genotype
from entrannas_timm.cli import main
from entrannas_timm.models.ops import STANDARD_OPS
from entrannas_timm.reports.film import MAX_FRAMES, changed_epochs, film_epochs, render_frames
from entrannas_timm.reports.report import build_report
from entrannas_timm.reports.run import ReportError, load_run

pytest.importorskip('graphviz')
pytest.importorskip('matplotlib')
pytestmark = pytest.mark.skipif(shutil.which('dot') is None, reason='Graphviz `dot` not installed')

DST_OPS = [op for op in STANDARD_OPS if op != 'none']
NODES = 4
EDGES = [[i, j + 2] for j in range(NODES) for i in range(j + 2)]


def _dst_cell(rng: random.Random, epoch: int, epochs: int, bias: List[int]) -> Tuple[Dict[str, Any], List[float],
                                                                                     List[List[float]]]:
    """One cell at ``epoch``: (genotype cell dict, thresholds, q_hat weights) by the DST derivation rule."""
    sharp = 3.0 * max(epoch - 1, 0) / max(epochs - 1, 1)
    p = []
    for e, _ in enumerate(EDGES):
        alpha = [sharp * (1.0 if k == bias[e] else 0.0) + 0.02 * rng.random() for k in range(len(DST_OPS))]
        z = [math.exp(a) for a in alpha]
        p.append([v / sum(z) for v in z])
    thresholds = [min(0.3 + 0.15 * (epoch - 1) + 0.02 * j, 0.95) for j in range(NODES)]
    nodes, weights = [], [[0.0] * len(DST_OPS) for _ in EDGES]
    for j in range(NODES):
        idx = [e for e, (_, s) in enumerate(EDGES) if s == j + 2]
        top = max(v for e in idx for v in p[e])
        node = []
        for e in idx:
            q = [max(v / top - thresholds[j], 0.0) for v in p[e]]
            if sum(q) > 0:
                weights[e] = [v / sum(q) for v in q]
            node += [[DST_OPS[k], EDGES[e][0]] for k, v in enumerate(q) if v > 0]
        nodes.append(node)
    return {'nodes': nodes, 'concat': [2, 3, 4, 5]}, thresholds, weights


def make_run(root: Path, epochs: int = 5, recorded: Optional[int] = None, partial_line: bool = False,
             dense_start: bool = True) -> Path:
    """A DST search run directory; ``recorded < epochs`` leaves it in progress (no genotype.json).

    ``dense_start=False`` starts from an already sparse architecture (cheaper to draw than all 98 connections).
    """
    recorded = epochs if recorded is None else recorded
    run = root / 'dst_run'
    run.mkdir(parents=True)
    config = {'method': 'entrannas-dst', 'dataset': 'cifar10', 'space': 'standard', 'epochs': epochs,
              'batch_size': 64, 'lr': 0.025, 'engine_cells': 'last', 'init_threshold': 0.3, 'seed': 0}
    (run / 'config.json').write_text(json.dumps(config, indent=2))
    rng = random.Random(0)
    bias = {kind: [rng.randrange(len(DST_OPS)) for _ in EDGES] for kind in ('normal', 'reduce')}
    lines = []
    for epoch in range(1, recorded + 1):
        cells, arch = {}, {'ops': DST_OPS, 'edges': EDGES, 'weights': {}, 'thresholds': {},
                           'active_connections': {}, 'skip_connect': {}}
        for kind in ('normal', 'reduce'):
            cell, t, w = _dst_cell(rng, epoch + (0 if dense_start else 2), epochs, bias[kind])
            cells[kind] = cell
            arch['weights'][kind], arch['thresholds'][kind] = w, t
            arch['active_connections'][kind] = [len(n) for n in cell['nodes']]
            arch['skip_connect'][kind] = sum(op == 'skip_connect' for n in cell['nodes'] for op, _ in n)
        genotype = Genotype.from_dict({'schema_version': 1, 'space': 'standard', 'feature_sharing': True, **cells})
        conns = sum(arch['active_connections']['normal']) + sum(arch['active_connections']['reduce'])
        lines.append(json.dumps({
            'epoch': epoch, 'epochs': epochs, 'lr': 0.025 * (1 + math.cos(math.pi * epoch / epochs)) / 2,
            'train_loss': 2.0 / epoch, 'train_acc': 0.4 + 0.08 * epoch, 'val_loss': 2.2 / epoch,
            'val_acc': 0.38 + 0.07 * epoch, 'genotype': genotype.to_dict(), 'arch': arch,
            'params': 20_000 * conns, 'macs': 3_000_000 * conns, 'epoch_time_s': 12.5, 'peak_mem_mb': 900.0}))
    text = '\n'.join(lines) + '\n'
    if partial_line:
        text += json.dumps({'epoch': recorded + 1, 'epochs': epochs, 'train_loss': 0.3})[:-10]  # cut mid-write
    (run / 'metrics.jsonl').write_text(text)
    if recorded == epochs:
        final = genotype.replace(name='dst_run', provenance={
            'method': 'EnTranNAS-DST', 'dataset': 'CIFAR-10', 'seed': 0, 'epochs': epochs,
            'search_cost': {'gpu_days': 0.001, 'wall_time_s': 62.5}})
        final.save(run / 'genotype.json')
    return run


@pytest.fixture(scope='module')
def finished(tmp_path_factory: pytest.TempPathFactory) -> Tuple[Path, Path]:
    run = make_run(tmp_path_factory.mktemp('finished'), epochs=5)
    return run, build_report(run)


def test_synthetic_run_cuts_connections_gradually(finished: Tuple[Path, Path]) -> None:
    # guards the fixture itself: all 14 x 7 connections at epoch 1, strictly fewer at the end
    recs = [json.loads(line) for line in (finished[0] / 'metrics.jsonl').read_text().splitlines()]
    totals = [sum(r['arch']['active_connections']['normal']) for r in recs]
    assert totals[0] == len(EDGES) * len(DST_OPS)
    assert totals == sorted(totals, reverse=True) and totals[-1] < totals[0] / 3


def _recorded_changes(run: Path) -> List[int]:
    """The epochs whose genotype differs from the epoch before, straight from metrics.jsonl."""
    genotypes = [json.loads(line)['genotype'] for line in (run / 'metrics.jsonl').read_text().splitlines()]
    return [e for e in range(2, len(genotypes) + 1) if genotypes[e - 1] != genotypes[e - 2]]


def test_report_files(finished: Tuple[Path, Path]) -> None:
    run, html_path = finished
    out = run / 'report'
    assert html_path == out / 'report.html'
    # the film: the first and last epoch and those where the cell changed (the cut leaves epochs 4 and 5 as 3)
    assert _recorded_changes(run) == [2, 3]
    with Image.open(out / 'cells.gif') as gif:
        assert gif.n_frames == 4 and gif.is_animated
    frames = sorted((out / 'frames').glob('epoch_*.png'))
    assert [f.name for f in frames] == [f'epoch_{e:03d}.png' for e in (1, 2, 3, 5)]
    sizes = set()
    for f in frames:
        with Image.open(f) as im:
            sizes.add(im.size)
    assert len(sizes) == 1, 'every frame has the same canvas'
    first, last = (Image.open(frames[i]).convert('L') for i in (0, -1))
    ink = [sum(1 for v in im.get_flattened_data() if v < 240) for im in (first, last)]
    assert ink[0] > 1.5 * ink[1], 'the fully connected first epoch draws more ink than the cut last epoch'
    for name in ('curves.png', 'arch_weights.png'):
        with Image.open(out / name) as im:
            assert im.format == 'PNG' and im.width > 600
            assert len(set(im.convert('RGB').get_flattened_data())) > 10
    texts = {t.text for t in ElementTree.parse(out / 'cells.svg').iter('{http://www.w3.org/2000/svg}text')}
    assert {'c_{k-2}', 'c_{k-1}', 'c_{k}', 'dst_run'} <= texts
    assert not list(out.glob('.*')), 'no temp files left behind'


def test_html_is_self_contained(finished: Tuple[Path, Path]) -> None:
    page = finished[1].read_text()
    srcs = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert len(srcs) >= 5 and all(s.startswith('data:') for s in srcs), srcs
    for mime in ('image/gif', 'image/png', 'image/svg+xml'):
        assert f'data:{mime};base64,' in page
    gif_b64 = re.search(r'data:image/gif;base64,([^"]+)', page).group(1)
    assert base64.b64decode(gif_b64) == (finished[0] / 'report' / 'cells.gif').read_bytes()
    assert 'complete: 5 epoch(s)' in page
    assert ('film: 4 frames of 5 recorded epochs, the 2 epochs where the derived cell changed, with the first and '
            'the last epoch; frames/ holds them as PNG') in page
    assert '{&quot;gpu_days&quot;: 0.001, &quot;wall_time_s&quot;: 62.5}' in page  # search cost from genotype.json
    assert '&quot;engine_cells&quot;' not in page and 'engine_cells' in page  # settings table
    assert 'EnTranNAS-DST' in page and '&quot;format&quot;: &quot;entrannas-genotype&quot;' in page


# ---- headless Chromium over the DevTools protocol (pipe transport: stdlib only) --------------------
CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
CHROME_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                '--disable-background-networking', '--disable-component-update', '--disable-sync',
                '--remote-debugging-pipe', '--window-size=1280,2000', '--hide-scrollbars']


class DevTools:
    """Chromium's DevTools protocol over --remote-debugging-pipe (fd 3 in, fd 4 out, NUL-separated JSON)."""

    def __init__(self, user_data_dir: Path):
        import fcntl
        to_r, to_w = os.pipe()
        from_r, from_w = os.pipe()
        # move the child's ends above fd 4 so that dup2 onto 3 and 4 cannot clobber one another
        child_in, child_out = (fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_r, from_w))
        for fd in (to_r, from_w):
            os.close(fd)

        def wire() -> None:
            os.dup2(child_in, 3)
            os.dup2(child_out, 4)
        self.proc = subprocess.Popen([CHROMIUM, *CHROME_FLAGS, f'--user-data-dir={user_data_dir}', 'about:blank'],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     preexec_fn=wire, close_fds=False)
        os.close(child_in)
        os.close(child_out)
        self.w, self.r = os.fdopen(to_w, 'wb'), os.fdopen(from_r, 'rb')
        self.buf, self.events, self.next_id = b'', [], 0

    def _read(self, deadline: float) -> Dict[str, Any]:
        import select
        while b'\0' not in self.buf:
            if not select.select([self.r], [], [], max(deadline - time.monotonic(), 0))[0]:
                raise TimeoutError('Chromium DevTools did not answer in time')
            chunk = os.read(self.r.fileno(), 1 << 20)
            if not chunk:
                raise RuntimeError('Chromium closed the DevTools pipe: '
                                   + self.proc.stderr.read().decode(errors='replace')[-2000:])
            self.buf += chunk
        msg, self.buf = self.buf.split(b'\0', 1)
        return json.loads(msg)

    def call(self, method: str, session: Optional[str] = None, timeout: float = 30, **params: Any) -> Dict[str, Any]:
        self.next_id += 1
        msg: Dict[str, Any] = {'id': self.next_id, 'method': method, 'params': params}
        if session:
            msg['sessionId'] = session
        self.w.write(json.dumps(msg).encode() + b'\0')
        self.w.flush()
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get('id') == self.next_id:
                if 'error' in reply:
                    raise RuntimeError(f'{method}: {reply["error"]}')
                return reply.get('result', {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get('method') == method for e in self.events):
            self.events.append(self._read(deadline))

    def close(self) -> None:
        try:
            self.call('Browser.close', timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.w.close()
        self.r.close()
        self.proc.stderr.close()


def _open_in_chromium(page: Path) -> Tuple[List[str], List[str], Image.Image]:
    """(console/log/exception errors, URLs requested, screenshot) of ``page`` in headless Chromium."""
    with tempfile.TemporaryDirectory(prefix='chromium-profile-') as profile:
        dt = DevTools(Path(profile))
        try:
            target = next(t for t in dt.call('Target.getTargets')['targetInfos'] if t['type'] == 'page')
            session = dt.call('Target.attachToTarget', targetId=target['targetId'], flatten=True)['sessionId']
            for domain in ('Page', 'Runtime', 'Log', 'Network'):
                dt.call(f'{domain}.enable', session)
            dt.events.clear()
            dt.call('Page.navigate', session, url=page.resolve().as_uri())
            dt.wait_for('Page.loadEventFired')
            time.sleep(0.5)  # late console messages (e.g. image decode errors) arrive after load
            shot = dt.call('Page.captureScreenshot', session, format='png')['data']
            dt.call('Runtime.evaluate', session, expression='1')  # flush pending events
        finally:
            dt.close()
    errors, urls = [], []
    for e in dt.events:
        method, params = e.get('method'), e.get('params', {})
        if method == 'Runtime.consoleAPICalled' and params.get('type') in ('error', 'assert', 'warning'):
            errors.append(f'console.{params["type"]}: {params.get("args")}')
        elif method == 'Runtime.exceptionThrown':
            errors.append(f'exception: {params.get("exceptionDetails")}')
        elif method == 'Log.entryAdded' and params['entry'].get('level') in ('error', 'warning'):
            errors.append(f'log {params["entry"]["level"]}: {params["entry"].get("text")}')
        elif method == 'Network.loadingFailed':
            errors.append(f'load failed: {params.get("errorText")}')
        elif method == 'Network.requestWillBeSent':
            urls.append(params['request']['url'])
    return errors, urls, Image.open(__import__('io').BytesIO(base64.b64decode(shot))).convert('RGB')


@pytest.mark.skipif(CHROMIUM is None, reason='chromium not installed')
def test_html_opens_in_chromium_without_errors(finished: Tuple[Path, Path]) -> None:
    errors, urls, shot = _open_in_chromium(finished[1])
    assert errors == []
    assert urls and all(u == finished[1].resolve().as_uri() or u.startswith('data:') for u in urls), urls
    assert shot.size[0] >= 1000
    assert len(shot.getcolors(1 << 24)) > 50, 'screenshot is not blank'
    assert shot.getbbox() is not None


@pytest.mark.skipif(CHROMIUM is None, reason='chromium not installed')
def test_chromium_check_detects_a_broken_page(tmp_path: Path) -> None:
    # the check above can fail: a page with a script error and a missing image is reported
    page = tmp_path / 'broken.html'
    page.write_text('<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head><body><p>x</p>'
                    '<img src="missing.png"><script>console.error("boom")</script></body></html>')
    errors, _, _ = _open_in_chromium(page)
    assert any('boom' in e for e in errors)
    assert any('load failed' in e or 'missing.png' in e for e in errors), errors


# ---- runs in progress and broken runs -----------------------------------------------------------
def test_run_in_progress(tmp_path: Path) -> None:
    run = make_run(tmp_path, epochs=5, recorded=3, partial_line=True)
    loaded = load_run(run)
    assert loaded.epochs == [1, 2, 3] and not loaded.complete and loaded.planned_epochs == 5
    assert any('line 4 is incomplete' in n for n in loaded.notes)
    page = build_report(run, tmp_path / 'out').read_text()
    with Image.open(tmp_path / 'out' / 'cells.gif') as gif:
        assert gif.n_frames == 3
    assert 'in progress: epoch 3 of 5' in page and 'line 4 is incomplete' in page
    assert 'Current cells' in page and 'dst_run' in page


def test_resumed_run_keeps_one_record_per_epoch(tmp_path: Path) -> None:
    run = make_run(tmp_path, epochs=3, dense_start=False)  # the same cell at all three epochs
    lines = (run / 'metrics.jsonl').read_text().splitlines()
    again = json.loads(lines[1])
    again['genotype']['normal']['nodes'][0] = [['skip_connect', 0]]
    (run / 'metrics.jsonl').write_text('\n'.join(lines + [json.dumps(again)]) + '\n')  # epoch 2 logged again, changed
    loaded = load_run(run)
    assert loaded.epochs == [1, 2, 3]
    assert any('epoch(s) 2 recorded more than once' in n for n in loaded.notes)
    film = render_frames(loaded, run / 'report')
    assert film.epochs == [1, 2, 3] and film.changed == 2, "epoch 2's later record is the one shown"
    with Image.open(run / 'report' / 'cells.gif') as gif:
        assert gif.n_frames == 3


def test_frames_of_a_shorter_rerun_replace_stale_ones(tmp_path: Path) -> None:
    run = make_run(tmp_path, epochs=2, dense_start=False)
    stale = run / 'report' / 'frames' / 'epoch_009.png'
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b'old')
    render_frames(load_run(run), run / 'report')
    assert sorted(p.name for p in stale.parent.glob('*.png')) == ['epoch_001.png', 'epoch_002.png']


@pytest.mark.parametrize('setup, message', [
    (lambda d: None, 'run directory not found'),
    (lambda d: d.mkdir(), 'is empty'),
    (lambda d: (d.mkdir(), (d / 'config.json').write_text('{}')), 'has no metrics.jsonl'),
    (lambda d: (d.mkdir(), (d / 'metrics.jsonl').write_text('')), 'no complete epoch record yet'),
    (lambda d: (d.mkdir(), (d / 'metrics.jsonl').write_text('{"epoch": 1}\n{oops\n{"epoch": 3}\n')),
     'metrics.jsonl:2: malformed JSON'),
    (lambda d: (d.mkdir(), (d / 'metrics.jsonl').write_text('{"epoch": "one"}\n')), 'field "epoch"'),
    (lambda d: (d.mkdir(), (d / 'metrics.jsonl').write_text('{"epoch": 1, "arch": {"ops": ["skip_connect"], '
                                                              '"edges": [[0, 2]], "weights": {"normal": [[1, 2]], '
                                                              '"reduce": [[1]]}}}\n')),
     'arch.weights.normal'),
    (lambda d: (d.mkdir(), (d / 'metrics.jsonl').write_text('{"epoch": 1, "genotype": {"schema_version": 1}}\n')),
     'metrics.jsonl:1: field "genotype": normal'),
    (lambda d: (d.mkdir(), (d / 'metrics.jsonl').write_text('{"epoch": 1}\n'), (d / 'config.json').write_text('[')),
     'config.json: malformed JSON'),
])
def test_bad_run_dirs_give_clear_errors(tmp_path: Path, setup: Any, message: str) -> None:
    run = tmp_path / 'run'
    setup(run)
    with pytest.raises(ReportError, match=re.escape(message)) as info:
        build_report(run)
    assert str(run) in str(info.value)


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = make_run(tmp_path, epochs=2, dense_start=False)
    assert main(['report', str(run), '-o', str(tmp_path / 'rep')]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / 'rep' / 'report.html')
    assert main(['report', str(run), '-o', str(tmp_path / 'one'), '--max-frames', '1']) == 0
    assert [p.name for p in (tmp_path / 'one' / 'frames').glob('*.png')] == ['epoch_002.png']
    assert main(['report', str(run), '-o', str(tmp_path / 'old'), '--gif-frames', '1']) == 0  # the option's old name
    assert [p.name for p in (tmp_path / 'old' / 'frames').glob('*.png')] == ['epoch_002.png']
    capsys.readouterr()
    assert main(['report', str(tmp_path / 'nope')]) == 2
    assert 'entrannas report: error:' in capsys.readouterr().err


# ---- long runs: frames where the cell changed, written as drawn, reused when unchanged, thinned ----
def _count_dot_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put a `dot` first on PATH that logs each run, then runs the real Graphviz `dot`."""
    bindir, log = tmp_path / 'bin', tmp_path / 'dot-runs.log'
    bindir.mkdir()
    (bindir / 'dot').write_text(f'#!/bin/sh\necho run >> "{log}"\nexec "{shutil.which("dot")}" "$@"\n')
    (bindir / 'dot').chmod(0o755)
    monkeypatch.setenv('PATH', f'{bindir}{os.pathsep}{os.environ["PATH"]}')
    log.write_text('')
    return log


def _pngs(out: Path) -> Dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / 'frames').glob('epoch_*.png'))}


def test_unchanged_frames_are_not_redrawn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = _count_dot_runs(tmp_path, monkeypatch)
    run = make_run(tmp_path, epochs=3, dense_start=False)  # the same cell at all three epochs
    build_report(run)
    assert len(log.read_text().splitlines()) == 1 + 1  # the cell once (epochs 1 and 3), and cells.svg
    frames = _pngs(run / 'report')
    assert list(frames) == ['epoch_001.png', 'epoch_003.png']
    build_report(run)
    assert len(log.read_text().splitlines()) == 2 + 1, 'nothing changed: only cells.svg is drawn again'
    assert _pngs(run / 'report') == frames
    # epoch 2's record now holds another genotype: it joins the film, and only its cell is drawn
    lines = (run / 'metrics.jsonl').read_text().splitlines()
    rec = json.loads(lines[1])
    rec['genotype']['normal']['nodes'][0] = [['skip_connect', 0]]
    lines[1] = json.dumps(rec)
    (run / 'metrics.jsonl').write_text('\n'.join(lines) + '\n')
    build_report(run)
    assert len(log.read_text().splitlines()) == 3 + 2
    assert list(_pngs(run / 'report')) == ['epoch_001.png', 'epoch_002.png', 'epoch_003.png']


def _cell(op: str) -> Dict[str, Any]:
    return {'nodes': [[[op, 0], ['skip_connect', 1]], [['sep_conv_3x3', 0], ['max_pool_3x3', 2]]], 'concat': [2, 3]}


def make_plain_run(root: Path, genotype_ops: List[str]) -> Path:
    """A run of len(genotype_ops) epochs whose records hold only the epoch and a small genotype: the normal cell's
    first op is ``genotype_ops[epoch - 1]``, so the cell changes exactly where that op does (cheap to draw)."""
    run = root / 'plain_run'
    run.mkdir(parents=True)
    epochs = len(genotype_ops)
    (run / 'config.json').write_text(json.dumps({'method': 'entrannas-dst', 'dataset': 'cifar10', 'epochs': epochs}))
    lines = [json.dumps({'epoch': e, 'epochs': epochs, 'genotype': {
        'schema_version': 1, 'space': 'standard', 'normal': _cell(op), 'reduce': _cell('avg_pool_3x3')}})
        for e, op in enumerate(genotype_ops, 1)]
    (run / 'metrics.jsonl').write_text('\n'.join(lines) + '\n')
    return run


def test_film_epochs_are_where_the_cell_changes() -> None:
    pairs = [(e, 'A') for e in range(1, 10)] + [(e, 'B') for e in range(10, 20)] + [(e, 'A') for e in range(20, 31)]
    assert changed_epochs(pairs) == [10, 20]
    assert film_epochs(pairs) == [1, 10, 20, 30]
    assert film_epochs([(3, 'A'), (7, 'A')]) == [3, 7]  # nothing changed: the first and the last
    assert film_epochs([(4, 'A')]) == [4] and film_epochs([]) == []
    every = [(e, str(e)) for e in range(1, 1001)]  # the cell changes at every epoch
    for most in (2, 3, 7, 200, 999):
        picked = film_epochs(every, most)
        assert len(picked) == most and picked[0] == 1 and picked[-1] == 1000 and picked == sorted(set(picked))
        gaps = [b - a for a, b in zip(picked, picked[1:])]
        assert max(gaps) - min(gaps) <= 1, 'evenly spaced'
    assert film_epochs(every, 1) == [1000]
    assert len(film_epochs(every)) == MAX_FRAMES


def test_film_shows_the_epochs_where_the_cell_changed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = _count_dot_runs(tmp_path, monkeypatch)
    run = make_plain_run(tmp_path, ['sep_conv_3x3'] * 9 + ['dil_conv_3x3'] * 10 + ['sep_conv_3x3'] * 11)
    page = build_report(run, frame_ms=100).read_text()
    out = run / 'report'
    assert list(_pngs(out)) == ['epoch_001.png', 'epoch_010.png', 'epoch_020.png', 'epoch_030.png']
    assert len(log.read_text().splitlines()) == 2 + 1, 'each cell drawn once (1, 20 and 30 share one), and cells.svg'
    assert ('film: 4 frames of 30 recorded epochs, the 2 epochs where the derived cell changed, with the first and '
            'the last epoch; frames/ holds them as PNG') in page
    frames = _pngs(out)
    assert frames['epoch_001.png'] != frames['epoch_020.png'], 'same cell, but the heading names the epoch'
    with Image.open(out / 'cells.gif') as gif:  # the GIF is the same film, frame for frame
        assert gif.n_frames == 4
        for i, name in enumerate(frames):
            gif.seek(i)
            assert gif.info['duration'] == (100 if i < 3 else 2000)
            with Image.open(out / 'frames' / name) as png:
                diff = ImageChops.difference(gif.convert('RGB'), png.convert('RGB'))
            assert max(ImageStat.Stat(diff).mean) < 3, f'GIF frame {i} is not {name}'
    build_report(run)
    assert len(log.read_text().splitlines()) == 3 + 1, 'nothing changed: only cells.svg is drawn again'
    assert _pngs(out) == frames


def test_film_of_a_long_run_is_thinned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = _count_dot_runs(tmp_path, monkeypatch)
    ops = ['sep_conv_3x3', 'dil_conv_3x3', 'avg_pool_3x3']
    run = make_plain_run(tmp_path, [ops[e % 3] for e in range(12)])  # the cell changes at every epoch
    page = build_report(run, max_frames=5).read_text()
    out = run / 'report'
    assert list(_pngs(out)) == [f'epoch_{e:03d}.png' for e in (1, 4, 7, 9, 12)]
    assert len(log.read_text().splitlines()) == 2 + 1  # epochs 1, 4 and 7 show one cell, 9 and 12 another; cells.svg
    with Image.open(out / 'cells.gif') as gif:
        assert gif.n_frames == 5
    assert ('film: 5 frames of 12 recorded epochs, the 11 epochs where the derived cell changed, with the first and '
            'the last epoch, thinned evenly to at most 5') in page
    thinned = _pngs(out)
    build_report(run, max_frames=12)  # a larger bound: every epoch; the frames already made are kept as they are
    frames = _pngs(out)
    assert len(frames) == 12 and {k: frames[k] for k in thinned} == thinned
    assert 'thinned' not in (out / 'report.html').read_text()
    build_report(run, max_frames=2)
    assert list(_pngs(out)) == ['epoch_001.png', 'epoch_012.png']


def test_odd_names_never_break_a_report(tmp_path: Path) -> None:
    hostile = '<script>alert(1)</script> { X [label="x"] } digraph <b> $\\frac{a}{'
    run = make_run(tmp_path, epochs=2, dense_start=False)
    odd = run.rename(tmp_path / ('<a> { X [label="x"] } digraph <b> $x$ ' + os.fsdecode(b'\xff')))  # not UTF-8
    final = json.loads((odd / 'genotype.json').read_text())
    final['name'] = hostile + '\ud800'  # a lone surrogate, as a JSON escape can produce
    (odd / 'genotype.json').write_text(json.dumps(final))
    config = json.loads((odd / 'config.json').read_text())
    config.update(method=hostile, dataset=hostile, output=hostile)
    (odd / 'config.json').write_text(json.dumps(config))
    lines = [json.loads(line) for line in (odd / 'metrics.jsonl').read_text().splitlines()]
    for rec in lines:
        rec['genotype']['name'] = hostile
    (odd / 'metrics.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in lines))
    page_path = build_report(odd, tmp_path / 'out')
    page = page_path.read_bytes().decode('utf-8')  # valid UTF-8 throughout
    assert '<script' not in page.lower() and '&lt;script&gt;' in page
    ElementTree.parse(tmp_path / 'out' / 'cells.svg')  # one well-formed SVG document, nothing injected
    assert len(list((tmp_path / 'out' / 'frames').glob('epoch_*.png'))) == 2
