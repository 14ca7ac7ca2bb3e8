"""The avatar in a LiveKit room, on frames and settings: no server, no clock.

The speech stream's decisions (a stream per utterance at 16 kHz, the clear before
the next utterance, the playback reports) are tested against a recording stand-in
for the bot's ``rtc.LocalParticipant``: it records calls in order and answers RPCs
when told. That the real SDK, server and LiveKit's avatar code agree is proven in
``tests/test_livekit_service.py``.

The settings are tested on a real ``LiveKitTransport`` (built, never connected).
"""

import asyncio
import json
from dataclasses import dataclass

import numpy as np
import pytest

pytest.importorskip("livekit.api", reason="pip install 'pipecat-bey[livekit]'")

from livekit import api
from pipecat.frames.frames import OutputAudioRawFrame
from pipecat.transports.livekit.transport import LiveKitTransport

from pipecat_bey import BeyVideoService
from pipecat_bey.errors import BeyConfigError
from pipecat_bey.livekit.speech_stream import (
    AUDIO_STREAM_TOPIC,
    MAX_LEAD_S,
    PLAYBACK_STARTED_WAIT_S,
    RPC_CLEAR_BUFFER,
    RPC_PLAYBACK_FINISHED,
    RPC_PLAYBACK_STARTED,
    SpeechStream,
)
from pipecat_bey.livekit.tokens import AVATAR_IDENTITY, PUBLISH_ON_BEHALF, mint_avatar_token

KEY, SECRET = "APIkey123", "a-secret-long-enough-for-hs256-signing-0123"


@dataclass
class Invocation:
    caller_identity: str
    payload: str = ""


class Writer:
    def __init__(self, log, name):
        self.log, self.name, self.data, self.closed = log, name, bytearray(), False
        self.observe = None

    async def write(self, data):
        self.data.extend(data)
        if self.observe is not None:
            self.observe()

    async def aclose(self, **kwargs):
        self.closed = True
        self.log.append(("close", self.name))


class Participant:
    """Records what the stream asks of the bot's participant, in order."""

    def __init__(self):
        self.log, self.writers, self.rpc_handlers = [], [], {}
        self.observe = None  # called after each write
        self.answer = asyncio.Event()
        self.answer.set()

    def register_rpc_method(self, method, handler):
        self.rpc_handlers[method] = handler

    def unregister_rpc_method(self, method):
        self.rpc_handlers.pop(method, None)

    async def stream_bytes(self, name, *, topic, destination_identities, attributes):
        writer = Writer(self.log, name)
        writer.observe = self.observe
        writer.topic, writer.to, writer.attributes = topic, destination_identities, attributes
        self.writers.append(writer)
        self.log.append(("open", name))
        return writer

    async def perform_rpc(self, *, destination_identity, method, payload, response_timeout):
        self.log.append(("rpc", method, destination_identity))
        await self.answer.wait()
        self.log.append(("answered", method))
        return "ok"


