"""BeyVideoService end to end: real DailyTransport, simulated room, local Bey API.

Speech here is the test clips in tests/data, never the demo's. Everything is
measured on the simulated participants: what the avatar received, what the user heard.
"""

import asyncio
import time
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import BEY_KEY, DAILY_KEY
from pipecat.frames.frames import (
    ErrorFrame,
    InterruptionFrame,
    StartFrame,
    TTSSpeakFrame,
    UserStartedSpeakingFrame,
)
from recorder import FrameRecorder

from pipecat_bey import BeyParams
from pipecat_bey.testing import (
    AvatarBehaviour,
    Fault,
    OfflineWorld,
    WavTTSService,
    standard_pipeline,
)
from pipecat_bey.testing.audio import (
    best_alignment,
    read_wav,
    resample,
    speech_duration_s,
    to_mono,
)

DATA = Path(__file__).parent / "data"


def reference(path, rate):
    pcm, source_rate, channels = read_wav(path)
    return resample(to_mono(pcm, channels), source_rate, rate)


@asynccontextmanager
async def bot_saying(clip, *, behaviour=None, api_latency_s=0.0, params=None, faults=()):
    """The usual bot (VAD, TTS, avatar) saying ``clip`` once, to a user in the room."""
    async with OfflineWorld(
        behaviour=behaviour or AvatarBehaviour(join_delay_s=0.5),
        api_latency_s=api_latency_s,
        bey_key=BEY_KEY,
        daily_key=DAILY_KEY,
    ) as world:
        world.bey.script(*faults)
        transport = world.transport(audio_out_end_silence_secs=0)
        service = world.avatar_service(transport, params=params)
        bot = SimpleNamespace(world=world, transport=transport, service=service, errors=[])
        bot.recorder = FrameRecorder()
        bot.start_frame = {}

        @service.event_handler("on_session_error")
        async def on_session_error(service, error):
            bot.errors.append(str(error))

        @service.event_handler("on_before_process_frame")
        def before(processor, frame):
            if isinstance(frame, StartFrame):
                bot.start_frame["in"] = time.monotonic()
            elif isinstance(frame, InterruptionFrame):
                bot.start_frame.setdefault("interruption", time.monotonic())

        @service.event_handler("on_after_push_frame")
        def after(processor, frame):
            if isinstance(frame, StartFrame):
                bot.start_frame["out"] = time.monotonic()

        tts = WavTTSService(default_clip=clip)
        bot.started_at = time.monotonic()
        bot.run = await world.start(
            standard_pipeline(transport, tts, service), observers=[bot.recorder]
        )
        await bot.run.queue_frames(TTSSpeakFrame("anything"))
        yield bot


async def first_speech_reaches(bot, timeout):
    """Wait for an avatar to get speech; the rest follows in order, so ending then loses none."""
    world = bot.world
    assert await world.daily.wait_for(
        lambda: world.avatar is not None and world.avatar.first_speech_at() is not None, timeout
    ), "no avatar received speech"
    return world.avatar


async def test_late_avatar_slow_api_receives_all_the_speech_and_is_not_heard_as_the_user():
    speech = DATA / "utterance_a.wav"
    behaviour = AvatarBehaviour(join_delay_s=1.5)
    async with bot_saying(speech, behaviour=behaviour, api_latency_s=1.0) as bot:
        avatar = await first_speech_reaches(bot, 20)
        user = bot.world.user
        assert await bot.world.daily.wait_for(lambda: user.heard_speech_s(avatar.id) > 1.0, 10)
        await bot.run.end()
        # The avatar speaks in the room, and its voice (the bot's speech) never comes
        # back into the bot as the user's: no false barge-in.
        assert not bot.recorder.of(UserStartedSpeakingFrame)
        assert not bot.recorder.of(InterruptionFrame)
        assert bot.recorder.audio_from == {user.id}, "only the user's microphone reaches the bot"
        # The service let the pipeline start without waiting for the slow API.
        assert bot.start_frame["out"] - bot.start_frame["in"] < 0.5
        assert avatar.joined_at_first - bot.started_at >= 1.5 + 1.0 - 0.3
        assert not avatar.in_room, "the avatar was ejected at the end"
        rate = avatar.received_sample_rate
        received = avatar.received_audio()
    said = reference(speech, rate)
    assert abs(speech_duration_s(received, rate) - speech_duration_s(said, rate)) <= 0.15
    offset, correlation = best_alignment(said, received)
    assert correlation >= 0.9
    # The first seconds, held while the avatar was on its way, are there too.
    first = said[: rate * 2]
    assert best_alignment(first, received[offset * 2 : offset * 2 + len(first)])[1] >= 0.9


