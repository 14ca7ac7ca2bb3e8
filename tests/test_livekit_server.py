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

import json
from pathlib import Path

from livekit_probes import host_of as _host_of
from livekit_probes import livekit
from livekit_probes import require as _require
from livekit_probes import run_probe as _run_probe
from livekit_probes import server_problems as _server_problems
from livekit_probes import tone_problems as _tone_problems

from pipecat_bey.testing.livekit_server import LIVEKIT_SERVER_VERSION
from pipecat_bey.testing.netns import TEST_ADDRESS

# What media_probe.py sends.
TONE_HZ = 440.0
AVATAR = "bey-avatar-agent"
WIDTH, HEIGHT = 320, 240
COLOUR = (40, 110, 170)
COLOUR_TOLERANCE = 12


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
