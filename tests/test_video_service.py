"""BeyVideoService: configuration, the avatar's life in the room, metrics, clean ends."""

import asyncio

import pytest
from avatar_bot import DATA, avatar_bot, named
from conftest import BEY_KEY, DAILY_KEY
from pipecat.frames.frames import EndFrame, MetricsFrame, TTSSpeakFrame
from pipecat.metrics.metrics import ProcessingMetricsData, TTFBMetricsData
from pipecat.transports.daily.transport import DailyParams, DailyTransport

from pipecat_bey import BEY_AUDIO_TRACK, BeyConfigError, BeyParams, BeyVideoService, DailyAPIError
from pipecat_bey.testing import AvatarBehaviour
from pipecat_bey.testing.audio import best_alignment, read_wav, resample, to_mono


def transport_for(daily, url=None):
    room = daily.create_room()
    return DailyTransport(url or room.url, None, "Bot", DailyParams(audio_out_enabled=True))


def speech_of(path, rate):
    pcm, source, channels = read_wav(path)
    return resample(to_mono(pcm, channels), source, rate)


async def say_and_wait(bot, seconds_of_speech):
    await bot.worker.queue_frame(TTSSpeakFrame("anything"))
    assert await bot.daily.wait_for(
        lambda: any(
            sum(len(p) for _, p in a.received_chunks if any(p)) / 2 / (a.received_sample_rate or 1)
            >= seconds_of_speech
            for a in bot.daily.avatars
        ),
        20,
    )


# Configuration.


async def test_config_comes_from_the_environment(daily, clean_env):
    clean_env.setenv("BEY_API_KEY", BEY_KEY)
    clean_env.setenv("DAILY_API_KEY", DAILY_KEY)
    clean_env.setenv("BEY_AVATAR_ID", "694c83e2-8895-4a98-bd16-56332ca3f449")
    service = BeyVideoService(transport=transport_for(daily))
    assert "694c83e2" in repr(service) and BEY_KEY not in repr(service)
    transport = transport_for(daily)
    BeyVideoService(transport=transport)
    assert BEY_AUDIO_TRACK in transport._params.audio_out_destinations


@pytest.mark.parametrize(
    "kwargs, env, error, words",
    [
        ({}, {"DAILY_API_KEY": DAILY_KEY}, BeyConfigError, "BEY_API_KEY"),
        ({"api_key": BEY_KEY}, {}, ValueError, "DAILY_API_KEY"),
        (
            {"api_key": BEY_KEY, "daily_api_key": DAILY_KEY, "avatar_id": ""},
            {},
            ValueError,
            "BEY_AVATAR_ID",
        ),
        (
            {"api_key": BEY_KEY, "daily_api_key": DAILY_KEY, "api_url": "http://api.bey.dev"},
            {},
            BeyConfigError,
            "https",
        ),
        ({"api_key": BEY_KEY, "avatar_token": "not-a-jwt"}, {}, ValueError, "avatar_token"),
    ],
)
async def test_bad_configuration_fails_at_construction(daily, clean_env, kwargs, env, error, words):
    for name, value in env.items():
        clean_env.setenv(name, value)
    with pytest.raises(error, match=words) as caught:
        BeyVideoService(transport=transport_for(daily), **kwargs)
    assert BEY_KEY not in str(caught.value) and DAILY_KEY not in str(caught.value)


async def test_a_room_that_is_not_dailys_is_refused(daily):
    transport = DailyTransport("https://example.com/room", None, "Bot", DailyParams())
    with pytest.raises(ValueError, match="not a Daily room URL"):
        BeyVideoService(transport=transport, api_key=BEY_KEY, daily_api_key=DAILY_KEY)


def test_it_needs_a_daily_transport():
    with pytest.raises(TypeError, match="DailyTransport"):
        BeyVideoService(transport=object(), api_key=BEY_KEY, daily_api_key=DAILY_KEY)


# The avatar in the room.


