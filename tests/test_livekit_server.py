"""A real LiveKit server carries media offline; the LiveKit avatar stand-in works in it.

Each case runs a script of ``tests/livekit/`` inside a network namespace of its own
(``unshare -n``): it starts ``pipecat_bey.testing.livekit_server.LiveKitServer`` (the pinned
``livekit-server --dev``) on 10.204.0.1, and participants of the ``livekit`` SDK join a room
on it. The test judges what the script recorded.

``media_probe.py``, two plain participants:

- the server tells clients of no STUN or TURN server but its own address, and every
  participant's ICE selected a UDP pair on the namespace's address;
- audio: a 440 Hz tone published as a microphone track arrives through Opus, decoded at
  48 kHz mono, with its peak at 440 Hz (FFT over 1 s) and most of its power there;
- video: frames of one colour arrive at 320x240 in that colour;
- a byte stream on ``lk.audio_stream`` with ``sample_rate``/``num_channels`` attributes
  arrives whole (same size, same SHA-256), from the bot, to the avatar only;
- the RPC ``lk.clear_buffer`` reaches the avatar and its answer comes back.

``avatar_probe.py``, a bot and ``LiveKitAvatar`` (livekit-agents' avatar side):

- the avatar joins as the plugin's token says (``bey-avatar-agent``, kind agent,
  publishing on behalf of ``bot``) and takes the bot's speech;
- its camera shows the stamped face (320x240, the avatar's colour, frame numbers that
  never go backwards) at >= 15 fps;
- an utterance sent as a byte stream is heard from its microphone whole (its tone's
  frequency, its length), and ``lk.playback_finished`` says so (not interrupted, its
  length);
- ``lk.clear_buffer`` mid-utterance: answered "ok", the voice stops within 0.5 s and stays
  silent, ``lk.playback_finished`` says interrupted, and the next utterance plays whole.

Skips (saying what to do) when the server is not built (``scripts/build-livekit-server.sh``),
``livekit``/``livekit-api`` (and for the avatar ``livekit-agents``) are not installed, or a
network namespace cannot be made (root); ``PIPECAT_BEY_LIVEKIT_REQUIRED=1`` turns such a skip
into a failure.
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipecat_bey.testing.livekit_server import (
    LIVEKIT_SERVER_VERSION,
    LiveKitServerNotFound,
    find_livekit_server,
)
from pipecat_bey.testing.netns import TEST_ADDRESS, kill_namespace, namespace_unavailable, unshared

ROOT = Path(__file__).resolve().parent.parent
PROBES = ROOT / "tests" / "livekit"
RESULT_PREFIX = "LIVEKIT_PROBE_RESULT "
PROBE_TIMEOUT_S = 60

# What media_probe.py sends.
TONE_HZ = 440.0
AVATAR = "bey-avatar-agent"
WIDTH, HEIGHT = 320, 240
COLOUR = (40, 110, 170)
COLOUR_TOLERANCE = 12

livekit = pytest.mark.livekit  # registered in pyproject.toml


def _missing_requirement(*modules: tuple[str, str]) -> str | None:
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


def _require(*modules: tuple[str, str]) -> None:
    reason = _missing_requirement(*modules)
    if reason and os.environ.get("PIPECAT_BEY_LIVEKIT_REQUIRED") == "1":
        pytest.fail(f"PIPECAT_BEY_LIVEKIT_REQUIRED is set, but {reason}")
    if reason:
        pytest.skip(reason)


def _run_probe(script: str, out: Path) -> dict:
    command = unshared([sys.executable, str(PROBES / script), "--out", str(out)])
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
        shutil.copytree(out, Path(artifacts) / "livekit" / Path(script).stem, dirs_exist_ok=True)
    return result


def _host_of(ice_url: str) -> str:
    """The host of an ICE server URL such as ``turn:10.204.0.1:3478?transport=udp``."""
    address = ice_url.split(":", 1)[1].split("?", 1)[0]
    return address.rsplit(":", 1)[0] if address.count(":") == 1 else address


def _server_problems(result: dict, identities: tuple[str, ...]) -> list[str]:
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


def _tone_problems(what: str, heard: dict, hz: float, at_least_s: float) -> list[str]:
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


def judge(result: dict) -> list[str]:
    """Every expectation media_probe.py's record misses."""
    problems = _server_problems(result, ("bot", "avatar"))
    server = result.get("server") or {}
    if server.get("version") != LIVEKIT_SERVER_VERSION.lstrip("v"):
        problems.append(f"server version {server.get('version')!r}, not {LIVEKIT_SERVER_VERSION}")

    # ICE stays on the namespace's address.
    urls = [url for server_urls in result.get("ice_servers", []) for url in server_urls]
    outside = [url for url in urls if _host_of(url) != TEST_ADDRESS]
    if outside:
        problems.append(f"the join response names ICE servers beyond {TEST_ADDRESS}: {outside}")

    # The tone, through Opus.
    audio = result.get("audio") or {}
    if audio.get("formats") != [[48000, 1]]:
        problems.append(f"audio decoded as {audio.get('formats')}, expected [[48000, 1]]")
    if (audio.get("voiced_s") or 0) < 1.0:
        problems.append(f"only {audio.get('voiced_s')} s of the tone arrived ({audio})")
    elif abs(audio["peak_hz"] - TONE_HZ) > 2.0:
        problems.append(f"the received audio peaks at {audio['peak_hz']:.1f} Hz, not {TONE_HZ}")
    elif audio["peak_share"] < 0.9:
        problems.append(f"only {audio['peak_share']:.0%} of the audio's power is the tone")
    elif not 0.1 < audio["rms"] < 0.3:
        problems.append(f"the tone's level is {audio['rms']:.3f} RMS (sent 0.212)")

    # Video of one colour.
    video = result.get("video") or {}
    if (video.get("frames") or 0) < 10:
        problems.append(f"only {video.get('frames')} video frames arrived")
    if video.get("sizes") != [[WIDTH, HEIGHT]]:
        problems.append(f"video frames of {video.get('sizes')}, expected {[[WIDTH, HEIGHT]]}")
    rgb = video.get("median_rgb") or []
    if len(rgb) != 3 or any(
        abs(a - b) > COLOUR_TOLERANCE for a, b in zip(rgb, COLOUR, strict=True)
    ):
        problems.append(f"video colour {rgb}, expected {COLOUR} +-{COLOUR_TOLERANCE}")

    # The utterance as a byte stream, whole.
    sent, stream = result.get("sent_stream") or {}, result.get("stream") or {}
    expected_stream = {
        "sender": "bot",
        "topic": "lk.audio_stream",
        "attributes": {"sample_rate": "16000", "num_channels": "1"},
        "size": sent.get("size"),
        "sha256": sent.get("sha256"),
    }
    got = {key: stream.get(key) for key in expected_stream}
    if not sent or got != expected_stream:
        problems.append(f"byte stream received as {got}, expected {expected_stream}")

    # The barge-in RPC.
    rpc = result.get("rpc") or {}
    expected_calls = [{"method": "lk.clear_buffer", "caller": "bot", "payload": ""}]
    if rpc.get("response") != "ok" or rpc.get("calls") != expected_calls:
        problems.append(f"lk.clear_buffer: {rpc or 'never answered'}")
    return problems


