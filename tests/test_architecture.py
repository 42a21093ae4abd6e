"""The package's layout is its architecture: which part may import which, no import circles, a light top level.

Every import statement counts, also those inside functions and under ``if TYPE_CHECKING``: a lazy import is still
a dependency, and hiding a circle inside a function does not remove it.
"""
import ast
import json
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Set

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = 'entrannas_timm'

ALLOWED: Dict[str, Set[str]] = {
    # part of entrannas_timm -> the parts it may import (besides itself)
    'version': set(),
    'utils': set(),
    'models': {'utils'},
    'data': {'models', 'utils'},
    'train': {'data', 'models', 'utils', 'version'},
    'reports': {'models', 'utils', 'version'},
    'hub': {'train', 'reports', 'data', 'models', 'utils', 'version'},
    'cli': {'hub', 'train', 'reports', 'data', 'models', 'utils', 'version'},
    '__main__': {'cli'},
    '__init__': {'models', 'version'},
}
"""The layers, bottom up: the zoo core imports only the helpers; training and the record viewers sit on it; the Hub
layer on those; the command line on everything."""


def _modules(top: str) -> Dict[str, Path]:
    """Dotted module name -> file, for every module of the package ``top`` (a folder of the checkout)."""
    out = {}
    for path in sorted((ROOT / top).rglob('*.py')):
        parts = list(path.relative_to(ROOT).with_suffix('').parts)
        if parts[-1] == '__init__':
            parts = parts[:-1]
        out['.'.join(parts)] = path
    return out


MODULES = {**_modules(PKG), **_modules('search')}


def _imports(name: str, path: Path) -> Set[str]:
    """The modules of this checkout that ``name`` imports directly (``from pkg import sub`` names the submodule)."""
    is_pkg = path.name == '__init__.py'
    package = name if is_pkg else name.rpartition('.')[0]
    found: Set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split('.')[:len(package.split('.')) - node.level + 1]
                mod = '.'.join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ''
            found.add(mod)
            found.update(f'{mod}.{a.name}' for a in node.names if f'{mod}.{a.name}' in MODULES)
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _part(module: str) -> str:
    parts = module.split('.')
    return '__init__' if len(parts) == 1 else parts[1]


def test_every_part_has_a_declared_place():
    parts = {_part(m) for m in MODULES if m.startswith(PKG)}
    assert parts == set(ALLOWED), f'parts without a rule (add them to ALLOWED): {sorted(parts ^ set(ALLOWED))}'
    for sub in ('utils', 'models', 'data', 'train', 'reports', 'hub'):
        doc = ast.get_docstring(ast.parse((ROOT / PKG / sub / '__init__.py').read_text()))
        assert doc and 'import' in doc, f'{PKG}.{sub} needs a docstring saying what it owns and may import'


def test_imports_follow_the_layers():
    bad = []
    for module, deps in GRAPH.items():
        if not module.startswith(PKG):
            continue
        own = _part(module)
        for dep in deps:
            if dep == PKG and own != '__init__':
                bad.append(f'{module} imports the package root (import the defining module instead)')
            elif dep.startswith('search'):
                bad.append(f'{module} imports {dep}: the plugin never imports the search code')
            elif dep.startswith(PKG + '.') and _part(dep) != own and _part(dep) not in ALLOWED[own]:
                bad.append(f'{module} ({own}) imports {dep} ({_part(dep)}); {own} may import {sorted(ALLOWED[own])}')
    assert bad == []


def _cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Every strongly connected group of more than one module (Tarjan), as sorted lists."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on: Set[str] = set()
    out: List[List[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_circles():
    # a package's __init__ importing its own submodules is how packages work; everything else must be acyclic
    graph = {m: {d for d in deps if not (MODULES[m].name == '__init__.py' and d.startswith(m + '.'))
                 and not (MODULES.get(d, Path()).name == '__init__.py' and m.startswith(d + '.'))}
             for m, deps in GRAPH.items()}
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_circle():
    assert _cycles({'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}}) == [['a', 'b', 'c']]


def test_search_imports_the_plugin_and_not_the_reverse():
    assert any(d.startswith(PKG) for m, deps in GRAPH.items() if m.startswith('search') for d in deps)
    assert not any(d.startswith('search') for m, deps in GRAPH.items() if m.startswith(PKG) for d in deps)


@pytest.mark.parametrize('heavy', ['matplotlib', 'graphviz', f'{PKG}.train', f'{PKG}.data', f'{PKG}.hub',
                                   f'{PKG}.reports', f'{PKG}.cli', 'search'])
def test_import_entrannas_timm_is_light(heavy, loaded_by_import):
    assert heavy not in loaded_by_import


@pytest.fixture(scope='module')
def loaded_by_import():
    code = f'import sys, json, timm, {PKG}; print(json.dumps(sorted(sys.modules)))'
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = set(json.loads(proc.stdout.splitlines()[-1]))
    assert f'{PKG}.models.registry' in loaded  # the zoo is registered
    return loaded