async def test_the_avatar_is_told_apart_from_the_user(bey, daily):
    async with avatar_bot(bey, daily) as bot:
        await say_and_wait(bot, 0.5)
        avatar = bot.daily.avatars[0]
        participants = bot.transport.participants()
        assert bot.service.is_avatar(participants[avatar.id])
        assert not bot.service.is_avatar(participants[bot.user.id])
        (joined,) = named(bot.events, "on_avatar_joined")
        assert joined[0]["id"] == avatar.id
        (started,) = named(bot.events, "on_session_started")
        assert started[0].id == bot.bey.sessions[0].id


async def test_the_bots_microphone_is_silent_while_the_avatar_speaks(bey, daily):
    async with avatar_bot(bey, daily) as bot:
        await say_and_wait(bot, 2.0)
        bot_id = bot.transport.participants()["local"]["id"]
        assert not [
            r for r in bot.user.received if r.publisher_id == bot_id and r.track == "microphone"
        ]
        assert bot.transport.participants()["local"]["media"]["microphone"]["state"] == "off"


async def test_a_second_avatar_is_ejected(bey, daily):
    async with avatar_bot(
        bey, daily, behaviour=AvatarBehaviour(join_delay_s=0.2, second_avatar=True)
    ) as bot:
        await say_and_wait(bot, 0.5)
        assert await daily.wait_for(
            lambda: len(daily.avatars) == 2 and sum(a.in_room for a in daily.avatars) == 1, 5
        )
        first, second = sorted(daily.avatars, key=lambda a: a.joined_at_first or 0)
        assert first.in_room and second.removed_reason == "ejected"
        assert bot.service.avatar_participant_id == first.id


async def test_an_avatar_that_leaves_mid_utterance_hands_back_to_the_bots_voice(bey, daily):
    behaviour = AvatarBehaviour(join_delay_s=0.2, leave_after_s=1.5)
    async with avatar_bot(bey, daily, behaviour=behaviour, clip=DATA / "utterance_b.wav") as bot:
        await bot.worker.queue_frame(TTSSpeakFrame("first"))
        assert await daily.wait_for(lambda: bool(named(bot.events, "on_avatar_left")), 10)
        await bot.worker.queue_frame(TTSSpeakFrame("second"))
        bot_id = bot.transport.participants()["local"]["id"]
        assert await daily.wait_for(
            lambda: any(
                r.publisher_id == bot_id and any(r.pcm)
                for r in bot.user.received
                if r.track == "microphone"
            ),
            10,
        ), "after the avatar left, the user hears the bot itself"
        assert named(bot.events, "on_session_error")


async def test_an_avatar_that_rejoins_speaks_again(bey, daily):
    behaviour = AvatarBehaviour(join_delay_s=0.2, leave_after_s=1.0, rejoin_after_s=0.3)
    async with avatar_bot(bey, daily, behaviour=behaviour) as bot:
        assert await daily.wait_for(lambda: len(named(bot.events, "on_avatar_joined")) == 2, 10)
        # Once the avatar is listening again, the bot's own microphone goes off.
        assert await daily.wait_for(
            lambda: bot.transport.participants()["local"]["media"]["microphone"]["state"] == "off",
            5,
        )
        avatar = daily.avatars[0]
        before = len(avatar.received_chunks)
        await say_and_wait(bot, 0.1)
        assert len(avatar.received_chunks) > before


async def test_metrics_report_ttfb_and_session_start(bey, daily):
    metrics = []

    async with avatar_bot(bey, daily) as bot:
        bot.service.add_event_handler(
            "on_after_push_frame",
            lambda s, f: metrics.extend(f.data) if isinstance(f, MetricsFrame) else None,
        )
        await say_and_wait(bot, 0.5)
    kinds = {type(m) for m in metrics if m.processor == bot.service.name}
    assert {TTFBMetricsData, ProcessingMetricsData} <= kinds


async def test_end_ejects_the_avatar_and_leaves_nothing_running(bey, daily):
    async with avatar_bot(bey, daily) as bot:
        await say_and_wait(bot, 0.5)
        avatar = daily.avatars[0]
    assert not avatar.in_room and avatar.removed_reason == "ejected"
    assert bot.service._own_session is None
    leftovers = [t for t in asyncio.all_tasks() if "bey_" in t.get_name() and not t.done()]
    assert not leftovers


