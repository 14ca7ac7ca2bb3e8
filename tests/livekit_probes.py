"""What the LiveKit tests share: running a probe script in a network namespace of its own.

A probe (``tests/livekit/*.py``) runs as ``unshare -n -- python <probe> --out DIR``, prints its
record as one line (``LIVEKIT_PROBE_RESULT <json>``) and the test judges it. ``require`` skips
(or, with ``PIPECAT_BEY_LIVEKIT_REQUIRED=1``, fails) when the machine cannot run them.
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipecat_bey.testing.livekit_server import LiveKitServerNotFound, find_livekit_server
from pipecat_bey.testing.netns import TEST_ADDRESS, kill_namespace, namespace_unavailable, unshared

ROOT = Path(__file__).resolve().parent.parent
PROBES = ROOT / "tests" / "livekit"
RESULT_PREFIX = "LIVEKIT_PROBE_RESULT "
PROBE_TIMEOUT_S = 60

livekit = pytest.mark.livekit  # registered in pyproject.toml


def missing_requirement(*modules: tuple[str, str]) -> str | None:
    """Why this machine cannot run the test, or None when it can."""
    required = (("livekit.rtc", "livekit"), ("livekit.api", "livekit-api"), *modules)
    for module, package in required:
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            return f"{module} is not installed (pip install {package})"
    try:
        find_livekit_server()
    except LiveKitServerNotFound as error:
        return str(error)
    return namespace_unavailable()


def require(*modules: tuple[str, str]) -> None:
    reason = missing_requirement(*modules)
    if reason and os.environ.get("PIPECAT_BEY_LIVEKIT_REQUIRED") == "1":
        pytest.fail(f"PIPECAT_BEY_LIVEKIT_REQUIRED is set, but {reason}")
    if reason:
        pytest.skip(reason)


def run_probe(script: str, out: Path, *args: str, label: str | None = None) -> dict:
    """Run a probe of ``tests/livekit`` in a namespace of its own and return its record.

    Args:
        script: The probe's file name.
        out: Its output folder (logs, ``result.json``).
        *args: More arguments for the probe.
        label: The name of its artifacts' folder (``$PIPECAT_BEY_ARTIFACTS/livekit/``);
            the script's stem by default.

    Fails the test when it overruns ``PROBE_TIMEOUT_S`` or prints no record.
    """
    command = unshared([sys.executable, str(PROBES / script), "--out", str(out), *args])
    command += ["--deadline-s", str(PROBE_TIMEOUT_S - 15)]
    with open(out / "stdout.log", "wb") as stdout, open(out / "stderr.log", "wb") as stderr:
        process = subprocess.Popen(
            command, cwd=ROOT, stdout=stdout, stderr=stderr, start_new_session=True
        )
        timed_out = False
        try:
            process.wait(timeout=PROBE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            if process.poll() is None:  # timed out, or the test was interrupted
                process.terminate()  # the probe then disconnects and stops the server
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    kill_namespace(process.pid)
                    process.kill()
                    process.wait(timeout=10)
    log = (out / "stderr.log").read_text(errors="replace")[-3000:]
    if timed_out:
        pytest.fail(f"{script} took over {PROBE_TIMEOUT_S} s (files in {out}):\n{log}")
    lines = (out / "stdout.log").read_text(errors="replace").splitlines()
    results = [line[len(RESULT_PREFIX) :] for line in lines if line.startswith(RESULT_PREFIX)]
    if not results:
        pytest.fail(f"{script} printed no result (exit {process.returncode}):\n{log}")
    result = json.loads(results[-1])
    (out / "result.json").write_text(json.dumps(result, indent=2))
    if artifacts := os.environ.get("PIPECAT_BEY_ARTIFACTS"):
        shutil.copytree(
            out, Path(artifacts) / "livekit" / (label or Path(script).stem), dirs_exist_ok=True
        )
    return result


def host_of(ice_url: str) -> str:
    """The host of an ICE server URL such as ``turn:10.204.0.1:3478?transport=udp``."""
    address = ice_url.split(":", 1)[1].split("?", 1)[0]
    return address.rsplit(":", 1)[0] if address.count(":") == 1 else address


def server_problems(result: dict, identities: tuple[str, ...]) -> list[str]:
    """The probe's errors, and what the server or ICE did otherwise than expected."""
    problems = [f"the probe failed: {error}" for error in result.get("errors", [])]
    server = result.get("server") or {}
    if server.get("exit_code") != 0:
        problems.append(f"the server exited with {server.get('exit_code')!r} when stopped")
    ice = server.get("ice") or {}
    for identity in identities:
        seen = ice.get(identity) or {}
        selected = seen.get("selected_remote") or []
        if seen.get("connection_type") != "udp" or not all(TEST_ADDRESS in s for s in selected):
            problems.append(f"{identity}'s ICE: {seen or 'not logged as active'}")
    return problems


def tone_problems(what: str, heard: dict, hz: float, at_least_s: float) -> list[str]:
    """What is wrong with a tone as heard: too short, another frequency, impure."""
    if (heard.get("voiced_s") or 0) < at_least_s or "peak_hz" not in heard:
        return [f"{what}: {heard.get('voiced_s')} s of voice heard, expected >= {at_least_s}"]
    # An FFT over what was heard resolves 1 / its length: half a second, 2 Hz.
    resolution_hz = 1.0 / min(heard["voiced_s"], 1.0)
    if abs(heard["peak_hz"] - hz) > 2 * resolution_hz:
        return [f"{what}: the voice heard peaks at {heard['peak_hz']:.1f} Hz, not {hz}"]
    if heard["peak_share"] < 0.9:
        return [f"{what}: only {heard['peak_share']:.0%} of the voice's power is the tone"]
    return []
