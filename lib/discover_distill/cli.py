"""Shared command-line plumbing: one-line errors for bad input, and the script entry wrapper.

Scripts raise `UserError` for anything the user can fix (missing file, bad flag value, bad
line in an input file). `run(main)` turns it into a single `error: ...` line on stderr and exit
code 2, so a researcher never has to read a traceback to learn which file or flag was wrong.
"""
from __future__ import annotations

import os
import sys
from typing import Callable


class UserError(Exception):
    """Bad input the user can fix. The message must name the file, line or flag."""


def require_file(path: str, flag: str) -> str:
    """Return `path` if it is an existing file, else raise a UserError naming the flag."""
    if not os.path.isfile(path):
        raise UserError(f"{flag}: file not found: {path}")
    return path


def run(main: Callable[[], int | None]) -> None:
    """Call a script's main(); UserError becomes a one-line message and exit code 2, a closed stdout
    (`| head`) a quiet exit 141."""
    try:
        code = main()
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except BrokenPipeError:  # `script.py | head` closed our stdout: stop quietly, as a shell tool would
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit flush must not raise again
        except (OSError, ValueError):
            pass
        sys.exit(141)  # 128 + SIGPIPE
    sys.exit(code or 0)


_stdout_closed = False


def say(msg: str) -> None:
    """Print a progress line. If stdout's reader is gone (e.g. `| tee` killed by the same Ctrl+C
    that asked us to pause), keep running silently instead of crashing mid-checkpoint."""
    global _stdout_closed
    if _stdout_closed:
        return
    try:
        print(msg, flush=True)
    except (BrokenPipeError, OSError):
        _stdout_closed = True
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
