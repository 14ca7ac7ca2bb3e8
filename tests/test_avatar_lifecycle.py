"""The avatar's life in the simulated room, decided without speech (so without real-time pacing).

Each test runs the real DailyTransport and BeyVideoService in a simulated room,
with no audio played: what is checked is what the service decides and does when
the avatar starts, joins, listens, leaves, rejoins, never comes, or is ejected.
"""

import asyncio

import pytest
from avatar_bot import avatar_bot, microphone, named, until
from conftest import BEY_KEY, DAILY_KEY
from loguru import logger
from pipecat.frames.frames import (
    ErrorFrame,
    InterruptionFrame,
    MetricsFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
)
from pipecat.metrics.metrics import ProcessingMetricsData
from pipecat.pipeline.pipeline import Pipeline
from pipecat.transports.daily.transport import DailyParams, DailyTransport
from recorder import FrameRecorder

from pipecat_bey import BeyParams
from pipecat_bey.config import BEY_AUDIO_TRACK
from pipecat_bey.daily.avatar_session import AvatarSession
from pipecat_bey.daily.rest import DailyRoomAPI
from pipecat_bey.errors import DailyAPIError
from pipecat_bey.testing import AvatarBehaviour, Fault, SimulatedUser
from pipecat_bey.testing.daily_sim import custom_audio
from pipecat_bey.testing.harness import OfflineWorld


async def test_the_avatar_joins_is_told_apart_and_the_bot_goes_quiet(bey, daily):
    async with avatar_bot(bey, daily) as bot:
        await until(bot, lambda: named(bot.events, "on_avatar_joined"))
        avatar = daily.avatars[0]
        participants = bot.transport.participants()
        assert bot.service.is_avatar(participants[avatar.id])
        assert not bot.service.is_avatar(participants[bot.world.user.id])
        assert bot.service.avatar_participant_id == avatar.id
        (started,) = named(bot.events, "on_session_started")
        assert started[0].id == bey.sessions[0].id == bot.service.session.id
        # The avatar's token is scoped to this room and names it.
        claims = daily.verify_token(bey.requests[0]["token"])
        assert claims.room_name == bot.world.room.name and claims.user_id.startswith("bey-avatar-")
        assert claims.eject_at_token_exp and claims.exp is not None
        # The bot's own microphone is off: the avatar speaks for it.
        await until(bot, lambda: microphone(bot) == "off")
        # The avatar's microphone is the bot's own speech: the bot does not listen to it.
        bot_id = bot.transport.participants()["local"]["id"]
        (bot_member,) = [m for m in bot.world.room.participants() if m.id == bot_id]
        assert bot_member.subscription(avatar.id, "microphone") == "unsubscribed"
        assert bot_member.subscription(bot.world.user.id, "microphone") == "subscribed"
        await bot.run.end()
    assert avatar.removed_reason == "ejected"


async def test_the_session_start_is_reported_as_a_processing_metric(bey, daily):
    metrics = []
    async with avatar_bot(bey, daily) as bot:
        bot.service.add_event_handler(
            "on_after_push_frame",
            lambda s, f: metrics.extend(f.data) if isinstance(f, MetricsFrame) else None,
        )
        await until(bot, lambda: named(bot.events, "on_session_started"))
        await until(
            bot, lambda: any(isinstance(m, ProcessingMetricsData) and m.value for m in metrics)
        )
    # pipecat reports zeros at start; the session's start time follows.
    (started,) = [
        m
        for m in metrics
        if isinstance(m, ProcessingMetricsData) and m.processor == bot.service.name and m.value
    ]
    assert 0 < started.value < 5


async def test_a_second_avatar_is_ejected(bey, daily):
    behaviour = AvatarBehaviour(join_delay_s=0.0, second_avatar=True)
    async with avatar_bot(bey, daily, behaviour=behaviour) as bot:
        await until(
            bot,
            lambda: len(daily.avatars) == 2 and any(a.removed_reason for a in daily.avatars),
        )
        (kept,) = [a for a in daily.avatars if a.id == bot.service.avatar_participant_id]
        (other,) = [a for a in daily.avatars if a is not kept]
        assert kept.in_room and other.removed_reason == "ejected"
        assert kept.joined_times[0] <= other.joined_times[0]
        assert len(named(bot.events, "on_avatar_joined")) == 1


