"""The demo's report: its figures, computed from what the offline stand-ins recorded.

:func:`room_report` says what the avatar received and what the user heard in any
placement; :func:`relay_report` adds how a relayed avatar looked and sounded to
the user, and what the relay cost. The benchmarks report the relay with the same
function.
"""

from dataclasses import dataclass, field
from typing import Any

from pipecat_bey.config import BEY_AUDIO_TRACK
from pipecat_bey.testing.audio import speech_duration_s, speech_segments
from pipecat_bey.testing.av_sync import lip_sync, utterance_lags, video_fps
from pipecat_bey.testing.daily_sim import (
    ReceivedAudio,
    SimulatedAvatar,
    SimulatedUser,
    SpokenAudio,
    custom_audio,
)
from pipecat_bey.testing.harness import OfflineWorld


@dataclass
class Seen:
    """What the avatar service went through, with monotonic times.

    Parameters:
        start_in: When the ``StartFrame`` reached the service.
        start_out: When the service pushed it on.
        interruption: When the first ``InterruptionFrame`` reached the service.
        avatar_joined: When the avatar first joined.
        errors: The session errors the service reported, in order.
        first_error_at: When it reported the first.
    """

    start_in: float | None = None
    start_out: float | None = None
    interruption: float | None = None
    avatar_joined: float | None = None
    errors: list[str] = field(default_factory=list)
    first_error_at: float | None = None


def room_report(
    world: OfflineWorld,
    seen: Seen,
    bot_id: str,
    input_s: float,
    input_speech_s: float,
    *,
    barge_in: bool,
) -> dict[str, Any]:
    """What the avatar received and the user heard, in either placement.

    Args:
        world: The world the bot ran in.
        seen: What the avatar service went through.
        bot_id: The bot's participant id in the user's room ("" if it never joined).
        input_s: Seconds of the bot's clip.
        input_speech_s: Seconds of speech in it.
        barge_in: Whether the user was to barge in.

    Returns:
        The report's keys for every placement (see the README's demo section).
    """
    bey, daily, user = world.bey, world.daily, world.user
    assert user is not None
    request = dict(bey.requests[0]) if bey.requests else None
    if request and "token" in request:
        request["token"] = "***"
    session = bey.sessions[0].model_dump(mode="json") if bey.sessions else None
    heard_bot_s = user.heard_speech_s(bot_id) if bot_id else 0.0
    late = [
        a
        for a in daily.avatars
        if seen.first_error_at is not None
        and a.joined_at_first is not None
        and a.joined_at_first > seen.first_error_at
    ]
    report: dict[str, Any] = {
        "session_request": request,
        "session_response": session,
        "session_errors": seen.errors,
        "start_frame_passthrough_ms": _ms(seen.start_out, seen.start_in),
        "avatar_joined_s": _s(seen.avatar_joined, seen.start_in),
        "input_s": round(input_s, 3),
        "input_speech_s": round(input_speech_s, 3),
        "avatar_received_speech_s": None,
        "first_audio_latency_ms": None,
        "interrupted": False,
        "interrupt_latency_ms": None,
        "audio_after_interrupt_s": None,
        "barge_in": barge_in,
        "user_heard_bot_s": heard_bot_s,
        # The bot's raw speech on the avatar's track: kept from the user, so 0.
        "user_heard_raw_tts_s": user.heard_speech_s(bot_id, track=custom_audio(BEY_AUDIO_TRACK))
        if bot_id
        else 0.0,
        "avatar_spoke_after_interrupt_s": None,
        "user_heard_avatar_s": round(sum(user.heard_speech_s(a.id) for a in daily.avatars), 3),
        "fallback": bool(seen.errors) and heard_bot_s > 0,
        "late_avatar_ejected": all(not a.in_room for a in late) if late else None,
        "out": None,
        "avatar_left_room": None,
    }
    avatar = world.avatar
    if avatar is None or avatar.first_speech_at() is None:
        return report
    rate = avatar.received_sample_rate or 24000
    report["avatar_received_speech_s"] = round(speech_duration_s(avatar.received_audio(), rate), 3)
    report["first_audio_latency_ms"] = _ms(avatar.first_speech_at(), seen.avatar_joined)
    if barge_in and avatar.interrupts:
        interrupt_at = avatar.interrupts[0]
        report["interrupted"] = True
        report["interrupt_latency_ms"] = _ms(interrupt_at, seen.interruption)
        report["audio_after_interrupt_s"] = round(avatar.speech_received_s(after=interrupt_at), 3)
        report["avatar_spoke_after_interrupt_s"] = round(avatar.spoke_s(after=interrupt_at), 3)
    return report


