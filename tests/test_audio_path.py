"""The audio path under odd input and interruptions: nothing lost, duplicated or reordered.

These play audio in real time through the real output transport. The routing
decisions behind them (partial samples, stereo, held speech, interruptions) are
tested on frames alone in test_speech_router.py, with a property test over frame
sizes and interruption points; here one run by default proves the transport
carries what the router sends, and the rest run with ``-m slow``.
"""

import asyncio
import time
from contextlib import asynccontextmanager

import numpy as np
import pytest
from conftest import BEY_KEY, DAILY_KEY
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pipecat.frames.frames import (
    InterruptionFrame,
    TTSAudioRawFrame,
    TTSStoppedFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams
from speech import noise, utterance

from pipecat_bey import BeyParams
from pipecat_bey.testing import AvatarBehaviour, OfflineWorld


@asynccontextmanager
async def raw_bot(rate=24000, join_delay_s=0.1):
    """A bot whose 'TTS' is the test: frames go straight into the service."""
    async with OfflineWorld(
        behaviour=AvatarBehaviour(join_delay_s=join_delay_s),
        bey_key=BEY_KEY,
        daily_key=DAILY_KEY,
        user=False,
    ) as world:
        transport = world.transport(audio_in_enabled=False, audio_out_end_silence_secs=0)
        service = world.avatar_service(transport, params=BeyParams(avatar_ready_delay_s=0.1))
        run = await world.start(
            Pipeline([transport.input(), service, transport.output()]),
            params=PipelineParams(audio_out_sample_rate=rate),
        )
        run.worker.service = service
        yield run.worker, world.daily


def speech_of(avatar):
    """What the avatar received, without the silence around and between utterances."""
    return b"".join(p for _, p in avatar.received_chunks).replace(b"\x00\x00" * 8, b"")


async def received(daily, nbytes, timeout=15):
    await daily.wait_for(
        lambda: bool(daily.avatars) and len(speech_of(daily.avatars[0])) >= nbytes, timeout
    )
    return speech_of(daily.avatars[0])


SLOW = pytest.mark.slow  # the same decision is tested on frames in test_speech_router.py


@pytest.mark.parametrize(
    "sizes",
    [
        pytest.param([1], marks=SLOW),
        pytest.param([3, 5, 7], marks=SLOW),
        pytest.param([2], marks=SLOW),
        [961, 1],
        pytest.param([24000 * 2 * 10], marks=SLOW),
    ],
    ids=["one-byte", "odd-lengths", "one-sample", "ragged", "ten-seconds"],
)
async def test_odd_frame_sizes_arrive_exactly(sizes):
    seconds = 10.0 if sizes[0] >= 480000 else 0.4
    pcm = noise(int(24000 * seconds), seed=len(sizes))
    async with raw_bot() as (worker, daily):
        await worker.queue_frames([TTSAudioRawFrame(b"", 24000, 1), *utterance(pcm, sizes, 24000)])
        got = await received(daily, len(pcm), timeout=seconds * 2 + 10)
    assert pcm in got


@SLOW
async def test_stereo_tts_is_mixed_down():
    left = np.frombuffer(noise(9600, seed=1), np.int16)
    stereo = np.stack([left, left], axis=1).astype(np.int16).tobytes()
    async with raw_bot() as (worker, daily):
        await worker.queue_frames(utterance(stereo, [1920], 24000, channels=2))
        got = await received(daily, len(left) * 2)
    assert left.tobytes() in got


@SLOW
async def test_interruption_during_start_up_drops_held_speech():
    first, second = noise(12000, seed=2), noise(12000, seed=3)
    async with raw_bot(join_delay_s=1.0) as (worker, daily):
        held = asyncio.Event()
        worker.service.add_event_handler(
            "on_after_process_frame",
            lambda s, f: held.set() if isinstance(f, TTSStoppedFrame) else None,
        )
        await worker.queue_frames(utterance(first, [960], 24000))
        await asyncio.wait_for(held.wait(), 5)  # the first utterance is held by the service
        await worker.queue_frame(InterruptionFrame())
        await worker.queue_frames(utterance(second, [960], 24000))
        got = await received(daily, len(second))
        await daily.wait_for(lambda: False, 0.5)
        got = speech_of(daily.avatars[0])
    assert second in got and first[:960] not in got


@SLOW
async def test_audio_before_the_avatar_is_delivered_in_order():
    parts = [noise(4800, seed=s) for s in range(5)]
    async with raw_bot(join_delay_s=1.0) as (worker, daily):
        for part in parts:
            await worker.queue_frames(utterance(part, [480], 24000))
        got = await received(daily, sum(len(p) for p in parts))
    positions = [got.find(p) for p in parts]
    assert all(p >= 0 for p in positions) and positions == sorted(positions)


@pytest.mark.slow
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    rate=st.sampled_from([16000, 24000, 48000]),
    sizes=st.lists(st.integers(min_value=1, max_value=4000), min_size=1, max_size=4),
    interrupt_after_s=st.floats(min_value=0.05, max_value=0.6),
)
def test_what_arrives_is_what_was_said_minus_what_the_interruption_dropped(
    rate, sizes, interrupt_after_s
):
    before, after = noise(int(rate * 0.8), seed=rate), noise(int(rate * 0.3), seed=rate + 1)

    async def scenario():
        async with raw_bot(rate=rate) as (worker, daily):
            await daily.wait_for(lambda: bool(daily.avatars) and daily.avatars[0].in_room, 10)
            await daily.wait_for(lambda: False, 0.3)  # the avatar is listening
            await worker.queue_frames(utterance(before, sizes, rate))
            await daily.wait_for(lambda: False, interrupt_after_s)
            await worker.queue_frame(InterruptionFrame())
            interrupted_at = time.monotonic()
            await worker.queue_frames(utterance(after, sizes, rate))
            await received(daily, len(after))
            await daily.wait_for(lambda: False, 0.3)
            return daily.avatars[0], interrupted_at

    avatar, _ = asyncio.run(scenario())
    got = speech_of(avatar)
    # The second utterance arrives whole, after whatever came of the first.
    assert after in got
    head = got[: got.index(after)]
    # What came of the first is its beginning, exactly, with nothing after the interruption.
    assert before.startswith(head.rstrip(b"\x00"))
    assert len(head) < len(before) or interrupt_after_s > 0.55
