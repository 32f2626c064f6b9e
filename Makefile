# Discover->Distill. Every target creates .venv on first use (scripts/setup_env.sh).
#   make test     unit + end-to-end tests (what CI runs)
#   make smoke    the pipeline (phases A-E) at smoke scale on a CPU, under runs/smoke/
#   make bench    benchmarks, printed as ratios against a peer measured in the same run
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
PY := .venv/bin/python
STAMP := .venv/.installed
SEED ?= 0
SMOKE_ROOT ?= runs/smoke

.PHONY: test smoke bench clean venv

venv: $(STAMP)
$(STAMP): setup.cfg pyproject.toml scripts/setup_env.sh
	bash scripts/setup_env.sh
	touch $(STAMP)

# pytest exits 5 when it collects no tests; that is not a failure of the code under test.
test: $(STAMP)
	$(PY) -m pytest -q || { rc=$$?; [ $$rc -eq 5 ] && echo "no tests collected" || exit $$rc; }

smoke: $(STAMP)
	$(PY) paper/scripts/gen_synthetic_corpus.py --seed $(SEED) --train_lines 20000 --val_lines 2000 \
	  --train_out $(SMOKE_ROOT)/data/raw/train.txt --val_out $(SMOKE_ROOT)/data/raw/val.txt
	$(PY) scripts/train_tokenizer.py --input $(SMOKE_ROOT)/data/raw/train.txt \
	  --model_prefix $(SMOKE_ROOT)/data/tokenizer/spm2k --vocab_size 2048 --model_type bpe
	for split in train val; do \
	  $(PY) scripts/prepare_data.py --tokenizer $(SMOKE_ROOT)/data/tokenizer/spm2k.model \
	    --input $(SMOKE_ROOT)/data/raw/$$split.txt --output $(SMOKE_ROOT)/data/packed/$$split.bin --append_eos 1; \
	done
	$(PY) scripts/pretrain.py --train_bin $(SMOKE_ROOT)/data/packed/train.bin --val_bin $(SMOKE_ROOT)/data/packed/val.bin \
	  --out $(SMOKE_ROOT)/runs/pretrain --model configs/model_mhc_tiny.json --steps 300 --seq_len 128 \
	  --micro_bs 16 --grad_accum 1 --lr 3e-3 --warmup 30 --eval_every 100 --eval_batches 10 --ckpt_every 100 \
	  --log_every 25 --seed $(SEED) --resume auto
	$(PY) paper/scripts/gen_discovery_tasks.py --seed $(SEED) --n_train 2 --n_heldout 2 \
	  --out_train $(SMOKE_ROOT)/data/discovery/train.jsonl --out_heldout $(SMOKE_ROOT)/data/discovery/heldout.jsonl
	# C2 at smoke scale: best-of-N, TTT main, the three ablations and the expected objective
	common=(--tasks "$(SMOKE_ROOT)/data/discovery/heldout.jsonl" --ckpt "$(SMOKE_ROOT)/runs/pretrain/ckpt_latest.pt" \
	  --tokenizer "$(SMOKE_ROOT)/data/tokenizer/spm2k.model" --seed "$(SEED)" --ttt_steps 4 --rollouts 16 \
	  --max_new_tokens 24 --tasks_per_batch 10 --save_adapter_every 2 --resume); \
	$(PY) paper/run_discovery_suite.py "$${common[@]}" --out_root $(SMOKE_ROOT)/runs/suite/base_bestofn_seed$(SEED) --mode bestofn; \
	for run in "main 1 1 0.1 entropic" "reuse0 0 1 0.1 entropic" "adapt0 1 0 0.1 entropic" "kl0 1 1 0.0 entropic" \
	           "expected 1 1 0.1 expected"; do \
	  set -- $$run; \
	  $(PY) paper/run_discovery_suite.py "$${common[@]}" --out_root $(SMOKE_ROOT)/runs/suite/ttt_$$1_seed$(SEED) --mode ttt \
	    --reuse $$2 --adaptive_beta $$3 --kl_lambda $$4 --objective $$5; \
	done
	# D: TTT on the train split, demonstrations with QC, then SDFT and the SFT baseline
	$(PY) paper/run_discovery_suite.py --tasks "$(SMOKE_ROOT)/data/discovery/train.jsonl" \
	  --ckpt "$(SMOKE_ROOT)/runs/pretrain/ckpt_latest.pt" --tokenizer "$(SMOKE_ROOT)/data/tokenizer/spm2k.model" \
	  --out_root "$(SMOKE_ROOT)/runs/suite/ttt_train_seed$(SEED)" --seed "$(SEED)" --mode ttt --ttt_steps 4 \
	  --rollouts 16 --max_new_tokens 24 --tasks_per_batch 10 --save_adapter_every 2 --resume
	$(PY) paper/scripts/build_sdft_from_suite.py --suite_root "$(SMOKE_ROOT)/runs/suite/ttt_train_seed$(SEED)" \
	  --tasks_jsonl "$(SMOKE_ROOT)/data/discovery/train.jsonl" --out_jsonl "$(SMOKE_ROOT)/data/sdft/from_ttt_train.jsonl" \
	  --min_reward 0.9
	for method in sdft sft; do \
	  $(PY) scripts/sdft.py --ckpt "$(SMOKE_ROOT)/runs/pretrain/ckpt_latest.pt" \
	    --tokenizer "$(SMOKE_ROOT)/data/tokenizer/spm2k.model" --data "$(SMOKE_ROOT)/data/sdft/from_ttt_train.jsonl" \
	    --out "$(SMOKE_ROOT)/runs/$${method}_smoke" --steps 20 --gate_every 10 --batch_size 8 --lr 1e-4 \
	    --gate_val_bin "$(SMOKE_ROOT)/data/packed/val.bin" --gate_val_seq_len 128 --gate_val_bs 8 --gate_batches 5 \
	    --max_new_tokens 24 --method "$$method" --seed "$(SEED)" --resume auto; \
	done
	# E: held-out best-of-N with each consolidated checkpoint, and retention
	for method in sdft sft; do \
	  $(PY) paper/run_discovery_suite.py --tasks "$(SMOKE_ROOT)/data/discovery/heldout.jsonl" \
	    --ckpt "$(SMOKE_ROOT)/runs/$${method}_smoke/sdft_latest.pt" --tokenizer "$(SMOKE_ROOT)/data/tokenizer/spm2k.model" \
	    --out_root "$(SMOKE_ROOT)/runs/suite/$${method}_bestofn_seed$(SEED)" --seed "$(SEED)" --mode bestofn \
	    --ttt_steps 4 --rollouts 16 --max_new_tokens 24 --tasks_per_batch 10 --resume; \
	  $(PY) paper/scripts/compute_retention_ppl.py --base_ckpt "$(SMOKE_ROOT)/runs/pretrain/ckpt_latest.pt" \
	    --base_cfg "$(SMOKE_ROOT)/runs/pretrain/model_config.json" \
	    --updated_ckpt "$(SMOKE_ROOT)/runs/$${method}_smoke/sdft_latest.pt" \
	    --updated_cfg "$(SMOKE_ROOT)/runs/$${method}_smoke/model_config.json" \
	    --val_bin "$(SMOKE_ROOT)/data/packed/val.bin" --seq_len 128 --batch_size 8 --max_batches 20 --device cpu \
	    --out "$(SMOKE_ROOT)/runs/suite/retention_ppl_$${method}.json"; \
	done

# Training throughput against karpathy/nanoGPT at the same shape (needs a checkout in .bench/nanoGPT),
# and the batched KV-cache sampler against a naive uncached per-task loop.
bench: $(STAMP)
	$(PY) scripts/bench_pretrain.py --model configs/model_mhc_tiny.json --seq_len 256 --batch 8
	$(PY) scripts/bench_sampling.py --model configs/model_mhc_tiny.json --tasks 4 --rollouts 8

clean:
	rm -rf $(SMOKE_ROOT) .pytest_cache build
