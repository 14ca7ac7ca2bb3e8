"""A bot with the avatar (optional TTS, the avatar service, the output), on the offline harness."""

from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace

from conftest import BEY_KEY, DAILY_KEY
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams
from recorder import FrameRecorder

from pipecat_bey.testing import AvatarBehaviour, OfflineWorld, WavTTSService

DATA = Path(__file__).parent / "data"

EVENTS = ("on_session_started", "on_avatar_joined", "on_avatar_left", "on_session_error")


@asynccontextmanager
async def avatar_bot(
    bey=None,
    daily=None,
    *,
    behaviour=None,
    params=None,
    clip=None,
    tts_rate=None,
    out_rate=24000,
    owner=True,
    end_silence_s=0,
    transport_params=None,
    world_settings=None,
    observers=(),
    **service_kwargs,
):
    """Run the bot in a world of its own, or in the fixtures' ``bey`` and ``daily`` if given.

    By default the avatar comes at once, the service has its default tuning, the
    bot's token is an owner's (as pipecat's runner mints it), and the bot has
    no TTS (``clip`` gives it one that says that WAV) and sends no end silence,
    so a test pays only for the audio it plays. ``transport_params`` adds
    ``DailyParams`` fields (video out, for a relayed avatar); ``world_settings``
    ``DailySimulation`` settings (network delay, say); ``observers`` more pipeline
    observers.

    Yields a namespace: world, room, user, transport, service, run (a ``BotRun``),
    recorder, events (``(event name, args)`` in order), daily, bey. The bot is
    ended on exit if the test did not end it.
    """
    async with OfflineWorld(
        behaviour=behaviour or AvatarBehaviour(join_delay_s=0.0),
        bey_key=BEY_KEY,
        daily_key=DAILY_KEY,
        bey=bey,
        daily=daily,
        **(world_settings or {}),
    ) as world:
        token = world.daily.mint_token(world.room, user_name="Bot", is_owner=owner)
        transport = world.transport(
            token=token, audio_out_end_silence_secs=end_silence_s, **(transport_params or {})
        )
        service = world.avatar_service(transport, params=params, **service_kwargs)
        events = []
        for name in EVENTS:
            service.add_event_handler(name, _recorder(events, name, world.daily))
        tts = [WavTTSService(default_clip=clip, sample_rate=tts_rate)] if clip else []
        recorder = FrameRecorder()
        run = await world.start(
            Pipeline([transport.input(), *tts, service, transport.output()]),
            params=PipelineParams(enable_metrics=True, audio_out_sample_rate=out_rate),
            observers=[recorder, *observers],
        )
        yield SimpleNamespace(
            world=world,
            room=world.room,
            user=world.user,
            transport=transport,
            service=service,
            run=run,
            recorder=recorder,
            events=events,
            daily=world.daily,
            bey=world.bey,
        )


def _recorder(events, name, daily):
    async def record(service, *args):
        events.append((name, args))
        daily.notify()  # wake daily.wait_for at once

    return record


def named(events, name):
    return [args for n, args in events if n == name]


async def until(bot, predicate, timeout=5.0):
    assert await bot.daily.wait_for(predicate, timeout)


def microphone(bot):
    """The state of the bot's own microphone, as the room sees it."""
    return bot.transport.participants()["local"]["media"]["microphone"]["state"]
