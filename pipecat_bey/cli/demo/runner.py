"""``pipecat-bey demo``: a real bot pipeline with the avatar, run offline.

Everything is real pipecat except the services on the far side: the bot's
speech comes from a WAV through a TTS stand-in, ``BeyVideoService`` starts a
session on the local Beyond Presence API, and the real ``DailyTransport`` joins
a simulated Daily room where a simulated avatar and a simulated user are (an
``OfflineWorld``). The user barges in once midway (unless told not to). What
the avatar received is written to a WAV file, and the run is summarised (and
reported as JSON).

With ``relay`` the avatar is put backstage instead: the bot's DailyTransport is
only its output to the user's room, the avatar joins a private room the
service creates, and its face and voice reach the user through the bot. The
WAV then holds what the user heard, and the report says how it looked and
sounded to them (frame rate, lip sync, the latency the relay adds).
"""

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any, TextIO

from pipecat.frames.frames import ErrorFrame, Frame, InterruptionFrame, StartFrame, TTSSpeakFrame
from pipecat.observers.base_observer import BaseObserver
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.transports.daily.transport import DailyTransport

from pipecat_bey import BeyParams, BeyVideoService
from pipecat_bey.cli._io import check_writable, print_now
from pipecat_bey.config import BEY_AUDIO_TRACK
from pipecat_bey.testing.audio import (
    read_wav,
    speech_duration_s,
    speech_segments,
    to_mono,
    write_wav,
)
from pipecat_bey.testing.av_sync import lip_sync, utterance_lags, video_fps
from pipecat_bey.testing.bey_emulator import Fault
from pipecat_bey.testing.daily_sim import (
    AvatarBehaviour,
    ReceivedAudio,
    SimulatedAvatar,
    SimulatedUser,
    SpokenAudio,
    custom_audio,
)
from pipecat_bey.testing.harness import OfflineWorld, relayed_video, standard_pipeline
from pipecat_bey.testing.wav_tts import WavTTSService

DEMO_TEXT = "Hello, and welcome!"

STALE_SPEECH_BOUND_S = 0.1
"""The most speech from before a barge-in the avatar speaks after it (the README's bound).

It holds while speech in flight (network delay plus jitter) arrives within
``interrupt_repeats * interrupt_repeat_interval_s`` (0.3 s by default).
"""

QUIET_S = 1.5
"""The bot is done once nobody has sent speech for this long."""

FIRST_SOUND_S = 5.0
"""How long to wait for any sound at all once the avatar is there or was given up on."""


def default_speech() -> Path:
    """The clip the demo bot says by default.

    Returns:
        Its path.
    """
    return Path(str(files("pipecat_bey") / "assets" / "demo_speech.wav"))


def default_barge_in() -> Path:
    """The clip the simulated user interrupts with.

    Returns:
        Its path.
    """
    return Path(str(files("pipecat_bey") / "assets" / "barge_in.wav"))


@dataclass
class DemoOptions:
    """What the demo runs.

    Parameters:
        speech: WAV the bot says (mono or stereo, 16-bit).
        out: Where to write what the avatar received (with ``relay``: what the
            user heard). None: ``avatar_input.wav`` (``user_heard.wav``).
        relay: Put the avatar backstage and relay its face and voice through the
            bot's output, instead of having it join the user's room.
        avatar_join_delay_s: Seconds the avatar takes to join after the session starts.
        api_latency_s: Seconds the local Bey API takes to answer.
        subscribe_delay_s: Seconds from the avatar joining to it listening to the
            bot's track (its camera comes on then).
        network_delay_s: One-way media delay in the simulated room; app messages
            take half of it, on their own path, so they can overtake audio.
        jitter_s: Up to this much more media delay, at random.
        barge_in: Whether the user interrupts once, midway.
        report: Where to write the JSON report, if anywhere.
        behaviour: The avatar's behaviour (overrides the join delay).
        faults: Faults the local Bey API serves, in order.
        bey_params: The service's tuning.
        barge_in_speech: WAV the user interrupts with.
        observers: Pipecat observers to attach to the pipeline.
        bey_key: The key the local Bey API accepts (default: a fresh random one).
        daily_key: The key the simulated Daily accepts (default: a fresh random one).
    """

    speech: Path = field(default_factory=default_speech)
    out: Path | None = None
    relay: bool = False
    avatar_join_delay_s: float = 1.0
    api_latency_s: float = 0.3
    subscribe_delay_s: float = 0.0
    network_delay_s: float = 0.0
    jitter_s: float = 0.0
    barge_in: bool = True
    report: Path | None = None
    behaviour: AvatarBehaviour | None = None
    faults: list[Fault] = field(default_factory=list)
    bey_params: BeyParams | None = None
    barge_in_speech: Path = field(default_factory=default_barge_in)
    observers: list[BaseObserver] = field(default_factory=list)
    bey_key: str | None = None
    daily_key: str | None = None

    @property
    def out_path(self) -> Path:
        """Where the WAV goes."""
        if self.out is not None:
            return self.out
        return Path("user_heard.wav" if self.relay else "avatar_input.wav")