async def test_end_while_the_session_is_being_created(bey, daily):
    bey.latency = 3.0
    async with avatar_bot(bey, daily) as bot:
        await bot.worker.queue_frame(EndFrame())
        await asyncio.wait_for(bot.run, 10)
    assert bot.run.done() and not bot.run.exception()
    assert not any(a.in_room for a in daily.avatars)


async def test_a_failed_eject_is_reported_and_the_pipeline_still_ends(bey, daily, monkeypatch):
    from pipecat_bey.daily_room import DailyRoomAPI

    async def refuse(self, *args, **kwargs):
        raise DailyAPIError("Daily refused to eject the avatar", status=500)

    monkeypatch.setattr(DailyRoomAPI, "eject", refuse)
    async with avatar_bot(bey, daily) as bot:
        await say_and_wait(bot, 0.3)
    assert bot.run.done() and not bot.run.exception()


@pytest.mark.parametrize("tts_rate", [8000, 16000, 22050, 24000, 44100, 48000])
async def test_every_tts_rate_reaches_the_avatar_intact(bey, daily, tts_rate):
    clip = DATA / "barge_in.wav"
    async with avatar_bot(bey, daily, clip=clip, tts_rate=tts_rate, out_rate=24000) as bot:
        await say_and_wait(bot, 1.0)
        await daily.wait_for(lambda: False, 1.0)  # the rest of the clip plays out
        avatar = daily.avatars[0]
        rate = avatar.received_sample_rate
        # What the TTS produced at its rate, brought to the track's rate.
        said = resample(speech_of(clip, tts_rate), tts_rate, rate)
        _, correlation = best_alignment(said, avatar.received_audio())
    assert correlation >= 0.9


@pytest.mark.parametrize("out_rate", [16000, 48000])
async def test_any_transport_output_rate(bey, daily, out_rate):
    clip = DATA / "barge_in.wav"
    async with avatar_bot(bey, daily, clip=clip, out_rate=out_rate) as bot:
        await say_and_wait(bot, 1.0)
        avatar = daily.avatars[0]
        assert avatar.received_sample_rate == out_rate


async def test_a_room_that_does_not_exist_ends_cleanly(bey, daily):
    from pipecat.frames.frames import ErrorFrame

    transport = DailyTransport(
        f"https://{daily.domain}.daily.co/no-such-room",
        None,
        "Bot",
        DailyParams(audio_out_enabled=True),
    )
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.pipeline.worker import PipelineParams, PipelineWorker
    from pipecat.workers.runner import WorkerRunner
    from recorder import FrameRecorder

    service = BeyVideoService(
        transport=transport,
        api_key=BEY_KEY,
        api_url=bey.url,
        daily_api_key=DAILY_KEY,
        daily_api_url=daily.rest_url,
        params=BeyParams(avatar_join_timeout_s=1.0),
    )
    recorder = FrameRecorder()
    worker = PipelineWorker(
        Pipeline([transport.input(), service, transport.output()]),
        params=PipelineParams(),
        observers=[recorder],
    )
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    run = asyncio.create_task(runner.run())
    assert await daily.wait_for(lambda: len(recorder.of(ErrorFrame)) >= 2, 10)
    messages = " ".join(e.error for e in recorder.of(ErrorFrame))
    assert "no-such-room" in messages  # the bot's own join, and the avatar's token mint
    await worker.queue_frame(EndFrame())
    await asyncio.wait_for(run, 15)


async def test_an_undeliverable_interrupt_does_not_stop_the_bot(bey, daily):
    from pipecat.frames.frames import InterruptionFrame

    async with avatar_bot(bey, daily, clip=DATA / "utterance_b.wav") as bot:
        await say_and_wait(bot, 0.5)
        bot.room.fail_app_messages = True
        await bot.worker.queue_frame(InterruptionFrame())
        bot.room.fail_app_messages = False
        await say_and_wait(bot, 0.5)
        assert not daily.avatars[0].interrupts
