"""``pipecat-bey demo --transport livekit``: the bot in a real LiveKit room, offline.

The same demo as :mod:`pipecat_bey.cli.demo.runner`, with the far side real where
it can be: the bot is Pipecat's ``LiveKitTransport`` in a room of a real
``livekit-server`` (``LiveKitWorld``), ``BeyVideoService`` starts a ``transport:
"livekit"`` session on the local Beyond Presence API, which sends in an avatar built
on livekit-agents' own avatar-side classes, and a user participant listens, watches
and barges in once (unless told not to). Media goes over real WebRTC: Opus, jitter
buffers and, with ``--network-delay``, ``--jitter`` and ``--loss``, a real impaired
link (see ``LiveKitWorld.netem``).

The world runs in a private network namespace: the command re-runs itself under
``unshare -n`` (see :func:`namespaced_command`). What the avatar received is written to
``--out``, and the report keeps the Daily demo's keys where they mean the same
(:mod:`pipecat_bey.cli.demo.livekit_report`).
"""

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from pipecat.frames.frames import TTSSpeakFrame
from pipecat.pipeline.runner import WorkerRunner
from pipecat.pipeline.worker import PipelineParams, PipelineWorker

from pipecat_bey import BeyParams, BeyVideoService
from pipecat_bey.cli._io import ExitsFully, OnCancel, cancel_reason, print_now
from pipecat_bey.cli.demo.livekit_report import livekit_report
from pipecat_bey.cli.demo.report import Seen
from pipecat_bey.cli.demo.runner import (
    DEMO_TEXT,
    ENDING,
    FIRST_SOUND_S,
    QUIET_S,
    DemoOptions,
    Timeline,
    check_options,
    watch_other_errors,
    watch_service,
)
from pipecat_bey.testing.audio import read_wav, speech_duration_s, to_mono, write_wav
from pipecat_bey.testing.harness import BotRun, standard_pipeline
from pipecat_bey.testing.livekit_avatar import LiveKitAvatar
from pipecat_bey.testing.livekit_world import LiveKitWorld
from pipecat_bey.testing.wav_tts import WavTTSService

__all__ = ["BOT_IDENTITY", "ROOM", "check_livekit_options", "netem_for", "run_livekit_demo"]

BOT_IDENTITY = "bot"
"""The bot's identity in the demo's room."""

ROOM = "pipecat-bey-demo"
"""The demo's LiveKit room."""

REMOVAL_WAIT_S = 5.0
"""How long, once the pipeline ended, the avatar may take to be gone from the room."""


async def run_livekit_demo(
    options: DemoOptions, progress: Callable[[str], None] = print_now
) -> dict[str, Any]:
    """Run the demo on LiveKit and return its report; it must run in a fresh network namespace.

    Cancelling it (Ctrl-C) cancels the pipeline, which removes the avatar, and closes
    the server and the local API before the cancellation goes on.

    Args:
        options: What to run (``options.transport`` is "livekit").
        progress: Where progress lines go.

    Returns:
        The report (also written to ``options.report`` if set).

    Raises:
        ValueError: If a file or an option is unusable; nothing has run.
        pipecat_bey.testing.netns.NamespaceError: Outside a fresh network namespace.
    """
    speech, rate = check_options(options)
    # The LiveKit SDK's own warnings (a data channel closing as a participant leaves)
    # are noise in the demo's output; its errors still show.
    logging.getLogger("livekit").setLevel(logging.ERROR)
    check_livekit_options(options)
    input_s = len(speech) / 2 / rate
    input_speech_s = speech_duration_s(speech, rate)
    params = options.bey_params or BeyParams()
    patience_s = params.avatar_join_timeout_s + options.api_latency_s + 10 + input_s
    timeline = Timeline(progress)
    seen = Seen()
    impaired = bool(options.network_delay_s or options.jitter_s or options.loss_pct)
    world_ = LiveKitWorld(
        avatar_join_delay_s=options.avatar_join_delay_s,
        avatar_options=options.livekit_avatar,
        room=ROOM,
        bey_api_keys=(options.bey_key,) if options.bey_key else ("bey-local-key",),
        impairable=impaired,
    )
    interrupted = OnCancel(lambda e: timeline.say(f"interrupted ({cancel_reason(e)}): {ENDING}"))
    async with ExitsFully(world_) as world, interrupted:
        assert world.bey is not None and world.user is not None
        world.bey.latency = options.api_latency_s
        world.bey.script(*options.faults)
        if impaired:
            await world.netem(**netem_for(options))
        timeline.say(
            f"LiveKit server {world.url} ready (room {ROOM!r}), the user is in it"
            + (f"; the network impaired by {world.impairment}" if impaired else "")
        )
        transport = world.transport(BOT_IDENTITY, ROOM)
        avatar = BeyVideoService(
            transport=transport, params=params, **world.bey_settings(), **world.livekit_settings()
        )
        watch_service(avatar, seen, timeline)
        worker = PipelineWorker(
            standard_pipeline(transport, WavTTSService(default_clip=options.speech), avatar),
            params=PipelineParams(enable_metrics=True),
            observers=list(options.observers),
        )
        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(worker)
        run = BotRun(worker, runner)
        try:
            watch_other_errors(worker, avatar, timeline)
            timeline.say(f"pipeline started; the bot says {input_speech_s:.1f} s of speech")
            await run.queue_frames(TTSSpeakFrame(DEMO_TEXT))
            await _converse(world, options, timeline, seen, input_speech_s, patience_s)
            timeline.say("the bot is done speaking; ending the pipeline")
            await run.end()
        finally:
            if not run.done:
                await run.cancel()
        timeline.say("pipeline ended")
        for each in world.avatars:
            await each.wait_left(REMOVAL_WAIT_S)
        report = livekit_report(
            world, seen, input_s, input_speech_s, barge_in=options.barge_in, bot=BOT_IDENTITY
        )
        report["placement"] = avatar.placement
        report["held_speech_dropped_s"] = round(avatar.dropped_speech_s, 3)
        report |= {
            "network_delay_s": options.network_delay_s,
            "jitter_s": options.jitter_s,
            "loss_pct": options.loss_pct,
            "network": world.impairment if impaired else None,
        }
        received, received_rate = _spoken_to(world)
        if received:
            write_wav(options.out_path, received, received_rate)
            report["out"] = str(options.out_path)
        else:
            report["out_not_written"] = _why_no_out(options, world, seen)
    if options.report:
        options.report.write_text(json.dumps(report, indent=2))
    return report