class _Timeline:
    """Progress lines stamped with the time since the start."""

    def __init__(self, progress: Callable[[str], None]) -> None:
        self.t0 = time.monotonic()
        self._progress = progress

    def say(self, message: str) -> None:
        self._progress(f"[{time.monotonic() - self.t0:6.2f}s] {message}")


@dataclass
class _Seen:
    """What the avatar service went through, with monotonic times."""

    start_in: float | None = None
    start_out: float | None = None
    interruption: float | None = None
    avatar_joined: float | None = None
    errors: list[str] = field(default_factory=list)
    first_error_at: float | None = None


def _load_speech(path: Path) -> tuple[bytes, int]:
    """Read a clip the demo plays, refusing one with nothing to say.

    Raises:
        ValueError: Naming the file and what is wrong with it.
    """
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    try:
        pcm, rate, channels = read_wav(path)
    except EOFError:
        raise ValueError(f"{path}: the WAV file is cut short, inside its header") from None
    speech = to_mono(pcm, channels)
    if len(speech) < 2:
        raise ValueError(f"{path}: the WAV file has no audio samples (only a header)")
    if speech_duration_s(speech, rate) == 0:
        raise ValueError(f"{path}: the WAV file holds only silence; the demo needs speech")
    return speech, rate


def check_options(options: DemoOptions) -> tuple[bytes, int]:
    """Check the demo's files before anything starts.

    Args:
        options: What to run.

    Returns:
        The bot's speech (16-bit mono PCM) and its sample rate.

    Raises:
        ValueError: Naming the file and the problem (missing, empty, not a WAV,
            or an output whose directory does not exist).
    """
    speech = _load_speech(options.speech)
    if options.barge_in:
        _load_speech(options.barge_in_speech)
    check_writable(options.out_path, "--out")
    if options.report is not None:
        check_writable(options.report, "--report")
    return speech


