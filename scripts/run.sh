#!/usr/bin/env bash
# The main job, offline, on real Fashion-MNIST (the Debian package's files): the whole design card.
#   search (EnTranNAS) -> genotype -> timm model -> training -> test on the 10,000 test images -> export ->
#   install into an offline Hugging Face cache -> timm.create_model('hf-hub:...', pretrained=True) -> the same test
#   accuracy again -> the search report; one summary table at the end.
# Writes OUT_DIR (default runs/main; replaced when it holds an earlier main job). Extra arguments go to
# `entrannas train` (e.g. --epochs 10). SETUP=0 skips the set-up (a .venv made by scripts/setup.sh is there);
# THREADS sets the CPU threads of every step (default 2; 1 wastes less on a machine shared with other jobs).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${SETUP:-1}" = 0 ] || bash scripts/setup.sh

out=${OUT_DIR:-runs/main}
repo=entrannas/fmnist-entrannas-main
py=.venv/bin/python
threads=${THREADS:-2}
if [ -e "$out" ]; then
  if [ ! -f "$out/.main-job" ]; then
    echo "run.sh: $out exists and was not written by this script; set OUT_DIR to another folder" >&2
    exit 2
  fi
  rm -rf "$out"
fi
mkdir -p "$out" && touch "$out/.main-job"
# the Hub cache of this job only, and no network: what an air-gapped machine sees
export HF_HUB_CACHE="$PWD/$out/hf-cache" HF_HUB_OFFLINE=1
timings="$out/timings.tsv"
step() {  # step NAME COMMAND...: run it, record its wall time
  local name=$1 t0
  shift
  echo "== $name: $*" >&2
  t0=$(date +%s.%N)
  "$@"
  awk -v n="$name" -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%s\t%.1f\n", n, b - a }' >>"$timings"
}

# 1. search: EnTranNAS (engine + transit cells, feature sharing); its top-2 rule derives a real cell at every step
step search "$py" -m search --method entrannas --dataset fashion-mnist --image-size 16 --channels 8 --layers 5 \
  --batch-size 32 --subset 1600 --epochs 6 --arch-lr 3e-3 --threads "$threads" --workers 0 --seed 0 --quiet \
  --output "$out/search"
step genotype .venv/bin/entrannas genotype "$out/search/genotype.json"
# 2. train the searched cell as a timm network (CIFAR family, 28x28) with the fashion-mnist preset, shortened
step train .venv/bin/entrannas train --genotype "$out/search" --dataset fashion-mnist --channels 8 --layers 5 \
  --subset 10000 --val-subset 2000 --epochs 4 --threads "$threads" --seed 0 --output "$out/train" "$@"
# 3. test the best weights on all 10,000 test images
step test .venv/bin/entrannas validate "$out/train" --threads "$threads" --json >"$out/test.json"
# 4. export in the Hub layout, install into the offline cache, load through timm's hf-hub: and test again
step export .venv/bin/entrannas export "$out/train" -o "$out/export" --repo-id "$repo"
step cache .venv/bin/entrannas cache "$out/export" --repo-id "$repo"
step test-hub .venv/bin/entrannas validate "hf-hub:$repo" --dataset fashion-mnist --threads "$threads" --json \
  >"$out/test-hub.json"
# 5. the search report (cell animation, curves, architecture weights, HTML page)
step report .venv/bin/entrannas report "$out/search"

"$py" - "$out" "$repo" <<'PY'
import json, sys
from pathlib import Path
out, repo = Path(sys.argv[1]), sys.argv[2]
times = dict(line.split('\t') for line in (out / 'timings.tsv').read_text().splitlines())
g = json.loads((out / 'search' / 'genotype.json').read_text())
run = json.loads((out / 'train' / 'config.json').read_text())
recs = [json.loads(line) for line in (out / 'train' / 'metrics.jsonl').read_text().splitlines()]
best = max(recs, key=lambda r: r['val_top1'])
test, hub = (json.loads((out / f).read_text()) for f in ('test.json', 'test-hub.json'))
conns = lambda cell: sum(len(n) for n in cell['nodes'])
s, d = g['provenance'], run['data']
rows = [
    ('search', f"{s['method']}, {s['epochs']} epochs, {s['search_settings']['subset']} images per split at 16x16; "
               f"super-net val acc {100 * s['metrics']['val_acc']:.1f}%", times['search']),
    ('genotype', f"normal {conns(g['normal'])} / reduce {conns(g['reduce'])} connections, ops "
                 f"{', '.join(sorted({op for c in ('normal', 'reduce') for n in g[c]['nodes'] for op, _ in n}))}",
     times['genotype']),
    ('timm model', f"{run['model']['name']}: {run['model']['args']['layers']} cells, "
                   f"{run['model']['args']['channels']} channels, {run['model']['params'] / 1e3:.1f}k params, "
                   f"{run['model']['macs'] / 1e6:.1f}M MACs at {'x'.join(map(str, d['input_size']))}", ''),
    ('training', f"{len(recs)} epochs on {d['train_images']} images, best epoch {best['epoch']} "
                 f"({best['val_top1']:.2f}% on {d['val_images']} test images)", times['train']),
    ('test (run)', f"top-1 {test['top1']:.2f}%, top-5 {test['top5']:.2f}% on {test['images']} test images",
     times['test']),
    ('export + cache', f"{out / 'export'} -> hf-hub:{repo}", f"{float(times['export']) + float(times['cache']):.1f}"),
    ('test (hf-hub:)', f"top-1 {hub['top1']:.2f}%, top-5 {hub['top5']:.2f}% on {hub['images']} images: "
                       f"{'the same' if (hub['top1'], hub['top5'], hub['images']) == (test['top1'], test['top5'], test['images']) else 'DIFFERENT'}",
     times['test-hub']),
    ('report', str(out / 'search' / 'report' / 'report.html'), times['report']),
]
w = max(len(r[0]) for r in rows)
print(f"\n{'step'.ljust(w)}  {'seconds':>7}  result")
for name, what, secs in rows:
    print(f"{name.ljust(w)}  {(f'{float(secs):.1f}' if secs else ''):>7}  {what}")
print(f"{'total'.ljust(w)}  {sum(float(v) for v in times.values()):>7.1f}")
if (hub['top1'], hub['images']) != (test['top1'], test['images']):
    sys.exit('the model loaded through hf-hub: does not reproduce the trained run')
PY