def relay_report(
    world: OfflineWorld,
    user: SimulatedUser,
    bot_id: str,
    avatar: SimulatedAvatar | None,
    *,
    gave_up: bool = False,
    interrupted_at: float | None = None,
) -> dict[str, Any]:
    """How a relayed avatar looked and sounded to a user, and what the relay cost.

    Args:
        world: The world the bot ran in.
        user: The user in the bot's room.
        bot_id: The bot's participant id there.
        avatar: The avatar that spoke, if any.
        gave_up: Whether the service gave up on the avatar (its voice was the bot's).
        interrupted_at: When the barge-in reached the service (monotonic), if one did.

    Returns:
        The report's relay keys (see the README's demo section).
    """
    user_room = world.room.name
    # Every private room the service created is gone, and no avatar ever was in the
    # user's room.
    report: dict[str, Any] = {
        "avatar_in_user_room": any(
            bool(a.joined_times) and a.target_room.name == user_room for a in world.daily.avatars
        ),
        "backstage_rooms_left": sorted(n for n in world.daily.rooms if n != user_room),
        "user_heard_avatar_s": 0.0,
        "avatar_rendered_speech_s": None,
        "relay_correlation": None,
        "video_fps": None,
        "video_frames": 0,
        "video_out_of_order": 0,
        "av_skew_ms_p95": None,
        "av_skew_ms_median": None,
        "relay_added_latency_ms": None,
    }
    frames = [f for f in user.received_video if f.publisher_id == bot_id]
    if frames:
        rate = video_fps(frames)
        report["video_fps"] = round(rate.fps, 1)
        report["video_frames"] = rate.frames
        report["video_out_of_order"] = rate.out_of_order
    if avatar is None or not avatar.spoken or gave_up:
        return report  # without the avatar, what the user heard was the bot's own voice
    report["user_heard_bot_s"] = 0.0  # what came from the bot was the avatar's voice
    report["user_heard_avatar_s"] = user.heard_speech_s(bot_id)
    from_bot = [r for r in user.received if r.publisher_id == bot_id]
    heard_pieces = [r for r in from_bot if any(r.pcm)]
    # What the avatar said while it could still reach the user: a barge-in drops what
    # is on its way from the avatar to the user, on purpose.
    cutoff = interrupted_at - world.daily.network.delay_s if interrupted_at else None
    spoken = [p for p in avatar.mic_pieces if cutoff is None or p.start < cutoff]
    said = _microphone_track(spoken)
    report["avatar_rendered_speech_s"] = round(_speech_s(said, avatar.sample_rate), 3)
    if heard_pieces:
        correlation = _block_correlation(spoken, from_bot, interrupted=cutoff is not None)
        report["relay_correlation"] = round(correlation, 3)
        sync = lip_sync(frames, avatar.mic_pieces, from_bot)
        report["av_skew_ms_p95"] = _rounded(sync.p95_abs_ms)
        report["av_skew_ms_median"] = _rounded(sync.median_ms)
        # From the first speech leaving the bot for the avatar to the user hearing the
        # avatar say it, without the avatar's own rendering time. Held speech waits
        # for the avatar, not for the relay, so the clock starts when it is sent.
        sent = next((r for r in avatar.received if any(r.pcm)), None)
        if sent is not None:
            rendering = avatar.spoken[0][0] - sent.at
            added = heard_pieces[0].at - sent.played_at - rendering
            report["relay_added_latency_ms"] = round(added * 1000, 1)
    return report


def _block_correlation(
    spoken: list[SpokenAudio], heard: list[ReceivedAudio], *, interrupted: bool
) -> float:
    """How alike what was heard is to what the avatar said, block by block.

    Each quarter second of each utterance is found in what was heard on its own
    (``av_sync.utterance_lags``): a relay may start a stretch a little later than
    the one before, or leave a gap after a stalled loop, and the rest must still
    count. The blocks' correlations are averaged, weighted by length; a block not
    found counts as 0, but for those a barge-in cut, after the last block heard.
    """
    blocks = [b for u in utterance_lags(spoken, heard) for b in u.blocks]
    while interrupted and blocks and blocks[-1].lag_s is None:
        blocks.pop()  # on its way to the user when the barge-in dropped it
    total = sum(b.end_position - b.start_position for b in blocks)
    found = sum(
        (b.end_position - b.start_position) * b.correlation for b in blocks if b.lag_s is not None
    )
    return found / total if total else 0.0


def _microphone_track(spoken: list[SpokenAudio]) -> bytes:
    """A microphone track as it played, from its pieces, pauses included."""
    pieces = [p for p in spoken if any(p.pcm)]
    if not pieces:
        return b""
    first = pieces[0].position
    track = bytearray(2 * (pieces[-1].position - first) + len(pieces[-1].pcm))
    for piece in pieces:
        at = 2 * (piece.position - first)
        track[at : at + len(piece.pcm)] = piece.pcm
    return bytes(track)


def _speech_s(pcm: bytes, rate: int) -> float:
    """Seconds of speech, pauses left out (as ``heard_speech_s`` counts it)."""
    return sum(end - start for start, end in speech_segments(pcm, rate))


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _ms(end: float | None, start: float | None) -> float | None:
    return None if end is None or start is None else round((end - start) * 1000, 1)


def _s(end: float | None, start: float | None) -> float | None:
    return None if end is None or start is None else round(end - start, 3)
