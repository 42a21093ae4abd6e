"""What ``import entrannas_timm`` costs on top of ``import torch, timm``: wall seconds and peak resident memory.

Each figure is the median of ``--rounds`` fresh interpreters, the baseline and the plugin alternating so that the
machine's load falls on both alike. Prints one JSON line per import and the difference.

    python benchmarks/import_cost.py --rounds 7
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from typing import Dict, List, Optional, Sequence

PROBE = '''
import resource, sys, time
t = time.perf_counter()
{imports}
wall = time.perf_counter() - t
heavy = sorted(m for m in ('matplotlib', 'graphviz', 'entrannas_timm.train', 'entrannas_timm.reports',
                           'entrannas_timm.hub', 'entrannas_timm.data') if m in sys.modules)
print(wall, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, ','.join(heavy))
'''
IMPORTS = {'torch+timm': 'import torch, timm', 'entrannas_timm': 'import entrannas_timm'}


def measure(imports: str) -> Dict[str, float]:
    out = subprocess.run([sys.executable, '-c', PROBE.format(imports=imports)], capture_output=True, text=True,
                         check=True).stdout.split()
    return {'wall_s': float(out[0]), 'peak_rss_mb': float(out[1]), 'heavy': out[2] if len(out) > 2 else ''}


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--rounds', type=int, default=7)
    args = p.parse_args(argv)
    runs: Dict[str, List[Dict[str, float]]] = {k: [] for k in IMPORTS}
    for _ in range(args.rounds):
        for name, imports in IMPORTS.items():
            runs[name].append(measure(imports))
    summary = {}
    for name, rs in runs.items():
        summary[name] = {k: round(statistics.median(r[k] for r in rs), 2) for k in ('wall_s', 'peak_rss_mb')}
        summary[name]['heavy_modules'] = sorted({m for r in rs for m in r['heavy'].split(',') if m})
        print(json.dumps({'import': name, 'rounds': args.rounds, **summary[name]}))
    a, b = summary['torch+timm'], summary['entrannas_timm']
    print(json.dumps({'plugin_extra_wall_s': round(b['wall_s'] - a['wall_s'], 2),
                      'plugin_extra_rss_mb': round(b['peak_rss_mb'] - a['peak_rss_mb'], 1)}))
    return 0


if __name__ == '__main__':
    sys.exit(main())
