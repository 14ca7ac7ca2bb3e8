"""The one reach-in into pipecat's DailyTransport still works, or fails loudly."""

import time
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import BEY_KEY, DAILY_KEY
from pipecat.frames.frames import OutputAudioRawFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.transports.daily.transport import DailyParams, DailyTransport

from pipecat_bey.config import BEY_AUDIO_TRACK
from pipecat_bey.daily.bot_room import add_output_destination, share_end_silence
from pipecat_bey.errors import BeyConfigError
from pipecat_bey.testing.daily_sim import SimulatedParticipant, custom_audio
from pipecat_bey.testing.harness import OfflineWorld


async def test_a_track_added_after_the_transport_was_built_is_published(bey, daily):
    """If pipecat stops creating a media sender for an added name, this fails."""
    async with OfflineWorld(
        bey=bey, daily=daily, bey_key=BEY_KEY, daily_key=DAILY_KEY, user=False
    ) as world:
        listener = SimulatedParticipant(daily, world.room, "Listener")
        await listener.join()
        transport = world.transport(audio_in_enabled=False, audio_out_end_silence_secs=0)
        assert BEY_AUDIO_TRACK not in transport._params.audio_out_destinations
        add_output_destination(transport, BEY_AUDIO_TRACK)
        add_output_destination(transport, BEY_AUDIO_TRACK)  # twice is harmless
        assert transport._params.audio_out_destinations.count(BEY_AUDIO_TRACK) == 1
        run = await world.start(Pipeline([transport.input(), transport.output()]))
        track = custom_audio(BEY_AUDIO_TRACK)

        def listening():
            bots = [m for m in world.room.participants() if m is not listener]
            return bool(bots) and listener.receives(bots[0].id, track, time.monotonic())

        assert await daily.wait_for(listening, 5)
        rng = np.random.default_rng(3)
        audio = rng.integers(-20000, 20000, 24000 // 5, dtype=np.int16).tobytes()
        frame = OutputAudioRawFrame(audio, 24000, 1)
        frame.transport_destination = BEY_AUDIO_TRACK
        await run.queue_frames(frame)

        def heard():
            bot_ids = {r.publisher_id for r in listener.received if r.track == track}
            return any(audio in listener.heard_audio(b, track) for b in bot_ids)

        assert await daily.wait_for(heard, 10)
        await run.end()


def test_a_transport_whose_params_changed_shape_is_refused_loudly():
    transport = SimpleNamespace(_params=SimpleNamespace(audio_out_channels=1))
    with pytest.raises(BeyConfigError, match="pipecat-ai"):
        add_output_destination(transport, BEY_AUDIO_TRACK)


def test_the_avatars_track_does_not_make_the_bot_take_longer_to_end(daily):
    """End silence is sent per destination, one after the other: it is shared, not doubled."""
    room = daily.create_room()
    default = DailyTransport(room.url, None, "Bot", DailyParams(audio_out_enabled=True))
    share_end_silence(default)
    chosen = DailyTransport(
        room.url, None, "Bot", DailyParams(audio_out_enabled=True, audio_out_end_silence_secs=3)
    )
    share_end_silence(chosen)
    assert default._params.audio_out_end_silence_secs == 1  # twice 1 s: as long as before
    assert chosen._params.audio_out_end_silence_secs == 3  # the bot's own choice stands
