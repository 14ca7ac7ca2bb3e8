"""Ctrl-C, as a user at a terminal sends it, to a command run as a child process."""

import os
import signal
import subprocess
import sys
import time

import pytest


def python(code):
    """A Python child that takes Ctrl-C as KeyboardInterrupt, even if this process ignores it."""
    prelude = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler)\n"
    return [sys.executable, "-c", prelude + code]


def interrupt_once(command, ready, stream, cwd, env=None):
    """Start ``command``, send SIGINT once ``stream`` printed a line that is ``ready``.

    ``ready`` is a piece of text the line contains, or a test of the line.

    Returns:
        (exit status, seconds from the signal to the exit, stdout, stderr).
    """
    child = subprocess.Popen(
        command,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env or {**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        seen = []
        watched = child.stdout if stream == "stdout" else child.stderr
        for line in watched:
            seen.append(line)
            if ready(line) if callable(ready) else ready in line:
                break
        else:
            pytest.fail(f"the child ended before printing {ready!r}: {''.join(seen)[-2000:]}")
        signalled = time.monotonic()
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
        elapsed = time.monotonic() - signalled
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    if stream == "stdout":
        out = "".join(seen) + out
    else:
        err = "".join(seen) + err
    return child.returncode, elapsed, out, err
