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

This module runs the demo; its figures are computed in
:mod:`pipecat_bey.cli.demo.report` and put in words in
:mod:`pipecat_bey.cli.demo.summary_text`.
"""

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

from pipecat.frames.frames import ErrorFrame, Frame, InterruptionFrame, StartFrame, TTSSpeakFrame
from pipecat.observers.base_observer import BaseObserver
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.transports.daily.transport import DailyTransport

from pipecat_bey import BeyParams, BeyVideoService
from pipecat_bey.cli._io import (
    ExitsFully,
    OnCancel,
    cancel_reason,
    check_distinct,
    check_writable,
    print_now,
)
from pipecat_bey.cli.demo.report import Seen, relay_report, room_report
from pipecat_bey.testing.audio import read_wav, speech_duration_s, to_mono, write_wav
from pipecat_bey.testing.bey_emulator import Fault
from pipecat_bey.testing.daily_sim import AvatarBehaviour, SimulatedAvatar, SimulatedUser
from pipecat_bey.testing.harness import OfflineWorld, relayed_video, standard_pipeline
from pipecat_bey.testing.wav_tts import WavTTSService

DEMO_TEXT = "Hello, and welcome!"

QUIET_S = 1.5
"""The bot is done once nobody has sent speech for this long."""

FIRST_SOUND_S = 5.0
"""How long to wait for any sound at all once the avatar is there or was given up on."""

ENDING = "ending the pipeline, ejecting the avatar, closing the local services"
"""What the demo does once interrupted, as it says it."""


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
        transport: "daily" (the simulated Daily room) or "livekit" (a real LiveKit server
            in a private network namespace, see :mod:`pipecat_bey.cli.demo.livekit_runner`).
        loss_pct: LiveKit only: the share of packets lost on each hop, in percent.
        livekit_avatar: LiveKit only: more ``LiveKitAvatar`` settings (its size, whether it
            calls ``lk.playback_started``...).
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
    transport: str = "daily"
    loss_pct: float = 0.0
    livekit_avatar: dict[str, Any] = field(default_factory=dict)

    @property
    def out_path(self) -> Path:
        """Where the WAV goes."""
        if self.out is not None:
            return self.out
        return Path("user_heard.wav" if self.relay else "avatar_input.wav")


class Timeline:
    """Progress lines stamped with the time since the start."""

    def __init__(self, progress: Callable[[str], None]) -> None:
        self.t0 = time.monotonic()
        self._progress = progress

    def say(self, message: str) -> None:
        """Print `message`, stamped with the seconds since the start."""
        self._progress(f"[{time.monotonic() - self.t0:6.2f}s] {message}")


MAX_CHANNELS = 2
"""The demo takes mono or stereo speech."""


def _load_speech(path: Path, what: str = "--input") -> tuple[bytes, int]:
    """Read a clip the demo plays, refusing one with nothing to say.

    Raises:
        ValueError: Naming the option, the file, what is wrong with it and what to do.
    """
    if path.is_dir():
        raise ValueError(f"{what} {path}: is a directory; give a WAV file (16-bit, mono or stereo)")
    if not path.exists():
        raise ValueError(f"{what} {path}: no such file")
    if not path.is_file():
        raise ValueError(
            f"{what} {path}: not a regular file (a device or a pipe); give a WAV file "
            "(16-bit, mono or stereo)"
        )
    if path.stat().st_size == 0:
        raise ValueError(f"{what} {path}: the file is empty; give a WAV file with speech in it")
    try:
        pcm, rate, channels = read_wav(path)
    except EOFError:
        raise ValueError(f"{path}: the WAV file is cut short, inside its header") from None
    if channels > MAX_CHANNELS:
        mono = path.with_name(f"{path.stem}-mono.wav")
        raise ValueError(
            f"{what} {path}: the WAV file has {channels} channels; the demo takes mono or stereo. "
            f"Mix it down first: `sox {path} -c 1 {mono}` or `ffmpeg -i {path} -ac 1 {mono}`"
        )
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
        ValueError: Naming the file and the problem (missing, a directory or a
            device, empty, not a WAV, more than two channels; an output that cannot
            be written, or that would overwrite the input or the other output).
    """
    speech = _load_speech(options.speech)
    if options.barge_in:
        _load_speech(options.barge_in_speech, "the barge-in clip")
    check_distinct(
        {"--out": options.out_path, "--report": options.report}, {"--input": options.speech}
    )
    check_writable(options.out_path, "--out")
    if options.report is not None:
        check_writable(options.report, "--report")
    return speech


