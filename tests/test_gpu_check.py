"""scripts/gpu_check_report.py: what `make gpu-check` hands back (<= 8 files, failures with their logs)."""
import json

from conftest import run_script


def test_report_has_times_registry_and_at_most_eight_files(tmp_path):
    runs = tmp_path / "runs"
    (runs / "figs").mkdir(parents=True)
    (runs / "04_results_registry.md").write_text("# Results registry\n| run | x |\n")
    for i in range(9):
        (runs / "figs" / f"f{i}.png").write_bytes(b"png")
    profile = tmp_path / "p.json"
    profile.write_text(json.dumps({"runs_dir": str(runs)}))
    times = tmp_path / "times.jsonl"
    times.write_text(json.dumps({"step": "phase_A", "seconds": 12.5, "rc": 0, "log_tail": ""}) + "\n" +
                     json.dumps({"step": "phase_B", "seconds": 3.0, "rc": 2, "log_tail": "error: boom"}) + "\n")
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps({"fast_over_reference": 1.5}))
    out = tmp_path / "out"
    proc = run_script("scripts/gpu_check_report.py", "--profile", str(profile), "--times", str(times), "--bench",
                      str(bench), "--out_dir", str(out), check=False)
    assert proc.returncode == 1  # a failed phase fails the check
    files = sorted(p.name for p in out.iterdir())
    assert len(files) == 8 and "report.md" in files and "report.json" in files
    md = (out / "report.md").read_text()
    assert "| phase_A | 12.5 | 0 |" in md and "error: boom" in md and "| run | x |" in md and "1.5" in md
    assert json.load(open(out / "report.json"))["total_seconds"] == 15.5


def test_gpu_bench_runs_the_pretraining_benchmark_with_the_profiler(tmp_path):
    """`make gpu-bench` at a tiny size on a CPU: no peer checkout needed, every model measured and
    profiled, results and tables in the output folder."""
    import os
    import subprocess
    import sys

    from conftest import ROOT, TINY_MODEL
    env = {**os.environ, "PYTHON": sys.executable, "GPU_BENCH_MODEL": TINY_MODEL, "GPU_BENCH_BATCH": "2", "GPU_BENCH_SEQ": "16",
           "GPU_BENCH_COMPILE": "0", "OMP_NUM_THREADS": "1"}
    out = tmp_path / "out"
    proc = subprocess.run(["bash", os.path.join(ROOT, "scripts", "gpu_bench.sh"), str(out)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads((out / "bench_pretrain.json").read_text())
    assert set(res["models"]) >= {"ours", "ours_plain", "ours_bf16_streams"}
    assert {p.name for p in out.iterdir()} >= {"bench_pretrain.json", "bench_pretrain.log", "profile_ours.txt",
                                              "profile_ours_plain.txt", "profile_ours_bf16_streams.txt"}
