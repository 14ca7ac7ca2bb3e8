"""The relay's speech to the avatar: whole chunks on its track, written one by one as due.

The bot's TTS produces speech faster than real time; the avatar's private room
takes it at the pace it plays. ``SpeechWriter`` keeps what is not yet written
as a queue of 40 ms chunks at 24 kHz mono, so that a barge-in can drop all of
it but the chunk being written, and knows how much is still to go (the end
waits for it).
"""

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

from pipecat.audio.utils import create_stream_resampler
from pipecat.frames.frames import OutputAudioRawFrame

SPEECH_SAMPLE_RATE = 24000
"""Rate of the speech sent to the avatar: 24 kHz mono, as the reference integration sent."""

SPEECH_CHUNK_S = 0.04
"""Speech is written in 40 ms chunks (one 25 fps video frame each): a barge-in can
only not take back the chunk being written."""

CHUNK_BYTES = int(SPEECH_SAMPLE_RATE * SPEECH_CHUNK_S) * 2


class SpeechWriter:
    """Chunks speech for the avatar's track and writes it, each chunk as it is due."""

    def __init__(self, track: str) -> None:
        """A writer for one track; it writes once :meth:`run` runs.

        Args:
            track: The custom audio track the avatar listens to.
        """
        self.track = track
        self._resampler = create_stream_resampler()
        self._pending = bytearray()  # speech not yet a whole chunk
        self._chunks: deque[bytes] = deque()
        self._queued_bytes = 0  # in _chunks
        self._came = asyncio.Event()
        self.last_sent_at = 0.0
        """When speech was last written (``time.monotonic()``)."""

    async def add(self, frame: OutputAudioRawFrame) -> None:
        """Queue speech, in whole chunks at the track's rate.

        Args:
            frame: Mono speech audio at any rate.
        """
        audio = await self._resampler.resample(frame.audio, frame.sample_rate, SPEECH_SAMPLE_RATE)
        self._pending.extend(audio)
        while len(self._pending) >= CHUNK_BYTES:
            self._queue(bytes(self._pending[:CHUNK_BYTES]))
            del self._pending[:CHUNK_BYTES]

    def end_of_speech(self) -> None:
        """The utterance is over: its last partial chunk goes too."""
        if self._pending:
            self._queue(bytes(self._pending))
            self._pending.clear()

    def drop(self) -> float:
        """Barge-in: drop the speech not yet written.

        Returns:
            Seconds of speech dropped.
        """
        dropped = len(self._pending) + self._queued_bytes
        self._pending.clear()
        self._chunks.clear()
        self._queued_bytes = 0
        return dropped / 2 / SPEECH_SAMPLE_RATE

    @property
    def queued_s(self) -> float:
        """Seconds of speech waiting to be written."""
        return (self._queued_bytes + len(self._pending)) / 2 / SPEECH_SAMPLE_RATE

    def queued_chunks(self) -> list[bytes]:
        """The whole chunks waiting, in order (the partial one aside).

        Returns:
            A copy of the queue.
        """
        return list(self._chunks)

    def _queue(self, chunk: bytes) -> None:
        self._chunks.append(chunk)
        self._queued_bytes += len(chunk)
        self._came.set()

    async def run(self, write: Callable[[OutputAudioRawFrame], Awaitable[None]]) -> None:
        """Write queued chunks one after the other, each as it is due (``write`` paces them).

        Args:
            write: Writes one frame to the track, returning once it is due.
        """
        while True:
            if not self._chunks:
                self._came.clear()
                await self._came.wait()
                continue
            chunk = self._chunks.popleft()
            self._queued_bytes -= len(chunk)
            frame = OutputAudioRawFrame(audio=chunk, sample_rate=SPEECH_SAMPLE_RATE, num_channels=1)
            frame.transport_destination = self.track
            await write(frame)
            self.last_sent_at = time.monotonic()
