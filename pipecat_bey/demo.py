"""``pipecat-bey demo``: a real bot pipeline with the avatar, run offline.

Everything is real pipecat except the services on the far side: the bot's
speech comes from a WAV through a TTS stand-in, ``BeyVideoService`` starts a
session on the local Beyond Presence API, and the real ``DailyTransport`` joins
a simulated Daily room where a simulated avatar and a simulated user are.
The user barges in once midway (unless told not to). What the avatar received
is written to a WAV file, and the run is summarised (and reported as JSON).
"""

import argparse
import asyncio
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.frames.frames import EndFrame, Frame, InterruptionFrame, StartFrame, TTSSpeakFrame
from pipecat.observers.base_observer import BaseObserver
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.transports.daily.transport import DailyParams, DailyTransport
from pipecat.workers.runner import WorkerRunner

from pipecat_bey.testing.audio import (
    read_wav,
    speech_duration_s,
    speech_segments,
    to_mono,
    write_wav,
)
from pipecat_bey.testing.bey_emulator import BeyEmulator, Fault
from pipecat_bey.testing.daily_sim import (
    AvatarBehaviour,
    DailySimulation,
    SimulatedAvatar,
    SimulatedUser,
)
from pipecat_bey.testing.wav_tts import WavTTSService
from pipecat_bey.video import BeyParams, BeyVideoService

DEMO_TEXT = "Hello, and welcome!"


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
        out: Where to write what the avatar received.
        avatar_join_delay_s: Seconds the avatar takes to join after the session starts.
        api_latency_s: Seconds the local Bey API takes to answer.
        barge_in: Whether the user interrupts once, midway.
        report: Where to write the JSON report, if anywhere.
        behaviour: The avatar's behaviour (overrides the join delay).
        faults: Faults the local Bey API serves, in order.
        bey_params: The service's tuning.
        barge_in_speech: WAV the user interrupts with.
        observers: Pipecat observers to attach to the pipeline.
    """

    speech: Path = field(default_factory=default_speech)
    out: Path = Path("avatar_input.wav")
    avatar_join_delay_s: float = 1.0
    api_latency_s: float = 0.3
    barge_in: bool = True
    report: Path | None = None
    behaviour: AvatarBehaviour | None = None
    faults: list[Fault] = field(default_factory=list)
    bey_params: BeyParams | None = None
    barge_in_speech: Path = field(default_factory=default_barge_in)
    observers: list[BaseObserver] = field(default_factory=list)


class _Timeline:
    """Monotonic times of what happened, relative to the start."""

    def __init__(self, progress: Callable[[str], None]) -> None:
        self.t0 = time.monotonic()
        self._progress = progress

    def say(self, message: str) -> None:
        self._progress(f"[{time.monotonic() - self.t0:6.2f}s] {message}")


async def run_demo(options: DemoOptions, progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the demo and return its report.

    Args:
        options: What to run.
        progress: Where progress lines go.

    Returns:
        The report (also written to ``options.report`` if set).
    """
    timeline = _Timeline(progress)
    pcm, rate, channels = read_wav(options.speech)
    speech = to_mono(pcm, channels)
    input_s = len(speech) / 2 / rate
    bey_key, daily_key = f"bey-demo-{secrets.token_hex(8)}", f"daily-demo-{secrets.token_hex(8)}"
    behaviour = options.behaviour or AvatarBehaviour(join_delay_s=options.avatar_join_delay_s)

    async with (
        BeyEmulator(api_keys={bey_key}, latency=options.api_latency_s) as bey,
        DailySimulation(api_key=daily_key) as daily,
    ):
        bey.script(*options.faults)
        room = daily.create_room("pipecat-bey-demo")
        daily.attach_bey(bey, behaviour)
        user = SimulatedUser(daily, room, "User")
        await user.join()
        timeline.say(f"room {room.url} ready, the user is in it")

        transport = DailyTransport(
            room.url,
            daily.mint_token(room, user_name="Bot", ttl_s=3600),
            "Bot",
            DailyParams(audio_in_enabled=True, audio_out_enabled=True),
        )
        avatar = BeyVideoService(
            transport=transport,
            api_key=bey_key,
            api_url=bey.url,
            daily_api_key=daily_key,
            daily_api_url=daily.rest_url,
            params=options.bey_params,
        )
        aggregators = LLMContextAggregatorPair(
            LLMContext(), user_params=LLMUserAggregatorParams(vad_analyzer=SileroVADAnalyzer())
        )
        tts = WavTTSService(default_clip=options.speech)
        pipeline = Pipeline(
            [
                transport.input(),
                aggregators.user(),
                tts,
                avatar,
                transport.output(),
                aggregators.assistant(),
            ]
        )
        worker = PipelineWorker(
            pipeline, params=PipelineParams(enable_metrics=True), observers=options.observers
        )

        marks: dict[str, float] = {}
        errors: list[str] = []

        @avatar.event_handler("on_before_process_frame")
        def before(processor: FrameProcessor, frame: Frame) -> None:
            if isinstance(frame, StartFrame):
                marks["start_in"] = time.monotonic()
            elif isinstance(frame, InterruptionFrame) and "interruption" not in marks:
                marks["interruption"] = time.monotonic()

        @avatar.event_handler("on_after_push_frame")
        def after(processor: FrameProcessor, frame: Frame) -> None:
            if isinstance(frame, StartFrame):
                marks["start_out"] = time.monotonic()

        @avatar.event_handler("on_session_started")
        async def on_session_started(service: BeyVideoService, session: Any) -> None:
            timeline.say(f"Beyond Presence session {session.id} started")

        @avatar.event_handler("on_avatar_joined")
        async def on_avatar_joined(service: BeyVideoService, participant: Any) -> None:
            marks["avatar_joined"] = time.monotonic()
            timeline.say("the avatar joined the room")

        @avatar.event_handler("on_session_error")
        async def on_session_error(service: BeyVideoService, error: Exception) -> None:
            errors.append(str(error))
            timeline.say(f"no avatar: {error}; the bot speaks in its own voice")

        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(worker)
        run = asyncio.create_task(runner.run())
        timeline.say(f"pipeline started; the bot says {input_s:.1f} s of speech")
        await worker.queue_frame(TTSSpeakFrame(DEMO_TEXT))

        the_avatar = await _wait_for_speech(daily, user, avatar, errors, timeout_s=30 + input_s)
        if options.barge_in and the_avatar is not None:
            await _wait_received(the_avatar, min(input_s / 2, 2.0), timeout_s=30 + input_s)
            timeline.say("the user barges in")
            barge_in = asyncio.create_task(user.speak_wav(options.barge_in_speech))
        await _wait_quiet(daily, user, avatar, quiet_s=1.5, timeout_s=60 + input_s)
        # An avatar may still have come after the service gave up on it.
        the_avatar = next((a for a in daily.avatars if _speech_received(a) > 0), None)
        if options.barge_in and the_avatar is not None:
            await barge_in
        timeline.say("the bot is done speaking; ending the pipeline")
        await worker.queue_frame(EndFrame())
        await asyncio.wait_for(run, 30)
        timeline.say("pipeline ended")

        report = _report(options, bey, the_avatar, user, avatar, marks, errors, input_s)
        if the_avatar is not None:
            received = the_avatar.received_audio()
            write_wav(options.out, received, the_avatar.received_sample_rate or rate)
            report["out"] = str(options.out)
            report["avatar_left_room"] = not the_avatar.in_room
    if options.report:
        options.report.write_text(json.dumps(report, indent=2))
    return report


