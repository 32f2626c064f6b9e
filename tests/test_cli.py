"""cli.run: the script entry wrapper's exits."""
import os
import subprocess
import sys

LIB = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib")

SCRIPT = """
import sys
sys.path.insert(0, {lib!r})
from discover_distill.cli import UserError, run
def main():
    if sys.argv[1] == "bad":
        raise UserError("--x: bad value 3")
    for i in range(200000):  # far more than a pipe buffer holds, so the writer sees the reader leave
        print("line", i)
    return 0
run(main)
"""


def script(tmp_path):
    p = tmp_path / "s.py"
    p.write_text(SCRIPT.format(lib=LIB))
    return str(p)


def test_user_error_is_one_line_and_exit_2(tmp_path):
    r = subprocess.run([sys.executable, script(tmp_path), "bad"], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr == "error: --x: bad value 3\n"


def test_closed_stdout_stops_quietly(tmp_path):
    # `script | head -n 1`: the reader leaves after one line
    p = subprocess.Popen([sys.executable, script(tmp_path), "print"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdout.readline() == b"line 0\n"
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait() == 141
    assert err == ""  # no BrokenPipeError traceback, no "Exception ignored ... flush" line
