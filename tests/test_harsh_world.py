"""The first real call, offline: a late-listening avatar, network delay and jitter.

Across a grid of the simulated world's settings (the avatar subscribing up to
1.5 s after it joins, 0 to 150 ms of network delay, 0 to 30 ms of jitter, app
messages on a faster path than audio) the service must hold: the first words
reach the avatar whole, after a barge-in the avatar speaks no more stale speech
than the README's bound, and a user whose client plays every track hears one
voice, the avatar's. Relayed (the avatar backstage, its media sent on by the
bot), the user also hears none of the interrupted speech and sees the face in
step with the voice. A few points of the grid run by default; the whole grid
with ``-m slow``.
"""

import itertools
from contextlib import asynccontextmanager

import pytest
from conftest import BEY_KEY, DAILY_KEY
from pipecat.frames.frames import InterruptionFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams
from speech import noise, utterance

from pipecat_bey import BeyParams
from pipecat_bey.cli.demo import STALE_SPEECH_BOUND_S
from pipecat_bey.config import BEY_AUDIO_TRACK
from pipecat_bey.testing import AvatarBehaviour, SimulatedUser
from pipecat_bey.testing.av_sync import lip_sync, video_fps
from pipecat_bey.testing.daily_sim import custom_audio
from pipecat_bey.testing.harness import OfflineWorld, relayed_video

RATE = 24000


def spoken(seconds, seed):
    return noise(int(RATE * seconds), seed)


