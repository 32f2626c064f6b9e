#!/usr/bin/env python3
"""Stage the manuscript's sources for one profile: a copy of paper/latex with that profile's
generated tables and figures where main.tex reads them, so `make pdf PROFILE=<name>` builds the
paper from that profile's runs and never writes into paper/.

    python paper/scripts/stage_latex.py --profile smoke --out build/smoke/src

main.tex reads tables/<name>.tex beside itself (\\ddtable, and tables/setup.tex) and
../figs/<name>.pdf (\\ddfigure); phase F writes them where configs' profile_outputs says (the paper
profile: paper/latex/tables and paper/figs; the others under their runs_dir). This writes
<out>/latex/ (main.tex, sections, the bibliography, and the profile's tables/) and <out>/figs/ (the
profile's figure PDFs). <out> is rebuilt from scratch, so a table the profile no longer has does not
linger. What the profile has not generated yet is listed, and main.tex shows a placeholder box for
it. Torch-free: `make pdf` needs python3, not the project's environment.
"""
from __future__ import annotations

import argparse
import glob
import os
import re
import shutil

from discover_distill.cli import UserError, run
from discover_distill.config import load_profile, profile_outputs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MARKER = ".staged_by_stage_latex"  # only a directory holding it is ever removed
MAKES = {"paper": "make paper", "mini": "make mini", "smoke": "make smoke", "gpu_check": "make gpu-check"}


def expected_inputs(latex_dir: str) -> tuple[list[str], list[str]]:
    """(table names, figure names) the manuscript includes via \\ddtable{...} and \\ddfigure{...}."""
    text = ""
    paths = glob.glob(os.path.join(latex_dir, "*.tex")) + glob.glob(os.path.join(latex_dir, "sections", "*.tex"))
    for path in sorted(paths):
        with open(path) as f:
            text += "".join(l for l in f if not l.lstrip().startswith("%"))
    tables = re.findall(r"\\ddtable\{([^}#]+)\}", text)
    figures = re.findall(r"\\ddfigure\{([^}#]+)\}", text)
    return sorted(set(tables)), sorted(set(figures))


def stage(latex_dir: str, tables_dir: str, figs_dir: str, out: str) -> dict:
    """Copy latex_dir to <out>/latex (its own tables/ left out), tables_dir's .tex files to
    <out>/latex/tables and figs_dir's PDFs to <out>/figs; returns what was staged and what is missing."""
    if os.path.exists(out):
        if not os.path.isdir(out) or (os.listdir(out) and not os.path.isfile(os.path.join(out, MARKER))):
            raise UserError(f"--out {out} exists and was not made by this script; name a new directory")
        shutil.rmtree(out)
    dst = os.path.join(out, "latex")
    shutil.copytree(latex_dir, dst, ignore=lambda d, names: ["tables"] if os.path.samefile(d, latex_dir) else [])
    open(os.path.join(out, MARKER), "w").close()
    staged = {}
    for kind, src, target, ext in (("tables", tables_dir, os.path.join(dst, "tables"), ".tex"),
                                   ("figs", figs_dir, os.path.join(out, "figs"), ".pdf")):
        os.makedirs(target)
        names = sorted(f for f in os.listdir(src) if f.endswith(ext)) if os.path.isdir(src) else []
        for name in names:
            shutil.copy2(os.path.join(src, name), os.path.join(target, name))
        staged[kind] = [n[:-len(ext)] for n in names]
    tables, figures = expected_inputs(latex_dir)
    return {**staged, "missing_tables": [t for t in tables if t not in staged["tables"]],
            "missing_figs": [f for f in figures if f not in staged["figs"]], "setup": "setup" in staged["tables"]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="paper", help="paper | mini | smoke | gpu_check, or a path to a profile JSON")
    p.add_argument("--latex_dir", default="paper/latex", help="the manuscript's sources (main.tex, sections/)")
    p.add_argument("--out", required=True, help="staging directory, rebuilt from scratch (e.g. build/smoke/src)")
    args = p.parse_args()
    profile, _ = load_profile(args.profile)
    if not os.path.isfile(os.path.join(args.latex_dir, "main.tex")):
        raise UserError(f"--latex_dir: no main.tex in {args.latex_dir}")
    where = {k: v if os.path.isabs(v) else os.path.join(ROOT, v) for k, v in profile_outputs(profile).items()}
    res = stage(args.latex_dir, where["tables"], where["figs"], args.out)
    rel = {k: os.path.relpath(v) for k, v in where.items()}
    print(f"staged {args.latex_dir} with {len(res['tables'])} tables from {rel['tables']} and {len(res['figs'])} "
          f"figures from {rel['figs']} -> {os.path.join(args.out, 'latex', 'main.tex')}")
    if res["missing_tables"] or res["missing_figs"] or not res["setup"]:
        missing = [f"tables/{t}.tex" for t in res["missing_tables"]] + [f"figs/{f}.pdf" for f in res["missing_figs"]]
        missing += [] if res["setup"] else ["tables/setup.tex (the setup macros show n/a)"]
        print(f"note: not generated yet for profile {args.profile}, shown as placeholders: {', '.join(missing)} "
              f"(phase F writes them: {MAKES.get(args.profile, f'run_phase.py --profile {args.profile}')})")
    return 0


if __name__ == "__main__":
    run(main)
