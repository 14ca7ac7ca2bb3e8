"""A small bot with the avatar, run against the fixtures' local services."""

import asyncio
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace

from conftest import BEY_KEY, DAILY_KEY
from pipecat.frames.frames import EndFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.transports.daily.transport import DailyParams, DailyTransport
from pipecat.workers.runner import WorkerRunner
from recorder import FrameRecorder

from pipecat_bey import BeyVideoService
from pipecat_bey.testing import AvatarBehaviour, SimulatedUser, WavTTSService

DATA = Path(__file__).parent / "data"


@asynccontextmanager
async def avatar_bot(
    bey,
    daily,
    *,
    behaviour=None,
    params=None,
    clip=DATA / "utterance_a.wav",
    tts_rate=None,
    out_rate=24000,
    **service_kwargs,
):
    room = daily.create_room()
    daily.attach_bey(bey, behaviour or AvatarBehaviour(join_delay_s=0.2))
    user = SimulatedUser(daily, room, "User")
    await user.join()
    transport = DailyTransport(
        room.url, None, "Bot", DailyParams(audio_in_enabled=True, audio_out_enabled=True)
    )
    service_kwargs.setdefault("api_key", BEY_KEY)
    service_kwargs.setdefault("daily_api_key", DAILY_KEY)
    service = BeyVideoService(
        transport=transport,
        api_url=bey.url,
        daily_api_url=daily.rest_url,
        params=params,
        **service_kwargs,
    )
    recorder = FrameRecorder()
    tts = WavTTSService(default_clip=clip, sample_rate=tts_rate)
    worker = PipelineWorker(
        Pipeline([transport.input(), tts, service, transport.output()]),
        params=PipelineParams(enable_metrics=True, audio_out_sample_rate=out_rate),
        observers=[recorder],
    )
    events = []
    for name in ("on_session_started", "on_avatar_joined", "on_avatar_left", "on_session_error"):
        service.add_event_handler(name, _recorder(events, name))
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    run = asyncio.create_task(runner.run())
    bot = SimpleNamespace(
        room=room,
        user=user,
        transport=transport,
        service=service,
        worker=worker,
        recorder=recorder,
        events=events,
        run=run,
        daily=daily,
        bey=bey,
    )
    try:
        yield bot
    finally:
        if not run.done():
            await worker.queue_frame(EndFrame())
        await asyncio.wait_for(run, 30)


def _recorder(events, name):
    async def record(service, *args):
        events.append((name, args))

    return record


def named(events, name):
    return [args for n, args in events if n == name]
