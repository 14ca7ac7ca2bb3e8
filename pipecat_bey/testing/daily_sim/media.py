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

Video comes from two kinds of source, both handing each frame to their ``sink``
as a :class:`SentVideo`:

- a :class:`SyntheticCamera` (the avatar's) ticks at its frame rate on the loop
  and hands each frame on as a number; a receiver's :class:`VideoFrame` builds
  its pixels only when its ``buffer`` is read, from one image shared by every
  camera of that size and color format (:func:`synthetic_frame`). A camera that
  nobody watches costs a timer tick per frame and nothing else.
- a :class:`CustomVideoSource` (a bot's camera or custom video track) sends the
  bytes written to it, as they are (no copy); a receiver gets those very bytes,
  converted only if its renderer asked for another color format. Its stamp is
  read from the first 16 bytes written, so a relay that passes the avatar's
  frames through unchanged keeps the avatar's stamp.

The synthetic picture
---------------------

Every synthetic frame of ``width`` x ``height`` is, in its color format:

- **the stamp**: the first 16 bytes of the buffer are the frame number and the
  publisher's audio position, each an unsigned 64-bit little-endian integer
  (:func:`read_video_stamp`); they overwrite the first pixels (I420: of the luma
  plane). Lossy video coding destroys it.
- **the visible frame number**, robust to lossy coding: the bottom band of the
  picture, rows ``height - B`` to ``height - 1`` with
  ``B = min(height, max(16, height // 8))`` (:func:`band_height`), full width, is
  split into 16 cells; cell ``i`` (``i = 0..15`` from the left) covers columns
  ``i * width // 16`` to ``(i + 1) * width // 16 - 1``. Cell ``i`` is white
  (R255, G255, B255) when bit ``15 - i`` of ``frame_number % 65536`` is 1, and
  black (R0, G0, B0) otherwise: the number is written most significant bit
  first. Alpha, where the format has one, is 255. In I420, white is Y235 and
  black Y16 (BT.601 limited range), with neutral chroma (U = V = 128) in the
  chroma rows ``ceil((height - B) / 2)`` and below. :func:`read_visible_frame_number`
  reads it back (the centre pixel of each cell, luma above 128 is a 1).
- **the rest** is one flat color, R40 G110 B170 (I420: its BT.601 value),
  which :func:`looks_like_avatar` checks for.
"""

import asyncio
import functools
import itertools
import struct
import time
import weakref
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
    """Stand-in for ``daily.CustomVideoSource``: frames an application writes into a track.

    While published (its ``sink`` set by the room layer), each frame written is
    sent to the track's receivers as it is, captured at the time of the write,
    with the stamp read from its first 16 bytes (:func:`read_video_stamp`).
    Unpublished, frames are discarded.

    Attributes:
        width: Frame width.
        height: Frame height.
        color_format: Color format of the frames written.
        frames_written: Frames written while published.
    """

    def __init__(self, width: int, height: int, color_format: str) -> None:
        """Create the source.

        Args:
            width: Frame width.
            height: Frame height.
            color_format: Color format of the frames (one of :data:`COLOR_FORMATS`).

        Raises:
            ValueError: If the color format is not simulated.
        """
        self.width, self.height, self.color_format = width, height, color_format
        self.frame_bytes = frame_size(width, height, color_format)
        self.frames_written = 0
        self._sink: VideoSink | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def sink(self) -> "VideoSink | None":
        """Where frames go while the source is published (None: nowhere)."""
        return self._sink

    @sink.setter
    def sink(self, sink: "VideoSink | None") -> None:
        self._sink = sink
        if sink is not None:
            try:
                self._loop = asyncio.get_running_loop()
            except RuntimeError:
                pass

    def write_frame(self, frame: bytes | bytearray | memoryview) -> None:
        """Write one frame; it goes to the track's receivers if the source is published.

        Args:
            frame: The pixels, ``width * height`` of the source's color format.

        Raises:
            ValueError: If the frame is not of the source's size.
        """
        if len(frame) != self.frame_bytes:
            raise ValueError(
                f"CustomVideoSource({self.width}x{self.height} {self.color_format}) takes"
                f" frames of {self.frame_bytes} bytes, not {len(frame)}"
            )
        if self._sink is None:
            return
        captured_at = time.monotonic()
        # The writer may reuse a mutable buffer: only those are copied.
        pixels = frame if isinstance(frame, bytes) else bytes(frame)
        stamp = read_video_stamp(pixels) if len(pixels) >= VIDEO_STAMP.size else VideoStamp(0, 0)
        sent = SentVideo(self.width, self.height, stamp, captured_at, pixels, self.color_format)
        loop = self._loop
        if loop is not None and _off_loop(loop):
            loop.call_soon_threadsafe(self._send, sent)
        else:
            self._send(sent)

    def _send(self, sent: "SentVideo") -> None:
        sink = self._sink
        if sink is not None:
            self.frames_written += 1
            sink(self, sent)


# Custom video tracks by id, process-wide as in daily-python (``update_inputs`` names the
# camera's custom track by id); ids are unique in the process, and a track the
# application dropped is forgotten.
_video_tracks: "weakref.WeakValueDictionary[str, CustomVideoSource]" = weakref.WeakValueDictionary()


def video_track_source(track_id: str) -> CustomVideoSource | None:
    """The source of a custom video track, by the track's id.

    Args:
        track_id: ``CustomVideoTrack.id``.

    Returns:
        Its source, or None if there is no such track (any more).
    """
    return _video_tracks.get(track_id)


class CustomVideoTrack:
    """Stand-in for ``daily.CustomVideoTrack``; found by id with :func:`video_track_source`."""

    def __init__(self, video_source: CustomVideoSource) -> None:
        """Wrap a source in a track.

        Args:
            video_source: The source.
        """
        self.source = video_source
        self.id = f"sim-video-track-{next(_track_ids)}"
        _video_tracks[self.id] = video_source


# The stamp at the start of every simulated video frame: frame number, then the
# publisher's audio playout position in samples, both unsigned 64-bit little-endian.
VIDEO_STAMP = struct.Struct("<QQ")

# Color formats a renderer may ask for, with bytes per pixel (I420: 8-bit luma plus
# quarter-size chroma planes). Daily's renderer default is RGBA; pipecat asks for RGB.
COLOR_FORMATS = {"RGB": 3, "RGBA": 4, "BGRA": 4, "ARGB": 4, "ABGR": 4, "I420": 0}

# The synthetic picture: one flat color, the visible frame number in a band below it.
_COLOR = {"R": 40, "G": 110, "B": 170, "A": 255}
AVATAR_COLOR = (_COLOR["R"], _COLOR["G"], _COLOR["B"])
"""The flat color of the synthetic picture, ``(R, G, B)``."""

# Bits of the visible frame number, one cell each.
BAND_BITS = 16


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


def band_height(height: int) -> int:
    """Rows of the band that shows the visible frame number, at the bottom of the picture.

    Args:
        height: Picture height.

    Returns:
        ``min(height, max(16, height // 8))``.
    """
    return min(height, max(16, height // 8))


# BT.601 (limited range), as the flat picture's I420 has always been computed.
def _rgb_to_yuv(r: Any, g: Any, b: Any) -> tuple[Any, Any, Any]:
    y = 16 + (65.7 * r + 129.1 * g + 25.1 * b) / 256
    u = 128 + (-37.9 * r - 74.5 * g + 112.4 * b) / 256
    v = 128 + (112.4 * r - 94.1 * g - 18.3 * b) / 256
    return y, u, v


def _yuv_to_rgb(y: Any, u: Any, v: Any) -> tuple[Any, Any, Any]:
    c, d, e = np.asarray(y, np.float64) - 16, np.asarray(u, np.float64) - 128, v - 128.0
    return 1.164 * c + 1.596 * e, 1.164 * c - 0.392 * d - 0.813 * e, 1.164 * c + 2.017 * d


@functools.lru_cache(maxsize=32)
def _picture(width: int, height: int, color_format: str) -> bytes:
    """One flat picture per size and format, shared by every camera (built once)."""
    if color_format == "I420":
        y, u, v = (round(c) for c in _rgb_to_yuv(*AVATAR_COLOR))
        chroma = ((width + 1) // 2) * ((height + 1) // 2)
        return bytes([y]) * (width * height) + bytes([u]) * chroma + bytes([v]) * chroma
    pixel = bytes(_COLOR[c] for c in color_format)
    return pixel * (width * height)


@functools.lru_cache(maxsize=32)
def _cell_bounds(width: int) -> np.ndarray:
    """Left column of each of the 16 cells, and the width after the last."""
    return np.arange(BAND_BITS + 1) * width // BAND_BITS


@functools.lru_cache(maxsize=32)
def _bit_of_column(width: int) -> np.ndarray:
    """For each column, the bit of the frame number its cell shows (15: the leftmost)."""
    cell = np.searchsorted(_cell_bounds(width), np.arange(width), side="right") - 1
    return (BAND_BITS - 1 - cell).astype(np.uint32)


def _band_row(width: int, number: int, white: np.ndarray, black: np.ndarray) -> np.ndarray:
    """One row of the band, ``(width, channels)``: white where the cell's bit is 1."""
    lit = (np.uint32(number % (1 << BAND_BITS)) >> _bit_of_column(width)) & 1
    return np.where(lit[:, None].astype(bool), white, black).astype(np.uint8)


def synthetic_frame(width: int, height: int, color_format: str, stamp: VideoStamp) -> bytes:
    """The pixels of a synthetic frame: flat picture, visible frame number, stamp.

    See the module's docstring for the exact pattern. It costs one copy of the
    shared flat picture plus the band.

    Args:
        width: Width in pixels.
        height: Height in pixels.
        color_format: One of :data:`COLOR_FORMATS`.
        stamp: Its stamp; ``stamp.frame`` is also shown in the band.

    Returns:
        The buffer.
    """
    picture = memoryview(_picture(width, height, color_format))
    band = band_height(height)
    top = height - band
    if color_format == "I420":
        row = _band_row(width, stamp.frame, np.array([235]), np.array([16]))
        luma_end = width * height
        chroma_width, chroma_height = (width + 1) // 2, (height + 1) // 2
        chroma_top = (top + 1) // 2
        neutral = bytes([128]) * ((chroma_height - chroma_top) * chroma_width)
        u_at, v_at = luma_end, luma_end + chroma_width * chroma_height
        parts = [
            (top * width, np.broadcast_to(row[:, 0], (band, width)).tobytes()),
            (u_at + chroma_top * chroma_width, neutral),
            (v_at + chroma_top * chroma_width, neutral),
        ]
    else:
        channels = COLOR_FORMATS[color_format]
        white = np.full(channels, 255)
        black = np.array([255 if c == "A" else 0 for c in color_format])
        row = _band_row(width, stamp.frame, white, black)
        parts = [(top * width * channels, np.broadcast_to(row, (band, *row.shape)).tobytes())]
    head = VIDEO_STAMP.pack(*stamp)
    if parts[0][0] < len(head):  # a picture so small the band reaches the stamp
        buffer = bytearray(picture)
        for offset, data in parts:
            buffer[offset : offset + len(data)] = data
        buffer[: len(head)] = head
        return bytes(buffer[: len(picture)])
    # One allocation of the frame: the stamp, the flat picture, the band's pieces.
    pieces: list[bytes | memoryview] = [head]
    at = len(head)
    for offset, data in parts:
        pieces += [picture[at:offset], data]
        at = offset + len(data)
    pieces.append(picture[at:])
    return b"".join(pieces)


def _channel_index(color_format: str) -> tuple[int, int, int]:
    return color_format.index("R"), color_format.index("G"), color_format.index("B")


def _frame_bytes(
    buffer: bytes | bytearray | memoryview, width: int, height: int, color_format: str
) -> np.ndarray:
    """A frame's bytes as an array, refusing a buffer too short for its size and format."""
    size = frame_size(width, height, color_format)
    if len(buffer) < size:
        raise ValueError(
            f"a {width}x{height} {color_format} frame has {size} bytes, not {len(buffer)}"
        )
    return np.frombuffer(buffer, np.uint8, count=size)


def _to_rgb(
    buffer: bytes | bytearray | memoryview, width: int, height: int, color_format: str
) -> np.ndarray:
    """A frame as an ``(height, width, 3)`` RGB array (I420: BT.601, rounded)."""
    data = _frame_bytes(buffer, width, height, color_format)
    if color_format != "I420":
        pixels = data.reshape(height, width, COLOR_FORMATS[color_format])
        return pixels[:, :, list(_channel_index(color_format))]
    chroma_width, chroma_height = (width + 1) // 2, (height + 1) // 2
    luma = data[: width * height].reshape(height, width)
    chroma = data[width * height :].reshape(2, chroma_height, chroma_width)
    full = chroma.repeat(2, axis=1).repeat(2, axis=2)[:, :height, :width]
    r, g, b = _yuv_to_rgb(luma, full[0], full[1].astype(np.float64))
    return np.clip(np.rint(np.stack([r, g, b], axis=-1)), 0, 255).astype(np.uint8)


def _from_rgb(rgb: np.ndarray, color_format: str) -> np.ndarray:
    """An ``(height, width, 3)`` RGB array in a color format, as a flat byte array."""
    height, width, _ = rgb.shape
    if color_format != "I420":
        out = np.full((height, width, COLOR_FORMATS[color_format]), 255, np.uint8)
        for channel, index in zip(range(3), _channel_index(color_format), strict=True):
            out[:, :, index] = rgb[:, :, channel]
        return out.reshape(-1)
    y, _, _ = _rgb_to_yuv(*(rgb[:, :, c].astype(np.float64) for c in range(3)))
    # Chroma of each 2x2 block's mean color (an odd edge repeats its last row or column).
    padded = np.pad(rgb.astype(np.float64), ((0, height % 2), (0, width % 2), (0, 0)), "edge")
    blocks = padded.reshape(padded.shape[0] // 2, 2, padded.shape[1] // 2, 2, 3).mean(axis=(1, 3))
    _, u, v = _rgb_to_yuv(blocks[:, :, 0], blocks[:, :, 1], blocks[:, :, 2])
    planes = [np.clip(np.rint(p), 0, 255).astype(np.uint8).reshape(-1) for p in (y, u, v)]
    return np.concatenate(planes)


def convert_frame(
    buffer: bytes | bytearray | memoryview,
    width: int,
    height: int,
    from_format: str,
    to_format: str,
) -> bytes:
    """A frame in another color format (RGB-family formats and I420, BT.601).

    Alpha is kept between formats that have one, and is 255 where the source had
    none. The first 16 bytes are converted like the rest: to keep a stamp,
    write it again after.

    Args:
        buffer: The frame.
        width: Width in pixels.
        height: Height in pixels.
        from_format: Its color format.
        to_format: The color format wanted.

    Returns:
        The converted frame (``buffer`` itself if the formats are the same).

    Raises:
        ValueError: If a format is not simulated, or the buffer too short.
    """
    if from_format == to_format:
        frame_size(width, height, to_format)  # refuses a format that is not simulated
        return buffer if isinstance(buffer, bytes) else bytes(buffer)
    return _convert(buffer, width, height, from_format, to_format).tobytes()


def _convert(
    buffer: bytes | bytearray | memoryview,
    width: int,
    height: int,
    from_format: str,
    to_format: str,
) -> np.ndarray:
    frame_size(width, height, to_format)  # refuses a format that is not simulated
    if from_format == to_format:
        return np.frombuffer(buffer, np.uint8, count=frame_size(width, height, to_format))
    if "A" in from_format and "A" in to_format:
        # Between RGB-family formats with alpha: a reordering of the channels.
        pixels = np.frombuffer(buffer, np.uint8, count=frame_size(width, height, from_format))
        pixels = pixels.reshape(-1, 4)
        return pixels[:, [from_format.index(c) for c in to_format]].reshape(-1)
    return _from_rgb(_to_rgb(buffer, width, height, from_format), to_format)


def read_visible_frame_number(
    buffer: bytes | bytearray | memoryview, width: int, height: int, color_format: str = "RGB"
) -> int:
    """Read the frame number the band at the bottom of a synthetic picture shows.

    It samples the centre pixel of each of the 16 cells (the band's middle row,
    the cell's middle column); a luma above 128 (``0.299 R + 0.587 G + 0.114 B``;
    I420: Y) is a 1. See the module's docstring for the pattern.

    Args:
        buffer: The frame, possibly after lossy coding.
        width: Width in pixels (at least 16).
        height: Height in pixels.
        color_format: One of :data:`COLOR_FORMATS`.

    Returns:
        The number, ``frame_number % 65536``.

    Raises:
        ValueError: If the picture is too narrow for 16 cells, the format is not
            simulated, or the buffer too short.
    """
    if width < BAND_BITS:
        raise ValueError(f"a picture {width} pixels wide cannot show {BAND_BITS} cells")
    band = band_height(height)
    row = height - band + band // 2
    bounds = _cell_bounds(width)
    columns = (bounds[:-1] + bounds[1:]) // 2
    data = _frame_bytes(buffer, width, height, color_format)
    if color_format == "I420":
        luma = data[row * width + columns].astype(np.float64)
    else:
        channels = COLOR_FORMATS[color_format]
        pixels = data.reshape(height, width, channels)[row, columns].astype(np.float64)
        r, g, b = _channel_index(color_format)
        luma = 0.299 * pixels[:, r] + 0.587 * pixels[:, g] + 0.114 * pixels[:, b]
    number = 0
    for bit in luma > 128:
        number = (number << 1) | int(bit)
    return number


def looks_like_avatar(
    buffer: bytes | bytearray | memoryview,
    width: int,
    height: int,
    color_format: str = "RGB",
    *,
    tolerance: int = 30,
) -> bool:
    """Whether a frame looks like the synthetic avatar picture.

    The average color of the area above the band (its first row left out: the
    stamp is there) must be within ``tolerance`` of :data:`AVATAR_COLOR` in each
    of R, G and B.

    Args:
        buffer: The frame, possibly after lossy coding.
        width: Width in pixels.
        height: Height in pixels.
        color_format: One of :data:`COLOR_FORMATS`.
        tolerance: How far each channel's average may be.

    Returns:
        True if it does.

    Raises:
        ValueError: If the picture has no area above the band, the format is not
            simulated, or the buffer too short.
    """
    top = height - band_height(height)
    if top < 2:
        raise ValueError(f"a picture {height} pixels high has no area above its band")
    data = _frame_bytes(buffer, width, height, color_format)
    if color_format == "I420":
        chroma_width, chroma_height = (width + 1) // 2, (height + 1) // 2
        luma = data[: width * height].reshape(height, width)[1:top]
        chroma = data[width * height :].reshape(2, chroma_height, chroma_width)[:, 1 : top // 2]
        average = np.array(_yuv_to_rgb(luma.mean(), *chroma.mean(axis=(1, 2))))
    else:
        pixels = data.reshape(height, width, COLOR_FORMATS[color_format])[1:top]
        average = pixels[:, :, list(_channel_index(color_format))].mean(axis=(0, 1))
    return bool(np.all(np.abs(average - np.array(AVATAR_COLOR)) <= tolerance))


class SentVideo(NamedTuple):
    """A video frame on its way from a publisher's source to the track's receivers.

    Parameters:
        width: Width in pixels.
        height: Height in pixels.
        stamp: Its stamp (a written frame's: read from its first 16 bytes).
        captured_at: Monotonic time it was captured (a written frame's: written).
        pixels: The bytes written, in ``color_format`` (None: the synthetic picture,
            built by the receiver in the format it asks for).
        color_format: The color format of ``pixels``.
    """

    width: int
    height: int
    stamp: VideoStamp
    captured_at: float
    pixels: bytes | None = None
    color_format: str = "RGB"


class VideoFrame:
    """A received video frame, shaped like daily-python's ``VideoFrame``.

    ``buffer`` is built on first read, so frames that no one looks at cost no
    pixels: a synthetic frame's from the shared picture (:func:`synthetic_frame`);
    a written frame's is the bytes written, converted to the color format asked
    for if it differs (then its stamp is written again at the start).

    Attributes:
        width: Width in pixels.
        height: Height in pixels.
        color_format: Its color format.
        timestamp_us: When it was captured, in microseconds of the monotonic clock.
        stamp: Its stamp, also found in the first 16 bytes of ``buffer``.
    """

    __slots__ = (
        "_buffer",
        "_pixels",
        "_pixels_format",
        "color_format",
        "height",
        "stamp",
        "timestamp_us",
        "width",
    )

    def __init__(
        self,
        width: int,
        height: int,
        color_format: str,
        timestamp_us: int,
        stamp: VideoStamp,
        pixels: bytes | None = None,
        pixels_format: str | None = None,
    ) -> None:
        """Create the frame.

        Args:
            width: Width in pixels.
            height: Height in pixels.
            color_format: One of :data:`COLOR_FORMATS`.
            timestamp_us: Capture time, microseconds.
            stamp: Its stamp.
            pixels: The bytes a publisher wrote (None: a synthetic frame).
            pixels_format: Their color format (None: ``color_format``).
        """
        self.width = width
        self.height = height
        self.color_format = color_format
        self.timestamp_us = timestamp_us
        self.stamp = stamp
        self._pixels = pixels
        self._pixels_format = pixels_format or color_format
        self._buffer: bytes | None = None

    @classmethod
    def received(cls, sent: SentVideo, color_format: str) -> "VideoFrame":
        """The frame a renderer asking for a color format gets of a frame sent.

        Args:
            sent: The frame as sent.
            color_format: The renderer's color format.

        Returns:
            The frame.
        """
        return cls(
            sent.width,
            sent.height,
            color_format,
            int(sent.captured_at * 1_000_000),
            sent.stamp,
            sent.pixels,
            sent.color_format,
        )

    @property
    def buffer(self) -> bytes:
        """The pixels, starting with the 16-byte stamp."""
        if self._buffer is None:
            if self._pixels is None:
                self._buffer = synthetic_frame(
                    self.width, self.height, self.color_format, self.stamp
                )
            elif self._pixels_format == self.color_format:
                self._buffer = self._pixels
            else:
                converted = _convert(
                    self._pixels, self.width, self.height, self._pixels_format, self.color_format
                )
                head = np.frombuffer(VIDEO_STAMP.pack(*self.stamp), np.uint8)
                n = min(len(head), len(converted))
                converted[:n] = head[:n]
                self._buffer = converted.tobytes()
        return self._buffer

    def __repr__(self) -> str:
        return (
            f"VideoFrame({self.width}x{self.height} {self.color_format}, frame={self.stamp.frame},"
            f" audio_position={self.stamp.audio_position})"
        )


# Where a published video source's frames go: ``sink(source, frame)``.
VideoSink = Callable[[Any, SentVideo], None]


class SyntheticCamera:
    """A camera track's source: frames at a steady rate, numbered and stamped.

    While its ``sink`` is set (the room layer sets it while the camera is
    published), it ticks on the loop every ``1 / fps`` seconds, on a schedule
    that does not drift; a tick that comes late skips the frames it missed, as a
    camera does. Each tick hands the sink a :class:`SentVideo` with no pixels;
    receivers make :class:`VideoFrame` objects in the color format they asked for.

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
        sink(self, SentVideo(self.width, self.height, VideoStamp(number, position), now))
        if self._sink is not None:
            loop = asyncio.get_running_loop()
            wait = self._started_at + self._next_frame * period - time.monotonic()
            self._timer = loop.call_later(max(wait, 0.0), self._tick)


# A source of a video track.
VideoSource = SyntheticCamera | CustomVideoSource


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
