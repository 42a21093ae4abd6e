"""A non-editable install (a built wheel) works from outside the checkout and ships the bundled genotypes."""
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = sorted(p.stem for p in (ROOT / 'genotypes').glob('*.json'))  # what the checkout bundles

CHECK = textwrap.dedent('''
    import json, sys
    import timm, entrannas_timm
    from entrannas_timm.models.genotype import bundled_genotype_dirs
    m = timm.create_model('pc_darts_imagenet')
    print('RESULT ' + json.dumps(dict(
        file=entrannas_timm.__file__, genotypes=entrannas_timm.list_genotypes(),
        dirs=[str(d) for d in bundled_genotype_dirs()], params=sum(p.numel() for p in m.parameters()),
        models=timm.list_models('*darts*'))))
''')


def _run(cmd, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kwargs)


@pytest.fixture(scope='module')
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('pkg')
    dist, site = tmp / 'dist', tmp / 'site'
    pip = [sys.executable, '-m', 'pip', '--disable-pip-version-check', '-q']
    # without build isolation when the build backend is importable (offline); otherwise pip fetches it (PyPI)
    isolation = ['--no-build-isolation'] if importlib.util.find_spec('hatchling') else []
    build = _run([*pip, 'wheel', '--no-deps', *isolation, '-w', str(dist), str(ROOT)])
    if build.returncode != 0:
        msg = f'building the wheel failed:\n{build.stdout[-2000:]}\n{build.stderr[-4000:]}'
        if not isolation and not os.environ.get('CI'):
            pytest.skip('the hatchling build backend is not installed and could not be fetched: ' + msg[-500:])
        pytest.fail(msg)
    wheels = list(dist.glob('entrannas_timm-*.whl'))
    assert len(wheels) == 1, wheels
    inst = _run([*pip, 'install', '--no-deps', '--no-index', '--target', str(site), str(wheels[0])])
    assert inst.returncode == 0, inst.stderr[-4000:]
    env = {k: v for k, v in os.environ.items() if k not in ('ENTRANNAS_GENOTYPE_PATH', 'PYTHONPATH')}
    env['PYTHONPATH'] = str(site)
    elsewhere = tmp / 'elsewhere'
    elsewhere.mkdir()
    return dict(site=site, env=env, cwd=elsewhere, wheel=wheels[0])


@pytest.mark.slow
@pytest.mark.xdist_group('wheel')  # one worker builds the wheel for all three
def test_wheel_contents(installed):
    import zipfile
    names = zipfile.ZipFile(installed['wheel']).namelist()
    for g in BUNDLED:
        assert f'entrannas_timm/genotypes/{g}.json' in names
    modules = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / 'entrannas_timm').rglob('*.py'))
    assert len(modules) > 20 and [m for m in modules if m not in names] == []  # every module of every subpackage


@pytest.mark.slow
@pytest.mark.xdist_group('wheel')  # one worker builds the wheel for all three
def test_installed_package_works_outside_the_checkout(installed):
    proc = _run([sys.executable, '-c', CHECK], env=installed['env'], cwd=installed['cwd'])
    assert proc.returncode == 0, proc.stderr[-4000:]
    r = json.loads([ln for ln in proc.stdout.splitlines() if ln.startswith('RESULT ')][-1][len('RESULT '):])
    site = str(installed['site'])
    assert r['file'].startswith(site), r['file']
    assert r['genotypes'] == BUNDLED
    assert r['dirs'] and all(d.startswith(site) for d in r['dirs']), r['dirs']  # never the checkout's genotypes/
    assert r['params'] == 5342464  # the DARTS code's count, see test_network.py
    import timm

    import entrannas_timm  # noqa: F401  (the checkout's registry, for comparison)
    assert r['models'] == timm.list_models('*darts*') and len(r['models']) > 5


@pytest.mark.slow
@pytest.mark.xdist_group('wheel')  # one worker builds the wheel for all three
def test_installed_console_script(installed):
    script = installed['site'] / 'bin' / 'entrannas'
    if not (ROOT / 'entrannas_timm' / 'cli.py').is_file():
        pytest.skip('entrannas_timm/cli.py is not part of this checkout')
    assert script.is_file(), sorted(p.name for p in installed['site'].iterdir())
    # two patterns: the console script, the registry and the cost columns, without costing all ~80 models
    proc = _run([str(script), 'models', 'darts_v2_cifar10', 'pc_darts_imagenet'], env=installed['env'],
                cwd=installed['cwd'])
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    for name in ('darts_v2_cifar10', 'pc_darts_imagenet'):
        assert name in proc.stdout
