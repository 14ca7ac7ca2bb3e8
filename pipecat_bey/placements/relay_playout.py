"""When a relayed avatar's voice and face go on to the bot's output.

The avatar's voice and camera reach the bot in step. Two things would undo that
on the way out, both in pipecat's output transport, and this module makes up
for them:

- The output writes audio in 40 ms chunks, each as the one before plays out.
  A piece of the voice that comes a few milliseconds late (a busy event loop)
  finds the output run dry, and the track plays silence in its place, which
  shifts everything after it. So each stretch of the voice is held
  ``voice_lead_s`` before it goes on: the output then always has that much
  queued, and a late piece is absorbed.
- A live video output paces frames: it shows each one a frame period after it
  arrives, until one comes late; from then on (pipecat 1.14) it shows them as
  they arrive. So the face is held ``voice_lead_s`` minus half a period: within
  half a frame of the voice either way (20 ms at 25 fps). Frames that fall due
  together (after the loop stalled) go on as the newest alone, so a stall
  leaves no backlog of old faces in the output.

A barge-in drops the voice held here (the output's own queue is cleared by the
``InterruptionFrame``); the face keeps coming.
"""

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from pipecat.frames.frames import OutputAudioRawFrame, OutputImageRawFrame

from pipecat_bey.speech_router import duration_s

TaskFactory = Callable[[Coroutine[Any, Any, None], str], asyncio.Task]

MIN_VOICE_LEAD_S = 0.06
"""The least the voice is held: more than the output's 40 ms chunk plus a late piece
(measured offline: 20 ms left gaps under network delay, 50 ms none)."""


class RelayPlayout:
    """Hands the relayed voice and face on, each after its hold, in order."""

    def __init__(
        self,
        *,
        push_voice: Callable[[OutputAudioRawFrame], Awaitable[None]],
        push_face: Callable[[OutputImageRawFrame], Awaitable[None]],
        create_task: TaskFactory,
    ) -> None:
        """Create the playout; it runs once :meth:`start` is called.

        Args:
            push_voice: Sends a piece of the voice on (downstream).
            push_face: Sends a frame of the face on (downstream).
            create_task: Creates a named task (the service's ``create_task``).
        """
        self._push_voice = push_voice
        self._push_face = push_face
        self._create_task = create_task
        self.voice_lead_s = MIN_VOICE_LEAD_S
        """How long the start of each stretch of the voice is held."""
        self.face_hold_s = 0.0
        """How long each frame of the face is held."""
        self._voice: deque[tuple[float, OutputAudioRawFrame]] = deque()
        self._faces: deque[tuple[float, OutputImageRawFrame]] = deque()
        self._voice_came = asyncio.Event()
        self._face_came = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    def align_with_video(self, frame_period_s: float) -> None:
        """Hold the face so that it leaves the output within half a frame of the voice.

        Args:
            frame_period_s: The output's frame period (1 / ``video_out_framerate``).
        """
        self.voice_lead_s = max(MIN_VOICE_LEAD_S, frame_period_s)
        self.face_hold_s = self.voice_lead_s - frame_period_s / 2

    def start(self) -> None:
        """Start handing frames on (call once, after the pipeline started)."""
        if not self._tasks:
            self._tasks = [
                self._create_task(self._play_voice(), "bey_relay_voice"),
                self._create_task(self._play_faces(), "bey_relay_face"),
            ]

    def stop(self) -> None:
        """Stop, dropping what is held."""
        for task in self._tasks:
            task.cancel()
        self._tasks = []
        self._voice.clear()
        self._faces.clear()

    async def voice(self, frame: OutputAudioRawFrame) -> None:
        """A piece of the avatar's voice arrived.

        Args:
            frame: The piece.
        """
        if not self._tasks:
            await self._push_voice(frame)
            return
        self._voice.append((time.monotonic(), frame))
        self._voice_came.set()

    async def face(self, frame: OutputImageRawFrame) -> None:
        """A frame of the avatar's camera arrived.

        Args:
            frame: The frame.
        """
        if not self._tasks or self.face_hold_s <= 0:
            await self._push_face(frame)
            return
        self._faces.append((time.monotonic() + self.face_hold_s, frame))
        self._face_came.set()

    def drop_voice(self) -> None:
        """Barge-in: the voice held here goes."""
        self._voice.clear()

    @property
    def holding_voice(self) -> bool:
        """Whether some of the voice is held, not yet handed on."""
        return bool(self._voice)

    async def _play_voice(self) -> None:
        # The voice flows (goes on as it comes) while the output still has some of it to
        # play; a piece that comes after the output ran dry starts a new stretch, held
        # to build the lead back.
        dry_at = 0.0  # when the output will have played all the voice handed on
        while True:
            if not self._voice:
                self._voice_came.clear()
                await self._voice_came.wait()
                continue
            arrived, frame = self._voice[0]
            if arrived >= dry_at:
                wait = arrived + self.voice_lead_s - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                    continue  # a barge-in may have emptied it meanwhile
                dry_at = time.monotonic()
            self._voice.popleft()
            dry_at = max(dry_at, time.monotonic()) + duration_s(frame)
            await self._push_voice(frame)

    async def _play_faces(self) -> None:
        while True:
            if not self._faces:
                self._face_came.clear()
                await self._face_came.wait()
                continue
            due, frame = self._faces[0]
            now = time.monotonic()
            if due > now:
                await asyncio.sleep(due - now)
                continue
            # Only the newest of the faces due: older ones would be shown late.
            while len(self._faces) > 1 and self._faces[1][0] <= now:
                self._faces.popleft()
            _, frame = self._faces.popleft()
            await self._push_face(frame)
