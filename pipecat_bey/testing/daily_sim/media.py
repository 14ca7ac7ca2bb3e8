"""Bottom layer: stand-ins for daily-python's media sources, tracks and devices.

Nothing here knows about rooms or the simulation. Published audio leaves a
source through its ``sink``, a callable the room layer sets while the source is
published; what daily-python keeps process-wide (custom tracks by id, virtual
speakers) lives in a :class:`Devices` that the simulation owns and binds the
stand-ins to.

A ``CustomAudioSource`` paces writes in real time, as Daily's does: the
completion of ``write_frames`` fires as the audio plays out (20 ms before its
end, so a writer that writes again at once leaves no gap), one second of audio
taking one second. Written audio is sent to subscribers as it is written, whole
and sample-exact, so what was written before an app message reaches them first.
With ``auto_silence`` the track carries silence between writes; it is not
generated sample by sample but shown to receivers as a jump of the track
position, which they fill with zeros.

Video is synthetic: a :class:`SyntheticCamera` ticks at its frame rate on the
loop and hands each frame on as a number; a receiver's :class:`VideoFrame`
builds its pixels only when its ``buffer`` is read, from one image shared by
every camera of that size and color format, with a 16-byte stamp
(:func:`read_video_stamp`) in front. A camera that nobody watches costs a timer
tick per frame and nothing else.
"""

import asyncio
import functools
import itertools
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

import numpy as np
import soxr

_track_ids = itertools.count(1)

# Like daily-python, a write completes a little before its audio has fully played
# out, so the next write arrives in time and the track has no gap.
PLAYOUT_LEAD_S = 0.02

# Where a published source's audio goes: ``sink(source, pcm, start, position)``, with
# ``start`` the monotonic time it starts to play and ``position`` its place in the
# track, in samples.
AudioSink = Callable[["CustomAudioSource", bytes, float, int], None]


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
        if _off_loop(loop):
            loop.call_soon_threadsafe(self._write, bytes(frames), num_frames, completion)
        else:
            self._write(bytes(frames), num_frames, completion)
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
        if num_frames and self.sink is not None:
            self.sink(self, frames, start, position)
        if completion is not None:
            done_at = max(start, self._clock - PLAYOUT_LEAD_S)
            self._loop.call_at(self._loop_time(done_at), completion, num_frames)

    def _loop_time(self, monotonic_time: float) -> float:
        assert self._loop is not None
        return self._loop.time() + (monotonic_time - time.monotonic())

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


