"""The placement: everything that differs between the avatar in the bot's room and backstage.

The service routes the bot's speech and runs the avatar's life cycle the same
way wherever the avatar is; a :class:`Placement` does the rest: how speech
reaches the avatar, what a barge-in clears, what the end waits for, and (in the
relay) the avatar's media coming back. The service holds one and never asks
which.
"""

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import ClassVar

from pipecat.frames.frames import Frame, InterruptionFrame
from pipecat.processors.frame_processor import FrameProcessor, FrameProcessorSetup

from pipecat_bey.rooms import AvatarRoom, FramePusher, TaskFactory


@dataclass(frozen=True)
class ServiceHooks:
    """What a placement may use of the service that holds it.

    Parameters:
        push_frame: Pushes a frame downstream.
        create_task: Creates a named task that pipecat tracks.
        passes_avatar_media: ``(voice)``: whether the avatar's voice (True) or face
            (False) goes downstream now; the service decides.
        awaiting_avatar_voice: Whether the service waits for the avatar's first
            voice (its TTFB).
        avatar_voice_heard: Called when the avatar's voice is heard.
        push_upstream: Pushes a frame upstream (the avatar's speaking edges, where the
            room reports them); None: they go downstream only.
    """

    push_frame: FramePusher
    create_task: TaskFactory
    passes_avatar_media: Callable[[bool], bool]
    awaiting_avatar_voice: Callable[[], bool]
    avatar_voice_heard: Callable[[], Awaitable[None]]
    push_upstream: FramePusher | None = None


class Placement(ABC):
    """Where the avatar is, and what that takes of the service.

    Attributes:
        name: "room" or "relay".
        room: The room the avatar joins.
    """

    name: ClassVar[str]

    def __init__(self, room: AvatarRoom) -> None:
        """Place the avatar in a room.

        Args:
            room: The room it joins.
        """
        self.room = room
        self._hooks: ServiceHooks | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(room={self.room!r})"

    @property
    def output_channels(self) -> int:
        """Channels of the speech the avatar's room takes."""
        return self.room.output_channels

    def bind(self, hooks: ServiceHooks) -> None:
        """Take the service's hooks (once, when the service is built).

        Args:
            hooks: What the placement may use of the service.
        """
        self._hooks = hooks

    @property
    def hooks(self) -> ServiceHooks:
        """The service's hooks."""
        if self._hooks is None:
            raise RuntimeError(f"{self} is not bound to a service")
        return self._hooks

    def setup(self, setup: FrameProcessorSetup) -> None:
        """Give the room the pipeline's setup (when the service is set up).

        Args:
            setup: The service's setup.
        """
        self.room.bind(
            setup=setup, push_frame=self.hooks.push_frame, create_task=self.hooks.create_task
        )

    @abstractmethod
    async def start(self, downstream: FrameProcessor | None) -> None:
        """The pipeline starts.

        Args:
            downstream: The processor after the service.
        """

    @abstractmethod
    async def finish(self, avatar_present: Callable[[], bool]) -> None:
        """The pipeline ends gracefully: let the avatar say what it was sent.

        Called only while the avatar speaks for the bot.

        Args:
            avatar_present: Whether the avatar is still in the room.
        """

    @abstractmethod
    def stop(self) -> None:
        """From the end on, nothing of the avatar's goes downstream (safe to repeat)."""

    async def send(self, frame: Frame) -> None:
        """Send the avatar a speech frame the router tagged for it.

        Args:
            frame: Audio, or the TTS start or stop around it.
        """
        await self.room.send_speech(frame)

    @abstractmethod
    async def interrupt(self, interruption: InterruptionFrame, destination: str | None) -> None:
        """Barge-in, before ``interruption`` goes downstream: drop what is stale.

        Args:
            interruption: The interruption about to go downstream.
            destination: The output destination whose queue it must clear (the
                avatar's track while the avatar speaks), or None.
        """

    async def interrupt_avatar(self, participant_id: str) -> None:
        """Tell the avatar to drop the speech it still holds.

        Args:
            participant_id: The avatar.
        """
        await self.room.interrupt_avatar(participant_id)

    async def publish_microphone(self, on: bool) -> None:
        """Let the user hear the bot's own voice in the avatar's room, or not.

        Args:
            on: Whether the bot's own voice is heard there.
        """
        await self.room.publish_microphone(on)
