# Discover->Distill. Targets create .venv on first use (scripts/setup_env.sh), except pdf, gpu-check and gpu-bench.
#   make test     unit + end-to-end tests (what CI runs)
#   make smoke    the pipeline (phases A-F) at smoke scale on a CPU, under runs/smoke/
#   make mini     the whole experiment (both seeds, controls, ablations) on a 2-core CPU in < 1 h, under runs/mini/
#   make sweep    TTT - best-of-N from earlier checkpoints of the mini's base (its "sweep"; make mini runs it too)
#   make reading  the per-family reading benchmark: make reading NAME=x ARGS='--families tour --task_mix plain=1'
#   make paper    the runbook at full scale (GPU);  make phase-C SEED=1 [PROFILE=smoke]  one phase
#   make bench    benchmarks, printed as ratios against a peer measured in the same run
#   make clean    smoke outputs, caches, build/;  make clean-mini  runs/mini
#   make pdf      the manuscript from one profile's tables and figures: make pdf PROFILE=smoke -> build/smoke/main.pdf
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
PY := .venv/bin/python
STAMP := .venv/.installed
SEED ?= 0
SEEDS ?= 0 1
PROFILE ?= paper
SMOKE_ROOT ?= runs/smoke
MINI_ROOT ?= runs/mini

.PHONY: test smoke mini sweep reading gpu-check gpu-bench paper ablations status bench clean clean-mini venv

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
# runs/mini/runs/04_results_registry.md.
mini: $(STAMP)
	$(PY) paper/scripts/run_phase.py --profile mini --from-phase A --to-phase F --include-expected-ablation
	$(PY) paper/scripts/artifact_tracker.py --root $(MINI_ROOT)/runs

# The sweep over priors alone (the profile's "sweep" block, which make mini also runs in phase C): the main
# comparison from earlier checkpoints of the base's pretraining run, each probed, then the registry and figures.
# Reuses the profile's data, tasks and tune result: make sweep [PROFILE=mini]
SWEEP_PROFILE = $(if $(filter command line environment,$(origin PROFILE)),$(PROFILE),mini)
sweep: $(STAMP)
	$(PY) paper/scripts/run_phase.py --profile $(SWEEP_PROFILE) --sweep

# Does a corpus recipe teach a base to read its task? Bases of the mini's shape pretrained on one recipe (two seeds),
# probed per family (swap gap on the policy's and the optimal answer): minutes per seed, under runs/reading/$(NAME).
#   make reading NAME=tour_steps ARGS='--families tour --task_mix plain=3,step=2 --steps 1500'
NAME ?= default
ARGS ?=
reading: $(STAMP)
	$(PY) paper/scripts/reading_bench.py --out runs/reading/$(NAME) $(ARGS)

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

# Training throughput of ours (mHC on, off) against karpathy/nanoGPT at the same shape when a checkout is
# in .bench/nanoGPT (without one: ours only, and the git clone line that adds it). Sampling at one TTT
# step of the mini (configs/profiles/mini.json: its model, 20 tasks per batch x 16 rollouts x 32 new
# tokens, ~72-token prompts, a rank-8 LoRA per task; one timed run after a warm-up, so it stays well
# under a minute on 2 cores), as ratios that each change one thing: fast vs reference engine, batched
# vs a naive uncached loop (4 rollouts: it runs them one by one), mHC on vs off, and our engine vs HF
# GPT-2 on the mHC-off model (when transformers is installed: pip install -e '.[bench]').
bench: $(STAMP)
	$(PY) scripts/bench_pretrain.py --model configs/model_mhc_tiny.json --seq_len 256 --batch 8
	$(PY) scripts/bench_sampling.py --model configs/model_mhc_mini.json --tasks 20 --rollouts 16 --max_new_tokens 32 \
	  --prompt_len 72 --lora_rank 8 --repeats 1 --naive_samples 4

# The manuscript for one profile: make pdf [PROFILE=paper|mini|smoke|gpu_check] -> build/<profile>/main.pdf.
# pdf-src stages a copy of paper/latex in build/<profile>/src with that profile's generated tables
# and figures where main.tex reads them (tables/, ../figs/): fill_tables.py and plot_results.py
# write them under the profile's runs_dir (runs/smoke/runs/{latex_tables,figs}; the paper profile:
# paper/latex/tables, paper/figs). The source tree is never written; what is not generated yet shows
# as a placeholder. Needs python3 (not .venv) and latexmk, or pdflatex + bibtex. PDF_DIR overrides
# the output folder. (max_print_line: unwrapped log lines, which latexmk parses to decide when
# bibtex must run)
LATEX_DIR ?= paper/latex
PDF_DIR ?= build/$(PROFILE)
PDF_SRC = $(PDF_DIR)/src
PY_ANY = $(if $(wildcard $(PY)),$(PY),python3)
.PHONY: pdf pdf-src
pdf-src:
	PYTHONPATH="$(CURDIR)/lib$${PYTHONPATH:+:$$PYTHONPATH}" $(PY_ANY) paper/scripts/stage_latex.py \
	  --profile "$(PROFILE)" --latex_dir "$(LATEX_DIR)" --out "$(PDF_SRC)"

pdf: pdf-src
	@out="$(abspath $(PDF_DIR))"; src="$(abspath $(PDF_SRC))/latex"; \
	export max_print_line=100000; \
	if command -v latexmk >/dev/null 2>&1; then \
	  latexmk -pdf -interaction=nonstopmode -halt-on-error -file-line-error -cd -outdir="$$out" \
	    "$$src/main.tex" >"$$out/build.log" 2>&1 || { tail -n 40 "$$out/build.log"; \
	    echo "make pdf: latexmk failed; see $$out/main.log"; exit 1; }; \
	elif command -v pdflatex >/dev/null 2>&1; then \
	  tex="pdflatex -interaction=nonstopmode -halt-on-error -file-line-error -output-directory=$$out main.tex"; \
	  ( cd "$$src" && $$tex && { ( cd "$$out" && BIBINPUTS="$$src:" bibtex main ) \
	      || [ $$? -le 1 ]; } \
	    && $$tex && $$tex ) >"$$out/build.log" 2>&1 || { tail -n 40 "$$out/build.log"; \
	    echo "make pdf: pdflatex failed; see $$out/main.log"; exit 1; }; \
	else \
	  echo "make pdf: neither latexmk nor pdflatex is installed. Install TeX Live, e.g."; \
	  echo "  apt-get install texlive-latex-base texlive-latex-recommended latexmk"; \
	  echo "then run make pdf again (sources staged in $(PDF_SRC)/latex; output $(PDF_DIR)/main.pdf)."; \
	  exit 1; \
	fi; \
	echo "wrote $(PDF_DIR)/main.pdf"

# clean: what is cheap to remake (smoke outputs, caches, build/). runs/mini is an hour of CPU: clean-mini.
clean:
	rm -rf $(SMOKE_ROOT) .pytest_cache build

clean-mini:
	rm -rf $(MINI_ROOT)