async def test_barge_in_interrupts_the_avatar_at_once():
    speech = DATA / "utterance_b.wav"
    async with bot_saying(speech) as bot:
        avatar = await first_speech_reaches(bot, 15)
        assert await bot.world.daily.wait_for(lambda: avatar.speech_received_s() >= 1.5, 10)
        await bot.world.user.speak_wav(DATA / "barge_in.wav")
        assert await bot.world.daily.wait_for(lambda: bool(avatar.interrupts), 5)
        await bot.run.end()
        interrupt_at = avatar.interrupts[0]
        rate = avatar.received_sample_rate
        received = avatar.received_audio()
    assert bot.recorder.of(InterruptionFrame)
    # "interrupt" is an urgent message, not queued behind the speech: well under a second.
    assert interrupt_at - bot.start_frame["interruption"] < 0.25
    assert avatar.speech_received_s(after=interrupt_at) == 0
    said = speech_duration_s(reference(speech, rate), rate)
    assert speech_duration_s(received, rate) < said - 1.0


@pytest.mark.parametrize(
    "fault",
    [
        Fault.status(500),
        pytest.param(Fault.status(401), marks=pytest.mark.slow),
        pytest.param(Fault.html(502), marks=pytest.mark.slow),
        pytest.param(Fault.drop(), marks=pytest.mark.slow),
        pytest.param(Fault.malformed(), marks=pytest.mark.slow),
        pytest.param(Fault.hang(60.0, session_created=False), marks=pytest.mark.slow),
    ],
    ids=["500", "401", "html-502", "drop", "malformed", "hang"],
)
async def test_when_the_api_fails_the_user_still_hears_the_bot(fault):
    """The bot's own voice through its microphone, heard in the room.

    Each failure's decision is tested without a clock in test_avatar_lifecycle.py
    and test_client.py; one runs here in real time by default, the rest with -m slow.
    """
    faults = [fault] * (4 if fault.kind == "html" else 1)
    params = BeyParams(avatar_join_timeout_s=5.0)
    async with bot_saying(DATA / "utterance_a.wav", params=params, faults=faults) as bot:
        assert await bot.world.daily.wait_for(lambda: bool(bot.errors), 20), "no error reported"
        await asyncio.wait_for(bot.run.end(), 60)
        user = bot.world.user
    # The bot's own voice, or an avatar the API started despite the bad answer.
    assert user.heard_speech_s() >= 2.5
    assert all(not e.fatal for e in bot.recorder.of(ErrorFrame))


@pytest.mark.slow  # decided in test_avatar_lifecycle.py; heard in the fault test above
async def test_avatar_that_never_joins_falls_back_to_the_bots_voice():
    params = BeyParams(avatar_join_timeout_s=1.5)
    behaviour = AvatarBehaviour(never_join=True)
    async with bot_saying(DATA / "utterance_a.wav", behaviour=behaviour, params=params) as bot:
        assert await bot.world.daily.wait_for(lambda: bool(bot.errors), 10)
        bot_id = bot.transport.participants()["local"]["id"]
        await bot.run.end()
        user = bot.world.user
    assert "did not join" in bot.errors[0]
    assert user.heard_speech_s(bot_id) >= 2.0


async def test_cancelling_the_task_that_holds_the_world_ejects_the_avatar_and_stops_all():
    """What Ctrl-C does under asyncio.run: the pipeline is cancelled, nothing is left running."""
    before = asyncio.all_tasks()
    held = {}
    speaking = asyncio.Event()

    async def conversation():
        async with bot_saying(DATA / "utterance_b.wav") as bot:
            held["bot"] = bot
            await first_speech_reaches(bot, 15)
            speaking.set()
            await asyncio.Event().wait()  # until cancelled

    task = asyncio.create_task(conversation())
    await asyncio.wait_for(speaking.wait(), 20)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 10)
    bot = held["bot"]
    assert bot.run.done
    assert bot.world.avatar.removed_reason == "ejected"
    assert not bot.world.avatar.in_room
    left = {t for t in asyncio.all_tasks() - before if not t.done()}
    assert not left, f"still running: {[t.get_name() for t in left]}"
