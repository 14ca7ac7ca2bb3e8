"""The LiveKit demo's report: its figures, from what the real server's participants recorded.

The keys are the Daily demo's (:func:`pipecat_bey.cli.demo.report.room_report`) where
they mean the same, so the summary and the tests read both alike. What differs, because
the far side is real WebRTC:

- ``avatar_received_speech_s`` is what reached the avatar's renderer through LiveKit's
  ``lk.audio_stream`` receiver, speech measured as in the Daily demo;
- ``avatar_spoke_after_interrupt_s`` is speech the avatar put on its microphone after the
  barge-in reached the bot (stale speech: the clear had not reached it yet, or was not
  sent); ``audio_after_interrupt_s`` is what still reached its renderer after then;
- ``user_heard_*`` is what the user decoded from each participant's Opus tracks, and
  ``user_heard_both_s`` the time the user heard the bot's own voice and the avatar at
  once (one voice: 0);
- ``avatar_removed`` says the service removed the avatar through the server API (the
  server disconnected it as ``PARTICIPANT_REMOVED``), ``avatar_left_room`` that it left.
"""

from typing import Any

from pipecat_bey.cli.demo.report import Seen, ms_between, session_keys
from pipecat_bey.testing.audio import speech_duration_s
from pipecat_bey.testing.livekit_avatar import AVATAR_IDENTITY, LiveKitAvatar
from pipecat_bey.testing.livekit_user import overlap_s
from pipecat_bey.testing.livekit_world import LiveKitWorld

__all__ = ["livekit_report"]


def livekit_report(
    world: LiveKitWorld,
    seen: Seen,
    input_s: float,
    input_speech_s: float,
    *,
    barge_in: bool,
    bot: str,
) -> dict[str, Any]:
    """What the avatar received and the user heard, on LiveKit.

    Args:
        world: The world the bot ran in.
        seen: What the avatar service went through.
        input_s: Seconds of the bot's clip.
        input_speech_s: Seconds of speech in it.
        barge_in: Whether the user was to barge in.
        bot: The bot's identity.

    Returns:
        The report (see the module's docstring and the README's demo section).
    """
    bey, user = world.bey, world.user
    assert bey is not None and user is not None
    heard_bot_s = user.heard_s(bot)
    avatar_identities = sorted({a for a in user.participants if a.startswith(AVATAR_IDENTITY)})
    heard_avatar_s = round(sum(user.heard_s(a) for a in avatar_identities), 3)
    both_s = sum(
        overlap_s(user.voiced_intervals(bot), user.voiced_intervals(a)) for a in avatar_identities
    )
    late = [
        a
        for a in world.avatars
        if seen.first_error_at is not None
        and a.joined_at is not None
        and a.joined_at > seen.first_error_at
    ]
    avatar = next((a for a in world.avatars if a.segments), None)
    joined = [a for a in world.avatars if a.joined_at is not None]
    report: dict[str, Any] = {
        "transport": "livekit",
        **session_keys(bey, seen, input_s, input_speech_s),
        "network_delay_s": None,
        "jitter_s": None,
        "loss_pct": None,
        "avatar_received_speech_s": None,
        "first_audio_latency_ms": None,
        "interrupted": False,
        "interrupt_latency_ms": None,
        "audio_after_interrupt_s": None,
        "barge_in": barge_in,
        "barge_in_skipped": seen.barge_in_skipped,
        "barge_in_heard_by_bot": (seen.interruption is not None)
        if seen.barged_in_at is not None
        else None,
        "user_heard_bot_s": heard_bot_s,
        # The bot's raw speech goes to the avatar alone, as a byte stream: no track carries it.
        "user_heard_raw_tts_s": 0.0,
        "avatar_spoke_after_interrupt_s": None,
        "user_heard_avatar_s": heard_avatar_s,
        "user_heard_both_s": round(both_s, 3),
        "fallback": bool(seen.errors) and heard_bot_s > 0,
        "late_avatar_ejected": all(a.left_at is not None for a in late) if late else None,
        "out": None,
        "out_not_written": None,
        "avatar_left_room": all(a.left_at is not None for a in joined) if joined else None,
        "avatar_removed": all(a.removed for a in joined) if joined else None,
        "avatar_speech_unheard_at_end_s": None,
        "playback_finished": [
            {"playback_position": round(p.playback_position, 3), "interrupted": p.interrupted}
            for p in (avatar.playback_finished if avatar is not None else [])
        ],
    }
    if avatar is None:
        return report
    report |= _speech_figures(avatar, seen, barge_in)
    return report


def _speech_figures(avatar: LiveKitAvatar, seen: Seen, barge_in: bool) -> dict[str, Any]:
    """How the speech reached the avatar, and what it spoke after a barge-in."""
    pcm, rate = avatar.received_audio()
    figures: dict[str, Any] = {
        "avatar_received_speech_s": round(speech_duration_s(pcm, rate), 3),
        "first_audio_latency_ms": ms_between(avatar.arrivals[0][0], seen.avatar_joined)
        if avatar.arrivals
        else None,
    }
    if barge_in and avatar.clears and seen.interruption is not None:
        figures |= {
            "interrupted": True,
            "interrupt_latency_ms": ms_between(avatar.clears[0], seen.interruption),
            "audio_after_interrupt_s": round(avatar.received_s(after=seen.interruption), 3),
            "avatar_spoke_after_interrupt_s": round(avatar.spoke_s(after=seen.interruption), 3),
        }
    return figures