def said(pcm):
    return utterance(pcm, [RATE // 50 * 2])  # 20 ms frames, as a streaming TTS sends them


@asynccontextmanager
async def bot_in_harsh_world(
    subscribe_delay_s,
    network_delay_s,
    jitter_s,
    params=None,
    app_message_delay_s=None,
    camera_lead_s=0.0,
    placement="room",
):
    behaviour = AvatarBehaviour(
        join_delay_s=0.0, subscribe_delay_s=subscribe_delay_s, camera_lead_s=camera_lead_s
    )
    async with OfflineWorld(
        bey_key=BEY_KEY,
        daily_key=DAILY_KEY,
        behaviour=behaviour,
        user=False,
        network_delay_s=network_delay_s,
        jitter_s=jitter_s,
        # Signalling overtakes media.
        app_message_delay_s=network_delay_s / 4
        if app_message_delay_s is None
        else app_message_delay_s,
        seed=7,
    ) as world:
        # A custom client that plays every audio track it receives.
        user = SimulatedUser(world.daily, world.room, "User", plays_custom_tracks=True)
        await user.join()
        # As pipecat's runner mints it: the bot owns the room it created.
        token = world.daily.mint_token(world.room, user_name="Bot", is_owner=True)
        # Relayed, the avatar's face goes out on the bot's camera.
        video = relayed_video(behaviour) if placement == "relay" else {}
        transport = world.transport(
            token=token, audio_in_enabled=False, audio_out_end_silence_secs=0, **video
        )
        service = world.avatar_service(transport, params=params or BeyParams(), placement=placement)
        if placement == "relay":
            await world.daily.wait_for(lambda: bool(transport.participants().get("local")), 5)
            user.watch_video(transport.participants()["local"]["id"])
        run = await world.start(
            Pipeline([transport.input(), service, transport.output()]),
            params=PipelineParams(audio_out_sample_rate=RATE),
        )
        yield world, user, transport, run


async def speak_and_barge_in(world, run):
    """Greet (held until the avatar listens), then talk until a barge-in cuts it."""
    greeting, answer = spoken(0.6, seed=1), spoken(3.0, seed=2)
    await run.queue_frames(*said(greeting), *said(answer))
    daily = world.daily
    assert await daily.wait_for(lambda: world.avatar is not None, 10)
    avatar = world.avatar
    # The barge-in comes while the avatar is well into the answer.
    assert await daily.wait_for(lambda: avatar.speech_received_s() >= 1.4, 15)
    await run.queue_frames(InterruptionFrame())
    assert await daily.wait_for(lambda: bool(avatar.interrupts), 5)
    # Everything still on its way has arrived and been spoken by then.
    await daily.wait_for(lambda: False, 0.6)
    return avatar, greeting


def received(avatar):
    return b"".join(pcm for _, pcm in avatar.received_chunks)


GRID = list(itertools.product([0.0, 0.6, 1.5], [0.0, 0.08, 0.15], [0.0, 0.03]))
DEFAULT_POINTS = [(0.0, 0.0, 0.0), (1.5, 0.15, 0.03), (0.6, 0.08, 0.02), (1.5, 0.0, 0.0)]


def points():
    for point in DEFAULT_POINTS + [p for p in GRID if p not in DEFAULT_POINTS]:
        marks = [] if point in DEFAULT_POINTS else [pytest.mark.slow]
        yield pytest.param(*point, marks=marks, id="sub{}-net{}-jit{}".format(*point))


@pytest.mark.parametrize("subscribe_delay_s, network_delay_s, jitter_s", list(points()))
async def test_first_words_whole_stale_speech_bounded_one_voice(
    subscribe_delay_s, network_delay_s, jitter_s
):
    async with bot_in_harsh_world(subscribe_delay_s, network_delay_s, jitter_s) as (
        world,
        user,
        transport,
        run,
    ):
        avatar, greeting = await speak_and_barge_in(world, run)
        bot_id = transport.participants()["local"]["id"]
        # The first words arrive whole, although the avatar subscribed late.
        assert greeting in received(avatar), "the start of the greeting was lost"
        # After the barge-in, the avatar speaks at most the bound of stale speech.
        stale = avatar.spoke_s(after=avatar.interrupts[0])
        assert stale <= STALE_SPEECH_BOUND_S, f"{stale:.3f} s of stale speech"
        # The user hears the avatar, never the bot's raw speech on its track.
        assert user.heard_speech_s(avatar.id) > 1.0
        assert user.heard_speech_s(bot_id, track=custom_audio(BEY_AUDIO_TRACK)) == 0
        await run.end()


RELAY_DEFAULT_POINTS = [(1.5, 0.15, 0.03), (0.6, 0.08, 0.02)]


def relay_points():
    for point in RELAY_DEFAULT_POINTS + [p for p in GRID if p not in RELAY_DEFAULT_POINTS]:
        marks = [] if point in RELAY_DEFAULT_POINTS else [pytest.mark.slow]
        yield pytest.param(*point, marks=marks, id="sub{}-net{}-jit{}".format(*point))


@pytest.mark.parametrize("subscribe_delay_s, network_delay_s, jitter_s", list(relay_points()))
async def test_relayed_first_words_whole_no_stale_voice_in_sync(
    subscribe_delay_s, network_delay_s, jitter_s
):
    async with bot_in_harsh_world(
        subscribe_delay_s, network_delay_s, jitter_s, placement="relay"
    ) as (world, user, transport, run):
        bot_id = transport.participants()["local"]["id"]
        avatar, greeting = await speak_and_barge_in(world, run)
        assert greeting in received(avatar), "the start of the greeting was lost"
        assert avatar.spoke_s(after=avatar.interrupts[0]) <= STALE_SPEECH_BOUND_S
        # The user hears the avatar through the bot, and none of what it still said of
        # the interrupted speech.
        heard = [r for r in user.received if r.publisher_id == bot_id and any(r.pcm)]
        assert user.heard_speech_s(bot_id) > 1.0
        assert not [r for r in heard if r.played_at > avatar.interrupts[0] + 0.3]
        # Its face in step with its voice, within a video frame.
        frames = [f for f in user.received_video if f.publisher_id == bot_id]
        assert video_fps(frames).fps >= 20
        sync = lip_sync(
            frames, avatar.mic_pieces, [r for r in user.received if r.publisher_id == bot_id]
        )
        assert sync.frames_measured > 10 and sync.p95_abs_ms <= 40
        await run.end()
        assert [name for name in world.daily.rooms if name != world.room.name] == []


async def test_without_repeats_stale_speech_reaches_the_avatar():
    """The hazard the repeated "interrupt" removes, shown in the same world."""
    params = BeyParams(interrupt_repeats=0)
    async with bot_in_harsh_world(0.0, 0.15, 0.03, params=params, app_message_delay_s=0.0) as (
        world,
        _,
        _,
        run,
    ):
        avatar, _ = await speak_and_barge_in(world, run)
        assert avatar.spoke_s(after=avatar.interrupts[0]) > STALE_SPEECH_BOUND_S
        await run.end()


async def test_a_face_that_shows_before_the_avatar_listens_is_covered_by_the_margin():
    """The harsher case: the camera comes on before the avatar's subscription takes effect.

    The margin (avatar_ready_delay_s) covers the lead plus the subscription's set-up.
    """
    lead = BeyParams().avatar_ready_delay_s - 0.1  # the default world's set-up is 0.05 s
    async with bot_in_harsh_world(1.0, 0.0, 0.0, camera_lead_s=lead) as (world, _, _, run):
        avatar, greeting = await speak_and_barge_in(world, run)
        assert greeting in received(avatar)
        await run.end()
