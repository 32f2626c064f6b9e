#!/usr/bin/env python3
"""Consolidate discovered solutions into the base weights by self-distillation (runbook D3).

    python scripts/sdft.py --ckpt runs/pretrain_120m_base/ckpt_latest.pt \\
      --tokenizer data/tokenizer/spm32k.model --data data/sdft/from_ttt_train.jsonl \\
      --out runs/sdft_from_ttt_steps500 --steps 500 \\
      --gate_val_bin data/packed/val.bin --gate_val_seq_len 256 --gate_val_bs 4

SDFT (arXiv 2601.19897): the student answers the plain prompt with its own sample; the teacher,
an EMA of the student's weights (--teacher ema, the paper's choice), sees the demonstration in
context; the loss is the per-token KL between them along the student's sample (forward KL by
default: the paper's reported results used it). `--method sft` trains on the demonstrations
directly (the off-policy baseline). A retention gate evaluates validation perplexity every
--gate_every steps on batches from the END of --gate_val_bin (retention, E2, reads from its start:
the two never share text); sdft_latest.pt is always the newest step that passed it (step 0 = the
base; sdft_eval_report.json says so with promoted_step / all_rejected).
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import random
import shlex
import sys
import time

import torch

from discover_distill import checkpoint as ck
from discover_distill import sdft as S
from discover_distill.cli import UserError, require_file, run
from discover_distill.config import save_model_config
from discover_distill.data import PackedTokens
from discover_distill.evaluate import RETENTION_RUNBOOK_TOKENS, perplexity
from discover_distill.model import load_model
from discover_distill.prompts import STOP_STRINGS
from discover_distill.sampling import generate
from discover_distill.tasks import reward_for_task
from discover_distill.tokenizer import Tokenizer
from discover_distill.tracker import RunTracker, format_duration
from discover_distill.training import autocast, resolve_device, resolve_dtype, say, seed_everything

LATEST, STEP_PREFIX = "sdft_latest.pt", "sdft_step"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="SDFT / SFT consolidation with a retention gate.")
    p.add_argument("--ckpt", required=True, help="base checkpoint (pretrain)")
    p.add_argument("--tokenizer", required=True, help="SentencePiece .model")
    p.add_argument("--data", required=True, help="demonstrations JSONL (build_sdft_from_suite.py)")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--steps", type=int, required=True, help="optimizer steps")
    p.add_argument("--gate_val_bin", required=True, help="packed validation tokens for the retention gate")
    p.add_argument("--gate_val_seq_len", type=int, default=256, help="gate: tokens per sequence")
    p.add_argument("--gate_val_bs", type=int, default=4, help="gate: sequences per batch")
    p.add_argument("--gate_batches", type=int, default=20, help="gate: batches per evaluation")
    p.add_argument("--gate_every", type=int, default=50, help="gate evaluation (and checkpoint) every N steps")
    p.add_argument("--gate_max_ppl_increase", type=float, default=0.05,
                   help="largest relative val-perplexity increase over the base a promoted step may have")
    p.add_argument("--method", choices=["sdft", "sft"], default="sdft", help="sdft (on-policy) or sft (baseline)")
    p.add_argument("--teacher", choices=["ema", "frozen", "student"], default="ema",
                   help="teacher weights: EMA of the student (paper), the frozen base, or the live student")
    p.add_argument("--ema_alpha", type=float, default=0.01, help="EMA rate: phi <- a theta + (1 - a) phi")
    p.add_argument("--kl", choices=["forward", "reverse"], default="forward", help="per-token KL direction")
    p.add_argument("--skip_tokens", type=int, default=0,
                   help="first answer tokens left out of the loss. The reference code's 3 suits its long chat "
                        "completions; our answers are 5-25 tokens and digits are split pieces (the first 3 of "
                        "'1 3 5' are '▁ 1 ▁'), so 3 would never train the answer's first pick: default 0")
    p.add_argument("--lr", type=float, default=5e-5, help="AdamW learning rate (full fine-tuning)")
    p.add_argument("--weight_decay", type=float, default=0.0, help="AdamW weight decay")
    p.add_argument("--grad_clip", type=float, default=1.0, help="max grad norm")
    p.add_argument("--batch_size", type=int, default=8, help="demonstrations (prompts) per step")
    p.add_argument("--max_new_tokens", type=int, default=32, help="student sample length")
    p.add_argument("--temperature", type=float, default=1.0, help="student sampling temperature")
    p.add_argument("--eval_tasks", type=int, default=32, help="train tasks scored before/after (reward report)")
    p.add_argument("--eval_samples", type=int, default=4, help="samples per scored task")
    p.add_argument("--seed", type=int, default=0, help="seed")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--dtype", default="auto", help="auto | fp32 | bf16")
    p.add_argument("--resume", default="none", choices=["none", "auto"], help="auto: continue from the newest step checkpoint")
    args = p.parse_args(argv)
    for name in ("steps", "gate_every", "batch_size", "max_new_tokens", "gate_val_seq_len", "gate_val_bs", "gate_batches"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be >= 1")
    return args


def load_records(path: str) -> list[dict]:
    records = []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
                assert isinstance(r, dict) and isinstance(r["task_prompt"], str) and isinstance(r["demonstration"], str)
            except (json.JSONDecodeError, AssertionError, KeyError, TypeError):
                raise UserError(f"{path}:{lineno}: not a demonstration record (needs task_prompt, demonstration)") from None
            records.append(r)
    if not records:
        raise UserError(f"--data {path} has no demonstrations (did QC reject everything?)")
    return records


def task_reward(model, tok, records: list[dict], n_tasks: int, n_samples: int, max_new: int, seed: int, dtype) -> float:
    """Mean verifier reward of the model's own samples on (up to n_tasks) distinct train tasks."""
    tasks = list({r["task_id"]: r for r in records}.values())[:n_tasks]
    ids = [[tok.eos_id] + tok.encode(S.student_prompt(r["task_prompt"])) for r in tasks]
    g = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
    s = generate(model, ids, [n_samples] * len(ids), max_new_tokens=max_new, eos_id=tok.eos_id, pad_id=tok.pad_id,
                 stop_strings=STOP_STRINGS, decode=tok.decode, generator=g, vocab_limit=tok.vocab_size, dtype=dtype)
    rewards = [reward_for_task({"family": tasks[i]["family"], "spec": tasks[i]["spec"]}, t)
               for i, t in zip(s.prompt_index.tolist(), s.texts)]
    return sum(rewards) / len(rewards)