async def _wait_for_speech(
    daily: DailySimulation,
    user: SimulatedUser,
    service: BeyVideoService,
    errors: list[str],
    timeout_s: float,
) -> SimulatedAvatar | None:
    """Wait for an avatar to receive speech, or for the service to give up on it."""
    await daily.wait_for(
        lambda: bool(errors) or any(_speech_received(a) > 0 for a in daily.avatars), timeout_s
    )
    return next((a for a in daily.avatars if _speech_received(a) > 0), None)


async def _wait_received(avatar: SimulatedAvatar, seconds: float, timeout_s: float) -> None:
    await avatar.world.wait_for(lambda: _speech_received(avatar) >= seconds, timeout_s)


async def _wait_quiet(
    daily: DailySimulation,
    user: SimulatedUser,
    service: BeyVideoService,
    quiet_s: float,
    timeout_s: float,
) -> None:
    """Wait until nobody has sent speech for ``quiet_s`` (the bot is done)."""

    def quiet() -> bool:
        last = max([_last_sound(user.received)] + [_last_sound(a.received) for a in daily.avatars])
        return bool(last) and time.monotonic() - last > quiet_s

    await daily.wait_for(quiet, timeout_s)


def _last_sound(received: list[Any]) -> float:
    for piece in reversed(received):
        if any(piece.pcm):
            return piece.at
    return 0.0


def _speech_received(avatar: SimulatedAvatar) -> float:
    rate = avatar.received_sample_rate
    if not rate:
        return 0.0
    return sum(len(pcm) for _, pcm in avatar.received_chunks if any(pcm)) / 2 / rate