def _off_loop(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether the caller is on another thread than the loop."""
    try:
        return asyncio.get_running_loop() is not loop
    except RuntimeError:
        return True


class CustomAudioTrack:
    """Stand-in for ``daily.CustomAudioTrack``.

    Daily names a track by id (``update_inputs`` picks the microphone's custom
    track that way), so each track registers its source in the ``devices`` its
    class is bound to: use :meth:`bound_to`.
    """

    devices: ClassVar["Devices"]

    @classmethod
    def bound_to(cls, devices: "Devices") -> type["CustomAudioTrack"]:
        """A subclass whose tracks register in ``devices``.

        Args:
            devices: Where the tracks are registered.

        Returns:
            The class to instantiate as daily-python's ``CustomAudioTrack``.
        """
        return type(cls.__name__, (cls,), {"devices": devices})

    def __init__(self, audio_source: CustomAudioSource) -> None:
        """Wrap a source in a track.

        Args:
            audio_source: The source.

        Raises:
            TypeError: If the class is not bound to devices.
        """
        if not hasattr(type(self), "devices"):
            raise TypeError("use CustomAudioTrack.bound_to(devices) to make tracks")
        self.source = audio_source
        self.id = f"sim-audio-track-{next(_track_ids)}"
        self.devices.tracks[self.id] = audio_source


class CustomVideoSource:
    """Stand-in for ``daily.CustomVideoSource``; frames are accepted and discarded."""

    def __init__(self, width: int, height: int, color_format: str) -> None:
        """Create the source.

        Args:
            width: Frame width.
            height: Frame height.
            color_format: Color format of the frames.
        """
        self.width, self.height, self.color_format = width, height, color_format

    def write_frame(self, frame: bytes) -> None:
        """Accept a frame (a bot's own video is not simulated; only the avatar's camera is).

        Args:
            frame: The frame.
        """


class CustomVideoTrack:
    """Stand-in for ``daily.CustomVideoTrack``."""

    def __init__(self, video_source: CustomVideoSource) -> None:
        """Wrap a source in a track.

        Args:
            video_source: The source.
        """
        self.source = video_source
        self.id = f"sim-video-track-{next(_track_ids)}"


# The stamp at the start of every simulated video frame: frame number, then the
# publisher's audio playout position in samples, both unsigned 64-bit little-endian.
VIDEO_STAMP = struct.Struct("<QQ")

# Color formats a renderer may ask for, with bytes per pixel (I420: 8-bit luma plus
# quarter-size chroma planes). Daily's renderer default is RGBA; pipecat asks for RGB.
COLOR_FORMATS = {"RGB": 3, "RGBA": 4, "BGRA": 4, "ARGB": 4, "ABGR": 4, "I420": 0}

# The synthetic picture: one flat color (what it is does not matter, the stamp does).
_COLOR = {"R": 40, "G": 110, "B": 170, "A": 255}


class VideoStamp(NamedTuple):
    """What a simulated video frame says about itself.

    Parameters:
        frame: Its number on its track, from 0 when the camera started publishing.
        audio_position: The publisher's microphone track position playing out when
            the frame was captured, in samples at the microphone's rate (lip sync:
            the frame shows the mouth for this sample).
    """

    frame: int
    audio_position: int


def read_video_stamp(buffer: bytes | bytearray | memoryview) -> VideoStamp:
    """Read the stamp at the start of a simulated video frame's buffer.

    The first 16 bytes are the frame number and the audio position, each an
    unsigned 64-bit little-endian integer.

    Args:
        buffer: The frame's buffer (at least 16 bytes).

    Returns:
        The stamp.
    """
    frame, audio_position = VIDEO_STAMP.unpack_from(buffer, 0)
    return VideoStamp(frame, audio_position)


def frame_size(width: int, height: int, color_format: str) -> int:
    """Bytes in one frame.

    Args:
        width: Width in pixels.
        height: Height in pixels.
        color_format: One of :data:`COLOR_FORMATS`.

    Returns:
        The size.

    Raises:
        ValueError: If the color format is not simulated.
    """
    if color_format not in COLOR_FORMATS:
        raise ValueError(
            f"color format {color_format!r} is not simulated; use one of {list(COLOR_FORMATS)}"
        )
    if color_format == "I420":
        return width * height + 2 * ((width + 1) // 2) * ((height + 1) // 2)
    return width * height * COLOR_FORMATS[color_format]


@functools.lru_cache(maxsize=32)
def _picture(width: int, height: int, color_format: str) -> bytes:
    """One flat picture per size and format, shared by every camera (built once)."""
    if color_format == "I420":
        # BT.601 of the flat color, rounded: luma, then the two chroma planes.
        r, g, b = _COLOR["R"], _COLOR["G"], _COLOR["B"]
        y = round(16 + (65.7 * r + 129.1 * g + 25.1 * b) / 256)
        u = round(128 + (-37.9 * r - 74.5 * g + 112.4 * b) / 256)
        v = round(128 + (112.4 * r - 94.1 * g - 18.3 * b) / 256)
        chroma = ((width + 1) // 2) * ((height + 1) // 2)
        return bytes([y]) * (width * height) + bytes([u]) * chroma + bytes([v]) * chroma
    pixel = bytes(_COLOR[c] for c in color_format)
    return pixel * (width * height)


class VideoFrame:
    """A received video frame, shaped like daily-python's ``VideoFrame``.

    ``buffer`` is built on first read (stamp, then the shared picture), so frames
    that no one looks at cost no pixels.

    Attributes:
        width: Width in pixels.
        height: Height in pixels.
        color_format: Its color format.
        timestamp_us: When it was captured, in microseconds of the monotonic clock.
        stamp: Its stamp, also found in the first 16 bytes of ``buffer``.
    """

    __slots__ = ("_buffer", "color_format", "height", "stamp", "timestamp_us", "width")

    def __init__(
        self, width: int, height: int, color_format: str, timestamp_us: int, stamp: VideoStamp
    ) -> None:
        """Create the frame.

        Args:
            width: Width in pixels.
            height: Height in pixels.
            color_format: One of :data:`COLOR_FORMATS`.
            timestamp_us: Capture time, microseconds.
            stamp: Its stamp.
        """
        self.width = width
        self.height = height
        self.color_format = color_format
        self.timestamp_us = timestamp_us
        self.stamp = stamp
        self._buffer: bytes | None = None

    @property
    def buffer(self) -> bytes:
        """The pixels, starting with the 16-byte stamp."""
        if self._buffer is None:
            picture = _picture(self.width, self.height, self.color_format)
            stamp = VIDEO_STAMP.pack(*self.stamp)
            # One allocation of the frame: the stamp, then the picture after it.
            self._buffer = b"".join((stamp, memoryview(picture)[len(stamp) :]))
        return self._buffer

    def __repr__(self) -> str:
        return (
            f"VideoFrame({self.width}x{self.height} {self.color_format}, frame={self.stamp.frame},"
            f" audio_position={self.stamp.audio_position})"
        )


# Where a published camera's frames go: ``sink(camera, stamp, captured_at)``.
VideoSink = Callable[["SyntheticCamera", VideoStamp, float], None]


class SyntheticCamera:
    """A camera track's source: frames at a steady rate, numbered and stamped.

    While its ``sink`` is set (the room layer sets it while the camera is
    published), it ticks on the loop every ``1 / fps`` seconds, on a schedule
    that does not drift; a tick that comes late skips the frames it missed, as a
    camera does. Each tick hands the sink a :class:`VideoStamp` and the capture
    time; receivers make :class:`VideoFrame` objects in the color format they
    asked for.

    Attributes:
        width: Frame width.
        height: Frame height.
        fps: Frames per second.
        frames_sent: Frames handed to the sink so far.
    """

    def __init__(
        self,
        width: int,
        height: int,
        fps: float,
        audio_position: Callable[[float], int] | None = None,
    ) -> None:
        """Create the camera (it ticks once published).

        Args:
            width: Frame width (at least 4).
            height: Frame height (at least 4).
            fps: Frames per second.
            audio_position: The publisher's audio playout position at a monotonic
                time, for the stamp (None: 0).

        Raises:
            ValueError: If the size or rate cannot carry a stamp.
        """
        if width < 4 or height < 4 or fps <= 0:
            raise ValueError("a simulated camera needs at least 4x4 pixels and a positive rate")
        self.width, self.height, self.fps = width, height, fps
        self.frames_sent = 0
        self._audio_position = audio_position
        self._sink: VideoSink | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._started_at = 0.0
        self._next_frame = 0

    @property
    def sink(self) -> VideoSink | None:
        """Where frames go; setting it starts the camera, clearing it stops it."""
        return self._sink

    @sink.setter
    def sink(self, sink: VideoSink | None) -> None:
        self._sink = sink
        if sink is None:
            self.stop()
        elif self._timer is None:
            self._started_at = time.monotonic()
            self._next_frame = 0
            self._tick()

    def stop(self) -> None:
        """Stop ticking."""
        self._sink = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _tick(self) -> None:
        self._timer = None
        sink = self._sink
        if sink is None:
            return
        now = time.monotonic()
        period = 1.0 / self.fps
        # Frames whose time has passed while the loop was busy are skipped, not sent late.
        due = int((now - self._started_at) / period + 1e-6)
        number = max(self._next_frame, due)
        self._next_frame = number + 1
        position = self._audio_position(now) if self._audio_position is not None else 0
        self.frames_sent += 1
        sink(self, VideoStamp(number, position), now)
        if self._sink is not None:
            loop = asyncio.get_running_loop()
            wait = self._started_at + self._next_frame * period - time.monotonic()
            self._timer = loop.call_later(max(wait, 0.0), self._tick)


class VirtualSpeakerDevice:
    """Stand-in for Daily's virtual speaker: the mix of the microphones it hears."""

    def __init__(self, name: str, sample_rate: int, channels: int, non_blocking: bool) -> None:
        """Create the device.

        Args:
            name: Device name.
            sample_rate: Rate audio is read at.
            channels: Channels read.
            non_blocking: Whether reads return at once with what there is (they always do).
        """
        self.name = name
        self.sample_rate = sample_rate
        self.channels = channels
        self.non_blocking = non_blocking
        self._buffers: dict[str, bytearray] = {}

    def push(self, participant_id: str, pcm: bytes) -> None:
        """Queue audio heard from one participant (already at the device's rate).

        Args:
            participant_id: Who it came from.
            pcm: 16-bit mono PCM.
        """
        self._buffers.setdefault(participant_id, bytearray()).extend(pcm)

    def read_frames(
        self, num_frames: int, completion: Callable[[bytes], None] | None = None
    ) -> bytes:
        """Read up to ``num_frames`` of the mix (non-blocking: what there is).

        Args:
            num_frames: Frames wanted.
            completion: Called with the audio.

        Returns:
            The audio read.
        """
        want = num_frames * 2 * self.channels
        parts = []
        for buffer in self._buffers.values():
            if buffer:
                parts.append(bytes(buffer[:want]))
                del buffer[:want]
        if not parts:
            mixed = b""
        else:
            length = max(len(p) for p in parts)
            total = np.zeros(length // 2, dtype=np.int32)
            for part in parts:
                samples = np.frombuffer(part, dtype=np.int16)
                total[: len(samples)] += samples
            mixed = np.clip(total, -32768, 32767).astype(np.int16).tobytes()
        if completion is not None:
            completion(mixed)
        return mixed


class VirtualMicrophoneDevice:
    """Stand-in for Daily's virtual microphone: a named source of microphone audio."""

    def __init__(self, name: str, sample_rate: int, channels: int, non_blocking: bool) -> None:
        """Create the device.

        Args:
            name: Device name.
            sample_rate: Rate of the audio written.
            channels: Channels written.
            non_blocking: Whether writes return at once (they always do).
        """
        self.name = name
        self.source = CustomAudioSource(sample_rate, channels, auto_silence=True)

    def write_frames(self, frames: bytes, completion: Callable[[int], None] | None = None) -> int:
        """Write microphone audio, paced like a custom source.

        Args:
            frames: 16-bit PCM.
            completion: Called with the number of frames once played.

        Returns:
            The number of frames accepted.
        """
        return self.source.write_frames(frames, completion)


@dataclass
class Devices:
    """What daily-python keeps process-wide, for one simulation.

    Attributes:
        tracks: Audio sources by the id of their custom track or microphone device.
        speakers: Virtual speakers by name.
        selected_speaker: The speaker remote microphones play into, if one is selected.
    """

    tracks: dict[str, CustomAudioSource] = field(default_factory=dict)
    speakers: dict[str, VirtualSpeakerDevice] = field(default_factory=dict)
    selected_speaker: VirtualSpeakerDevice | None = None


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
