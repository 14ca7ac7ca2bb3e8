"""The demo's report: its figures, computed from what the offline stand-ins recorded.

:func:`room_report` says what the avatar received and what the user heard in any
placement; :func:`relay_report` adds how a relayed avatar looked and sounded to
the user, and what the relay cost. The benchmarks report the relay with the same
function.

A relay figure whose measure cannot work in a run is None, never a failed
measure's number, and the key named after it with ``_not_measured`` says why (None
when it was measured). The voice of a relayed avatar is looked for in what the user heard
over the whole path the network gives it (two hops, see :func:`relay_search_window`),
so the relay's figures hold however the network delays media; what they cannot
cover is speech still on its way to the user when the demo ended
(``avatar_speech_unheard_at_end_s``).
"""

import bisect
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from pipecat_bey.config import BEY_AUDIO_TRACK
from pipecat_bey.testing.audio import speech_duration_s, speech_segments
from pipecat_bey.testing.av_sync import BlockLag, lip_sync, utterance_lags, video_fps
from pipecat_bey.testing.bey_emulator import BeyEmulator
from pipecat_bey.testing.daily_sim import (
    MICROPHONE,
    SimulatedAvatar,
    SimulatedUser,
    SpokenAudio,
    custom_audio,
)
from pipecat_bey.testing.daily_sim.network import Network
from pipecat_bey.testing.harness import OfflineWorld

SEARCH_SLACK_S = 0.05
"""How much sooner than the network's least delay the relayed voice is looked for."""

