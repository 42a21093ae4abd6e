#!/usr/bin/env bash
# One-time (idempotent) set-up: system packages, a virtual environment in .venv, the project and test data.
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  need=()
  [ -d /usr/share/datasets/fashion-mnist ] || need+=(dataset-fashion-mnist)
  command -v dot >/dev/null || need+=(graphviz)
  command -v chromium >/dev/null || need+=(chromium)
  if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
pip() { .venv/bin/python -m pip -q --disable-pip-version-check "$@"; }
# pinned torch: the CPU-usable release that pip resolves from local files on our machines
pip install 'torch==2.14.1' 'torchvision==0.29.1'
pip install -e '.[test,plot]'
# real sample images (CIFAR-10/100 and ImageNet-labelled) for pipeline smoke tests
pip install --no-deps foolbox

# timm's own generic model tests, from the source distribution of the installed timm release
timm_version=$(.venv/bin/python -c 'import timm; print(timm.__version__)')
if [ ! -f ".cache/timm-tests/timm-$timm_version/tests/test_models.py" ]; then
  mkdir -p .cache/timm-tests
  pip download --no-deps --no-binary :all: "timm==$timm_version" -d .cache/timm-tests
  tar -xzf ".cache/timm-tests/timm-$timm_version.tar.gz" -C .cache/timm-tests
fi
echo "set-up done: .venv ready (timm $timm_version tests in .cache/timm-tests/timm-$timm_version/tests)"
