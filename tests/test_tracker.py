import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from discover_distill.tracker import EXIT_FORCED, EXIT_PAUSED, RunTracker


def read_events(run_dir):
    with open(os.path.join(run_dir, "_run_tracker", "events.jsonl")) as f:
        return [json.loads(l) for l in f]


def read_heartbeat(run_dir):
    with open(os.path.join(run_dir, "_run_tracker", "heartbeat.json")) as f:
        return json.load(f)


def test_lifecycle_files(tmp_path):
    run = str(tmp_path / "run")
    inp = tmp_path / "in.txt"
    inp.write_text("hello")
    t = RunTracker(run, "B", 10, kind="pretrain", artifact_params={"steps": 10}, config={"lr": 1e-3},
                   inputs={"train": str(inp)}, seed=3, install_signal_handlers=False)
    for s in range(1, 11):
        t.update(s)
    t.finish()
    hb = read_heartbeat(run)
    assert hb["status"] == "finished" and hb["step"] == 10 and hb["total"] == 10 and hb["pid"] == os.getpid()
    assert [e["event"] for e in read_events(run)] == ["start", "finish"]
    cfg = json.load(open(os.path.join(run, "config.json")))
    assert cfg["args"] == {"lr": 1e-3} and cfg["provenance"]["seed"] == 3
    assert cfg["provenance"]["inputs"]["train"]["sha256"] == \
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    art = json.load(open(os.path.join(run, "_run_tracker", "artifacts.json")))
    assert art["complete"] is False and "ckpt_step_0000010.pt" in art["missing"]


def test_resume_keeps_original_config_and_logs_resume(tmp_path):
    run = str(tmp_path / "run")
    RunTracker(run, "B", 10, config={"a": 1}, install_signal_handlers=False).fail("boom", step=3)
    t = RunTracker(run, "B", 10, config={"a": 1, "resume": "auto"}, resumed_from_step=3,
                   install_signal_handlers=False)
    t.finish(step=10)
    cfg = json.load(open(os.path.join(run, "config.json")))
    assert cfg["args"] == {"a": 1} and cfg["resumes"][0]["args"]["resume"] == "auto"
    assert [e["event"] for e in read_events(run)] == ["start", "error", "resume", "finish"]


def test_exception_in_context_marks_failed(tmp_path):
    run = str(tmp_path / "run")
    with pytest.raises(RuntimeError):
        with RunTracker(run, "B", 5, install_signal_handlers=False):
            raise RuntimeError("nan loss")
    assert read_heartbeat(run)["status"] == "failed"
    assert read_events(run)[-1]["message"] == "RuntimeError: nan loss"


LOOP = textwrap.dedent("""
    import sys, time
    from discover_distill.tracker import RunTracker
    run, ignore_flag = sys.argv[1], sys.argv[2] == "1"
    t = RunTracker(run, "X", 100000)
    print("ready", flush=True)
    for step in range(1, 100000):
        time.sleep(0.01)
        t.update(step)
        if t.should_stop and not ignore_flag:
            t.checkpoint(step, "ckpt.pt")
            t.pause("python loop.py --resume auto", step=step)
""")


def _start(tmp_path, ignore_flag):
    script = tmp_path / "loop.py"
    script.write_text(LOOP)
    run = str(tmp_path / "run")
    p = subprocess.Popen([sys.executable, str(script), run, "1" if ignore_flag else "0"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    return p, run


def test_first_sigint_pauses_gracefully(tmp_path):
    p, run = _start(tmp_path, ignore_flag=False)
    time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert p.returncode == EXIT_PAUSED, err
    assert "resume with: python loop.py --resume auto" in out
    events = [e["event"] for e in read_events(run)]
    assert events[0] == "start" and events[-2:] == ["checkpoint", "pause"]
    assert read_heartbeat(run)["status"] == "paused"


def test_second_sigint_exits_now(tmp_path):
    p, run = _start(tmp_path, ignore_flag=True)
    time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    time.sleep(0.3)
    assert p.poll() is None  # first signal only asks for a pause
    p.send_signal(signal.SIGINT)
    p.communicate(timeout=30)
    assert p.returncode == EXIT_FORCED
    assert read_heartbeat(run)["status"] == "failed"