@livekit
def test_media_flows_through_a_real_livekit_server(tmp_path: Path) -> None:
    _require()
    result = _run_probe("media_probe.py", tmp_path)
    summary = {
        "timings": result.get("timings"),
        "ice_servers": result.get("ice_servers"),
        "ice": (result.get("server") or {}).get("ice"),
        "audio": result.get("audio"),
        "video": result.get("video"),
        "stream_size": (result.get("stream") or {}).get("size"),
        "rpc": result.get("rpc"),
    }
    print(f"livekit media probe: {json.dumps(summary)}")
    problems = judge(result)
    assert not problems, (
        f"media did not flow through the LiveKit server as expected (files in {tmp_path}):\n- "
        + "\n- ".join(problems)
    )


def judge_avatar(result: dict) -> list[str]:
    """Every expectation avatar_probe.py's record misses."""
    problems = _server_problems(result, ("bot", AVATAR))
    seen_as = result.get("avatar_seen_as") or {}
    expected_as = {
        "identity": AVATAR,
        "kind": "PARTICIPANT_KIND_AGENT",
        "attributes": {"lk.publish_on_behalf": "bot"},
    }
    if seen_as != expected_as:
        problems.append(f"the bot sees the avatar as {seen_as}, expected {expected_as}")
    if result.get("avatar_sender") != "bot":
        problems.append(f"the avatar takes speech from {result.get('avatar_sender')!r}")

    video = result.get("video") or {}
    if video.get("sizes") != [[WIDTH, HEIGHT]]:
        problems.append(f"avatar video of {video.get('sizes')}, expected {[[WIDTH, HEIGHT]]}")
    if (video.get("fps") or 0) < 15:
        problems.append(f"avatar video at {video.get('fps')} fps (< 15): {video}")
    if (video.get("avatar_share") or 0) < 0.9:
        problems.append(f"only {video.get('avatar_share')} of frames show the avatar's colour")
    # The face never replays the past; a single frame read out of line after lossy coding
    # (a 40 ms flicker) is allowed now and then, not often.
    if video.get("backwards") or (video.get("increasing_share") or 0) < 0.8:
        problems.append(f"the avatar's frame numbers go backwards: {video}")
    if (video.get("glitches") or 0) > 0.03 * (video.get("frames") or 0):
        problems.append(f"too many of the avatar's frames read out of line: {video}")

    utterances = {u["name"]: u for u in result.get("utterances", [])}
    if list(utterances) != ["played", "interrupted", "after_barge_in"]:
        problems.append(f"utterances done: {list(utterances)}")
        return problems
    for name in ("played", "after_barge_in"):
        u = utterances[name]
        finished = u.get("finished") or {}
        if finished.get("interrupted") is not False or not (
            abs(finished.get("playback_position", -1) - u["sent_s"]) <= 0.05
        ):
            problems.append(f"{name}: lk.playback_finished said {finished}, sent {u['sent_s']} s")
        problems += _tone_problems(name, u.get("heard") or {}, u["hz"], u["sent_s"] - 0.1)
    u = utterances["interrupted"]
    finished = u.get("finished") or {}
    if u.get("clear_response") != "ok":
        problems.append(f"lk.clear_buffer answered {u.get('clear_response')!r}")
    if finished.get("interrupted") is not True or not (
        0.5 <= finished.get("playback_position", -1) < u["sent_s"] / 2
    ):
        problems.append(f"interrupted: lk.playback_finished said {finished}")
    if (u.get("voiced_after_clear_s") or 0) > 0.5:
        problems.append(f"the voice went on {u['voiced_after_clear_s']} s after lk.clear_buffer")
    problems += _tone_problems("interrupted", u.get("heard") or {}, u["hz"], 0.5)

    notifications = result.get("notifications") or []
    callers = {n["caller"] for n in notifications}
    methods = [n["method"] for n in notifications]
    if callers != {AVATAR} or methods != ["lk.playback_started", "lk.playback_finished"] * 3:
        problems.append(f"notifications {methods} from {callers}")
    avatar = result.get("avatar") or {}
    segments = [
        (s["sample_rate"], s["received_s"], s["cleared"]) for s in avatar.get("segments", [])
    ]
    if len(segments) != 3 or [s[2] for s in segments] != [False, True, False]:
        problems.append(f"the avatar received segments {segments}")
    elif {s[0] for s in segments} != {16000} or (segments[0][1], segments[2][1]) != (1.5, 1.0):
        problems.append(f"the avatar received segments {segments}")
    if avatar.get("clears") != 1:
        problems.append(f"the avatar saw {avatar.get('clears')} clears")
    payloads = [n["payload"] for n in notifications if n["method"] == "lk.playback_finished"]
    sent = [{k: p[k] for k in ("playback_position", "interrupted")} for p in payloads]
    if avatar.get("playback_finished") != sent:
        problems.append(f"the avatar sent {avatar.get('playback_finished')}, the bot got {sent}")
    return problems


@livekit
def test_the_avatar_stand_in_speaks_shows_and_stops(tmp_path: Path) -> None:
    _require(("livekit.agents", "livekit-agents==1.8.9"))
    result = _run_probe("avatar_probe.py", tmp_path)
    summary = {
        "avatar_video_after_s": result.get("avatar_video_after_s"),
        "video": result.get("video"),
        "utterances": result.get("utterances"),
        "avatar": result.get("avatar"),
    }
    print(f"livekit avatar probe: {json.dumps(summary)}")
    problems = judge_avatar(result)
    assert not problems, (
        f"the LiveKit avatar stand-in did not do as expected (files in {tmp_path}):\n- "
        + "\n- ".join(problems)
    )