async def test_an_avatar_that_leaves_hands_back_to_the_bots_voice_and_rejoins(bey, daily):
    behaviour = AvatarBehaviour(join_delay_s=0.0, leave_after_s=0.3, rejoin_after_s=0.3)
    async with avatar_bot(bey, daily, behaviour=behaviour) as bot:
        await until(bot, lambda: named(bot.events, "on_avatar_left"))
        (error,) = named(bot.events, "on_session_error")
        assert "left the room" in str(error[0])
        # The user hears the bot itself while the avatar is away...
        await until(bot, lambda: microphone(bot) == "playable")
        # ...and the avatar again once it is back and listening.
        await until(bot, lambda: len(named(bot.events, "on_avatar_joined")) == 2)
        await until(bot, lambda: microphone(bot) == "off")
        assert bot.service.avatar_participant_id == daily.avatars[0].id
        assert all(not e.fatal for e in bot.recorder.of(ErrorFrame))


async def test_an_avatar_that_never_joins_is_given_up_on_in_time(bey, daily):
    behaviour = AvatarBehaviour(never_join=True)
    params = BeyParams(avatar_join_timeout_s=0.3, avatar_ready_delay_s=0.0)
    async with avatar_bot(bey, daily, behaviour=behaviour, params=params) as bot:
        await until(bot, lambda: named(bot.events, "on_session_error"))
        (error,) = named(bot.events, "on_session_error")
        assert "did not join the room within 0.3 s" in str(error[0])
        await until(bot, lambda: microphone(bot) == "playable")
        (frame,) = bot.recorder.of(ErrorFrame)
        assert not frame.fatal and "avatar_join_timeout_s" in frame.error


@pytest.mark.parametrize(
    "fault", [Fault.status(500), Fault.status(401), Fault.drop()], ids=["500", "401", "drop"]
)
async def test_when_the_session_cannot_start_the_bot_speaks_for_itself(bey, daily, fault):
    bey.script(fault)
    async with avatar_bot(bey, daily) as bot:
        await until(bot, lambda: named(bot.events, "on_session_error"))
        (error,) = named(bot.events, "on_session_error")
        await until(bot, lambda: microphone(bot) == "playable")
        (frame,) = bot.recorder.of(ErrorFrame)
        assert not frame.fatal and "could not start" in frame.error
        assert type(error[0]).__name__.startswith("Bey")
    assert len(bey.requests) == 1, "a failure that may have started a session is not retried"


async def test_a_failure_in_the_services_own_setup_falls_back_instead_of_silencing_the_bot(
    bey, daily, monkeypatch
):
    def broken(self, http):
        raise RuntimeError("no HTTP for you")

    monkeypatch.setattr(AvatarSession, "use_session", broken)
    async with avatar_bot(bey, daily) as bot:
        await until(bot, lambda: named(bot.events, "on_session_error"))
        await until(bot, lambda: microphone(bot) == "playable")
        assert "could not set up" in bot.recorder.of(ErrorFrame)[0].error
    assert not bey.requests


async def test_end_while_the_session_is_being_created_leaves_no_avatar(bey, daily):
    bey.script(Fault.hang(1.0))  # the API starts the session, then answers a second later
    async with avatar_bot(bey, daily) as bot:
        await until(bot, lambda: len(bey.requests) == 1)
        await bot.run.end(timeout_s=10)
    # The avatar the API started anyway is ejected by its token's user id once it joins,
    # or never gets in: either way the room is left without it.
    await daily.wait_for(lambda: not any(a.in_room for a in daily.avatars), 3)
    assert not any(a.in_room for a in daily.avatars)


async def test_the_end_ejects_the_avatar_and_leaves_nothing_running(bey, daily):
    async with avatar_bot(bey, daily) as bot:
        await until(bot, lambda: named(bot.events, "on_avatar_joined"))
        avatar = daily.avatars[0]
        await bot.run.end()
    assert avatar.removed_reason == "ejected"
    assert bot.service._avatar._own_http is None  # the HTTP session it opened is closed
    leftovers = [t for t in asyncio.all_tasks() if "bey_" in t.get_name() and not t.done()]
    assert not leftovers


async def test_a_failed_eject_is_reported_and_the_pipeline_still_ends(bey, daily, monkeypatch):
    async def refuse(self, *args, **kwargs):
        raise DailyAPIError("Daily refused to eject the avatar", status=500)

    monkeypatch.setattr(DailyRoomAPI, "eject", refuse)
    warnings = []
    sink = logger.add(lambda m: warnings.append(str(m)), level="WARNING")
    try:
        async with avatar_bot(bey, daily) as bot:
            await until(bot, lambda: named(bot.events, "on_avatar_joined"))
            await bot.run.end()
    finally:
        logger.remove(sink)
    assert bot.run.done
    assert any("could not eject the avatar" in w and "token expires" in w for w in warnings)


