"""The room placement, on frames: the avatar in the bot's own room, nothing coming back.

A fake room records what the placement asks of it; the Daily room's own part
(tagging, the urgent app message) is tested on the real ``BotRoom`` with a
``DailyTransport`` built in the simulation, without joining a call.
"""

from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    TTSStoppedFrame,
)
from pipecat.transports.daily.transport import (
    DailyOutputTransportMessageUrgentFrame,
    DailyParams,
    DailyTransport,
)

from pipecat_bey.config import BEY_AUDIO_TRACK, INTERRUPT_MESSAGE
from pipecat_bey.daily.bot_room import BotRoom
from pipecat_bey.placements.base import ServiceHooks
from pipecat_bey.placements.room import RoomPlacement


class FakeRoom:
    output_channels = 1

    def __init__(self):
        self.sent, self.cleared, self.told, self.microphone = [], [], [], []
        self.played_out = 0
        self.speaking = None

    def bind(self, **service):
        pass

    def on_speaking(self, callback):
        self.speaking = callback

    async def play_out(self):
        self.played_out += 1
        return True

    async def send_speech(self, frame):
        self.sent.append(frame)

    async def clear_speech(self, interruption, destination):
        self.cleared.append((interruption, destination))

    async def interrupt_avatar(self, participant_id):
        self.told.append(participant_id)

    async def publish_microphone(self, on):
        self.microphone.append(on)

    def take_unsent_speech(self):
        return []


def hooks(pushed):
    async def push(frame):
        pushed.append(frame)

    async def heard():
        pass

    return ServiceHooks(
        push_frame=push,
        create_task=lambda coroutine, name: None,
        passes_avatar_media=lambda voice: True,
        awaiting_avatar_voice=lambda: False,
        avatar_voice_heard=heard,
    )


def speech():
    frame = OutputAudioRawFrame(b"\x01\x00" * 480, 24000, 1)
    frame.transport_destination = BEY_AUDIO_TRACK
    return frame


async def test_speech_barge_ins_and_the_microphone_go_to_the_room():
    room, pushed = FakeRoom(), []
    placement = RoomPlacement(room)
    placement.bind(hooks(pushed))
    assert placement.name == "room" and placement.output_channels == 1
    frame = speech()
    await placement.send(frame)
    interruption = InterruptionFrame()
    await placement.interrupt(interruption, BEY_AUDIO_TRACK)
    await placement.interrupt_avatar("avatar-1")
    await placement.publish_microphone(False)
    assert room.sent == [frame]
    assert room.cleared == [(interruption, BEY_AUDIO_TRACK)]
    assert room.told == ["avatar-1"] and room.microphone == [False]


async def test_nothing_comes_back_through_the_bot_and_the_end_waits_for_the_room():
    room, pushed = FakeRoom(), []
    placement = RoomPlacement(room)
    placement.bind(hooks(pushed))
    asked = []
    await placement.start(None)
    await placement.finish(lambda: asked.append(True) or True)
    placement.stop()
    placement.stop()  # safe to repeat
    assert pushed == [] and asked == []
    assert room.played_out == 1  # the room knows what playing out takes (LiveKit: the RPCs)


async def test_the_avatar_speaking_where_the_room_reports_it_is_the_bot_speaking():
    room, pushed, upstream, heard = FakeRoom(), [], [], []

    async def push(frame):
        pushed.append(frame)

    async def push_up(frame):
        upstream.append(frame)

    async def voice_heard():
        heard.append(True)

    placement = RoomPlacement(room)
    placement.bind(
        ServiceHooks(
            push_frame=push,
            create_task=lambda coroutine, name: None,
            passes_avatar_media=lambda voice: True,
            awaiting_avatar_voice=lambda: True,
            avatar_voice_heard=voice_heard,
            push_upstream=push_up,
        )
    )
    placement.setup(None)
    await room.speaking(True)
    await room.speaking(False)
    for frames in (pushed, upstream):
        assert [type(f) for f in frames] == [BotStartedSpeakingFrame, BotStoppedSpeakingFrame]
        assert all(f.transport_destination == BEY_AUDIO_TRACK for f in frames)
    assert heard == [True]  # the TTFB ends when the avatar starts, not when it stops


async def test_the_daily_room_tags_speech_and_barge_ins_for_the_track_and_tells_the_avatar(daily):
    transport = DailyTransport(daily.create_room("tags").url, None, "Bot", DailyParams())
    room = BotRoom(transport, track=BEY_AUDIO_TRACK)
    pushed = []
    room.bind(setup=None, push_frame=lambda f: _append(pushed, f), create_task=None)
    frame, stop = speech(), TTSStoppedFrame()
    stop.transport_destination = BEY_AUDIO_TRACK
    await room.send_speech(frame)
    await room.send_speech(stop)
    assert pushed == [frame, stop]  # the output transport paces and flushes the track

    to_avatar, to_bot = InterruptionFrame(), InterruptionFrame()
    await room.clear_speech(to_avatar, BEY_AUDIO_TRACK)
    await room.clear_speech(to_bot, None)
    # The output clears the queue the interruption names: the track's while the avatar
    # speaks, the bot's own otherwise.
    assert to_avatar.transport_destination == BEY_AUDIO_TRACK
    assert to_bot.transport_destination is None

    await room.interrupt_avatar("avatar-1")
    message = pushed[-1]
    assert isinstance(message, DailyOutputTransportMessageUrgentFrame)  # skips queued audio
    assert (message.message, message.participant_id) == (INTERRUPT_MESSAGE, "avatar-1")


async def _append(pushed, frame):
    pushed.append(frame)