SEARCH_MARGIN_S = 1.0
"""How much later than the network's most delay it is looked for: the relay's own
hold and pipecat's chunking (about 0.07 s), and the late timers of a loaded machine."""


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
        barged_in_at: When the user started to barge in, if they did.
        barge_in_skipped: Why the user did not barge in though asked to (None:
            they did, or were not asked to).
    """

    start_in: float | None = None
    start_out: float | None = None
    interruption: float | None = None
    avatar_joined: float | None = None
    errors: list[str] = field(default_factory=list)
    first_error_at: float | None = None
    barged_in_at: float | None = None
    barge_in_skipped: str | None = None


def session_keys(
    bey: BeyEmulator, seen: Seen, input_s: float, input_speech_s: float
) -> dict[str, Any]:
    """The report's first keys, on any transport: the session, the start, the bot's clip.

    Args:
        bey: The local Beyond Presence API the run used.
        seen: What the avatar service went through.
        input_s: Seconds of the bot's clip.
        input_speech_s: Seconds of speech in it.

    Returns:
        ``session_request`` (its token masked), ``session_response``, ``session_errors``,
        ``start_frame_passthrough_ms``, ``avatar_joined_s``, ``input_s``, ``input_speech_s``.
    """
    request = dict(bey.requests[0]) if bey.requests else None
    if request and "token" in request:
        request["token"] = "***"
    return {
        "session_request": request,
        "session_response": bey.sessions[0].model_dump(mode="json") if bey.sessions else None,
        "session_errors": seen.errors,
        "start_frame_passthrough_ms": ms_between(seen.start_out, seen.start_in),
        "avatar_joined_s": s_between(seen.avatar_joined, seen.start_in),
        "input_s": round(input_s, 3),
        "input_speech_s": round(input_speech_s, 3),
    }


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
    heard_bot_s = user.heard_speech_s(bot_id) if bot_id else 0.0
    late = [
        a
        for a in daily.avatars
        if seen.first_error_at is not None
        and a.joined_at_first is not None
        and a.joined_at_first > seen.first_error_at
    ]
    network = daily.network
    report: dict[str, Any] = {
        **session_keys(bey, seen, input_s, input_speech_s),
        # The room's conditions: one-way media delay, and up to this much more.
        "network_delay_s": network.delay_s,
        "jitter_s": network.jitter_s,
        "avatar_received_speech_s": None,
        "first_audio_latency_ms": None,
        "interrupted": False,
        "interrupt_latency_ms": None,
        "audio_after_interrupt_s": None,
        "barge_in": barge_in,
        "barge_in_skipped": seen.barge_in_skipped,
        # Whether the bot noticed the user barging in before the demo ended.
        "barge_in_heard_by_bot": (seen.interruption is not None)
        if seen.barged_in_at is not None
        else None,
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
        "out_not_written": None,
        "avatar_left_room": None,
        "avatar_speech_unheard_at_end_s": None,
    }
    avatar = world.avatar
    if avatar is not None and avatar.joined_times and avatar.target_room.name == world.room.name:
        # In the user's room the avatar's voice takes one hop to the user: what it
        # said less than that before the demo ended had not reached them by then.
        on_its_way = [
            p for p in avatar.mic_pieces if p.start + network.playout_delay_s > time.monotonic()
        ]
        report["avatar_speech_unheard_at_end_s"] = round(
            _speech_s(_microphone_track(on_its_way), avatar.sample_rate), 3
        )
    if avatar is None or avatar.first_speech_at() is None:
        return report
    rate = avatar.received_sample_rate or 24000
    report["avatar_received_speech_s"] = round(speech_duration_s(avatar.received_audio(), rate), 3)
    report["first_audio_latency_ms"] = ms_between(avatar.first_speech_at(), seen.avatar_joined)
    if barge_in and avatar.interrupts:
        interrupt_at = avatar.interrupts[0]
        report["interrupted"] = True
        report["interrupt_latency_ms"] = ms_between(interrupt_at, seen.interruption)
        report["audio_after_interrupt_s"] = round(avatar.speech_received_s(after=interrupt_at), 3)
        report["avatar_spoke_after_interrupt_s"] = round(avatar.spoke_s(after=interrupt_at), 3)
    return report


def relay_search_window(network: Network) -> tuple[float, float]:
    """When, after the avatar said it, its relayed voice can reach the user.

    Two hops of media (the avatar to the bot, the bot to the user), each the
    network's delay and up to its jitter (its receive buffer included), plus what
    the relay holds.

    Args:
        network: The simulated network the run had.

    Returns:
        The earliest and the latest lag to look for it at, in seconds.
    """
    return (
        2 * network.delay_s - SEARCH_SLACK_S,
        2 * max(network.playout_delay_s, network.delay_s + network.jitter_s) + SEARCH_MARGIN_S,
    )


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

    ``relay_added_latency_ms`` is what relaying adds on the way from the avatar
    to the user, over an avatar in the user's room: the hop from the avatar back
    to the bot and what the bot holds (the bot's hop to the user stands for the
    avatar's own in a room). A figure that cannot be measured is None, with the
    reason in its ``_not_measured`` key.

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
    ended_at = time.monotonic()
    network = world.daily.network
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
        "avatar_speech_unheard_at_end_s": None,
        "relay_correlation": None,
        "relay_correlation_not_measured": None,
        "video_fps": None,
        "video_fps_not_measured": None,
        "video_frames": 0,
        "video_out_of_order": 0,
        "av_skew_ms_p95": None,
        "av_skew_ms_p95_not_measured": None,
        "av_skew_ms_median": None,
        "av_skew_ms_median_not_measured": None,
        "relay_added_latency_ms": None,
        "relay_added_latency_ms_not_measured": None,
    }
    earliest, latest = relay_search_window(network)
    path = _path_note(network)
    frames = [f for f in user.received_video if f.publisher_id == bot_id]
    if frames:
        rate = video_fps(frames)
        report["video_frames"] = rate.frames
        report["video_out_of_order"] = rate.out_of_order
    if len(frames) >= 2 and frames[-1].at > frames[0].at:
        report["video_fps"] = round(video_fps(frames).fps, 1)
    else:
        got = "no frame" if not frames else "only one frame"
        report["video_fps_not_measured"] = (
            f"{got} of the bot's camera reached the user before the demo ended{path}"
        )
    # The figures of the avatar's voice, or that need it.
    voice = ("relay_correlation", "av_skew_ms_p95", "av_skew_ms_median", "relay_added_latency_ms")
    if avatar is None or not avatar.spoken or gave_up:
        # Without the avatar, what the user heard was the bot's own voice.
        why = (
            "the service gave up on the avatar, and the user heard the bot's own voice"
            if gave_up
            else "the avatar never spoke"
        )
        for key in voice:
            report[f"{key}_not_measured"] = why
        return report
    report["user_heard_bot_s"] = 0.0  # what came from the bot was the avatar's voice
    report["user_heard_avatar_s"] = user.heard_speech_s(bot_id)
    from_bot = [r for r in user.received if r.publisher_id == bot_id and r.track == MICROPHONE]
    heard_pieces = [r for r in from_bot if any(r.pcm)]
    # What the avatar said while it could still reach the user: a barge-in drops what
    # is on its way from the avatar to the user, on purpose.
    cutoff = interrupted_at - network.playout_delay_s if interrupted_at else None
    spoken = [p for p in avatar.mic_pieces if cutoff is None or p.start < cutoff]
    utterances = utterance_lags(spoken, from_bot, min_lag_s=earliest, max_lag_s=latest)
    blocks = [b for u in utterances for b in u.blocks]
    found = [b for b in blocks if b.lag_s is not None]
    # Speech still on its way to the user when the demo ended: the last blocks not
    # found, which at the lag the last one found had (at the least lag, if none was)
    # would have reached the user after the last of the relay did.
    last_lag = next((b.lag_s for b in reversed(found) if b.lag_s is not None), earliest)
    arrivals = [r.at for r in from_bot] + [f.at for f in frames]
    relay_ended = max(arrivals) if arrivals else ended_at
    unheard_from: int | None = None
    while blocks and blocks[-1].lag_s is None:
        if _played_at(spoken, blocks[-1].end_position) + last_lag <= relay_ended:
            break
        unheard_from = blocks.pop().start_position
    # A piece that reaches into the speech still on its way counts with it.
    late = [
        p
        for p in spoken
        if unheard_from is not None and p.position + len(p.pcm) // 2 > unheard_from
    ]
    on_time = [p for p in spoken if p not in late]
    report["avatar_rendered_speech_s"] = round(
        _speech_s(_microphone_track(on_time), avatar.sample_rate), 3
    )
    report["avatar_speech_unheard_at_end_s"] = round(
        _speech_s(_microphone_track(late), avatar.sample_rate), 3
    )
    if not found:
        if not any(any(p.pcm) for p in spoken):
            why = "the barge-in came before any of the avatar's voice could reach the user"
        elif not blocks:
            why = f"the demo ended before the avatar's voice could reach the user{path}"
        elif not heard_pieces:
            why = "the user heard nothing from the bot"
        else:
            why = (
                "what the avatar said was not found in what the user heard, between "
                f"{max(earliest, 0):.2f} and {latest:.2f} s after it said it{path}"
            )
        for key in voice:
            report[f"{key}_not_measured"] = why
        return report
    correlation = _block_correlation(blocks, interrupted=cutoff is not None)
    report["relay_correlation"] = round(correlation, 3)
    sync = lip_sync(frames, avatar.mic_pieces, from_bot, min_lag_s=earliest, max_lag_s=latest)
    if sync.frames_measured:
        report["av_skew_ms_p95"] = _rounded(sync.p95_abs_ms)
        report["av_skew_ms_median"] = _rounded(sync.median_ms)
    else:
        why = (
            report["video_fps_not_measured"]
            if len(frames) < 2
            else "no frame the user saw showed the avatar speaking"
        )
        report["av_skew_ms_p95_not_measured"] = report["av_skew_ms_median_not_measured"] = why
    # From the avatar saying it to the user hearing it, less the bot's own hop to the
    # user: an avatar in the user's room would have the same hop (the same network).
    # What is left is the hop from the avatar back to the bot, and what the bot holds.
    lag = next(u.lag_s for u in utterances if u.lag_s is not None)
    to_user = statistics.median(r.heard_at - r.played_at for r in heard_pieces)
    report["relay_added_latency_ms"] = round((lag - to_user) * 1000, 1)
    return report


def _path_note(network: Network) -> str:
    """How long media takes from the avatar to the user through the bot, if it takes long."""
    path = 2 * network.playout_delay_s
    if path < 0.1:
        return ""
    return (
        f" (from the avatar to the user through the bot, media takes {path:.2f} s or more "
        "here: two network hops)"
    )


def _played_at(spoken: list[SpokenAudio], position: int) -> float:
    """When the avatar's microphone played a position (from the piece at or before it)."""
    pieces = sorted(spoken, key=lambda p: p.position)
    k = max(bisect.bisect_right([p.position for p in pieces], position) - 1, 0)
    return pieces[k].start + (position - pieces[k].position) / pieces[k].sample_rate


def _block_correlation(blocks: list[BlockLag], *, interrupted: bool) -> float:
    """How alike what was heard is to what the avatar said, block by block.

    Each quarter second of each utterance is found in what was heard on its own
    (``av_sync.utterance_lags``): a relay may start a stretch a little later than
    the one before, or leave a gap after a stalled loop, and the rest must still
    count. The blocks' correlations are averaged, weighted by length; a block not
    found counts as 0, but for those a barge-in cut, after the last block heard.
    """
    blocks = list(blocks)
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


def ms_between(end: float | None, start: float | None) -> float | None:
    """Milliseconds from `start` to `end` (monotonic), or None if either is unknown."""
    return None if end is None or start is None else round((end - start) * 1000, 1)


def s_between(end: float | None, start: float | None) -> float | None:
    """Seconds from `start` to `end` (monotonic), or None if either is unknown."""
    return None if end is None or start is None else round(end - start, 3)
