#!/usr/bin/env bash
# The GPU check: what this project needs a CUDA GPU to measure, in one run of under 8 minutes.
#
#   bash scripts/gpu_check.sh [DATA_DIR] [RESULTS_FILE]
#
# Run from the project root on a machine with one CUDA GPU and a Python that has torch and
# torchvision. DATA_DIR is a Caltech-101 folder (101_ObjectCategories/, train.txt, test.txt);
# without one, a small synthetic set of the same shape is generated (scripts/make_synthetic_data.py),
# so the check needs nothing but the project's files. The other packages (textual, typer, plotext,
# ...) come from the Python in use, or from wheels in ./.whl (scripts/fetch_gpu_wheels.sh builds
# that folder on a machine with a package index; the GPU box needs no network).
#
# Steps, each under its own time limit, every figure appended to RESULTS_FILE
# (default: ${OUT:-.}/gpu_check.txt):
#   1. the machine: GPU, driver, torch, CUDA, bf16 support;
#   2. `tui-trainer bench --device cuda`: pure compute in fp32 and the run's precision (what
#      precision=auto's probe picks), and the engine's epochs on the data, with checkpoints;
#   3. a 3-epoch `scratch` run on the data (the run's summary: seconds, accuracies);
#   4. the tests that need CUDA (`pytest -m gpu`: pinned batches, the checkpoint writer's
#      pinned, event-ordered copy).
#
# To try the script itself on a machine without a GPU: GPU_CHECK_DEVICE=cpu and small settings,
# e.g. GPU_CHECK_SET="classes=3 image_size=64 resize=72" (every word becomes a --set).
set -uo pipefail
cd "$(dirname "$0")/.."

DATA=${1:-}
RESULTS=${2:-${OUT:-.}/gpu_check.txt}
PY=${PYTHON:-python3}
WORK=$(mktemp -d /tmp/gpu-check.XXXXXX)
export PYTHONUNBUFFERED=1 TUI_TRAINER_CACHE="$WORK/cache" TUI_TRAINER_RUNS="$WORK/runs"
mkdir -p "$(dirname "$RESULTS")"
: >"$RESULTS"
status=0

say() { echo "$*" | tee -a "$RESULTS"; }
step() {  # step NAME SECONDS CMD...: run CMD under a limit, its output into RESULTS
    local name=$1 limit=$2
    shift 2
    say ""
    say "## $name (limit ${limit}s): $*"
    local t0=$SECONDS
    timeout --signal=INT --kill-after=20 "$limit" "$@" 2>&1 | tee -a "$RESULTS"
    local rc=${PIPESTATUS[0]}
    say "-> exit $rc in $((SECONDS - t0))s"
    [ "$rc" -eq 0 ] || status=1
}

if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$WORK/site" .whl/*.whl || { say "installing ./.whl failed"; exit 1; }
    export PYTHONPATH="$WORK/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"  # the project itself, without installing it
TT=("$PY" -m tui_trainer)
DEVICE=${GPU_CHECK_DEVICE:-cuda}
SETS=()
for kv in ${GPU_CHECK_SET:-}; do SETS+=(--set "$kv"); done

say "# GPU check, $(date -u +%Y-%m-%dT%H:%MZ), git $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
step "machine" 60 "$PY" -c '
import platform, torch
print("python", platform.python_version(), "| torch", torch.__version__, "| cuda", torch.version.cuda)
if not torch.cuda.is_available():
    raise SystemExit("no CUDA GPU visible")
p = torch.cuda.get_device_properties(0)
print("gpu", p.name, f"{p.total_memory / 2**30:.0f} GiB", f"{p.multi_processor_count} SMs")
print("bf16 native:", torch.cuda.is_bf16_supported(including_emulation=False))
'
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.used,memory.total --format=csv 2>&1 | tee -a "$RESULTS"

if [ -z "$DATA" ]; then
    DATA="$WORK/data"
    step "synthetic data" 120 "$PY" scripts/make_synthetic_data.py "$DATA" --classes 20 --per-class 90 --size 160
fi
say "data: $DATA"

step "bench (pure compute, engine epochs)" 240 "${TT[@]}" bench scratch --device "$DEVICE" \
    --data "$DATA" --epochs 2 --ref-epochs 0 --compute-steps 20 "${SETS[@]}"
step "3-epoch scratch run" 150 "${TT[@]}" run scratch --device "$DEVICE" --data "$DATA" \
    --set epochs=3 "${SETS[@]}"
step "tests that need CUDA" 90 "$PY" -m pytest -q -rs -m gpu -p no:cacheprovider tests/unit tests/engine

say ""
say "overall: $([ $status -eq 0 ] && echo 'every step passed' || echo 'a step failed: see above')"
rm -rf "$WORK"
exit $status
