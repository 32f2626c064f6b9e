# Discover->Distill. Every target creates .venv on first use (scripts/setup_env.sh).
#   make test     unit + end-to-end tests (what CI runs)
#   make smoke    the pipeline (phases A-F) at smoke scale on a CPU, under runs/smoke/
#   make paper    the runbook at full scale (GPU);  make phase-C SEED=1 [PROFILE=smoke]  one phase
#   make bench    benchmarks, printed as ratios against a peer measured in the same run
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
PY := .venv/bin/python
STAMP := .venv/.installed
SEED ?= 0
SEEDS ?= 0 1
PROFILE ?= paper
SMOKE_ROOT ?= runs/smoke

.PHONY: test smoke paper ablations status bench clean venv

venv: $(STAMP)
$(STAMP): setup.cfg pyproject.toml scripts/setup_env.sh
	bash scripts/setup_env.sh
	touch $(STAMP)

# pytest exits 5 when it collects no tests; that is not a failure of the code under test.
test: $(STAMP)
	$(PY) -m pytest -q || { rc=$$?; [ $$rc -eq 5 ] && echo "no tests collected" || exit $$rc; }

# The whole pipeline at smoke scale (configs/profiles/smoke.json): phases A-F on a CPU in minutes.
smoke: $(STAMP)
	$(PY) paper/scripts/run_phase.py --profile smoke --from-phase A --to-phase F --include-expected-ablation
	$(PY) paper/scripts/artifact_tracker.py --root $(SMOKE_ROOT)/runs

# The runbook at full scale (GPU): make paper [PROFILE=paper]
paper: $(STAMP)
	$(PY) paper/scripts/run_phase.py --profile $(PROFILE) --from-phase A --to-phase F --include-expected-ablation

# One phase: make phase-C SEED=1 [PROFILE=smoke]
phase-%: $(STAMP)
	$(PY) paper/scripts/run_phase.py --profile $(PROFILE) --from-phase $* --to-phase $* --seeds $(SEED) \
	  --include-expected-ablation

# The ablations one by one (a bash loop over the runbook's C2 ablation commands, via the orchestrator)
ablations: $(STAMP)
	for seed in $(SEEDS); do \
	  $(PY) paper/scripts/run_phase.py --profile $(PROFILE) --from-phase C --to-phase C --seeds "$$seed" \
	    --include-expected-ablation; \
	done

status: $(STAMP)
	$(PY) paper/scripts/run_status.py --root runs
	$(PY) paper/scripts/artifact_tracker.py --root runs || true

# Training throughput against karpathy/nanoGPT at the same shape (needs a checkout in .bench/nanoGPT),
# and the batched KV-cache sampler against a naive uncached per-task loop.
bench: $(STAMP)
	$(PY) scripts/bench_pretrain.py --model configs/model_mhc_tiny.json --seq_len 256 --batch 8
	$(PY) scripts/bench_sampling.py --model configs/model_mhc_tiny.json --tasks 4 --rollouts 8

clean:
	rm -rf $(SMOKE_ROOT) .pytest_cache build