async def run_demo(
    options: DemoOptions, progress: Callable[[str], None] = print_now
) -> dict[str, Any]:
    """Run the demo and return its report.

    Cancelling it (Ctrl-C) cancels the pipeline, which ejects the avatar, and
    closes the local services before the cancellation goes on.

    Args:
        options: What to run.
        progress: Where progress lines go.

    Returns:
        The report (also written to ``options.report`` if set).

    Raises:
        ValueError: If a file is unusable (see :func:`check_options`); nothing has run.
    """
    speech, rate = check_options(options)
    input_s = len(speech) / 2 / rate
    input_speech_s = speech_duration_s(speech, rate)
    params = options.bey_params or BeyParams()
    # The service gives up on the avatar after its join timeout: wait past that.
    patience_s = params.avatar_join_timeout_s + options.api_latency_s + 10 + input_s
    timeline = _Timeline(progress)
    seen = _Seen()

    behaviour = options.behaviour or AvatarBehaviour(
        join_delay_s=options.avatar_join_delay_s, subscribe_delay_s=options.subscribe_delay_s
    )
    async with OfflineWorld(
        behaviour=behaviour,
        api_latency_s=options.api_latency_s,
        bey_key=options.bey_key,
        daily_key=options.daily_key,
        room_name="pipecat-bey-demo",
        # A client that plays every track it receives: hearing the bot twice shows.
        user_plays_custom_tracks=True,
        network_delay_s=options.network_delay_s,
        jitter_s=options.jitter_s,
        app_message_delay_s=options.network_delay_s / 2,
    ) as world:
        world.bey.script(*options.faults)
        timeline.say(f"room {world.room.url} ready, the user is in it")
        # The avatar's face goes out on the bot's camera: live, at its size and rate.
        video = relayed_video(behaviour) if options.relay else {}
        transport = world.transport(**video)
        avatar = world.avatar_service(
            transport, params=params, placement="relay" if options.relay else "room"
        )
        if options.relay:
            _watch_bot_camera(transport, world.user)
        _watch_service(avatar, seen, timeline)
        tts = WavTTSService(default_clip=options.speech)
        run = await world.start(
            standard_pipeline(transport, tts, avatar),
            params=PipelineParams(enable_metrics=True),
            observers=options.observers,
        )
        _watch_other_errors(run.worker, avatar, timeline)
        timeline.say(f"pipeline started; the bot says {input_speech_s:.1f} s of speech")
        await run.queue_frames(TTSSpeakFrame(DEMO_TEXT))

        await _converse(world, options, timeline, seen, input_speech_s, patience_s)
        timeline.say("the bot is done speaking; ending the pipeline")
        # The bot's id in the room, while it is there (the transport forgets it on leaving).
        bot_id = str((transport.participants().get("local") or {}).get("id") or "")
        await run.end()
        timeline.say("pipeline ended")

        report = _report(world, options, seen, bot_id, input_s, input_speech_s)
        report["placement"] = avatar.placement
        # More speech than max_held_audio_s came while the avatar was on its way.
        report["held_speech_dropped_s"] = round(avatar.dropped_speech_s, 3)
        the_avatar = world.avatar
        if options.relay:
            assert world.user is not None
            report |= relay_report(
                world,
                world.user,
                bot_id,
                the_avatar,
                gave_up=bool(seen.errors),
                interrupted_at=seen.interruption,
            )
            heard = world.user.heard_audio(bot_id) if bot_id else b""
            if heard:
                write_wav(options.out_path, heard, _heard_rate(world.user, bot_id))
                report["out"] = str(options.out_path)
        if the_avatar is not None:
            report["avatar_left_room"] = not the_avatar.in_room
            if the_avatar.first_speech_at() is not None and not options.relay:
                received = the_avatar.received_audio()
                write_wav(options.out_path, received, the_avatar.received_sample_rate or rate)
                report["out"] = str(options.out_path)
    if options.report:
        options.report.write_text(json.dumps(report, indent=2))
    return report


def _watch_service(service: BeyVideoService, seen: _Seen, timeline: _Timeline) -> None:
    """Record what the avatar service goes through, and say it as it happens."""

    @service.event_handler("on_before_process_frame")
    def before(processor: FrameProcessor, frame: Frame) -> None:
        if isinstance(frame, StartFrame):
            seen.start_in = time.monotonic()
        elif isinstance(frame, InterruptionFrame) and seen.interruption is None:
            seen.interruption = time.monotonic()

    @service.event_handler("on_after_push_frame")
    def after(processor: FrameProcessor, frame: Frame) -> None:
        if isinstance(frame, StartFrame):
            seen.start_out = time.monotonic()

    @service.event_handler("on_session_started")
    async def on_session_started(service: BeyVideoService, session: Any) -> None:
        timeline.say(f"Beyond Presence session {session.id} started")

    @service.event_handler("on_avatar_joined")
    async def on_avatar_joined(service: BeyVideoService, participant: Any) -> None:
        if seen.avatar_joined is None:
            seen.avatar_joined = time.monotonic()
        timeline.say("the avatar joined the room")

    @service.event_handler("on_avatar_left")
    async def on_avatar_left(service: BeyVideoService, participant: Any, reason: Any) -> None:
        timeline.say("the avatar left the room")

    @service.event_handler("on_session_error")
    async def on_session_error(service: BeyVideoService, error: Exception) -> None:
        # The error itself is said once, in the summary.
        seen.errors.append(str(error))
        if seen.first_error_at is None:
            seen.first_error_at = time.monotonic()
        timeline.say("the service gave up on the avatar; the bot speaks in its own voice")


