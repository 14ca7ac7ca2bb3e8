"""The offline LiveKit world: a session sends the avatar in, it speaks for the bot, and leaves.

Each case runs ``tests/livekit/world_probe.py`` in a network namespace of its own
(``unshare -n``), where it enters ``LiveKitWorld`` and plays the bot by hand with the
``livekit`` SDK (see the probe's docstring). The test judges what it recorded:

- the emulator's LiveKit session sent the avatar in: it joined as the plugin's token says
  (kind agent, publishing on behalf of ``bot``) and published its microphone and camera,
  which the user saw under the avatar's identity with ``lk.publish_on_behalf`` = ``bot``;
- the user heard the 2 s tone the bot sent as an ``lk.audio_stream`` byte stream, from the
  avatar's microphone (its frequency, its length), and nothing from the bot's own
  ``pipecat-audio`` track, which it did receive (one voice); ``lk.playback_finished`` said
  it played whole;
- the user saw the stamped face at 320x240 and >= 15 fps, its frame numbers going forward;
- ``plain``: after ``RoomService.RemoveParticipant`` the avatar noticed (its room
  disconnected, ``PARTICIPANT_REMOVED``), closed itself and left the user's room, and the
  world recorded it removed, not leaked;
- ``impaired``: ``world.netem(50 ms, 10 ms jitter, 2 % loss)`` is real (the TCP round trip
  to the server grows by about 2 x 50 ms: one delay each way) and the tone still arrives
  whole enough (its frequency; its voiced length within 0.2 s, in one piece, stretched by the
  receiver's jitter buffer by at most 0.5 s); the bot never removes the avatar,
  so the world records it leaked when it closes.

Without the kernel's netem qdisc, the impaired world is made ``impairable`` and impairs
through its userspace link. Skips like tests/test_livekit_server.py.
"""

import asyncio
import json
from pathlib import Path

import pytest
from livekit_probes import livekit, require, run_probe, server_problems, tone_problems

from pipecat_bey.testing.netns import NamespaceError

AVATAR = "bey-avatar-agent"
TONE_HZ = 440.0
TONE_S = 2.0
DELAY_MS, JITTER_MS = 50.0, 10.0
AGENTS = ("livekit.agents", "livekit-agents==1.8.9")


def _avatar_problems(result: dict) -> list[str]:
    """What the session, the avatar's arrival and its tracks did otherwise than expected."""
    problems = server_problems(result, ("bot", "user", AVATAR))
    session = result.get("session") or {}
    if session.get("status") != 201 or (session.get("body") or {}).get("transport") != "livekit":
        problems.append(f"the emulator answered {session}")
    if result.get("sessions") != 1 or len(result.get("avatars") or []) != 1:
        problems.append(f"{result.get('sessions')} sessions sent {result.get('avatars')}")
    expected_as = {"kind": "agent", "attributes": {"lk.publish_on_behalf": "bot"}}
    if result.get("avatar_seen_as") != expected_as:
        problems.append(f"the user sees the avatar as {result.get('avatar_seen_as')}")
    if AVATAR not in (result.get("publishers_for_bot") or []):
        problems.append(f"publishers for the bot: {result.get('publishers_for_bot')}")
    published = {
        (p["source"], p["kind"], p["on_behalf_of"])
        for p in result.get("publications", [])
        if p["identity"] == AVATAR and p["event"] in ("published", "subscribed")
    }
    expected = {("microphone", "audio", "bot"), ("camera", "video", "bot")}
    if published != expected:
        problems.append(f"the avatar's publications as the user saw them: {published}")
    return problems


def _voice_problems(result: dict, length_tolerance_s: float, *, stretch_s: float) -> list[str]:
    """What the user heard otherwise than one voice: the avatar's tone, the bot silent.

    Its voiced length is within `length_tolerance_s` of what was sent; from its first sound
    to its last it may take `stretch_s` longer: a receiver's jitter buffer stretches what it
    plays to ride out jitter and conceal losses (WebRTC's NetEQ), without losing any of it.
    """
    voice = result.get("avatar_voice") or {}
    problems = tone_problems("the avatar's voice", voice, TONE_HZ, TONE_S - length_tolerance_s)
    if abs((voice.get("voiced_s") or 0) - TONE_S) > length_tolerance_s:
        problems.append(f"the avatar's voice sounded {voice.get('voiced_s')} s, sent {TONE_S}")
    span = voice.get("span_s") or 0
    if not TONE_S - length_tolerance_s <= span <= TONE_S + length_tolerance_s + stretch_s:
        problems.append(f"the avatar's voice lasted {span} s, sent {TONE_S}")
    if len(voice.get("intervals") or []) != 1:
        problems.append(f"the avatar's voice came in pieces: {voice.get('intervals')}")
    bot = result.get("bot_voice") or {}
    if (result.get("bot_audio_frames") or 0) < 100 or bot.get("voiced_s") != 0.0:
        problems.append(
            f"the bot's pipecat-audio: {result.get('bot_audio_frames')} frames heard, "
            f"{bot.get('voiced_s')} s voiced (expected silence, received)"
        )
    finished = [
        n["payload"]
        for n in result.get("notifications", [])
        if n["method"] == "lk.playback_finished"
    ]
    if len(finished) != 1 or finished[0].get("interrupted") is not False:
        problems.append(f"lk.playback_finished: {finished}")
    elif abs(finished[0]["playback_position"] - TONE_S) > 0.05:
        problems.append(f"lk.playback_finished at {finished[0]['playback_position']} s")
    return problems