def speech(seconds, rate=24000):
    t = np.arange(int(rate * seconds)) / rate
    samples = (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    return OutputAudioRawFrame(samples.tobytes(), rate, 1)


class VirtualClock:
    """Time that passes only when the stream waits."""

    def __init__(self):
        self.now, self.waits = 0.0, []

    def __call__(self):
        return self.now

    async def sleep(self, seconds):
        self.waits.append(seconds)
        self.now += seconds


async def attached(clock=None):
    participant, speaking = Participant(), []

    async def on_speaking(started):
        speaking.append(started)

    clock = clock or VirtualClock()
    stream = SpeechStream(AVATAR_IDENTITY, clock=clock, sleep=clock.sleep)
    stream.attach(participant, on_speaking)
    return stream, participant, speaking


async def test_an_utterance_is_one_stream_to_the_avatar_only_at_16_khz_closed_at_its_end():
    stream, participant, _ = await attached()
    for _ in range(5):
        await stream.write(speech(0.2))
    await stream.end()
    await stream.write(speech(0.2))
    await stream.end()
    await stream.sent()
    first, second = participant.writers
    assert first.topic == AUDIO_STREAM_TOPIC and first.to == [AVATAR_IDENTITY]
    assert first.attributes == {"sample_rate": "16000", "num_channels": "1"}
    # 1 s of speech at 16 kHz, 16-bit (the resampler may hold back a few samples)
    assert abs(len(first.data) - 32000) <= 2 * 64 and first.closed
    assert second.closed and participant.log[1] == ("close", first.name)


async def test_a_barge_in_clears_once_and_the_next_utterance_waits_for_the_answer():
    stream, participant, _ = await attached()
    await stream.write(speech(0.5))
    await stream.sent()
    participant.answer.clear()  # the avatar has not answered yet
    await stream.clear()
    await stream.clear()  # nothing sent since: a repeat must not cut the next utterance
    writing = asyncio.ensure_future(stream.write(speech(0.2)))
    await asyncio.sleep(0)
    assert len(participant.writers) == 1  # held: the clear could still overtake it
    participant.answer.set()
    await writing
    await stream.sent()
    kinds = [entry[0] for entry in participant.log]
    assert kinds == ["open", "close", "rpc", "answered", "open"]
    assert participant.log[2] == ("rpc", RPC_CLEAR_BUFFER, AVATAR_IDENTITY)


async def says_it_plays(participant):
    """The avatar calls lk.playback_started (as LiveKit's own avatar code does)."""
    await participant.rpc_handlers[RPC_PLAYBACK_STARTED](Invocation(AVATAR_IDENTITY))


async def test_speech_made_faster_than_real_time_is_sent_at_most_half_a_second_ahead():
    # A TTS makes 3 s of speech at once, in 20 ms frames: the avatar must never hold more
    # than MAX_LEAD_S unplayed, or a clear queues behind it on the data channel.
    clock = VirtualClock()
    stream, participant, _ = await attached(clock)
    await says_it_plays(participant)
    leads = []
    participant.observe = lambda: leads.append(
        sum(len(w.data) for w in participant.writers) / 2 / 16000 - clock.now
    )
    for _ in range(150):
        await stream.write(speech(0.02))  # queued: the pipeline is not held up
    assert clock.now == 0
    await stream.end()
    await stream.sent()
    assert max(leads) <= MAX_LEAD_S + 1e-6
    assert max(leads) >= MAX_LEAD_S - 0.03  # and it does run ahead, as far as that
    # All of it, in one stream, in real time less the lead.
    assert len(participant.writers) == 1 and participant.writers[0].closed
    assert len(participant.writers[0].data) / 2 / 16000 == pytest.approx(3.0, abs=0.001)
    assert clock.now == pytest.approx(3.0 - MAX_LEAD_S, abs=0.03)
    # A new utterance gets its own lead again.
    waited = clock.now
    await stream.write(speech(0.2))
    await stream.sent()
    assert clock.now == waited


async def test_a_barge_in_drops_the_speech_still_queued_and_clears_at_once():
    gate, clock = asyncio.Event(), VirtualClock()

    async def held(seconds):  # real time stands still until the gate opens
        await gate.wait()

    participant = Participant()
    stream = SpeechStream(AVATAR_IDENTITY, clock=clock, sleep=held)
    stream.attach(participant, lambda started: asyncio.sleep(0))
    await says_it_plays(participant)
    for _ in range(150):
        await stream.write(speech(0.02))
    for _ in range(5):
        await asyncio.sleep(0)
    sent_s = len(participant.writers[0].data) / 2 / 16000
    assert sent_s == pytest.approx(MAX_LEAD_S, abs=0.03)  # the rest waits its turn
    await stream.clear()
    for _ in range(3):
        await asyncio.sleep(0)
    # The clear went out while the sender still waited: not behind the queued speech.
    assert participant.log[-3:] == [
        ("close", participant.writers[0].name),
        ("rpc", RPC_CLEAR_BUFFER, AVATAR_IDENTITY),
        ("answered", RPC_CLEAR_BUFFER),
    ]
    gate.set()
    await stream.sent()
    assert len(participant.writers) == 1 and participant.writers[0].closed
    assert len(participant.writers[0].data) / 2 / 16000 == sent_s  # nothing stale after it
    assert stream.unplayed_bound_s() == pytest.approx(sent_s)


async def test_an_avatar_that_never_says_it_started_is_taken_as_started_when_it_is_sent():
    # lk.playback_started is optional: without it the bot still tells its pipeline (and its
    # TTFB) that the avatar speaks, after PLAYBACK_STARTED_WAIT_S the first time, at once after.
    gate, waits = asyncio.Event(), []

    async def wait(seconds):
        waits.append(seconds)
        await gate.wait()

    participant, speaking = Participant(), []

    async def on_speaking(started):
        speaking.append(started)

    stream = SpeechStream(AVATAR_IDENTITY, sleep=wait)
    stream.attach(participant, on_speaking)
    finished = participant.rpc_handlers[RPC_PLAYBACK_FINISHED]
    await stream.write(speech(0.1))
    await stream.end()
    for _ in range(5):
        await asyncio.sleep(0)
    assert waits == [PLAYBACK_STARTED_WAIT_S] and speaking == []  # waiting for the avatar
    gate.set()
    await stream.sent()
    for _ in range(5):
        await asyncio.sleep(0)
    assert speaking == [True]
    report = json.dumps({"playback_position": 0.1, "interrupted": False})
    await finished(Invocation(AVATAR_IDENTITY, report))
    assert speaking == [True, False]
    await stream.write(speech(0.1))  # the next one: at once, no wait
    await stream.sent()
    for _ in range(5):
        await asyncio.sleep(0)
    assert speaking == [True, False, True] and waits == [PLAYBACK_STARTED_WAIT_S]
    await stream.close()


async def test_an_utterance_played_out_before_the_wait_is_not_announced_after_it():
    gate = asyncio.Event()

    async def wait(seconds):
        await gate.wait()

    participant, speaking = Participant(), []

    async def on_speaking(started):
        speaking.append(started)

    stream = SpeechStream(AVATAR_IDENTITY, sleep=wait)
    stream.attach(participant, on_speaking)
    await stream.write(speech(0.1))
    await stream.end()
    await stream.sent()
    report = json.dumps({"playback_position": 0.1, "interrupted": False})
    await participant.rpc_handlers[RPC_PLAYBACK_FINISHED](Invocation(AVATAR_IDENTITY, report))
    gate.set()  # the wait ends after the avatar said it finished
    for _ in range(5):
        await asyncio.sleep(0)
    assert speaking == [] and not stream.speaking  # never left "speaking" with nothing playing
    await stream.close()


async def test_an_avatar_that_says_it_started_is_believed_and_announced_once():
    stream, participant, speaking = await attached()
    await says_it_plays(participant)  # before anything was sent: it does call it
    await stream.write(speech(0.1))
    await stream.end()
    await stream.sent()
    await says_it_plays(participant)
    for _ in range(5):
        await asyncio.sleep(0)
    assert speaking == [True]  # once, not again for the second call
    await stream.close()


async def test_a_lost_avatars_unsent_speech_is_taken_back_and_not_sent():
    gate, clock = asyncio.Event(), VirtualClock()

    async def held(seconds):
        await gate.wait()

    participant = Participant()
    stream = SpeechStream(AVATAR_IDENTITY, clock=clock, sleep=held)
    stream.attach(participant, lambda started: asyncio.sleep(0))
    await says_it_plays(participant)
    for _ in range(100):
        await stream.write(speech(0.02))  # 2 s, at once
    for _ in range(5):
        await asyncio.sleep(0)
    sent_s = len(participant.writers[0].data) / 2 / 16000
    unsent = stream.take_unsent()
    # All that was queued (the resampler keeps its last few ms of the utterance).
    assert len(unsent) / 2 / 16000 == pytest.approx(2.0 - sent_s, abs=0.1)
    assert stream.unplayed_bound_s() == pytest.approx(sent_s)
    gate.set()
    await stream.sent()
    assert len(participant.writers[0].data) / 2 / 16000 == sent_s  # none of it went after
    assert stream.take_unsent() == b""
    await stream.close()


async def test_the_avatar_reports_playback_and_the_end_waits_for_it():
    stream, participant, speaking = await attached()
    await stream.write(speech(0.4))
    await stream.end()
    assert stream.speaking and stream.unplayed_bound_s() == pytest.approx(0.4, abs=0.01)
    started = participant.rpc_handlers[RPC_PLAYBACK_STARTED]
    finished = participant.rpc_handlers[RPC_PLAYBACK_FINISHED]
    assert await started(Invocation("user")) == "reject"  # only the avatar reports
    assert await started(Invocation(AVATAR_IDENTITY)) == "ok"
    assert not await stream.played_out(0)
    report = json.dumps({"playback_position": 0.4, "interrupted": False})
    assert await finished(Invocation(AVATAR_IDENTITY, report)) == "ok"
    assert await stream.played_out(0)
    assert speaking == [True, False] and not stream.speaking
    assert stream.playbacks[0].position_s == pytest.approx(0.4)


async def test_speech_before_the_bot_is_connected_is_reported_not_raised():
    stream = SpeechStream(AVATAR_IDENTITY)
    await stream.write(speech(0.1))  # logged; the life cycle falls back
    await stream.clear()
    await stream.close()


def test_the_avatar_token_is_an_agent_publishing_for_the_bot_in_its_room_and_expires():
    token = mint_avatar_token(KEY, SECRET, room="room-1", bot_identity="bot-7", ttl_s=600)
    claims = api.TokenVerifier(KEY, SECRET).verify(token)
    assert claims.identity == AVATAR_IDENTITY and claims.kind == "agent"
    assert claims.attributes == {PUBLISH_ON_BEHALF: "bot-7"}
    assert claims.video.room == "room-1" and claims.video.room_join


def bot_transport(url="wss://project.livekit.cloud", *, key=KEY, secret=SECRET, identity="bot"):
    token = (
        api.AccessToken(key, secret)
        .with_identity(identity)
        .with_grants(api.VideoGrants(room_join=True, room="room-1"))
        .to_jwt()
    )
    return LiveKitTransport(url, token, "room-1"), token


def test_a_livekit_bot_gets_the_avatar_in_its_room(clean_env):
    transport, _ = bot_transport()
    service = BeyVideoService(
        transport=transport, api_key="bey", livekit_api_key=KEY, livekit_api_secret=SECRET
    )
    assert service.placement == "room"


@pytest.mark.parametrize("missing", ["LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"])
def test_missing_livekit_credentials_are_named(clean_env, missing):
    for name, value in (("LIVEKIT_API_KEY", KEY), ("LIVEKIT_API_SECRET", SECRET)):
        if name != missing:
            clean_env.setenv(name, value)
        else:
            clean_env.delenv(name, raising=False)
    transport, _ = bot_transport()
    with pytest.raises(BeyConfigError, match=missing):
        BeyVideoService(transport=transport, api_key="bey")


def test_a_bot_token_of_another_secret_fails_at_construction_without_quoting_it(clean_env):
    transport, token = bot_transport(secret="another-secret-of-another-project-012345")
    with pytest.raises(BeyConfigError, match="does not check out") as caught:
        BeyVideoService(
            transport=transport, api_key="bey", livekit_api_key=KEY, livekit_api_secret=SECRET
        )
    assert token not in str(caught.value) and SECRET not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "accepted"),
    [
        ("wss://project.livekit.cloud", True),
        ("ws://127.0.0.1:7880", True),
        ("ws://10.204.0.1:7880", True),
        ("ws://livekit.example.com", False),
        ("ftp://livekit.example.com", False),
    ],
)
def test_cleartext_to_a_public_server_is_refused(clean_env, url, accepted):
    transport, _ = bot_transport(url)
    build = lambda: BeyVideoService(  # noqa: E731
        transport=transport, api_key="bey", livekit_api_key=KEY, livekit_api_secret=SECRET
    )
    if accepted:
        build()
    else:
        with pytest.raises(BeyConfigError, match="wss://"):
            build()


def test_no_secret_or_token_in_the_service_repr(clean_env):
    transport, token = bot_transport()
    service = BeyVideoService(
        transport=transport, api_key="bey", livekit_api_key=KEY, livekit_api_secret=SECRET
    )
    shown = " ".join(
        repr(x) for x in (service, service._avatar, service._placement, service._placement.room)
    )
    assert SECRET not in shown and token not in shown


def test_a_livekit_bot_cannot_ask_for_the_daily_relay_yet(clean_env):
    transport, _ = bot_transport()
    with pytest.raises(BeyConfigError, match="not supported yet"):
        BeyVideoService(
            transport=transport,
            placement="relay",
            api_key="bey",
            livekit_api_key=KEY,
            livekit_api_secret=SECRET,
        )
