"""The relay placement: the avatar backstage, its face and voice sent on by the bot's output.

The avatar joins a private room of the bot's (:class:`~pipecat_bey.rooms.RelayRoom`),
never the user's. The bot's speech goes there; the avatar's camera and voice
come back and are pushed down the pipeline as ``OutputImageRawFrame`` and audio
frames, for whatever output transport the bot has (SmallWebRTC, WebSocket, a
room it does not own...). The bot's raw speech never reaches the user.

:class:`~pipecat_bey.placements.relay_playout.RelayPlayout` holds the voice and the face
so that they leave the output in step; the service decides whether they go on
at all (``ServiceHooks.passes_avatar_media``); at a graceful end the placement
lets the avatar finish what it was sent before the output stops.
"""

import asyncio
import time
from collections.abc import Callable
from typing import Any

from loguru import logger
from pipecat.audio.utils import is_silence
from pipecat.frames.frames import InterruptionFrame, OutputAudioRawFrame, OutputImageRawFrame
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.transports.base_output import BaseOutputTransport

from pipecat_bey.placements.base import Placement, ServiceHooks
from pipecat_bey.placements.relay_playout import RelayPlayout
from pipecat_bey.rooms import RelayRoom

DRAIN_QUIET_S = 0.5
"""At the end, the relay waits for the avatar to be this long silent (all speech sent)."""

DRAIN_MARGIN_S = 5.0
"""...and at most this long beyond the speech still queued for it."""

VOICE_CHECK_INTERVAL_S = 0.1
"""Whether the avatar speaks matters for TTFB and, to a tenth of a second, for the end:
its voice is looked at for silence no more often than this."""


def output_transport(processor: Any) -> BaseOutputTransport | None:
    """The first output transport downstream of a processor, if it is linked to one.

    Args:
        processor: Where to start looking.

    Returns:
        The output transport, or None.
    """
    seen = 0
    while processor is not None and seen < 1000:  # a pipeline is a chain: this ends
        if isinstance(processor, BaseOutputTransport):
            return processor
        processor, seen = getattr(processor, "next", None), seen + 1
    return None


class RelayPlacement(Placement):
    """The avatar backstage, relayed through the bot's own output."""

    name = "relay"
    room: RelayRoom

    def __init__(self, room: RelayRoom) -> None:
        """Place the avatar in a private room whose media the bot relays.

        Args:
            room: The private room.
        """
        super().__init__(room)
        self._playout: RelayPlayout | None = None
        self._relaying = True  # until the end
        self._voice_at = 0.0  # when the avatar's voice was last heard (monotonic)

    def bind(self, hooks: ServiceHooks) -> None:
        """Take the service's hooks and start taking the avatar's media.

        Args:
            hooks: What the placement may use of the service.
        """
        super().bind(hooks)
        self._playout = RelayPlayout(
            push_voice=self._pass_voice, push_face=self._pass_face, create_task=hooks.create_task
        )
        self.room.on_avatar_media(audio=self._playout.voice, video=self._playout.face)

    @property
    def playout(self) -> RelayPlayout:
        """The holds of the avatar's voice and face."""
        if self._playout is None:
            raise RuntimeError(f"{self} is not bound to a service")
        return self._playout

    async def start(self, downstream: FrameProcessor | None) -> None:
        """Fit the playout to the output transport and start it.

        Args:
            downstream: The processor after the service.
        """
        self._fit_output(output_transport(downstream))
        self.playout.start()

    async def finish(self, avatar_present: Callable[[], bool]) -> None:
        """Let the avatar say what it was sent before the output stops (bounded).

        Args:
            avatar_present: Whether the avatar is still in the room.
        """
        room = self.room
        deadline = time.monotonic() + room.queued_speech_s + DRAIN_MARGIN_S
        while time.monotonic() < deadline and avatar_present():
            quiet_s = time.monotonic() - max(self._voice_at, room.last_sent_at)
            sent = room.queued_speech_s == 0 and not self.playout.holding_voice
            if sent and quiet_s >= DRAIN_QUIET_S:
                return
            await asyncio.sleep(0.05)

    def stop(self) -> None:
        """From the end on, none of the avatar's media goes downstream."""
        self._relaying = False
        if self._playout is not None:
            self._playout.stop()

    async def interrupt(self, interruption: InterruptionFrame, destination: str | None) -> None:
        """Barge-in: the speech not yet sent goes, and the avatar's voice held here.

        The interruption goes downstream untagged and clears the avatar's voice and
        face queued in the output; what the avatar still says of the old speech is
        not relayed (``passes_avatar_media``).

        Args:
            interruption: The interruption about to go downstream.
            destination: Unused: nothing of the bot's is queued for the avatar's track.
        """
        await self.room.clear_speech(interruption, None)
        self.playout.drop_voice()

    async def _pass_voice(self, frame: OutputAudioRawFrame) -> None:
        """The avatar's voice, pushed to the output like a TTS's."""
        if not (self._relaying and self.hooks.passes_avatar_media(True)):
            return
        now = time.monotonic()
        awaiting = self.hooks.awaiting_avatar_voice()
        if awaiting or now - self._voice_at > VOICE_CHECK_INTERVAL_S:
            if not is_silence(frame.audio):
                self._voice_at = now
                await self.hooks.avatar_voice_heard()  # TTFB: TTS start to its first voice
        await self.hooks.push_frame(frame)

    async def _pass_face(self, frame: OutputImageRawFrame) -> None:
        """The avatar's face, pushed as it comes (a live output keeps its pace)."""
        if self._relaying and self.hooks.passes_avatar_media(False):
            await self.hooks.push_frame(frame)

    def _fit_output(self, output: BaseOutputTransport | None) -> None:
        """Fit the playout to the output; say once, with the fix, if it cannot show the face.

        The playout holds the face so that it leaves the output within half a frame of
        the voice (see ``relay_playout``). pipecat keeps an output's params private;
        they are read with ``getattr``, so should they move, only this fitting and its
        warnings are lost.
        """
        params = getattr(output, "_params", None)
        if output is None or params is None:
            return
        framerate = getattr(params, "video_out_framerate", 0) or 0
        video_out = getattr(params, "video_out_enabled", False)
        if video_out and framerate > 0:
            self.playout.align_with_video(1.0 / framerate)
        if not video_out:
            logger.warning(
                f"{self}: the output transport has video_out_enabled=False, so the user only "
                "hears the avatar; set video_out_enabled=True, video_out_is_live=True and "
                "video_out_width/height to the avatar's size in the transport's params"
            )
        elif not getattr(params, "video_out_is_live", False):
            # A choice, not a mistake: it keeps no backlog after a stalled loop.
            logger.info(
                f"{self}: the output transport has video_out_is_live=False, so it shows the "
                "avatar's latest frame on its own clock (a frame repeated or skipped now and "
                "then); video_out_is_live=True sends every frame"
            )
