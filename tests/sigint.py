"""Ctrl-C, as a user at a terminal sends it, to a command run as a child process."""

import json
import os
import signal
import subprocess
import sys
import threading
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


# Signals at points a run is seen to reach, and what the local stand-ins saw of it.

WATCH_STAND_INS = """
import json, sys
from pipecat_bey.testing.daily_sim import DailySimulation

_stop = DailySimulation.stop


async def _stop_and_tell(self):
    # What the check or the demo left in the simulated Daily, as it is closed.
    seen = {
        "rooms": sorted(self.rooms),
        "avatars": [{"in_room": a.in_room, "removed": a.removed_reason} for a in self.avatars],
    }
    print("stand-ins:", json.dumps(seen), file=sys.stderr, flush=True)
    await _stop(self)


DailySimulation.stop = _stop_and_tell
"""


def python_watching_stand_ins(code):
    """A Python child as :func:`python` makes it, that says what the simulated Daily holds
    when it is closed: the rooms left and the avatars (see :func:`stand_ins`)."""
    return python(WATCH_STAND_INS + code)


def stand_ins(output):
    """What the child of :func:`python_watching_stand_ins` said of the simulated Daily.

    Returns:
        ``{"rooms": [...], "avatars": [{"in_room", "removed"}...]}``, as it was closed last.
    """
    said = [line for line in output.splitlines() if line.startswith("stand-ins: ")]
    assert said, f"the simulated Daily was never closed: {output[-3000:]}"
    return json.loads(said[-1].removeprefix("stand-ins: "))


def signal_as_it_goes(command, plan, cwd, env=None, timeout=60, again_every=None):
    """Start ``command``; send each signal of ``plan`` once the output shows its moment.

    ``plan`` is a list of ``(ready, signum)``: ``ready`` is a piece of text a line
    contains, or a test of the line, read from standard output and standard error
    together; each waits for a line after the previous signal's. With
    ``again_every``, the last signal is then sent again every so many seconds until
    the child exits, as a user pressing Ctrl-C over and over does: one of them
    comes at whatever moment is the worst.

    Returns:
        (exit status, seconds from the plan's last signal to the exit, all the output).
    """
    child = subprocess.Popen(
        command,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env or {**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    seen = []
    reader = None
    try:
        for ready, signum in plan:
            for line in child.stdout:
                seen.append(line)
                if ready(line) if callable(ready) else ready in line:
                    break
            else:
                pytest.fail(f"the child ended before printing {ready!r}: {''.join(seen)[-3000:]}")
            signalled = time.monotonic()
            child.send_signal(signum)
        reader = threading.Thread(target=lambda: seen.extend(child.stdout), daemon=True)
        reader.start()
        deadline = signalled + timeout
        while child.poll() is None and time.monotonic() < deadline:
            try:
                child.wait(timeout=min(again_every or timeout, max(deadline - time.monotonic(), 0)))
            except subprocess.TimeoutExpired:
                if again_every is not None and child.poll() is None:
                    child.send_signal(signum)
        if child.poll() is None:
            child.kill()
            child.wait()
            reader.join(10)
            pytest.fail(f"still running {timeout} s after the last signal: {''.join(seen)[-3000:]}")
        elapsed = time.monotonic() - signalled
        reader.join(30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return child.returncode, elapsed, "".join(seen)
