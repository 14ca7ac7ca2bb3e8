"""The relay placement: the avatar backstage, its face and voice sent on by the bot's output.

The bot's output here is a DailyTransport in the user's simulated room (so what the
user receives can be measured), with ``placement="relay"``: the avatar joins a
private room the service creates, never the user's. The speech chunking is tested
without a clock; the rest plays speech in real time.
"""

import asyncio
import time

import pytest
from avatar_bot import DATA, avatar_bot, named, until
from pipecat.frames.frames import (
    InterruptionFrame,
    MetricsFrame,
    OutputAudioRawFrame,
    TTSSpeakFrame,
    TTSStoppedFrame,
)
from pipecat.metrics.metrics import TTFBMetricsData
from pipecat.observers.base_observer import BaseObserver, FramePushed
from pipecat.processors.frame_processor import FrameDirection
from speech import found_in

from pipecat_bey import BeyParams
from pipecat_bey.config import BEY_AUDIO_TRACK
from pipecat_bey.daily.backstage_room import BackstageRoom
from pipecat_bey.daily.speech_writer import SPEECH_CHUNK_S, SPEECH_SAMPLE_RATE
from pipecat_bey.placements.relay_playout import RelayPlayout
from pipecat_bey.testing import AvatarBehaviour, Fault, relayed_video
from pipecat_bey.testing.audio import (
    resample,
    speech_duration_s,
    speech_segments,
    write_wav,
)
from pipecat_bey.wav import read_wav

RELAY = {"placement": "relay", "transport_params": relayed_video(AvatarBehaviour())}


def spoken_audio(avatar):
    """What the avatar said, its pieces one after the other."""
    return b"".join(pcm for _, pcm in avatar.spoken)


def bot_id(bot):
    return bot.transport.participants()["local"]["id"]


def rooms_besides(bot):
    return [name for name in bot.daily.rooms if name != bot.room.name]


class TaggedDownstream(BaseObserver):
    """Every frame the avatar service pushed downstream tagged for the avatar's track."""

    def __init__(self):
        super().__init__()
        self.frames = []

    async def on_push_frame(self, data: FramePushed):
        if (
            type(data.source).__name__ == "BeyVideoService"
            and data.direction == FrameDirection.DOWNSTREAM
            and data.frame.transport_destination == BEY_AUDIO_TRACK
        ):
            self.frames.append(data.frame)


def voiced_to_the_end(path, tmp_path):
    """The clip cut where its speech ends: a lost ending cannot hide in trailing silence."""
    pcm, rate, _ = read_wav(path)
    end = speech_segments(pcm, rate)[-1][1]
    out = tmp_path / f"voiced_{path.name}"
    write_wav(out, pcm[: int(end * rate) * 2], rate)
    return out, pcm[: int(end * rate) * 2], rate


async def test_speech_goes_backstage_in_whole_chunks_and_a_barge_in_drops_it():
    room = BackstageRoom(track="bey-custom-track")
    one_second = b"\x01\x00" * 16000
    await room.send_speech(OutputAudioRawFrame(one_second, 16000, 1))
    chunk = int(SPEECH_SAMPLE_RATE * SPEECH_CHUNK_S) * 2
    queued = room.speech.queued_chunks()  # what the writer would send, chunk by chunk
    assert queued and all(len(c) == chunk for c in queued)
    await room.send_speech(TTSStoppedFrame())  # the utterance's tail goes too, short
    assert len(room.speech.queued_chunks()) == len(queued) + 1
    assert 0.9 < room.queued_speech_s <= 1.0
    dropped = room.speech.drop()
    assert room.queued_speech_s == 0 and 0.9 < dropped <= 1.0


