#!/usr/bin/env bash
# make gpu-check: the paper's experiment at 120M scale in one short command on one H100/H200.
#
#   bash scripts/gpu_check.sh [OUT_DIR]        (default: $OUT, else runs/gpu_check/report)
#
# Runs the gpu_check profile (configs/profiles/gpu_check.json: A with the 32k tokenizer, B1's exact
# shape for a few hundred steps, C on a subset of held-out tasks at the paper's budgets with
# best-of-N, TTT main and TTT lr0, then D, E and F) one phase at a time, timing each, then the GPU
# lines of the benchmarks. Writes at most 8 files to OUT_DIR: report.md (phase times, the
# registry), report.json, and the figures. Works on a bare machine that has torch, sentencepiece,
# numpy, matplotlib and tqdm and no network: the package is used from lib/ (PYTHONPATH), not
# installed. GPU_CHECK_PROFILE=<name or json> and GPU_CHECK_BENCH_MODEL=<config> run other sizes through
# the same steps (CPU checks of the script).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${1:-${OUT:-runs/gpu_check/report}}"
PROFILE="${GPU_CHECK_PROFILE:-gpu_check}"
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PYTHONPATH="$PWD/lib${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUT_DIR"
LOG_DIR="$(mktemp -d)"
TIMES="$LOG_DIR/times.jsonl"
: > "$TIMES"

step() {  # step NAME COMMAND...: run, time, record; a failure is recorded and the check goes on
  local name="$1"; shift
  local t0 rc
  t0=$(date +%s.%N)
  echo "== $name: $*"
  "$@" 2>&1 | tee "$LOG_DIR/$name.log"
  rc=${PIPESTATUS[0]}
  "$PYTHON" -c 'import json, sys; print(json.dumps({"step": sys.argv[1], "seconds": float(sys.argv[3]) - float(sys.argv[2]), "rc": int(sys.argv[4]), "log_tail": open(sys.argv[5]).read()[-1500:]}))' \
    "$name" "$t0" "$(date +%s.%N)" "$rc" "$LOG_DIR/$name.log" >> "$TIMES"
}

"$PYTHON" -c 'import torch; print(f"torch {torch.__version__}, cuda {torch.cuda.is_available()}", flush=True)'
for phase in A B C D E F; do
  step "phase_$phase" "$PYTHON" paper/scripts/run_phase.py --profile "$PROFILE" --from-phase "$phase" --to-phase "$phase"
done
step bench_sampling "$PYTHON" scripts/bench_sampling.py --model "${GPU_CHECK_BENCH_MODEL:-configs/model_mhc_120m.json}" --tasks 8 --rollouts 32 \
  --max_new_tokens 32 --lora_rank 8 --naive 0 --out "$LOG_DIR/bench_sampling.json"
"$PYTHON" scripts/gpu_check_report.py --profile "$PROFILE" --times "$TIMES" --bench "$LOG_DIR/bench_sampling.json" \
  --out_dir "$OUT_DIR"
