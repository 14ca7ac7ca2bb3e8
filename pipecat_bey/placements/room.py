"""The room placement: the avatar joins the bot's own room and the user sees it there.

The bot's speech goes to the avatar through the room (on Daily, tagged for the
avatar's custom track, so the output transport chunks, paces and clears it);
the bot's own microphone is off while the avatar speaks for it; nothing of the
avatar's comes back through the bot.
"""

from collections.abc import Callable

from pipecat.frames.frames import InterruptionFrame
from pipecat.processors.frame_processor import FrameProcessor

from pipecat_bey.placements.base import Placement


class RoomPlacement(Placement):
    """The avatar in the bot's room."""

    name = "room"

    async def start(self, downstream: FrameProcessor | None) -> None:
        """Nothing to start: the avatar's media never passes through the bot.

        Args:
            downstream: Unused.
        """

    async def finish(self, avatar_present: Callable[[], bool]) -> None:
        """Nothing to wait for: the output transport plays the track's queue out.

        Args:
            avatar_present: Unused.
        """

    def stop(self) -> None:
        """Nothing to stop: the avatar's media never passes through the bot."""

    async def interrupt(self, interruption: InterruptionFrame, destination: str | None) -> None:
        """Barge-in: the room drops the avatar's queued speech.

        Args:
            interruption: The interruption about to go downstream.
            destination: The avatar's track while it speaks, else None.
        """
        await self.room.clear_speech(interruption, destination)