def _watch_bot_camera(transport: DailyTransport, user: SimulatedUser | None) -> None:
    """Have the user watch the bot's camera (the relayed avatar) once the bot is in."""

    @transport.event_handler("on_joined")
    async def on_joined(transport: DailyTransport, data: Any) -> None:
        bot_id = ((data or {}).get("participants") or {}).get("local", {}).get("id")
        if user is not None and bot_id:
            user.watch_video(str(bot_id))


def _heard_rate(user: SimulatedUser, publisher_id: str) -> int:
    pieces = [r for r in user.received if r.publisher_id == publisher_id]
    return pieces[0].sample_rate if pieces else 24000


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


def _watch_other_errors(
    worker: PipelineWorker, service: BeyVideoService, timeline: _Timeline
) -> None:
    """Say errors of other processors (the avatar's own are said by its event)."""

    @worker.event_handler("on_pipeline_error")
    async def on_pipeline_error(worker: PipelineWorker, frame: ErrorFrame) -> None:
        if frame.processor is not service:
            timeline.say(f"error in {frame.processor}: {frame.error}")


async def _converse(
    world: OfflineWorld,
    options: DemoOptions,
    timeline: _Timeline,
    seen: _Seen,
    speech_s: float,
    patience_s: float,
) -> None:
    """Let the bot speak, barge in once if asked, and return once the bot is done."""
    daily = world.daily
    user = world.user
    assert user is not None

    def speaking_avatar() -> SimulatedAvatar | None:
        return next((a for a in daily.avatars if a.first_speech_at() is not None), None)

    await daily.wait_for(lambda: bool(seen.errors) or speaking_avatar() is not None, patience_s)
    barge_in: asyncio.Task[None] | None = None
    try:
        the_avatar = speaking_avatar()
        if options.barge_in and the_avatar is not None:
            midway = min(speech_s / 2, 2.0)
            await daily.wait_for(lambda: the_avatar.speech_received_s() >= midway, patience_s)
            timeline.say("the user barges in")
            barge_in = asyncio.create_task(user.speak_wav(options.barge_in_speech))
        await _wait_quiet(world, timeout_s=patience_s + 30)
        if barge_in is not None:
            await barge_in
    finally:
        if barge_in is not None and not barge_in.done():
            barge_in.cancel()


async def _wait_quiet(world: OfflineWorld, timeout_s: float) -> None:
    """Wait until nobody has sent speech for ``QUIET_S`` (the bot is done)."""
    since = time.monotonic()

    def quiet() -> bool:
        listeners = [world.user, *world.daily.avatars]  # an avatar may come late
        times = [p.last_sound_at() for p in listeners if p is not None]
        last = max((t for t in times if t is not None), default=None)
        if last is None:  # nothing sounded yet: give the first sound a while to come
            return time.monotonic() - since > FIRST_SOUND_S
        return time.monotonic() - last > QUIET_S

    await world.daily.wait_for(quiet, timeout_s)


def _report(
    world: OfflineWorld,
    options: DemoOptions,
    seen: _Seen,
    bot_id: str,
    input_s: float,
    input_speech_s: float,
) -> dict[str, Any]:
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
        "barge_in": options.barge_in,
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
    if options.barge_in and avatar.interrupts:
        interrupt_at = avatar.interrupts[0]
        report["interrupted"] = True
        report["interrupt_latency_ms"] = _ms(interrupt_at, seen.interruption)
        report["audio_after_interrupt_s"] = round(avatar.speech_received_s(after=interrupt_at), 3)
        report["avatar_spoke_after_interrupt_s"] = round(avatar.spoke_s(after=interrupt_at), 3)
    return report


def _ms(end: float | None, start: float | None) -> float | None:
    return None if end is None or start is None else round((end - start) * 1000, 1)


def _s(end: float | None, start: float | None) -> float | None:
    return None if end is None or start is None else round(end - start, 3)


def heard_anything(report: dict[str, Any]) -> bool:
    """Whether the user heard the bot at all, through the avatar or its own voice.

    Args:
        report: A report from :func:`run_demo`.

    Returns:
        True if the user heard some speech.
    """
    return (report.get("user_heard_bot_s") or 0) + (report.get("user_heard_avatar_s") or 0) > 0