def _video_problems(result: dict) -> list[str]:
    video = result.get("video") or {}
    problems = []
    if video.get("sizes") != [[320, 240]]:
        problems.append(f"the avatar's camera at {video.get('sizes')}, expected [[320, 240]]")
    if (video.get("fps") or 0) < 15:
        problems.append(f"the avatar's camera at {video.get('fps')} fps (< 15): {video}")
    if (video.get("avatar_share") or 0) < 0.9:
        problems.append(f"only {video.get('avatar_share')} of frames show the avatar's face")
    if (video.get("forward_share") or 0) < 0.8:
        problems.append(f"the face's frame numbers do not go forward: {video}")
    return problems


def judge_plain(result: dict) -> list[str]:
    """Every expectation of the plain case its record misses."""
    problems = _avatar_problems(result) + _voice_problems(result, 0.1, stretch_s=0.0)
    problems += _video_problems(result)
    if not (result.get("avatar_left") and result.get("user_saw_avatar_leave")):
        problems.append(
            f"after RemoveParticipant: the avatar left {result.get('avatar_left')}, the user "
            f"saw it leave {result.get('user_saw_avatar_leave')}"
        )
    avatars = result.get("avatars") or [{}]
    if avatars[-1].get("left_reason") != "PARTICIPANT_REMOVED" or not avatars[-1].get("removed"):
        problems.append(f"the world recorded the avatar as {avatars[-1]}")
    if result.get("leaked") != 0:
        problems.append(f"{result.get('leaked')} avatars recorded leaked")
    return problems


def judge_impaired(result: dict) -> list[str]:
    """Every expectation of the impaired case its record misses."""
    # 2 % loss and 10 ms of jitter: the receiver may stretch the tone by its buffer's growth,
    # measured up to 0.27 s here; bounded by half a second.
    problems = _avatar_problems(result) + _voice_problems(result, 0.2, stretch_s=0.5)
    problems += _video_problems(result)
    before, after = result.get("rtt_before_ms"), result.get("rtt_after_ms")
    # One delay each way: a round trip grows by 2 * (50 +- 10) ms (the median of five).
    low, high = 2 * (DELAY_MS - JITTER_MS), 2 * (DELAY_MS + JITTER_MS) + 20
    if before is None or after is None or not low <= after - before <= high:
        problems.append(f"round trip {before} ms, then {after} ms under netem: not +{low}-{high}")
    if before is not None and before > 20:
        problems.append(f"round trip {before} ms before any impairment")
    if result.get("impairment") not in ("netem on lo", "userspace link"):
        problems.append(f"impaired by {result.get('impairment')!r}")
    avatars = result.get("avatars") or [{}]
    if avatars[-1].get("left_reason") != "leaked" or result.get("leaked") != 1:
        problems.append(f"an avatar never removed, recorded as {avatars}, {result.get('leaked')}")
    return problems


def _summary(result: dict) -> dict:
    keys = ("timings", "impairment", "rtt_before_ms", "rtt_after_ms", "avatar_voice", "video")
    return {key: result.get(key) for key in keys} | {"avatars": result.get("avatars")}


JUDGES = {"plain": judge_plain, "impaired": judge_impaired}


@livekit
@pytest.mark.parametrize("case", list(JUDGES))
def test_the_world_sends_the_avatar_which_speaks_for_the_bot_and_leaves(
    tmp_path: Path, case: str
) -> None:
    require(AGENTS)
    result = run_probe("world_probe.py", tmp_path, "--case", case, label=f"world_probe_{case}")
    print(f"livekit world probe ({case}): {json.dumps(_summary(result))}")
    problems = JUDGES[case](result)
    assert not problems, (
        f"the offline LiveKit world ({case}) did not do as expected (files in {tmp_path}):\n- "
        + "\n- ".join(problems)
    )


def test_the_world_refuses_the_machines_own_network() -> None:
    from pipecat_bey.testing.livekit_world import LiveKitWorld, netem_unavailable

    async def enter(**settings: object) -> None:
        async with LiveKitWorld(**settings):
            pass

    with pytest.raises(NamespaceError, match="unshare -n"):
        asyncio.run(enter())
    with pytest.raises(NamespaceError, match="private network namespace"):
        asyncio.run(enter(setup_network=False))
    assert "not in a private network namespace" in (netem_unavailable() or "")


def test_the_livekit_world_loads_lazily() -> None:
    import subprocess
    import sys

    code = (
        "import sys, pipecat_bey.testing as t, pipecat_bey.testing.livekit_world\n"
        "assert not [m for m in sys.modules if m.startswith('livekit')], 'livekit imported'\n"
        "assert 'LiveKitWorld' in t.__all__ and 'LiveKitWorld' in dir(t)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_overlap_counts_time_two_voices_share() -> None:
    pytest.importorskip("livekit.rtc")
    from pipecat_bey.testing.livekit_user import overlap_s

    bot = [(0.0, 1.0), (3.0, 4.0)]
    avatar = [(0.5, 2.0), (4.0, 5.0)]
    assert overlap_s(bot, avatar) == pytest.approx(0.5)
    assert overlap_s(bot, []) == 0.0
