"""The ``entrannas`` command, run as users run it: ``python -m entrannas_timm`` in a subprocess."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import timm

import entrannas_timm  # noqa: F401  (registers the models)
from entrannas_timm import Genotype, load_genotype
from entrannas_timm.cli import build_parser, main
from entrannas_timm.models.profile import count_params

ROOT = Path(__file__).resolve().parents[1]
DARTS_V2_TEXT = ("DARTS_V2 = Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
                 "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
                 "('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
                 "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
                 "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])")


def run_cli(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, HF_HUB_OFFLINE='1', **(env or {}))
    return subprocess.run([sys.executable, '-m', 'entrannas_timm', *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd or ROOT, timeout=300)


def cli_in_process(capsys, *args: str) -> tuple:
    """``main(args)`` in this process (same code as the console entry, without a fresh interpreter)."""
    try:
        code = main(list(args))
    except SystemExit as e:  # argparse usage errors and --version
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def _write_hub_cache(cache: Path, repo_id: str, filename: str = 'model.safetensors') -> None:
    """A file in the Hugging Face cache layout (models--org--name/refs/main + snapshots/<commit>/)."""
    commit = '0' * 40
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / 'refs').mkdir(parents=True)
    (repo / 'refs' / 'main').write_text(commit)
    snap = repo / 'snapshots' / commit
    snap.mkdir(parents=True)
    (snap / filename).write_bytes(b'placeholder')


# ---- models ---------------------------------------------------------------------------------------------
def test_models_json_matches_timm_and_reads_the_cache(tmp_path):
    cache = tmp_path / 'hub'
    _write_hub_cache(cache, 'entrannas/darts_v2_cifar10.c10')
    proc = run_cli('models', '--json', 'darts_v*_cifar10', 'pc_darts_cifar10', env={'HF_HUB_CACHE': str(cache)})
    assert proc.returncode == 0, proc.stderr
    rows = {r['model']: r for r in json.loads(proc.stdout)}
    assert set(rows) == {'darts_v1_cifar10', 'darts_v2_cifar10', 'pc_darts_cifar10'}
    for name, row in rows.items():
        assert row['params'] == count_params(timm.create_model(name))
        assert row['input_size'] == [3, 32, 32] and row['family'] == 'cifar'
        assert row['macs'] > 4e8
    assert rows['darts_v2_cifar10']['genotype'] == 'darts_v2'
    # the authors' checkpoint tag: loadable once converted and cached (entrannas convert)
    assert rows['darts_v2_cifar10']['weights'] == {'c10': 'published', 'darts_c10': 'not published'}
    assert rows['darts_v1_cifar10']['weights'] == {'c10': 'not published'}


def test_models_table():
    proc = run_cli('models', 'darts_v2_imagenet')
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ['model', 'genotype', 'family', 'params', 'MACs', 'input', 'weights']
    params = count_params(timm.create_model('darts_v2_imagenet'))
    assert lines[2].split()[:6] == ['darts_v2_imagenet', 'darts_v2', 'imagenet', f'{params / 1e6:.2f}M',
                                    lines[2].split()[4], '3x224x224']
    assert 'in1k: not published' in lines[2]


def test_models_unknown_pattern(capsys):
    code, _, err = cli_in_process(capsys, 'models', 'resnet*')
    assert code == 2 and err.count('\n') == 1
    assert 'no registered model matches' in err and 'darts_v2_cifar10' in err


# ---- genotype ---------------------------------------------------------------------------------------------
def test_genotype_pretty_print():
    proc = run_cli('genotype', 'DARTS_V2')
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(str(load_genotype('darts_v2')))
    assert 'ops: dil_conv_3x3, max_pool_3x3, sep_conv_3x3, skip_connect' in proc.stdout


def test_genotype_json_and_darts_outputs(tmp_path):
    proc = run_cli('genotype', 'pc_darts_cifar', '--json')
    assert proc.returncode == 0, proc.stderr
    assert Genotype.from_dict(json.loads(proc.stdout)) == load_genotype('pc_darts_cifar')
    proc = run_cli('genotype', 'darts_v2', '--darts')
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == DARTS_V2_TEXT.replace('DARTS_V2 =', 'darts_v2 =') + '\n'


def test_convert_darts_text_to_json(capsys, tmp_path):
    out = tmp_path / 'out' / 'v2.json'
    proc = run_cli('genotype', DARTS_V2_TEXT, '--to-json', str(out))
    assert proc.returncode == 0, proc.stderr
    g = Genotype.load(out)
    assert g.name == 'DARTS_V2' and g.normal == load_genotype('darts_v2').normal
    # a genotypes.py with several genotypes: --name picks one and names the result
    src = tmp_path / 'genotypes.py'
    src.write_text('from collections import namedtuple\n' + DARTS_V2_TEXT + '\n'
                   + DARTS_V2_TEXT.replace('DARTS_V2', 'OTHER').replace("('dil_conv_3x3', 2)", "('sep_conv_5x5', 2)"))
    out2 = tmp_path / 'other.json'
    code, _, err = cli_in_process(capsys, 'genotype', str(src), '--name', 'other', '--to-json', str(out2))
    assert code == 0, err
    other = Genotype.load(out2)
    assert other.name == 'other' and ('sep_conv_5x5', 2) in other.normal.nodes[3]
    # the converted file is usable everywhere a genotype is: the CLI and timm
    assert cli_in_process(capsys, 'genotype', str(out2), '--darts')[1].startswith('other = Genotype(')
    model = timm.create_model('darts_v2_cifar10', genotype=str(out2), layers=3, channels=4)
    assert model.genotype == other


def test_convert_keeps_existing_file_on_error(capsys, tmp_path):
    out = tmp_path / 'keep.json'
    out.write_text('precious')
    code, _, _ = cli_in_process(capsys, 'genotype', DARTS_V2_TEXT.replace('sep_conv_3x3', 'sep_conv_9x9'),
                                '--to-json', str(out))
    assert code == 2
    assert out.read_text() == 'precious'


@pytest.mark.parametrize('args, message', [
    (['genotype', 'no_such_cell'], "no bundled genotype named 'no_such_cell'"),
    (['genotype', 'missing/file.json'], 'genotype file not found'),
    (['genotype', 'Genotype(normal=[('], 'not valid DARTS genotype text'),
    (['genotype', DARTS_V2_TEXT.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 7)")],
     "<command line>: normal.nodes[3][1]: input 7 out of range"),
])
def test_genotype_errors_are_one_line(capsys, args, message):
    code, out, err = cli_in_process(capsys, *args)
    assert code == 2 and out == ''
    assert err.startswith('entrannas genotype: error: ') and err.count('\n') == 1
    assert message in err


def test_console_error_has_no_traceback():
    proc = run_cli('genotype', 'no_such_cell')
    assert proc.returncode == 2 and proc.stdout == ''
    assert proc.stderr == ('entrannas genotype: error: genotype: no bundled genotype named \'no_such_cell\'; '
                           f"bundled: {', '.join(entrannas_timm.list_genotypes())} (or give a path to a .json file)\n")


def test_bad_file_and_darts_export_errors(capsys, tmp_path):
    bad = tmp_path / 'bad.json'
    bad.write_text('{"schema_version": 1,')
    code, _, err = cli_in_process(capsys, 'genotype', str(bad))
    assert code == 2 and f'{bad}: malformed JSON' in err
    multi = load_genotype('darts_v2').to_dict()
    multi['normal']['nodes'][0].append(['skip_connect', 1])
    bad.write_text(json.dumps(multi))
    code, _, err = cli_in_process(capsys, 'genotype', str(bad), '--darts')
    assert code == 2 and 'exactly 2 connections per node' in err
    code, out, _ = cli_in_process(capsys, 'genotype', str(bad))
    assert code == 0 and 'skip_connect(c_{k-1})' in out.splitlines()[2]


def test_usage_errors_and_version(capsys):
    code, _, err = cli_in_process(capsys)
    assert code == 2 and 'COMMAND' in err
    code, _, err = cli_in_process(capsys, 'genotype', 'darts_v2', '--json', '--darts')
    assert code == 2 and 'not allowed with' in err
    code, out, _ = cli_in_process(capsys, '--version')
    assert code == 0 and out.strip() == f'entrannas {entrannas_timm.__version__}'


# ---- the commands -----------------------------------------------------------------------------------------
def test_every_command_is_registered_and_explains_itself():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))  # argparse has no public way
    assert set(sub.choices) == {'models', 'genotype', 'train', 'validate', 'export', 'convert', 'publish', 'cache',
                                'plot', 'report'}
    proc = run_cli('--help')
    assert proc.returncode == 0 and all(c in proc.stdout for c in sub.choices)
    # python -m entrannas_timm.train is the same command; --help explains every setting and lists the presets
    proc = subprocess.run([sys.executable, '-m', 'entrannas_timm.train', '--help'], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    for text in ('--preset', '--grad-accum', '--resume', 'imagenet-pc-darts', 'fashion-mnist', '--cutout', '--ema'):
        assert text in proc.stdout, text