async def test_the_user_hears_the_avatar_through_the_bot_and_never_meets_it():
    metrics, tagged = [], TaggedDownstream()
    async with avatar_bot(clip=DATA / "utterance_a.wav", observers=[tagged], **RELAY) as bot:
        bot.service.add_event_handler(
            "on_after_push_frame",
            lambda s, f: metrics.extend(f.data) if isinstance(f, MetricsFrame) else None,
        )
        assert bot.service.placement == "relay"
        await bot.run.queue_frames(TTSSpeakFrame("anything"))
        await until(bot, lambda: bot.user.heard_speech_s(bot_id(bot)) >= 1.5, 20)
        avatar = bot.world.avatar
        backstage = rooms_besides(bot)
        # The avatar never joined the user's room: it is in a private one...
        assert avatar.room.name != bot.room.name and [avatar.room.name] == backstage
        assert avatar.id not in bot.room.members
        me = bot_id(bot)
        await bot.run.end()
        # ...which is gone at the end.
        assert rooms_besides(bot) == [] and not avatar.in_room
        assert not [e for e in bot.events if e[0] == "on_session_error"]
        # What the user heard from the bot is what the avatar said, not the raw TTS:
        # it starts only once the avatar spoke, and matches what it spoke.
        heard = bot.user.heard_audio(me)
        said = spoken_audio(avatar)
        rate = avatar.sample_rate
        assert found_in(said, heard, rate) >= 0.9
        assert abs(speech_duration_s(heard, rate) - speech_duration_s(said, rate)) < 0.15
        first_heard = min(r.at for r in bot.user.received if r.publisher_id == me and any(r.pcm))
        assert first_heard > avatar.spoken[0][0]
    # The bot's speech went backstage only: nothing tagged for the avatar's track went
    # downstream, where an output with such a track would play it to the user.
    assert tagged.frames == []
    # TTFB is the mouth's latency: from the TTS starting to the avatar's first voice out.
    ttfb = [
        m for m in metrics if isinstance(m, TTFBMetricsData) and m.processor == bot.service.name
    ]
    assert any(0 < m.value < 5 for m in ttfb)


async def test_the_avatars_last_words_before_the_end_reach_the_user(tmp_path):
    clip, pcm, rate = voiced_to_the_end(DATA / "utterance_a.wav", tmp_path)
    world = {"network_delay_s": 0.08, "jitter_s": 0.02}
    async with avatar_bot(clip=clip, world_settings=world, **RELAY) as bot:
        me = bot_id(bot)
        await bot.run.queue_frames(TTSSpeakFrame("anything"))
        # The bot ends as soon as the avatar speaks: most of its speech is still on the way.
        await until(bot, lambda: bot.user.heard_speech_s(me) >= 0.3, 20)
        await bot.run.end()
        avatar_rate = bot.world.avatar.sample_rate
        heard = bot.user.heard_audio(me)
    said = resample(pcm, rate, avatar_rate)
    # The user heard all of it, up to its last voiced sample...
    assert speech_duration_s(heard, avatar_rate) >= speech_duration_s(said, avatar_rate) - 0.15
    # ...its last half second included: most of its tenths of a second found as said (a
    # loaded machine's late timer may leave a gap in one or two).
    tail = said[-int(0.5 * avatar_rate) * 2 :]
    assert found_in(tail, heard, avatar_rate, block_s=0.1, correlation=0.8) >= 0.6


async def test_a_barge_in_silences_the_relayed_voice_at_once():
    async with avatar_bot(clip=DATA / "utterance_a.wav", **RELAY) as bot:
        await bot.run.queue_frames(TTSSpeakFrame("anything"))
        me = bot_id(bot)
        await until(bot, lambda: bot.user.heard_speech_s(me) >= 1.0, 20)
        avatar = bot.world.avatar
        await bot.run.queue_frames(InterruptionFrame())  # the user barged in
        assert await bot.daily.wait_for(lambda: bool(avatar.interrupts), 5)
        interrupt_at = avatar.interrupts[0]
        heard_before = bot.user.heard_speech_s(me)
        # Give the stale speech in flight every chance to come through.
        await bot.daily.wait_for(lambda: False, 1.0)
        # The queue backstage was dropped: the avatar got nothing more...
        assert avatar.speech_received_s(after=interrupt_at + 0.05) < 0.1
        # ...and what it still said of the old speech did not reach the user.
        assert bot.user.heard_speech_s(me) - heard_before < 0.15


