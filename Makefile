# Discover->Distill. Every target creates .venv on first use (scripts/setup_env.sh).
#   make test     unit + end-to-end tests (what CI runs)
#   make smoke    the pipeline (phases A-F) at smoke scale on a CPU, under runs/smoke/
#   make mini     the whole experiment (both seeds, controls, ablations) on a 2-core CPU in < 1 h, under runs/mini/
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
MINI_ROOT ?= runs/mini

.PHONY: test smoke mini gpu-check gpu-bench paper ablations status bench clean venv

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

# The whole experiment at CPU scale (configs/profiles/mini.json): not part of CI; its registry is
# runs/mini/04_results_registry.md.
mini: $(STAMP)
	$(PY) paper/scripts/run_phase.py --profile mini --from-phase A --to-phase F --include-expected-ablation
	$(PY) paper/scripts/artifact_tracker.py --root $(MINI_ROOT)/runs

# The paper's experiment at 120M scale in one short command on one H100/H200 (configs/profiles/gpu_check.json);
# report (<= 8 files) in $(OUT) or runs/gpu_check/report. Runs from lib/ without installing: a bare GPU machine works.
gpu-check:
	bash scripts/gpu_check.sh $(OUT)

# Pretraining speed on one H100/H200: 120M mHC (fp32 / bf16 streams), mHC off and nanoGPT (if .bench/nanoGPT)
# at 64 x 256, compiled, with MFU and a torch.profiler table per model, into $(OUT) or runs/gpu_bench.
gpu-bench:
	bash scripts/gpu_bench.sh $(OUT)

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

# The manuscript (paper/latex/main.tex) -> $(PDF_DIR)/main.pdf, with latexmk or else pdflatex + bibtex.
# Tables, setup macros and figures come from fill_tables.py / plot_results.py; missing ones show as
# placeholders. No Python environment is needed: make pdf [LATEX_DIR=paper/latex] [PDF_DIR=build/paper]
# (max_print_line: unwrapped log lines, which latexmk parses to decide when bibtex must run)
LATEX_DIR ?= paper/latex
PDF_DIR ?= build/paper
.PHONY: pdf
pdf:
	@mkdir -p "$(PDF_DIR)"; out="$(abspath $(PDF_DIR))"; \
	export max_print_line=100000; \
	if command -v latexmk >/dev/null 2>&1; then \
	  latexmk -pdf -interaction=nonstopmode -halt-on-error -file-line-error -cd -outdir="$$out" \
	    "$(LATEX_DIR)/main.tex" >"$$out/build.log" 2>&1 || { tail -n 40 "$$out/build.log"; \
	    echo "make pdf: latexmk failed; see $$out/main.log"; exit 1; }; \
	elif command -v pdflatex >/dev/null 2>&1; then \
	  tex="pdflatex -interaction=nonstopmode -halt-on-error -file-line-error -output-directory=$$out main.tex"; \
	  ( cd "$(LATEX_DIR)" && $$tex && { ( cd "$$out" && BIBINPUTS="$(abspath $(LATEX_DIR)):" bibtex main ) \
	      || [ $$? -le 1 ]; } \
	    && $$tex && $$tex ) >"$$out/build.log" 2>&1 || { tail -n 40 "$$out/build.log"; \
	    echo "make pdf: pdflatex failed; see $$out/main.log"; exit 1; }; \
	else \
	  echo "make pdf: neither latexmk nor pdflatex is installed. Install TeX Live, e.g."; \
	  echo "  apt-get install texlive-latex-base texlive-latex-recommended latexmk"; \
	  echo "then run make pdf again ($(LATEX_DIR)/main.tex -> $(PDF_DIR)/main.pdf)."; \
	  exit 1; \
	fi; \
	echo "wrote $(PDF_DIR)/main.pdf"

clean:
	rm -rf $(SMOKE_ROOT) .pytest_cache build