def main() -> int:
    args = parse_args()
    for flag in ("ckpt", "tokenizer", "data", "gate_val_bin"):
        require_file(getattr(args, flag), f"--{flag}")
    device = resolve_device(args.device)
    dtype = resolve_dtype(args.dtype, device)
    tok = Tokenizer(args.tokenizer)
    records = load_records(args.data)
    val = PackedTokens(args.gate_val_bin)
    seed_everything(args.seed)
    model = load_model(args.ckpt, device)
    if args.gate_val_seq_len > model.cfg.max_seq_len:
        raise UserError(f"--gate_val_seq_len {args.gate_val_seq_len} exceeds max_seq_len {model.cfg.max_seq_len}")
    teacher = copy.deepcopy(model).eval() if args.method == "sdft" and args.teacher != "student" else None
    if teacher is not None:
        for p in teacher.parameters():
            p.requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay, betas=(0.9, 0.95))
    os.makedirs(args.out, exist_ok=True)

    def gate_eval(m) -> dict:  # from the end of the val tokens: E2 reads the start
        return perplexity(m, val, args.gate_val_seq_len, args.gate_val_bs, args.gate_batches, device, dtype,
                          from_end=True)

    start, resume = 0, None
    if args.resume == "auto":
        # step files hold the full training state; sdft_latest.pt is only the last promoted one
        resume = ck.find_resume_checkpoint(args.out, None, STEP_PREFIX, log=say)
    elif ck.list_step_checkpoints(args.out, STEP_PREFIX):
        raise UserError(f"--out {args.out} already holds checkpoints: add --resume auto, or choose a new --out")
    if resume is not None:
        path, state = resume
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        if teacher is not None and "teacher" in state:
            teacher.load_state_dict(state["teacher"])
        ck.restore_rng_state(state["rng"])
        start, report = int(state["step"]), state["report"]
        say(f"resuming from {path} at step {start}")
    else:
        base = gate_eval(model)
        base_ppl, gate_range = base["ppl"], base["token_range"]
        if gate_range[0] < RETENTION_RUNBOOK_TOKENS:
            say(f"WARNING: --gate_val_bin has {len(val)} tokens; the gate reads [{gate_range[0]}, {gate_range[1]}), "
                f"so retention (E2, from the start) must read at most {gate_range[0]} tokens to stay disjoint from "
                f"it (the runbook's 50 x 4 x 256 needs {RETENTION_RUNBOOK_TOKENS}); E2 refuses to overlap")
        report = {"method": args.method, "teacher": args.teacher, "kl": args.kl, "base_ppl": base_ppl,
                  "gate": [{"step": 0, "ppl": base_ppl, "passed": True}], "promoted_step": 0,
                  # which tokens the gate selected on: compute_retention_ppl.py refuses to measure on them
                  "gate_val": {"bin": os.path.abspath(args.gate_val_bin), "num_tokens": len(val),
                               "source_sha256": val.meta.get("source_sha256"), "tokens": gate_range},
                  "train_reward_before": task_reward(model, tok, records, args.eval_tasks, args.eval_samples,
                                                     args.max_new_tokens, args.seed, dtype)}
        save_model_config(model.cfg, os.path.join(args.out, "model_config.json"))
    tracker = RunTracker(args.out, "D", args.steps, kind="sdft", artifact_params={"steps": args.steps},
                         config=vars(args), inputs={"ckpt": args.ckpt, "data": args.data, "tokenizer": args.tokenizer,
                                                    "gate_val_bin": args.gate_val_bin},
                         seed=args.seed, resumed_from_step=start if resume else None)
    metrics_path = os.path.join(args.out, "metrics.jsonl")
    limit = report["base_ppl"] * (1 + args.gate_max_ppl_increase)

    def save(step: int, promote: bool) -> None:
        state = {"kind": "sdft", "step": step, "model": model.state_dict(), "model_config": model.cfg.to_dict(),
                 "optimizer": opt.state_dict(), "rng": ck.capture_rng_state(), "report": report, "args": vars(args)}
        if teacher is not None:
            state["teacher"] = teacher.state_dict()
        path = os.path.join(args.out, ck.step_checkpoint_name(STEP_PREFIX, step))
        ck.atomic_torch_save(state, path)
        if promote:  # sdft_latest.pt = a hard link to the newest step that passed the gate
            tmp = os.path.join(args.out, LATEST + ".link")
            if os.path.exists(tmp):
                os.unlink(tmp)
            os.link(path, tmp)
            os.replace(tmp, os.path.join(args.out, LATEST))
        tracker.checkpoint(step, path)

    if resume is None:
        save(0, promote=True)  # the base itself passes the gate: sdft_latest.pt exists from the start
    say(f"{args.method} on {len(records)} demonstrations" + (f" | teacher {args.teacher}" if args.method == "sdft" else "")
        + f" | base val ppl "
        f"{report['base_ppl']:.3f} (gate limit {limit:.3f}) | train-task reward {report['train_reward_before']:.3f}")
    t0 = time.time()
    for step in range(start, args.steps):
        batch = [records[random.Random(f"{args.seed}/{step}/{i}").randrange(len(records))] for i in range(args.batch_size)]
        student_ids = [[tok.eos_id] + tok.encode(S.student_prompt(r["task_prompt"])) for r in batch]
        if args.method == "sft":
            answers = [tok.encode(" " + r["demonstration"]) + [tok.eos_id] for r in batch]
            model.train()
            with autocast(device, dtype):
                logits, mask = S.answer_logits(model, student_ids, answers)
            targets = torch.zeros(mask.shape, dtype=torch.long, device=device)
            for i, a in enumerate(answers):
                targets[i, :len(a)] = torch.tensor(a, device=device)
            loss = torch.nn.functional.cross_entropy(logits.float()[mask], targets[mask])
            loss_mask = mask
        else:
            g = torch.Generator(device=device).manual_seed(args.seed * 1_000_003 + step)
            answers = S.student_answers(model, tok, student_ids, max_new_tokens=args.max_new_tokens,
                                        temperature=args.temperature, generator=g, dtype=dtype)
            teacher_ids = [[tok.eos_id] + tok.encode(S.teacher_prompt(r["task_prompt"], r["demonstration"])) for r in batch]
            model.train()
            with autocast(device, dtype):
                s_logits, mask = S.answer_logits(model, student_ids, answers)
            with torch.no_grad(), autocast(device, dtype):
                t_logits, _ = S.answer_logits(teacher if teacher is not None else model, teacher_ids, answers)
            loss_mask = S.skip_mask(mask, args.skip_tokens)
            loss = S.token_kl(s_logits, t_logits, loss_mask, args.kl)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip))
        if torch.isfinite(loss) and grad_norm == grad_norm and grad_norm != float("inf"):
            opt.step()
        if teacher is not None and args.teacher == "ema":
            S.ema_update(teacher, model, args.ema_alpha)
        done = step + 1
        loss_value = loss.item()
        row = {"step": done, "loss": loss_value, "grad_norm": grad_norm, "answer_tokens": int(mask.sum()),
               "loss_tokens": int(loss_mask.sum()), "elapsed_s": time.time() - t0}
        if done % args.gate_every == 0 or done == args.steps:
            ppl = gate_eval(model)["ppl"]
            passed = ppl <= limit
            report["gate"].append({"step": done, "ppl": ppl, "passed": passed})
            if passed:
                report["promoted_step"] = done
            row.update(gate_ppl=ppl, gate_passed=passed)
            save(done, promote=passed)
            say(f"step {done}/{args.steps} | loss {loss_value:.4f} | gate ppl {ppl:.3f} "
                f"{'passed' if passed else 'REFUSED (not promoted)'} | eta "
                f"{format_duration((args.steps - done) * (time.time() - t0) / max(1, done - start))}")
        ck.append_jsonl(metrics_path, row)
        tracker.update(done)
        if tracker.should_stop and done < args.steps:
            if not (done % args.gate_every == 0):
                save(done, promote=False)
            tracker.pause("python " + " ".join(shlex.quote(a) for a in sys.argv +
                                               ([] if args.resume == "auto" else ["--resume", "auto"])), step=done)
    promoted = ck.load_checkpoint(os.path.join(args.out, LATEST))
    model.load_state_dict(promoted["model"])
    report["promoted_ppl"] = next(g["ppl"] for g in report["gate"] if g["step"] == report["promoted_step"])
    # never let a fully refused run pass for a consolidation: sdft_latest.pt is then the base itself
    report["all_rejected"] = not any(g["passed"] for g in report["gate"][1:])
    report["train_reward_after"] = task_reward(model, tok, records, args.eval_tasks, args.eval_samples,
                                               args.max_new_tokens, args.seed, dtype)
    ck.atomic_write_json(os.path.join(args.out, "sdft_eval_report.json"), report)
    tracker.finish(step=args.steps)
    if report["all_rejected"]:
        say("WARNING: the retention gate rejected every step: sdft_latest.pt is the BASE model (promoted step 0), "
            "so E1/E2 on it measure the base, not a consolidation")
    elif report["promoted_step"] < args.steps:
        say(f"note: the gate rejected the steps after {report['promoted_step']}: sdft_latest.pt is step "
            f"{report['promoted_step']}, not the last step")
    say(f"done: promoted step {report['promoted_step']} | val ppl {report['base_ppl']:.3f} -> "
        f"{report['promoted_ppl']:.3f} | train-task reward {report['train_reward_before']:.3f} -> "
        f"{report['train_reward_after']:.3f}")
    return 0


if __name__ == "__main__":
    run(main)
