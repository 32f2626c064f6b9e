"""run_status.py and artifact_tracker.py on hand-made run directories."""
import json
import os
import signal
import subprocess
import sys
import time

from conftest import ROOT, run_script
from discover_distill.checkpoint import atomic_write_json
from discover_distill.runs import derive_status
from discover_distill.tracker import RunTracker


def make_runs(root):
    done = os.path.join(root, "suite", "done")
    t = RunTracker(done, "C", 2, kind="suite_bestofn", artifact_params={"task_ids": ["t1"]},
                   install_signal_handlers=False)
    os.makedirs(os.path.join(done, "t1"))
    open(os.path.join(done, "t1", "result.json"), "w").write("{}")
    open(os.path.join(done, "summary.jsonl"), "w").write("")
    t.finish(step=2)
    crashed = os.path.join(root, "pretrain")
    t = RunTracker(crashed, "B", 100, kind="pretrain", artifact_params={"steps": 100},
                   install_signal_handlers=False)
    t.update(40)
    t.heartbeat("running", force=True)  # update() throttles heartbeat writes
    hb_path = os.path.join(crashed, "_run_tracker", "heartbeat.json")
    hb = json.load(open(hb_path))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    hb.update(status="running", pid=dead.pid, updated_at_unix=time.time() - 3600)
    atomic_write_json(hb_path, hb)


def test_status_table_and_stale_detection(tmp_path):
    make_runs(str(tmp_path))
    out = run_script("paper/scripts/run_status.py", "--root", str(tmp_path)).stdout
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["run", "phase", "status"]
    done = next(l for l in lines if l.startswith("suite/done"))
    crashed = next(l for l in lines if l.startswith("pretrain"))
    assert " finished " in done and " 2/2 " in done
    assert " stale " in crashed and "40/100" in crashed
    assert derive_status({"status": "running", "updated_at_unix": time.time(), "pid": os.getpid()}) == "running"


def test_watch_exits_cleanly_on_ctrl_c(tmp_path):
    make_runs(str(tmp_path))
    # Ctrl+C reaches a Python script as KeyboardInterrupt only if SIGINT is not ignored when it
    # starts; a shell ignores it in background jobs (`make test &`), so the child resets it
    p = subprocess.Popen([sys.executable, "paper/scripts/run_status.py", "--root", str(tmp_path), "--watch", "0.2"],
                         cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    seen = 0
    for line in p.stdout:  # wait until the watch loop is running (start-up time varies with load)
        seen += "refresh" in line
        if seen == 2:
            break
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=20)
    assert p.returncode == 0 and "Traceback" not in err and seen == 2


def test_artifact_tracker_exit_codes(tmp_path):
    make_runs(str(tmp_path))
    proc = run_script("paper/scripts/artifact_tracker.py", "--root", str(tmp_path), check=False)
    assert proc.returncode == 1 and "missing: ckpt_latest.pt" in proc.stdout
    report = json.loads(run_script("paper/scripts/artifact_tracker.py", "--root", str(tmp_path), "--json",
                                   check=False).stdout)
    by_run = {r["run"]: r for r in report["runs"]}
    assert by_run["suite/done"]["complete"] and not by_run["pretrain"]["complete"]
    subprocess.run(["rm", "-rf", str(tmp_path / "pretrain")], check=True)
    assert run_script("paper/scripts/artifact_tracker.py", "--root", str(tmp_path)).returncode == 0
    bad = run_script("paper/scripts/artifact_tracker.py", "--root", str(tmp_path / "nope"), check=False)
    assert bad.returncode == 2 and "--root" in bad.stderr