async def test_an_undeliverable_interrupt_does_not_stop_the_bot(bey, daily):
    async with avatar_bot(bey, daily) as bot:
        await until(bot, lambda: named(bot.events, "on_avatar_joined"))
        avatar = daily.avatars[0]
        bot.world.room.fail_app_messages = True
        await bot.run.queue_frames(InterruptionFrame())
        await until(bot, lambda: bot.recorder.of(InterruptionFrame))
        bot.world.room.fail_app_messages = False
        await bot.run.queue_frames(InterruptionFrame())
        await until(bot, lambda: len(avatar.interrupts) == 1)
        assert not bot.run.done


async def test_a_room_that_does_not_exist_is_reported_and_ends_cleanly(bey, daily):
    async with OfflineWorld(bey=bey, daily=daily, bey_key=BEY_KEY, daily_key=DAILY_KEY) as world:
        transport = DailyTransport(
            f"https://{daily.domain}.daily.co/no-such-room",
            None,
            "Bot",
            DailyParams(audio_out_enabled=True, audio_out_end_silence_secs=0),
        )
        service = world.avatar_service(transport, params=BeyParams(avatar_join_timeout_s=1.0))
        recorder = FrameRecorder()
        run = await world.start(
            Pipeline([transport.input(), service, transport.output()]), observers=[recorder]
        )
        assert await daily.wait_for(lambda: len(recorder.of(ErrorFrame)) >= 2, 10)
        messages = " ".join(e.error for e in recorder.of(ErrorFrame))
        assert "no-such-room" in messages  # the bot's own join, and the avatar's token mint
        await run.end(timeout_s=15)


async def test_an_owner_bot_keeps_its_raw_speech_from_everyone_but_the_avatar(bey, daily):
    async with OfflineWorld(bey=bey, daily=daily, bey_key=BEY_KEY, daily_key=DAILY_KEY) as world:
        token = daily.mint_token(world.room, user_name="Bot", is_owner=True)
        transport = world.transport(token=token, audio_out_end_silence_secs=0)
        service = world.avatar_service(transport, params=BeyParams(avatar_ready_delay_s=0.0))
        run = await world.start(Pipeline([transport.input(), service, transport.output()]))
        track = custom_audio(BEY_AUDIO_TRACK)

        def bot():
            bot_id = transport.participants()["local"].get("id")
            return next((m for m in world.room.participants() if m.id == bot_id), None)

        assert await daily.wait_for(lambda: bot() is not None, 5)
        assert await daily.wait_for(lambda: not world.user.may_receive(bot(), track), 5)
        assert await daily.wait_for(lambda: world.avatar is not None, 5)
        assert world.avatar.may_receive(bot(), track)
        assert world.user.may_receive(bot(), "microphone")  # the fallback voice still reaches
        await run.end()


async def test_a_bot_that_may_not_set_permissions_says_once_how_to_fix_it(bey, daily):
    warnings = []
    sink = logger.add(lambda m: warnings.append(str(m)), level="WARNING")
    try:
        async with avatar_bot(bey, daily, owner=False) as bot:
            second = SimulatedUser(daily, bot.world.room, "Second user")
            await second.join()
            await until(bot, lambda: named(bot.events, "on_avatar_joined"))
            await until(bot, lambda: len(bot.transport.participants()) == 4)
    finally:
        logger.remove(sink)
    advice = [w for w in warnings if "is_owner=True" in w]
    assert len(advice) == 1 and BEY_AUDIO_TRACK in advice[0]


async def test_an_avatar_without_a_camera_gets_the_speech_after_the_video_timeout(bey, daily):
    behaviour = AvatarBehaviour(join_delay_s=0.0, camera=False)
    params = BeyParams(avatar_video_timeout_s=0.2, avatar_ready_delay_s=0.0)
    warnings = []
    sink = logger.add(lambda m: warnings.append(str(m)), level="WARNING")
    try:
        async with avatar_bot(bey, daily, behaviour=behaviour, params=params) as bot:
            await bot.run.queue_frames(
                TTSStartedFrame(), TTSAudioRawFrame(bytes(4800) + b"\x01\x02" * 2400, 24000, 1)
            )
            assert await daily.wait_for(
                lambda: bool(daily.avatars) and daily.avatars[0].speech_received_s() > 0, 5
            )
    finally:
        logger.remove(sink)
    assert any("avatar_video_timeout_s" in w for w in warnings)
