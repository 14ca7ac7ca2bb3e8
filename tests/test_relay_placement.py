"""The relay placement, on frames: the avatar backstage, its media passed on or not.

A fake private room stands for Daily's; the service's hooks are plain functions,
so each decision is seen without a pipeline. The playout is left unstarted where
its holds do not matter (it then hands each frame on at once).
"""

import asyncio
import time

from loguru import logger
from pipecat.frames.frames import (
    InterruptionFrame,
    OutputAudioRawFrame,
    OutputImageRawFrame,
    TTSStoppedFrame,
)
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import TransportParams

from pipecat_bey.placements.base import ServiceHooks
from pipecat_bey.placements.relay import DRAIN_QUIET_S, RelayPlacement, output_transport

VOICE = b"\x00\x20" * 960  # 40 ms at 24 kHz, well above silence
SILENCE = b"\x00\x00" * 960


class FakeBackstage:
    output_channels = 1

    def __init__(self):
        self.sent, self.cleared = [], 0
        self.queued_speech_s = 0.0
        self.last_sent_at = 0.0

    def on_avatar_media(self, *, audio, video):
        self.voice, self.face = audio, video

    async def send_speech(self, frame):
        self.sent.append(frame)

    async def clear_speech(self, interruption, destination):
        self.cleared += 1


class Service:
    """What the placement sees of the service: a switch, a TTFB, a downstream."""

    def __init__(self):
        self.pushed, self.heard = [], 0
        self.passes = {True: True, False: True}  # voice, face
        self.awaiting = False

    def hooks(self):
        async def push(frame):
            self.pushed.append(frame)

        async def heard():
            self.heard += 1

        return ServiceHooks(
            push_frame=push,
            create_task=lambda coroutine, name: asyncio.get_running_loop().create_task(coroutine),
            passes_avatar_media=lambda voice: self.passes[voice],
            awaiting_avatar_voice=lambda: self.awaiting,
            avatar_voice_heard=heard,
        )


def relay():
    room, service = FakeBackstage(), Service()
    placement = RelayPlacement(room)
    placement.bind(service.hooks())
    return placement, room, service


def face():
    return OutputImageRawFrame(image=b"\x00" * 12, size=(2, 2), format="RGB")


async def test_the_avatars_media_goes_on_only_while_the_service_lets_it_and_never_after_the_end():
    placement, room, service = relay()
    voice, image = OutputAudioRawFrame(VOICE, 24000, 1), face()
    await room.voice(voice)
    await room.face(image)
    assert service.pushed == [voice, image]

    service.passes[True] = False  # a stale voice after a barge-in, say: the face still goes
    await room.voice(OutputAudioRawFrame(VOICE, 24000, 1))
    await room.face(image)
    assert service.pushed == [voice, image, image]

    service.passes = {True: True, False: True}
    placement.stop()
    await room.voice(voice)
    await room.face(image)
    assert len(service.pushed) == 3  # from the end on, nothing


async def test_the_first_voiced_piece_is_the_avatars_first_speech_and_silence_is_not():
    _, room, service = relay()
    service.awaiting = True  # the service waits for the avatar's first voice (TTFB)
    await room.voice(OutputAudioRawFrame(SILENCE, 24000, 1))
    assert service.heard == 0
    await room.voice(OutputAudioRawFrame(VOICE, 24000, 1))
    assert service.heard == 1 and len(service.pushed) == 2


async def test_speech_goes_backstage_and_a_barge_in_drops_what_is_queued_and_held():
    placement, room, service = relay()
    frame, stop = OutputAudioRawFrame(VOICE, 24000, 1), TTSStoppedFrame()
    await placement.send(frame)
    await placement.send(stop)
    assert room.sent == [frame, stop] and service.pushed == []
    placement.playout.start()
    try:
        await room.voice(OutputAudioRawFrame(VOICE, 24000, 1))
        assert placement.playout.holding_voice  # held for its lead
        interruption = InterruptionFrame()
        await placement.interrupt(interruption, "bey-custom-track")
        assert room.cleared == 1 and not placement.playout.holding_voice
        # Nothing of the bot's is queued for a track in the output: the interruption goes
        # untagged and clears the avatar's voice and face there.
        assert interruption.transport_destination is None
    finally:
        placement.stop()


async def test_the_face_is_held_to_leave_the_output_with_the_voice_at_its_frame_rate():
    placement, _, _ = relay()
    output = BaseOutputTransport(
        TransportParams(video_out_enabled=True, video_out_is_live=True, video_out_framerate=25)
    )
    assert output_transport(output) is output
    await placement.start(output)
    try:
        # 25 fps: the voice leads by a frame (40 ms, at least 60 ms), the face by half less.
        assert placement.playout.voice_lead_s == 0.06
        assert round(placement.playout.face_hold_s, 3) == 0.04
    finally:
        placement.stop()


async def test_an_output_without_video_is_named_with_its_fix():
    placement, _, _ = relay()
    lines = []
    sink = logger.add(lambda message: lines.append(str(message)), level="WARNING")
    try:
        await placement.start(BaseOutputTransport(TransportParams(video_out_enabled=False)))
    finally:
        logger.remove(sink)
        placement.stop()
    assert any("video_out_enabled=True" in line for line in lines)


async def test_the_end_waits_for_the_avatar_to_fall_quiet_unless_it_is_gone():
    placement, room, _ = relay()
    asked = []

    def gone():
        asked.append(True)
        return False

    await placement.finish(gone)
    assert asked == [True]  # gone: not a moment's wait

    room.last_sent_at = time.monotonic()  # speech was just sent: it is still being said
    started = time.monotonic()
    await placement.finish(lambda: True)
    assert time.monotonic() - started >= DRAIN_QUIET_S - 0.01
