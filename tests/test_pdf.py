"""make pdf PROFILE=<name>: the manuscript from that profile's generated tables and figures.

The staging step (make pdf-src, paper/scripts/stage_latex.py) needs no TeX: it must put the
profile's tables and figures where main.tex reads them, drop what the profile no longer has, and
leave paper/ untouched. The build itself runs only where latexmk or pdflatex and pdftotext exist.
"""
import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow

MARKER = "Smoketablemarker"  # a word pdftotext reads back unbroken


def smoke_like_profile(tmp_path, tables=("budget", "setup"), figs=("budget_curves",)):
    """The smoke profile with its runs_dir in tmp_path, holding what phase F writes there: LaTeX
    tables under latex_tables/ and figures (PDF and PNG) under figs/."""
    prof = json.load(open(os.path.join(ROOT, "configs", "profiles", "smoke.json")))
    runs = tmp_path / "runs"
    prof.update(data_dir=str(tmp_path / "data"), runs_dir=str(runs))
    (runs / "latex_tables").mkdir(parents=True)
    (runs / "figs").mkdir()
    for name in tables:
        body = ("\\newcommand{\\ddHeldoutTasks}{4242}\n" if name == "setup" else
                f"\\begin{{tabular}}{{ll}}\\toprule {MARKER} & {name.replace('_', ' ')} \\\\ \\bottomrule"
                "\\end{tabular}\n")
        (runs / "latex_tables" / f"{name}.tex").write_text(body)
    for name in figs:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(2, 1))
        ax.plot([0, 1], [0, 1])
        for ext in ("pdf", "png"):
            fig.savefig(runs / "figs" / f"{name}.{ext}")
        plt.close(fig)
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(prof))
    return str(path), runs


def make(target, profile, pdf_dir, check=True):
    proc = subprocess.run(["make", "-s", "-C", ROOT, target, f"PROFILE={profile}", f"PDF_DIR={pdf_dir}"],
                          capture_output=True, text=True, timeout=600)
    if check:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def main_tex_paths():
    """Where main.tex looks for a generated table and figure, read from its \\ddtable and \\ddfigure
    definitions (relative to the directory of main.tex)."""
    text = open(os.path.join(ROOT, "paper", "latex", "main.tex")).read()
    table = re.search(r"\\newcommand\{\\ddtable\}\[1\]\{%?\s*\\IfFileExists\{([^}]*)\}", text).group(1)
    figure = re.search(r"\\newcommand\{\\ddfigure\}\[2\]\{%?\s*\\IfFileExists\{([^}]*)\}", text).group(1)
    setup = re.search(r"\\IfFileExists\{([^}]*setup\.tex)\}", text).group(1)
    return table.replace("#1", "{}"), figure.replace("#1", "{}"), setup


def source_state():
    return sorted((p, os.stat(os.path.join(d, p)).st_mtime_ns) for d, _, files in os.walk(os.path.join(ROOT, "paper",
                  "latex")) for p in files)


def test_pdf_src_stages_the_profiles_tables_and_figures_where_main_tex_reads_them(tmp_path):
    prof, runs = smoke_like_profile(tmp_path)
    build = tmp_path / "build"
    before = source_state()
    out = make("pdf-src", prof, build).stdout
    latex = build / "src" / "latex"
    table, figure, setup = main_tex_paths()
    for name in ("budget",):
        staged = latex / table.format(name)
        assert staged.read_text() == (runs / "latex_tables" / f"{name}.tex").read_text()
    assert (latex / setup).read_text() == (runs / "latex_tables" / "setup.tex").read_text()
    assert (latex / figure.format("budget_curves")).read_bytes() == (runs / "figs" / "budget_curves.pdf").read_bytes()
    assert (latex / "main.tex").read_text() == open(os.path.join(ROOT, "paper", "latex", "main.tex")).read()
    sections = os.listdir(os.path.join(ROOT, "paper", "latex", "sections"))
    assert sorted(p.name for p in (latex / "sections").iterdir()) == sorted(sections)
    # only the profile's tables: none of the paper profile's (paper/latex/tables) come along
    assert sorted(p.name for p in (latex / os.path.dirname(table)).iterdir()) == ["budget.tex", "setup.tex"]
    assert "2 tables from" in out and "1 figures from" in out
    note = next(l for l in out.splitlines() if l.startswith("note: not generated yet"))
    listed = note.split("placeholders: ")[1].split(" (phase F")[0].split(", ")
    assert "tables/probe.tex" in listed and "figs/pipeline.pdf" in listed
    assert "tables/budget.tex" not in listed and "figs/budget_curves.pdf" not in listed
    # staged again after the profile lost a table: the stale copy is gone
    (runs / "latex_tables" / "budget.tex").unlink()
    make("pdf-src", prof, build)
    assert not (latex / table.format("budget")).exists() and (latex / setup).exists()
    assert source_state() == before   # paper/latex is never written
    # a folder this step did not make is never replaced
    mine = tmp_path / "mine"
    (mine / "src").mkdir(parents=True)
    (mine / "src" / "notes.txt").write_text("keep me")
    bad = make("pdf-src", prof, mine, check=False)
    assert bad.returncode != 0 and "was not made by this script" in bad.stderr
    assert (mine / "src" / "notes.txt").read_text() == "keep me"


@pytest.mark.skipif(not (shutil.which("latexmk") or shutil.which("pdflatex")) or not shutil.which("pdftotext"),
                    reason="needs TeX (latexmk or pdflatex) and pdftotext")
def test_make_pdf_for_a_smoke_like_profile_prints_its_tables_not_placeholders(tmp_path):
    prof, _ = smoke_like_profile(tmp_path, tables=("budget", "main_results", "setup"))
    build = tmp_path / "build"
    before = source_state()
    make("pdf", prof, build)
    text = subprocess.run(["pdftotext", str(build / "main.pdf"), "-"], capture_output=True, text=True,
                          check=True).stdout
    flat = " ".join(text.split())
    assert flat.count(MARKER) == 2 and "4242" in flat   # both tables and the setup macro
    placeholders = re.findall(r"Not generated yet: (\S+)", flat)
    assert placeholders and not {"tables/budget.tex", "tables/main_results.tex", "figs/budget_curves.pdf"} & \
        set(placeholders)
    assert "tables/probe.tex" in placeholders   # what the profile lacks is still a visible placeholder
    assert source_state() == before
