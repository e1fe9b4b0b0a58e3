#!/usr/bin/env bash
# Wheels for a GPU box without a package index: run here, where pip reaches one, and the folder
# ./.whl (ignored by git) travels with the project; scripts/gpu_check.sh installs it there.
#
#   bash scripts/fetch_gpu_wheels.sh [PYTHON_VERSION]   # default 3.12, the GPU image's Python
#
# Only what such an image lacks: it brings torch, torchvision, numpy, pillow, rich, typer,
# scikit-learn, filelock and pytest (a CUDA PyTorch image usually does); the console's own
# packages are pure Python, so one wheel each serves every platform.
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:-3.12}
rm -rf .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$version" \
    --implementation cp -d .whl \
    textual textual-plotext plotext platformdirs mdit-py-plugins linkify-it-py uc-micro-py
ls .whl
du -sh .whl