def check_livekit_options(options: DemoOptions) -> None:
    """Refuse the Daily demo's options that mean nothing on LiveKit, naming the fix.

    Args:
        options: The demo's options.

    Raises:
        ValueError: For ``--relay`` (not there yet on LiveKit) and ``--subscribe-delay``.
    """
    if options.relay:
        raise ValueError("--relay is not there yet with --transport livekit: leave one of them out")
    if options.subscribe_delay_s:
        raise ValueError(
            "--subscribe-delay is the Daily demo's: a LiveKit avatar takes the bot's speech as "
            "a data stream and subscribes to no track; leave it out with --transport livekit"
        )


def netem_for(options: DemoOptions) -> dict[str, float]:
    """The per-hop impairment that gives the demo's one-way delay and jitter, bot to avatar.

    Media from the bot reaches the avatar in two hops (bot to server, server to avatar),
    each impaired once: each hop takes half the delay, and a uniform jitter of a quarter
    of ``jitter_s`` either way around its mean, so that the two add up to between
    ``network_delay_s`` and ``network_delay_s + jitter_s`` one way, as in the Daily demo.
    Loss applies to each hop.

    Args:
        options: The demo's options.

    Returns:
        ``LiveKitWorld.netem``'s arguments.
    """
    return {
        "delay_ms": (options.network_delay_s + options.jitter_s / 2) / 2 * 1000,
        "jitter_ms": options.jitter_s / 4 * 1000,
        "loss_pct": options.loss_pct,
    }


def _speaking_avatar(world: LiveKitWorld) -> LiveKitAvatar | None:
    return next((a for a in world.avatars if a.segments), None)


async def _converse(
    world: LiveKitWorld,
    options: DemoOptions,
    timeline: Timeline,
    seen: Seen,
    speech_s: float,
    patience_s: float,
) -> None:
    """Let the bot speak, barge in once if asked, and return once the bot is done."""
    user = world.user
    assert user is not None
    started = lambda: bool(seen.errors) or _speaking_avatar(world) is not None  # noqa: E731
    await user.wait_for(started, patience_s)
    barge_in: asyncio.Task[None] | None = None
    try:
        the_avatar = _speaking_avatar(world)
        if options.barge_in and the_avatar is not None:
            midway = min(speech_s / 2, 2.0)
            await user.wait_for(lambda: the_avatar.spoke_s() >= midway, patience_s)
            timeline.say("the user barges in")
            seen.barged_in_at = time.monotonic()
            pcm, rate, channels = read_wav(options.barge_in_speech)
            barge_in = asyncio.create_task(user.speak(to_mono(pcm, channels), rate))
        elif options.barge_in:
            seen.barge_in_skipped = (
                "the barge-in comes midway through the speech the avatar receives, and "
                + (
                    "the service gave up on the avatar: the bot's own voice speaks instead"
                    if seen.errors
                    else "no avatar received any"
                )
            )
            timeline.say(f"the user does not barge in: {seen.barge_in_skipped}")
        await _wait_quiet(world, timeout_s=patience_s + 30)
        if barge_in is not None:
            await barge_in
    finally:
        if barge_in is not None and not barge_in.done():
            barge_in.cancel()


async def _wait_quiet(world: LiveKitWorld, timeout_s: float) -> None:
    """Wait until nobody has made a sound for ``QUIET_S`` (the bot is done)."""
    user = world.user
    assert user is not None
    since = time.monotonic()

    def quiet() -> bool:
        heard = [f.at for f in user.audio_frames() if f.voiced]
        spoken = [a.face.spoken[-1][0] for a in world.avatars if a.face and a.face.spoken]
        last = max([*heard[-1:], *spoken], default=None)
        if last is None:
            return time.monotonic() - since > FIRST_SOUND_S
        return time.monotonic() - last > QUIET_S

    await user.wait_for(quiet, timeout_s)


def _spoken_to(world: LiveKitWorld) -> tuple[bytes, int]:
    """What the avatar that received speech received, and its rate (b"" if none did)."""
    avatar = _speaking_avatar(world)
    return avatar.received_audio() if avatar is not None else (b"", 16000)


def _why_no_out(options: DemoOptions, world: LiveKitWorld, seen: Seen) -> str:
    path = options.out_path
    joined = [a for a in world.avatars if a.joined_at is not None]
    if not joined:
        why = "no avatar came, so none received any speech"
    elif seen.first_error_at is not None and min(a.joined_at or 0 for a in joined) > (
        seen.first_error_at
    ):
        why = (
            "the avatar received no speech: it came only after the service had given up on "
            "it, and the bot said everything in its own voice"
        )
    else:
        why = "the avatar received no speech"
    earlier = f" (the {path} there is from an earlier run)" if path.exists() else ""
    return f"Nothing was written to {path}{earlier}, as {why}."
