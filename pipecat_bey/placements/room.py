"""The room placement: the avatar joins the bot's own room and the user sees it there.

The bot's speech goes to the avatar through the room (on Daily, tagged for the
avatar's custom track, so the output transport chunks, paces and clears it);
the bot's own microphone is off while the avatar speaks for it; nothing of the
avatar's comes back through the bot.
"""

from collections.abc import Callable

from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    InterruptionFrame,
)
from pipecat.processors.frame_processor import FrameProcessor, FrameProcessorSetup

from pipecat_bey.config import BEY_AUDIO_TRACK
from pipecat_bey.placements.base import Placement


class RoomPlacement(Placement):
    """The avatar in the bot's room."""

    name = "room"

    async def start(self, downstream: FrameProcessor | None) -> None:
        """Nothing to start: the avatar's media never passes through the bot.

        Args:
            downstream: Unused.
        """

    def setup(self, setup: FrameProcessorSetup) -> None:
        """Give the room the pipeline's setup, and hear the avatar's playback where it says.

        Args:
            setup: The service's setup.
        """
        super().setup(setup)
        self.room.on_speaking(self._avatar_speaking)

    async def _avatar_speaking(self, speaking: bool) -> None:
        """The avatar started or finished speaking (where the room reports it, LiveKit's)."""
        if speaking:
            await self.hooks.avatar_voice_heard()
        frame_type = BotStartedSpeakingFrame if speaking else BotStoppedSpeakingFrame
        for push in (self.hooks.push_frame, self.hooks.push_upstream):
            if push is None:
                continue
            frame = frame_type()
            frame.transport_destination = BEY_AUDIO_TRACK
            await push(frame)

    async def finish(self, avatar_present: Callable[[], bool]) -> None:
        """Let the avatar play what it was sent (the room knows how: on Daily, the output).

        Args:
            avatar_present: Unused.
        """
        await self.room.play_out()

    def stop(self) -> None:
        """Nothing to stop: the avatar's media never passes through the bot."""

    async def interrupt(self, interruption: InterruptionFrame, destination: str | None) -> None:
        """Barge-in: the room drops the avatar's queued speech.

        Args:
            interruption: The interruption about to go downstream.
            destination: The avatar's track while it speaks, else None.
        """
        await self.room.clear_speech(interruption, destination)
