"""Media layer: stand-ins for daily-python's audio sources, and what carries audio on.

Nothing here knows about rooms or the simulation. Published audio leaves a
source through its ``sink``, a callable the room layer sets while the source is
published.

A ``CustomAudioSource`` paces writes in real time, as Daily's does: the
completion of ``write_frames`` fires as the audio plays out (20 ms before its
end, so a writer that writes again at once leaves no gap), one second of audio
taking one second. Written audio is sent to subscribers as it is written, whole
and sample-exact, so what was written before an app message reaches them first.
With ``auto_silence`` the track carries silence between writes; it is not
generated sample by sample but shown to receivers as a jump of the track
position, which they fill with zeros.

Receivers get audio as :class:`AudioData`, at the rate they asked for
(:class:`Resampler`).
"""

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import soxr

from pipecat_bey.testing.daily_sim.threads import call_on_loop

# Like daily-python, a write completes a little before its audio has fully played
# out, so the next write arrives in time and the track has no gap.
PLAYOUT_LEAD_S = 0.02

# Where a published source's audio goes: ``sink(source, pcm, start, position)``, with
# ``start`` the monotonic time it starts to play and ``position`` its place in the
# track, in samples.
AudioSink = Callable[["CustomAudioSource", bytes, float, int], None]

# What a source reports of each piece written, published or not:
# ``on_write(pcm, start, position)``, as given to the sink.
WriteListener = Callable[[bytes, float, int], None]


@dataclass
class AudioData:
    """Audio handed to an audio renderer, shaped like daily-python's ``AudioData``."""

    audio_frames: bytes
    sample_rate: int
    num_channels: int
    bits_per_sample: int = 16

    @property
    def num_audio_frames(self) -> int:
        """Number of samples per channel."""
        return len(self.audio_frames) // (2 * self.num_channels)


class CustomAudioSource:
    """Stand-in for ``daily.CustomAudioSource``: audio an application writes into a track.

    Attributes:
        sink: Where written audio goes while the source is published (None: nowhere).
        on_write: Told of each piece as it is written, published or not, with the
            time it starts to play and its track position (None: no one); what a
            participant that records its own speech listens with.
    """

    def __init__(self, sample_rate: int, channels: int, auto_silence: bool = True) -> None:
        """Create the source.

        Args:
            sample_rate: Sample rate of the audio written.
            channels: Channels of the audio written.
            auto_silence: Whether the track carries silence while nothing is written.
        """
        self.sample_rate = sample_rate
        self.channels = channels
        self.auto_silence = auto_silence
        self.sink: AudioSink | None = None
        self.on_write: WriteListener | None = None
        self._clock = 0.0  # monotonic time at which the audio written so far ends
        self._position = 0  # samples the track has carried, silence included
        self._loop: asyncio.AbstractEventLoop | None = None

    def write_frames(self, frames: bytes, completion: Callable[[int], None] | None = None) -> int:
        """Write 16-bit PCM; the completion gets the number of frames once played out.

        Args:
            frames: Interleaved 16-bit PCM.
            completion: Called with the number of frames written, after they played.

        Returns:
            The number of frames accepted.
        """
        loop = self._loop or asyncio.get_event_loop()
        self._loop = loop
        num_frames = len(frames) // (2 * self.channels)
        call_on_loop(loop, self._write, bytes(frames), num_frames, completion)
        return num_frames

    def _write(
        self, frames: bytes, num_frames: int, completion: Callable[[int], None] | None
    ) -> None:
        assert self._loop is not None
        now = time.monotonic()
        start = max(now, self._clock)
        if self.auto_silence and self._clock and start > self._clock:
            self._position += round((start - self._clock) * self.sample_rate)
        duration = num_frames / self.sample_rate
        self._clock = start + duration
        position = self._position
        self._position += num_frames
        if num_frames and self.on_write is not None:
            self.on_write(frames, start, position)
        if num_frames and self.sink is not None:
            self.sink(self, frames, start, position)
        if completion is not None:
            done_at = max(start, self._clock - PLAYOUT_LEAD_S)
            self._loop.call_at(self._loop_time(done_at), completion, num_frames)

    def _loop_time(self, monotonic_time: float) -> float:
        assert self._loop is not None
        return self._loop.time() + (monotonic_time - time.monotonic())

    def start_clock(self) -> None:
        """Start the track's time now if nothing was written yet.

        With ``auto_silence`` the track carries silence from here on, so its
        position advances with time before the first write too (otherwise it
        starts with the first piece written).
        """
        if not self._clock:
            self._clock = time.monotonic()

    def played_position(self, at: float | None = None) -> int:
        """The track position playing out at a time, in samples (silence counted).

        It matches the ``position`` receivers are given with the audio: the sample
        of the track that plays at that moment.

        Args:
            at: Monotonic time (None: now).

        Returns:
            The position.
        """
        at = time.monotonic() if at is None else at
        if not self._clock:
            return 0
        if at >= self._clock:
            silence = (at - self._clock) * self.sample_rate if self.auto_silence else 0
            return self._position + int(silence)
        return max(self._position - round((self._clock - at) * self.sample_rate), 0)


class Resampler:
    """Streaming 16-bit mono resampler (soxr, which pipecat already depends on)."""

    def __init__(self, from_rate: int, to_rate: int) -> None:
        """Create the resampler.

        Args:
            from_rate: Input rate.
            to_rate: Output rate.
        """
        self.from_rate, self.to_rate = from_rate, to_rate
        self._stream: Any = None
        if from_rate != to_rate:
            self._stream = soxr.ResampleStream(from_rate, to_rate, 1, dtype="int16", quality="VHQ")

    def __call__(self, pcm: bytes) -> bytes:
        """Resample one piece of a stream.

        Args:
            pcm: 16-bit mono PCM at the input rate.

        Returns:
            PCM at the output rate.
        """
        if self._stream is None:
            return pcm
        return self._stream.resample_chunk(np.frombuffer(pcm, dtype=np.int16)).tobytes()