async def run_demo(
    options: DemoOptions, progress: Callable[[str], None] = print_now
) -> dict[str, Any]:
    """Run the demo and return its report.

    Cancelling it (Ctrl-C) cancels the pipeline, which ejects the avatar, and
    closes the local services before the cancellation goes on (said as it
    starts); a cancellation that comes while they close does not cut that short.

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
    timeline = Timeline(progress)
    seen = Seen()

    behaviour = options.behaviour or AvatarBehaviour(
        join_delay_s=options.avatar_join_delay_s, subscribe_delay_s=options.subscribe_delay_s
    )
    interrupted = OnCancel(lambda e: timeline.say(f"interrupted ({cancel_reason(e)}): {ENDING}"))
    async with (
        ExitsFully(
            OfflineWorld(
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
            )
        ) as world,
        interrupted,
    ):
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
        watch_service(avatar, seen, timeline)
        tts = WavTTSService(default_clip=options.speech)
        run = await world.start(
            standard_pipeline(transport, tts, avatar),
            params=PipelineParams(enable_metrics=True),
            observers=options.observers,
        )
        watch_other_errors(run.worker, avatar, timeline)
        timeline.say(f"pipeline started; the bot says {input_speech_s:.1f} s of speech")
        await run.queue_frames(TTSSpeakFrame(DEMO_TEXT))

        await _converse(world, options, timeline, seen, input_speech_s, patience_s)
        timeline.say("the bot is done speaking; ending the pipeline")
        # The bot's id in the room, while it is there (the transport forgets it on leaving).
        bot_id = str((transport.participants().get("local") or {}).get("id") or "")
        await run.end()
        timeline.say("pipeline ended")

        report = room_report(
            world, seen, bot_id, input_s, input_speech_s, barge_in=options.barge_in
        )
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
        if report["out"] is None:
            report["out_not_written"] = _why_no_out(options, world, seen)
    if options.report:
        options.report.write_text(json.dumps(report, indent=2))
    return report


def watch_service(service: BeyVideoService, seen: Seen, timeline: Timeline) -> None:
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


def watch_other_errors(
    worker: PipelineWorker, service: BeyVideoService, timeline: Timeline
) -> None:
    """Say errors of other processors (the avatar's own are said by its event)."""

    @worker.event_handler("on_pipeline_error")
    async def on_pipeline_error(worker: PipelineWorker, frame: ErrorFrame) -> None:
        if frame.processor is not service:
            timeline.say(f"error in {frame.processor}: {frame.error}")


async def _converse(
    world: OfflineWorld,
    options: DemoOptions,
    timeline: Timeline,
    seen: Seen,
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
            seen.barged_in_at = time.monotonic()
            barge_in = asyncio.create_task(user.speak_wav(options.barge_in_speech))
        elif options.barge_in:
            seen.barge_in_skipped = _why_no_barge_in(seen)
            timeline.say(f"the user does not barge in: {seen.barge_in_skipped}")
        await _wait_quiet(world, timeout_s=patience_s + 30)
        if barge_in is not None:
            await barge_in
    finally:
        if barge_in is not None and not barge_in.done():
            barge_in.cancel()


def _why_no_barge_in(seen: Seen) -> str:
    """Why the demo's barge-in, midway through the avatar's speech, could not happen."""
    why = "the barge-in comes midway through the speech the avatar receives, and "
    if seen.errors:
        return why + "the service gave up on the avatar: the bot's own voice speaks instead"
    return why + "no avatar received any"


def _why_no_out(options: DemoOptions, world: OfflineWorld, seen: Seen) -> str:
    """Why ``--out`` was not written, as the summary says it."""
    path, avatar = options.out_path, world.avatar
    if options.relay:
        why = "the user heard nothing from the bot"
    elif avatar is None or avatar.joined_at_first is None:
        why = "no avatar came, so none received any speech"
    elif seen.first_error_at is not None and avatar.joined_at_first > seen.first_error_at:
        why = (
            "the avatar received no speech: it came only after the service had given up on "
            "it, and the bot said everything in its own voice"
        )
    else:
        why = "the avatar received no speech"
    earlier = f" (the {path} there is from an earlier run)" if path.exists() else ""
    return f"Nothing was written to {path}{earlier}, as {why}."


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