@pytest.mark.parametrize("case", ["api_error", "never_joins", "bad_daily_key"], ids=lambda c: c)
async def test_without_the_avatar_the_relay_speaks_in_the_bots_own_voice(case):
    params = BeyParams(avatar_join_timeout_s=1.0)
    behaviour = AvatarBehaviour(never_join=case == "never_joins")
    kwargs = {"daily_api_key": "not-the-key"} if case == "bad_daily_key" else {}
    async with avatar_bot(
        clip=DATA / "barge_in.wav", params=params, behaviour=behaviour, **RELAY, **kwargs
    ) as bot:
        if case == "api_error":
            bot.bey.script(Fault.status(500))
        await bot.run.queue_frames(TTSSpeakFrame("anything"))
        me = bot_id(bot)
        await until(bot, lambda: bot.user.heard_speech_s(me) >= 0.5, 20)
        await bot.run.end()
        errors = named(bot.events, "on_session_error")
        assert len(errors) == 1
        assert "not-the-key" not in str(errors[0][0])
        assert rooms_besides(bot) == []  # a private room created for it is gone too


async def test_a_cancelled_bot_leaves_no_private_room_and_no_avatar():
    async with avatar_bot(clip=DATA / "utterance_a.wav", **RELAY) as bot:
        await bot.run.queue_frames(TTSSpeakFrame("anything"))
        await until(bot, lambda: bot.user.heard_speech_s(bot_id(bot)) >= 0.5, 20)
        avatar = bot.world.avatar
        assert rooms_besides(bot)
        await bot.run.cancel()
        assert rooms_besides(bot) == [] and not avatar.in_room


async def test_an_avatar_that_leaves_hands_back_to_the_bots_own_voice():
    behaviour = AvatarBehaviour(join_delay_s=0.0, leave_after_s=1.0)
    async with avatar_bot(clip=DATA / "utterance_a.wav", behaviour=behaviour, **RELAY) as bot:
        await bot.run.queue_frames(TTSSpeakFrame("anything"))
        await until(bot, lambda: named(bot.events, "on_session_error"), 10)
        avatar = bot.world.avatar
        assert not avatar.in_room
        # The next words are the bot's own voice, straight to the output.
        me = bot_id(bot)
        before, sent = bot.user.heard_speech_s(me), len(avatar.received_chunks)
        await bot.run.queue_frames(TTSSpeakFrame("anything"))
        await until(bot, lambda: bot.user.heard_speech_s(me) >= before + 1.0, 20)
        assert len(avatar.received_chunks) == sent  # nothing more went to the avatar
        await bot.run.end()
        assert rooms_besides(bot) == []


async def test_the_playout_holds_each_stretch_of_voice_then_lets_it_flow():
    pushed, came = [], asyncio.Event()

    async def push(frame):
        pushed.append((time.monotonic(), frame))
        came.set()

    playout = RelayPlayout(
        push_voice=push, push_face=push, create_task=lambda c, n: asyncio.create_task(c)
    )
    playout.align_with_video(0.04)  # 25 fps: the voice is held 60 ms, faces 40
    assert (playout.voice_lead_s, round(playout.face_hold_s, 3)) == (0.06, 0.04)
    playout.start()
    try:
        first, second, dropped = (OutputAudioRawFrame(b"\x01\x00" * 480, 24000, 1) for _ in "abc")
        sent_at = time.monotonic()
        await playout.voice(first)
        await playout.voice(second)
        while len(pushed) < 2:
            came.clear()
            await asyncio.wait_for(came.wait(), 2)
        # Held together, handed on in order, the first no sooner than its lead.
        assert [f for _, f in pushed] == [first, second]
        assert pushed[0][0] - sent_at >= 0.06
        await playout.voice(dropped)
        assert playout.holding_voice
        playout.drop_voice()  # a barge-in
        assert not playout.holding_voice
    finally:
        playout.stop()
    assert dropped not in [f for _, f in pushed]
