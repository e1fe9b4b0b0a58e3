#!/usr/bin/env bash
# The report's scratch row (Table 1's best: AlexNet from random init, LR 0.05, 30 epochs, StepLR
# step 20 gamma 0.1, batch 256, all 101 classes at 224 px) over seeds 42, 0 and 1, with the
# engine (`tui-trainer sweep scratch-seeds`) and with the plain notebook-style loop
# (`tui-trainer reference-run`), then the report's tables and the spread of both.
#
# Needs: tui-trainer installed (its python beside it on PATH, or PYTHON=...), the Caltech-101
# folder with the report's train.txt / test.txt, and a machine where a full-protocol epoch takes
# under a minute: a CPU with AMX-BF16 or AVX512-BF16, or a CUDA GPU (about 18 minutes a run
# there, six runs in about 2 hours). On an AVX2-only CPU bf16 is emulated and slow, and an fp32
# epoch takes several minutes (about 5 on a 2-core EPYC): do not run it there.
#
# Prints: each run's epochs; `tui-trainer report --compare-paper`; then a markdown table, for
# each loop, max val and test as mean ± sample std over the three seeds and each seed's figures,
# next to the report's 0.47 / 0.49. The plain loop's results go to OUT_DIR/plain-seed-S.json.
#
# Usage: scripts/scratch_seed_spread.sh DATA_DIR [PRECISION] [RUNS_DIR] [OUT_DIR]
#   PRECISION  bf16 where it pays (AMX or AVX512-BF16 CPUs, GPUs), fp32 elsewhere; default auto
#              (the engine's own choice: bf16 on GPUs and AMX CPUs, else fp32)
#   RUNS_DIR   the engine's runs folder (default runs-scratch-seeds)
#   OUT_DIR    the plain loop's JSON results (default plain-scratch-seeds)
set -euo pipefail

if [[ $# -lt 1 ]]; then
    echo "usage: $0 DATA_DIR [PRECISION] [RUNS_DIR] [OUT_DIR]" >&2
    exit 2
fi
DATA=$1
PRECISION=${2:-auto}
RUNS=${3:-runs-scratch-seeds}
OUT=${4:-plain-scratch-seeds}
SEEDS=(42 0 1)
TUI_TRAINER=${TUI_TRAINER:-tui-trainer}
PYTHON=${PYTHON:-$(dirname "$(command -v "$TUI_TRAINER")")/python}
mkdir -p "$RUNS" "$OUT"

lscpu 2>/dev/null | grep 'Model name' || true
grep -owE 'amx_bf16|avx512_bf16' /proc/cpuinfo 2>/dev/null | sort -u || true
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name --format=csv,noheader || true

# The engine: the scratch preset over the three seeds. A rerun skips the completed members.
if "$TUI_TRAINER" sweep scratch-seeds --dry-run --runs-dir "$RUNS" >/dev/null 2>&1; then
    "$TUI_TRAINER" sweep scratch-seeds --data "$DATA" --runs-dir "$RUNS" \
        --set precision="$PRECISION"
else  # the same members, one run each
    for seed in "${SEEDS[@]}"; do
        "$TUI_TRAINER" run scratch --data "$DATA" --runs-dir "$RUNS" \
            --set precision="$PRECISION" --set seed="$seed"
    done
fi

# The plain loop: the same preset, seeds and precision; a seed with a result already is skipped.
for seed in "${SEEDS[@]}"; do
    result="$OUT/plain-seed-$seed.json"
    [[ -f $result ]] && continue
    "$TUI_TRAINER" reference-run scratch --data "$DATA" --seed "$seed" \
        --set precision="$PRECISION" --out "$result"
done

"$TUI_TRAINER" report --runs-dir "$RUNS" --compare-paper

"$PYTHON" - "$RUNS" "$OUT" "$PRECISION" "${SEEDS[@]}" <<'EOF'
"""Mean ± sample std of max val and test over the seeds, per loop, as a markdown table."""
import json
import statistics
import sys
from pathlib import Path

from tui_trainer.config import RunConfig, load_preset
from tui_trainer.runs.store import list_runs

runs_dir, out_dir, precision = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
seeds = [int(s) for s in sys.argv[4:]]
protocol = load_preset("scratch").config.to_dict()
protocol.pop("seed")
protocol.pop("precision")


def engine_rows():
    """Each seed's newest completed engine run of the full scratch protocol."""
    rows = {}
    for run in list_runs(runs_dir):
        config = RunConfig.from_dict(run.config()).to_dict()
        summary = run.summary()
        same = all(config[k] == v for k, v in protocol.items())
        same = same and precision in ("auto", config["precision"])
        if same and summary.get("status") == "completed" and config["seed"] in seeds:
            rows[config["seed"]] = (summary["max_val_acc"], summary["test_acc"])
    return rows


def plain_rows():
    rows = {}
    for seed in seeds:
        path = out_dir / f"plain-seed-{seed}.json"
        if path.is_file():
            result = json.loads(path.read_text())["result"]
            rows[seed] = (result["max_val_acc"], result["test_acc"])
    return rows


def spread(values):
    if len(values) < 2:
        return f"{values[0]:.3f}" if values else "-"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


print(f"\n| loop ({precision}) | seeds | max val | test | per seed (max val / test) |")
print("| --- | --- | --- | --- | --- |")
print("| report | ? | 0.47 | 0.49 | |")
for name, rows in (("engine", engine_rows()), ("plain loop", plain_rows())):
    done = [s for s in seeds if s in rows]
    vals, tests = [rows[s][0] for s in done], [rows[s][1] for s in done]
    each = ", ".join(f"{s}: {rows[s][0]:.3f} / {rows[s][1]:.3f}" for s in done)
    print(f"| {name} | {', '.join(map(str, done))} | {spread(vals)} | {spread(tests)} | {each} |")
EOF
