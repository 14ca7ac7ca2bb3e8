"""What the LiveKit probes share: logging, aborting, tones and their analysis, ICE in the log.

Imported by the probe scripts beside it (``python tests/livekit/<probe>.py`` puts this folder
on ``sys.path``).
"""

import argparse
import asyncio
import json
import re
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np

RESULT_PREFIX = "LIVEKIT_PROBE_RESULT "
"""The probes print their result as one line: this, then JSON."""

TONE_AMPLITUDE = 0.3
VOICED_RMS = 0.05
"""A 10 ms frame above this RMS (of full scale) carries the tone."""


def log(message: str) -> None:
    print(f"[probe {time.monotonic():9.2f}] {message}", file=sys.stderr, flush=True)


def _abort(signum: int, frame: object) -> None:
    raise TimeoutError(f"probe aborted by {signal.Signals(signum).name}")


def abort_on_signals(deadline_s: int) -> None:
    """Raise in the main thread on SIGTERM (the test ending us) or after `deadline_s`,
    so that the probe unwinds and its finally blocks stop the server."""
    signal.signal(signal.SIGTERM, _abort)
    signal.signal(signal.SIGALRM, _abort)
    signal.alarm(deadline_s)


def tone(rate: int, seconds: float, hz: float) -> np.ndarray:
    """A sine tone as int16 samples."""
    t = np.arange(int(rate * seconds)) / rate
    return (TONE_AMPLITUDE * 32767 * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def rms(samples: np.ndarray) -> float:
    """RMS of int16 samples, as a share of full scale."""
    return float(np.sqrt(np.mean((samples / 32768.0) ** 2))) if len(samples) else 0.0


def peak_frequency(samples: np.ndarray, rate: int) -> tuple[float, float]:
    """The loudest frequency (parabolic interpolation between FFT bins), and its band's share
    of the power (within +-20 Hz)."""
    windowed = samples.astype(np.float64) * np.hanning(len(samples))
    power = np.abs(np.fft.rfft(windowed)) ** 2
    power[0] = 0.0
    k = int(np.argmax(power))
    if 0 < k < len(power) - 1:
        a, b, c = np.log(power[k - 1 : k + 2] + 1e-12)
        k_fine = k + 0.5 * (a - c) / (a - 2 * b + c)
    else:
        k_fine = float(k)
    hz_per_bin = rate / len(samples)
    band = round(20 / hz_per_bin)
    share = power[max(k - band, 0) : k + band + 1].sum() / power.sum()
    return float(k_fine * hz_per_bin), float(share)


def ice_in_log(text: str) -> dict[str, dict]:
    """Each participant's connection type and selected remote candidates, as the server
    logged them when the participant became active."""
    seen: dict[str, dict] = {}
    for line in text.splitlines():
        if "participant active" not in line:
            continue
        participant = re.search(r'"participant": "([^"]+)"', line)
        kind = re.search(r'"connectionType": "([^"]+)"', line)
        selected = re.findall(r"\[remote\]\[selected[^\]]*\](?:\[[^\]]*\])* ([^\"]+)\"", line)
        if participant:
            seen[participant.group(1)] = {
                "connection_type": kind.group(1) if kind else None,
                "selected_remote": selected,
            }
    return seen


def run_probe(
    run: Callable[[argparse.Namespace], Awaitable[dict]],
    *,
    waits: str,
    options: Callable[[argparse.ArgumentParser], None] | None = None,
) -> int:
    """Parse the probe's arguments, run it within its deadline, print its result line.

    Args:
        run: The probe, given the arguments (``out``, ``wait_s``, ``deadline_s``).
        waits: What ``--wait-s`` bounds, for its help.
        options: Adds the probe's own arguments to the parser, if it has any.

    Returns:
        0: the test judges the result, failures included.
    """
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--wait-s", type=float, default=15.0, help=f"{waits}'s bound")
    parser.add_argument("--deadline-s", type=int, default=50, help="give up after this")
    if options is not None:
        options(parser)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    abort_on_signals(args.deadline_s)
    try:
        result = asyncio.run(run(args))
    except Exception as error:
        result = {"errors": [f"{type(error).__name__}: {error}"]}
    signal.alarm(0)
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0
