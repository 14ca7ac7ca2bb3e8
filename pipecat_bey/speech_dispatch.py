"""Carrying out the speech router's decisions: push, send to the avatar, switch the microphone.

``SpeechRouter`` decides where each piece of the bot's speech goes and never
does I/O; ``SpeechDispatch`` does what it decided, under one lock, so that a
barge-in, the avatar becoming ready and new speech never interleave: frames for
the avatar go to the placement, the rest downstream, and the bot's own
microphone follows the route.
"""

import asyncio
from collections.abc import Awaitable, Callable

from loguru import logger
from pipecat.frames.frames import Frame, InterruptionFrame
from pipecat.processors.frame_processor import FrameDirection

from pipecat_bey.config import BEY_AUDIO_TRACK, BeyParams
from pipecat_bey.placements.base import Placement
from pipecat_bey.rooms import Avatar
from pipecat_bey.speech_router import Routing, SpeechRouter


class SpeechDispatch:
    """Applies the router's answers through the placement and the service's output."""

    def __init__(
        self,
        placement: Placement,
        avatar: Avatar,
        *,
        params: BeyParams,
        push_frame: Callable[[Frame, FrameDirection], Awaitable[None]],
        speaker: str,
    ) -> None:
        """Dispatch for one service.

        Args:
            placement: Where the avatar is.
            avatar: The avatar's session (who to tell of a barge-in).
            params: The service's tuning (how much speech is held, the fallback).
            push_frame: The service's ``push_frame``.
            speaker: How log lines name the service.
        """
        self.router = SpeechRouter(
            track=BEY_AUDIO_TRACK,
            max_held_s=params.max_held_audio_s,
            out_channels=placement.output_channels,
            fallback=params.fallback_to_bot_voice,
        )
        """The decisions this dispatch carries out."""
        self._router = self.router
        self._placement = placement
        self._avatar = avatar
        self._push_frame = push_frame
        self._speaker = speaker
        self._lock = asyncio.Lock()

    async def speech(self, frame: Frame) -> None:
        """Route one speech frame of the bot's.

        Args:
            frame: TTS audio, or the TTS start or stop around it.
        """
        async with self._lock:
            await self._apply(self._router.speech(frame))

    async def reroute(self, *, ready: bool) -> None:
        """The avatar listens (ready) or is gone: held speech goes where speech goes now.

        A lost avatar's speech that the room had not sent yet is taken back, for the bot's
        own voice, ahead of the held speech.

        Args:
            ready: True when the avatar listens, False when it is lost.
        """
        async with self._lock:
            if ready:
                await self._apply(self._router.avatar_ready())
            else:
                unsent = self._placement.room.take_unsent_speech()
                await self._apply(self._router.avatar_lost(unsent))

    async def sync_microphone(self) -> None:
        """Publish the bot's own microphone, or not, as the route wants now."""
        async with self._lock:
            await self._placement.publish_microphone(self._router.microphone_on)

    async def microphone_speaking(self, speaking: bool) -> None:
        """The output reports the bot's own voice starting or stopping.

        Args:
            speaking: Whether it speaks now.
        """
        # Its voice played out: the microphone may go off, a waiting avatar take over.
        async with self._lock:
            await self._apply(self._router.microphone_speaking(speaking))

    async def interrupt(self, frame: InterruptionFrame, direction: FrameDirection) -> bool:
        """Barge-in: drop held speech, clear what is queued, tell the avatar at once.

        Args:
            frame: The interruption.
            direction: Its direction; only a downstream one reaches the avatar.

        Returns:
            Whether the avatar was told (and should be told again: see
            :meth:`interrupt_again`).
        """
        async with self._lock:
            interruption = self._router.interrupt()
            downstream = direction == FrameDirection.DOWNSTREAM
            if downstream:
                await self._placement.interrupt(frame, interruption.destination)
            await self._push_frame(frame, direction)
            avatar = self._avatar.participant_id
            if avatar and downstream:
                await self._placement.interrupt_avatar(avatar)
                return True
            return False

    async def interrupt_again(self) -> bool:
        """Tell the avatar again, unless new speech went to it since the barge-in.

        Returns:
            False once new speech is on its way (a repeat would cut it).
        """
        async with self._lock:
            if self._router.spoke_since_interrupt:
                return False
            avatar = self._avatar.participant_id
            if avatar:
                await self._placement.interrupt_avatar(avatar)
            return True

    async def _apply(self, routing: Routing) -> None:
        """Send what the router routed and say what it noticed. Call with the lock."""
        for notice in routing.notices:
            logger.log(
                "WARNING" if notice.warning else "INFO", f"{self._speaker}: {notice.message}"
            )
        for frame in routing.frames:
            if frame.transport_destination == BEY_AUDIO_TRACK:
                await self._placement.send(frame)
            else:
                await self._push_frame(frame, FrameDirection.DOWNSTREAM)
        await self._placement.publish_microphone(self._router.microphone_on)
