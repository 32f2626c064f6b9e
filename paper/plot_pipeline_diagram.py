#!/usr/bin/env python3
"""The Discover->Distill pipeline figure (PNG and PDF) for the paper.

    python paper/plot_pipeline_diagram.py            # -> paper/figs/pipeline.{png,pdf}
"""
from __future__ import annotations

import argparse
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

from discover_distill.cli import run  # noqa: E402

STAGES = [  # (x, y, title, detail, colour)
    (0.07, 0.70, "A  Synthetic corpus", "6 verifiable task families\n(train region only) + filler\nlanguage; BPE tokenizer", "#dbe9f6"),
    (0.30, 0.70, "B  Pretrain", "mHC transformer\n(4 streams, Sinkhorn H_res)\n120M params", "#dbe9f6"),
    (0.53, 0.70, "C  Discover", "held-out tasks:\nbest-of-N vs test-time LoRA\n(entropic, PUCT reuse, KL)", "#fde3c8"),
    (0.53, 0.25, "D  Distill", "TTT on train tasks ->\nverified demonstrations ->\nSDFT (EMA teacher, gate)", "#e2f0d9"),
    (0.76, 0.25, "E  Evaluate", "held-out best-of-N with\nthe consolidated model;\nretention perplexity", "#e2f0d9"),
    (0.76, 0.70, "F  Report", "figures, paired tables,\nclaim-safety guardrails", "#eeeeee"),
]
ARROWS = [(0, 1), (1, 2), (1, 3), (3, 4), (2, 5), (4, 5)]
W, H = 0.19, 0.24


def draw(ax) -> None:
    centres = []
    for x, y, title, detail, colour in STAGES:
        ax.add_patch(FancyBboxPatch((x, y - H / 2), W, H, boxstyle="round,pad=0.01,rounding_size=0.02",
                                    fc=colour, ec="#333333", lw=1.2))
        ax.text(x + W / 2, y + H / 2 - 0.045, title, ha="center", va="center", fontsize=10.5, weight="bold")
        ax.text(x + W / 2, y - 0.03, detail, ha="center", va="center", fontsize=8.2, linespacing=1.3)
        centres.append((x, y))
    for a, b in ARROWS:
        (xa, ya), (xb, yb) = centres[a], centres[b]
        if abs(ya - yb) < 1e-6:  # same row: right edge to left edge
            start, end = (xa + W, ya), (xb, yb)
        elif abs(xa - xb) < 1e-6:  # same column: bottom to top or top to bottom
            start, end = ((xa + W / 2, ya - H / 2), (xb + W / 2, yb + H / 2)) if ya > yb else \
                ((xa + W / 2, ya + H / 2), (xb + W / 2, yb - H / 2))
        else:  # B (top) down to D (bottom right)
            start, end = (xa + W / 2, ya - H / 2), (xb, yb)
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=14, lw=1.3, color="#333333",
                                     connectionstyle="arc3,rad=0.0" if abs(ya - yb) < 1e-6 or abs(xa - xb) < 1e-6
                                     else "angle,angleA=-90,angleB=180,rad=8"))
    ax.text(0.07, 0.06, "Question: does test-time training beat compute-matched best-of-N, and can its discoveries be "
            "distilled back without forgetting?", fontsize=8.5, style="italic", color="#444444")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 0.9)
    ax.axis("off")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fig_dir", default="paper/figs", help="output directory")
    args = p.parse_args()
    os.makedirs(args.fig_dir, exist_ok=True)
    fig, ax = plt.subplots(figsize=(11, 4.6))
    draw(ax)
    for ext in ("png", "pdf"):
        path = os.path.join(args.fig_dir, f"pipeline.{ext}")
        fig.savefig(path, dpi=160, bbox_inches="tight")
        print(f"wrote {path}")
    plt.close(fig)
    return 0


if __name__ == "__main__":
    run(main)