def summary(report: dict[str, Any]) -> str:
    """The report in plain words.

    Args:
        report: A report from :func:`run_demo`.

    Returns:
        The text, a few lines.
    """
    lines = [
        f"The bot said {report['input_speech_s']:.2f} s of speech.",
        f"The pipeline started at once (the avatar service held it up "
        f"{report['start_frame_passthrough_ms']} ms).",
    ]
    received = report["avatar_received_speech_s"]
    if report["session_errors"]:
        lines += _without_avatar(report)
    elif received is None:
        lines.append("No avatar received any speech.")
    if received is not None:
        lines.append(
            f"The avatar joined {_num(report['avatar_joined_s'], '.2f')} s after the start; the "
            f"first speech reached it {_num(report['first_audio_latency_ms'], '.0f')} ms later."
        )
        lines += _delivery(report)
    dropped = report.get("held_speech_dropped_s")
    if dropped:
        lines.append(
            f"{dropped:.2f} s of the speech came while the avatar was still on its way, more "
            "than the service holds for it (max_held_audio_s), so the oldest was dropped."
        )
    heard = []
    if report["user_heard_avatar_s"]:
        heard.append(f"the avatar for {report['user_heard_avatar_s']:.2f} s")
    if report["user_heard_bot_s"]:
        heard.append(f"the bot's own voice for {report['user_heard_bot_s']:.2f} s")
    if heard:
        lines.append(f"The user heard {' and '.join(heard)}.")
    if report.get("user_heard_raw_tts_s"):
        lines.append(
            f"The user also heard {report['user_heard_raw_tts_s']:.2f} s of the bot's raw "
            "speech on the avatar's track."
        )
    if report.get("placement") == "relay":
        lines += _relay_lines(report)
    elif received is not None:
        lines.append(f"What the avatar received: {report['out']}")
    if received is not None:
        lines.append(
            "The avatar left the room at the end."
            if report["avatar_left_room"]
            else "The avatar was still in the room at the end."
        )
    return "\n".join(["", "Summary", *(f"  {line}" for line in lines)])


def _relay_lines(report: dict[str, Any]) -> list[str]:
    """How the relayed avatar looked and sounded to the user."""
    lines = [
        "The avatar was backstage, in a private room"
        + (
            ", and never in the user's room."
            if not report["avatar_in_user_room"]
            else "; it was in the user's room too."
        )
    ]
    if report["video_fps"] is not None:
        lines.append(
            f"The user saw it at {report['video_fps']:.1f} frames per second"
            + (
                f", lip sync within {report['av_skew_ms_p95']:.0f} ms (95 % of frames)."
                if report["av_skew_ms_p95"] is not None
                else "."
            )
        )
    if report["relay_correlation"] is not None:
        lines.append(
            f"What the user heard matches what the avatar said (correlation "
            f"{report['relay_correlation']:.2f}); the relay added "
            f"{_num(report['relay_added_latency_ms'], '.0f')} ms from the bot's speech to the "
            "user, the avatar's own rendering aside."
        )
    left = report["backstage_rooms_left"]
    lines.append(
        "Its private room was deleted at the end."
        if not left
        else f"Private rooms left behind: {', '.join(left)}."
    )
    if report["out"]:
        lines.append(f"What the user heard: {report['out']}")
    return lines


def _num(value: float | None, spec: str) -> str:
    return "?" if value is None else format(value, spec)


def _without_avatar(report: dict[str, Any]) -> list[str]:
    """Why there was no avatar, and what the bot did instead."""
    lines = [f"No avatar: {'; then '.join(report['session_errors'])}."]
    if report["fallback"]:
        lines.append("The bot spoke in its own voice instead.")
    else:
        lines.append("The bot's own voice was not heard either.")
    late = report["late_avatar_ejected"]
    if late is True:
        lines.append("The avatar came later, and was ejected at the end.")
    elif late is False:
        lines.append("The avatar came later, and was still in the room at the end.")
    return lines


