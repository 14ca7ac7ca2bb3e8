"""What the service needs of a room provider: the avatar's session and the room it joins.

A room provider (Daily today, in ``pipecat_bey.daily``) offers two things the
placements and the life cycle drive, and nothing else of it reaches them:

- an :class:`Avatar`: the Beyond Presence session for that provider's rooms (the
  avatar's token, the session request, telling the avatar apart from the other
  participants, removing it at the end);
- an :class:`AvatarRoom`: the room the avatar joins, either the bot's own (the
  room placement) or a private one whose media the bot relays
  (:class:`RelayRoom`, the relay placement).

These are protocols: a provider's classes match them by shape, and import
nothing from here but the small types.
"""

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from enum import Enum
from typing import Any, Protocol

from pipecat.frames.frames import (
    Frame,
    InterruptionFrame,
    OutputAudioRawFrame,
    OutputImageRawFrame,
)
from pipecat.processors.frame_processor import FrameProcessorSetup

from pipecat_bey.models import LivekitSessionResponse, PipecatSessionResponse

Participant = Mapping[str, Any]
"""A participant as the provider reports it (``{"id": ..., ...}``)."""

SessionResponse = PipecatSessionResponse | LivekitSessionResponse
"""A started session, whichever transport it is for."""

TaskFactory = Callable[[Coroutine[Any, Any, None], str], asyncio.Task]
"""Creates a named task (a service's ``create_task``)."""

FramePusher = Callable[[Frame], Awaitable[None]]
"""Pushes a frame downstream (a service's ``push_frame``)."""

AudioHandler = Callable[[OutputAudioRawFrame], Awaitable[None]]
VideoHandler = Callable[[OutputImageRawFrame], Awaitable[None]]


class Arrival(Enum):
    """What a participant joining the room means for the avatar."""

    OTHER = "other"  # not the avatar (the user, say)
    AVATAR = "avatar"  # the avatar, now in the room
    DUPLICATE = "duplicate"  # a second avatar for the same token


class Avatar(Protocol):
    """The avatar's session, as the life cycle and the service use it.

    Attributes:
        avatar_id: The avatar.
        room_url: The room it joins (set once the room is prepared).
        session: The session, once the API accepted it.
        participant_id: Its participant id while it is in the room.
    """

    avatar_id: str
    room_url: str | None
    session: SessionResponse | None
    participant_id: str | None

    def use_session(self, http: Any) -> None:
        """Talk to the APIs through this HTTP session (None: open one)."""

    async def close(self) -> None:
        """Close what :meth:`use_session` opened."""

    async def start(self) -> SessionResponse:
        """Start the session (a token first, if one is needed)."""

    def is_avatar(self, participant: Participant) -> bool:
        """Whether a participant is the avatar."""

    def arrived(self, participant: Participant) -> Arrival:
        """Note a participant joining the room."""

    def departed(self, participant: Participant) -> bool:
        """Note a participant leaving; True if it was the avatar."""

    async def eject_participant(self, participant_id: str) -> None:
        """Remove one participant (a second avatar)."""

    async def eject(self, timeout_s: float) -> int | None:
        """Remove the avatar at the end; safe to call again."""


class AvatarRoom(Protocol):
    """The room the avatar joins, as the placements and the life cycle use it.

    Attributes:
        output_channels: Channels of the speech the room takes (the router mixes
            stereo speech down for a mono room).
    """

    output_channels: int

    def bind(
        self, *, setup: FrameProcessorSetup, push_frame: FramePusher, create_task: TaskFactory
    ) -> None:
        """Take what the room needs of the service: its setup, pushing frames, tasks."""

    def on_events(
        self,
        *,
        joined: Callable[[], Awaitable[None]] | None = None,
        participant_joined: Callable[[Participant], Awaitable[None]] | None = None,
        participant_updated: Callable[[Participant], Awaitable[None]] | None = None,
        participant_left: Callable[[Participant, str], Awaitable[None]] | None = None,
    ) -> None:
        """Be told when the bot joins, and when participants join, change and leave."""

    async def prepare(self) -> str:
        """Make the room ready for the avatar (create, join) and return its URL."""

    async def avatar_arrived(self, participant_id: str) -> None:
        """The avatar joined: take what the room must of it."""

    def camera_on(self, participant: Participant) -> bool:
        """Whether a participant's camera is published (the avatar renders)."""

    async def keep_track_from(self, participant_id: str, track: str) -> str | None:
        """Withhold the speech track from someone else; the provider's error or None."""

    async def publish_microphone(self, on: bool) -> None:
        """Let the user hear the bot's own voice in this room, or not."""

    async def send_speech(self, frame: Frame) -> None:
        """Send the avatar a piece of its speech (audio, or the TTS start or stop)."""

    async def clear_speech(self, interruption: InterruptionFrame, destination: str | None) -> None:
        """Barge-in: drop the speech not yet sent; ``interruption`` goes downstream next."""

    async def interrupt_avatar(self, participant_id: str) -> None:
        """Tell the avatar to drop the speech it still holds."""

    def on_speaking(self, callback: Callable[[bool], Awaitable[None]]) -> None:
        """Be told when the avatar starts and finishes playing, where only the room knows.

        LiveKit's avatar reports its playback over RPC; on Daily the output
        transport reports the avatar's track itself, and this is never called back.
        """

    def take_unsent_speech(self) -> list[OutputAudioRawFrame]:
        """The speech queued for the avatar and not yet sent, taken back (it is lost)."""
        ...

    async def play_out(self) -> bool:
        """At the end, wait (bounded) until the avatar played what it was sent; True if it did."""

    async def close(self, timeout_s: float) -> None:
        """Release the room at the end (safe to call again)."""


class RelayRoom(AvatarRoom, Protocol):
    """A private room for the avatar whose voice and face the bot relays.

    Attributes:
        queued_speech_s: Seconds of speech waiting to be sent to the avatar.
        last_sent_at: When speech was last sent to it (``time.monotonic()``).
    """

    queued_speech_s: float
    last_sent_at: float

    def on_avatar_media(self, *, audio: AudioHandler, video: VideoHandler) -> None:
        """Be handed the avatar's voice and face, as pipecat frames, as they arrive."""
