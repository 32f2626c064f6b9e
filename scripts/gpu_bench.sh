#!/usr/bin/env bash
# make gpu-bench: pretraining speed on one H100/H200, the table of the pretraining-speed issue.
#
#   bash scripts/gpu_bench.sh [OUT_DIR]        (default: $OUT, else runs/gpu_bench)
#
# 120M mHC (fp32 and bf16 streams), the same with mHC off, and nanoGPT when a checkout is at
# .bench/nanoGPT (carry it to the device machine; without it the peer is left out), each compiled
# as pretrain.py --compile 1 does, at 64 x 256 tokens per step: tokens/s, MFU, ratios, and a
# torch.profiler table per model (top kernels, kernels per step). GPU_BENCH_FUSED_LOSS=1: our models
# use pretrain.py's --fused_loss 1. Writes bench_pretrain.json,
# bench_pretrain.log and profile_*.txt to OUT_DIR. Runs from lib/ without installing.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${1:-${OUT:-runs/gpu_bench}}"
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PYTHONPATH="$PWD/lib${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUT_DIR"
PEER=none
[ -f .bench/nanoGPT/model.py ] && PEER=.bench/nanoGPT
"$PYTHON" scripts/bench_pretrain.py --model "${GPU_BENCH_MODEL:-configs/model_mhc_120m.json}" \
  --batch "${GPU_BENCH_BATCH:-64}" --seq_len "${GPU_BENCH_SEQ:-256}" --compile "${GPU_BENCH_COMPILE:-1}" \
  --rounds 3 --steps 10 --warmup 3 --nanogpt_dir "$PEER" --bf16_streams 1 --fused_loss "${GPU_BENCH_FUSED_LOSS:-0}" \
  --profile_dir "$OUT_DIR" --out "$OUT_DIR/bench_pretrain.json" 2>&1 | tee "$OUT_DIR/bench_pretrain.log"