def _report(
    options: DemoOptions,
    bey: BeyEmulator,
    avatar: SimulatedAvatar | None,
    user: SimulatedUser,
    service: BeyVideoService,
    marks: dict[str, float],
    errors: list[str],
    input_s: float,
) -> dict[str, Any]:
    request = dict(bey.requests[0]) if bey.requests else None
    if request and "token" in request:
        request["token"] = "***"
    session = bey.sessions[0].model_dump(mode="json") if bey.sessions else None
    t0 = marks.get("start_in")
    report: dict[str, Any] = {
        "session_request": request,
        "session_response": session,
        "session_errors": errors,
        "start_frame_passthrough_ms": _ms(marks.get("start_out"), marks.get("start_in")),
        "avatar_joined_s": _s(marks.get("avatar_joined"), t0),
        "input_s": round(input_s, 3),
        "avatar_received_speech_s": None,
        "first_audio_latency_ms": None,
        "interrupt_latency_ms": None,
        "audio_after_interrupt_s": None,
        "barge_in": options.barge_in,
    }
    avatar_id = avatar.id if avatar is not None else None
    report["user_heard_bot_s"] = _heard_speech_s(user, exclude=avatar_id)
    report["user_heard_avatar_s"] = (
        _heard_speech_s(user, only=avatar_id) if avatar_id is not None else 0.0
    )
    if avatar is None:
        return report
    received = avatar.received_audio()
    rate = avatar.received_sample_rate or 24000
    report["avatar_received_speech_s"] = round(speech_duration_s(received, rate), 3)
    first = next((at for at, pcm in avatar.received_chunks if any(pcm)), None)
    report["first_audio_latency_ms"] = _ms(first, marks.get("avatar_joined"))
    if options.barge_in and avatar.interrupts:
        interrupt_at = avatar.interrupts[0]
        report["interrupt_latency_ms"] = _ms(interrupt_at, marks.get("interruption"))
        after = sum(
            len(pcm) for at, pcm in avatar.received_chunks if at > interrupt_at and any(pcm)
        )
        report["audio_after_interrupt_s"] = round(after / 2 / rate, 3)
    return report


def _heard_speech_s(
    user: SimulatedUser, *, only: str | None = None, exclude: str | None = None
) -> float:
    """Seconds of speech the user heard on microphones (the bot's or the avatar's)."""
    total = 0.0
    for publisher in {r.publisher_id for r in user.received}:
        if (only is not None and publisher != only) or publisher == exclude:
            continue
        pieces = [
            r for r in user.received if r.publisher_id == publisher and r.track == "microphone"
        ]
        if pieces:
            pcm = user.heard_audio(publisher)
            total += sum(end - start for start, end in speech_segments(pcm, pieces[0].sample_rate))
    return round(total, 3)


def _ms(end: float | None, start: float | None) -> float | None:
    return None if end is None or start is None else round((end - start) * 1000, 1)


def _s(end: float | None, start: float | None) -> float | None:
    return None if end is None or start is None else round(end - start, 3)


def _summary(report: dict[str, Any]) -> str:
    lines = ["", "Summary"]
    if report.get("avatar_received_speech_s") is None:
        lines.append(f"  No avatar: {'; '.join(report['session_errors'])}")
        lines.append(f"  The user heard the bot's own voice: {report.get('user_heard_bot_s')} s")
        return "\n".join(lines)
    lines += [
        "  StartFrame passed through the avatar service in "
        f"{report['start_frame_passthrough_ms']} ms",
        f"  The avatar joined {report['avatar_joined_s']} s after start and first heard speech "
        f"{report['first_audio_latency_ms']} ms after joining",
        f"  Speech said: {report['input_s']} s; speech the avatar received: "
        f"{report['avatar_received_speech_s']} s",
    ]
    if report["barge_in"]:
        lines.append(
            f'  Barge-in: the avatar got "interrupt" {report["interrupt_latency_ms"]} ms after the '
            f"interruption, and {report['audio_after_interrupt_s']} s of earlier speech after it"
        )
    lines.append(f"  What the avatar received: {report.get('out')}")
    lines.append(f"  The avatar left the room at the end: {report.get('avatar_left_room')}")
    return "\n".join(lines)


def run_demo_cli(args: argparse.Namespace) -> int:
    """Run ``pipecat-bey demo`` with parsed arguments.

    Args:
        args: The command line.

    Returns:
        The exit status.
    """
    from loguru import logger

    logger.remove()
    logger.add(lambda m: print(m, end=""), level="WARNING", format="{level}: {message}\n")
    options = DemoOptions(
        out=args.out,
        avatar_join_delay_s=args.avatar_join_delay,
        api_latency_s=args.api_latency,
        barge_in=not args.no_barge_in,
        report=args.report,
    )
    if args.input is not None:
        options.speech = args.input
    report = asyncio.run(run_demo(options))
    print(_summary(report))
    if report.get("avatar_received_speech_s") is None:
        raise RuntimeError("the avatar received no speech")
    return 0
