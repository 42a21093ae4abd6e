#!/usr/bin/env bash
# The main job, offline: set up, then a short real EnTranNAS-DST search on Fashion-MNIST (the Debian package's
# files), whose genotype is then built as a timm model and summarised. Extra arguments go to `python -m search`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
out=${OUT_DIR:-runs/fmnist-dst}
.venv/bin/python -m search --method entrannas-dst --dataset fashion-mnist --epochs 3 --subset 1000 \
    --batch-size 64 --output "$out" --seed 0 "$@"
.venv/bin/python -m entrannas_timm genotype "$out/genotype.json"
.venv/bin/python - "$out/genotype.json" <<'PY'
import sys
import timm
import entrannas_timm  # noqa: F401  (registers the models)
from entrannas_timm.profile import model_cost
model = timm.create_model('darts_v2_cifar10', genotype=sys.argv[1], in_chans=1, num_classes=10)
print('searched cell as a CIFAR-family network (20 cells, 36 ch, 1x28x28):', model_cost(model, (1, 28, 28)))
PY
if .venv/bin/python -c 'import entrannas_timm.report' 2>/dev/null; then
  .venv/bin/python -m entrannas_timm report "$out" && echo "report: $out/report/report.html"
fi