def _delivery(report: dict[str, Any]) -> list[str]:
    """How much of the speech reached the avatar, speech against speech."""
    said, received = report["input_speech_s"], report["avatar_received_speech_s"]
    if report["interrupted"]:
        after = report["audio_after_interrupt_s"]
        spoke = report["avatar_spoke_after_interrupt_s"] or 0.0
        lines = [
            f"It received {received:.2f} s of the {said:.2f} s before the user barged in; "
            "the barge-in cut the rest.",
            f"It was told to stop {report['interrupt_latency_ms']} ms after the barge-in.",
            "No speech from before the interruption reached the avatar after it."
            if not after
            else f"{after:.2f} s of speech from before the interruption was still on its way "
            f"and reached it after; it spoke {spoke:.2f} s of it (the README's bound: "
            f"{STALE_SPEECH_BOUND_S:g} s).",
        ]
        return lines
    # Both are measured from the first sound to the last; a few 10 ms windows of
    # difference are measurement, not loss.
    missing = said - received
    line = f"It received {received:.2f} s of the {said:.2f} s of speech" + (
        ": all of it." if missing <= 0.15 else f"; {missing:.2f} s did not reach it."
    )
    lines = [line]
    if report["barge_in"]:
        lines.append("The user barged in, but the avatar was not interrupted.")
    return lines


# pipecat logs every ErrorFrame twice (where it is pushed, and where it reaches the
# start of the pipeline); the demo says each error once, through the events.
_DUPLICATE_ERROR_LOGS = {
    ("pipecat.processors.frame_processor", "push_error_frame"),
    ("pipecat.pipeline.worker", "_source_push_frame"),
}


def _not_a_duplicate(record: dict[str, Any]) -> bool:
    return (record["name"], record["function"]) not in _DUPLICATE_ERROR_LOGS


def add_log_sink(stream: TextIO) -> int:
    """Log warnings and errors to ``stream``, one line each, as the demo shows them.

    pipecat's own logs of an ``ErrorFrame`` are left out: the demo says each error
    once, as it happens.

    Args:
        stream: Where the lines go.

    Returns:
        The loguru handler id (for ``logger.remove``).
    """
    from loguru import logger

    # loguru ends each message with a newline itself when the format is a string.
    return logger.add(stream, level="WARNING", format="{level}: {message}", filter=_not_a_duplicate)


def options_from_args(args: argparse.Namespace) -> DemoOptions:
    """The demo's options from ``pipecat-bey demo``'s command line.

    Args:
        args: The parsed command line.

    Returns:
        The options.
    """
    options = DemoOptions(
        out=args.out,
        relay=args.relay,
        avatar_join_delay_s=args.avatar_join_delay,
        api_latency_s=args.api_latency,
        subscribe_delay_s=args.subscribe_delay,
        network_delay_s=args.network_delay,
        jitter_s=args.jitter,
        barge_in=not args.no_barge_in,
        report=args.report,
    )
    if args.input is not None:
        options.speech = args.input
    return options


def print_outcome(report: dict[str, Any]) -> int:
    """Print the summary and tell how the run went.

    Args:
        report: A report from :func:`run_demo`.

    Returns:
        The exit status: 0 when the user heard the bot (through the avatar or, as a
        fallback, its own voice), 1 when they heard nothing.
    """
    print(summary(report))
    if heard_anything(report):
        return 0
    print(
        "pipecat-bey: error: the user heard nothing, neither the avatar nor the bot's voice",
        file=sys.stderr,
    )
    return 1


def run_demo_cli(args: argparse.Namespace) -> int:
    """Run ``pipecat-bey demo`` with parsed arguments.

    Args:
        args: The command line.

    Returns:
        The exit status: see :func:`print_outcome`; 130 when interrupted (Ctrl-C).

    Raises:
        ValueError: If a file is unusable; nothing has run.
    """
    from loguru import logger

    logger.remove()
    add_log_sink(sys.stderr)
    options = options_from_args(args)
    try:
        # Ctrl-C cancels run_demo, which cancels the pipeline and closes the local
        # services before asyncio.run raises KeyboardInterrupt here.
        report = asyncio.run(run_demo(options))
    except KeyboardInterrupt:
        print("pipecat-bey: demo interrupted", file=sys.stderr)
        return 130
    return print_outcome(report)
