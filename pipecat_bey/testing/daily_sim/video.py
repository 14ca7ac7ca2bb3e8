"""Media layer: video sources, and frames on their way to renderers and as received.

Nothing here knows about rooms or the simulation. Video comes from two kinds of
source, both handing each frame to their ``sink`` (set by the room layer while
the source is published) as a :class:`SentVideo`:

- a :class:`SyntheticCamera` (the avatar's) ticks at its frame rate on the loop
  and hands each frame on as a number; a receiver's :class:`VideoFrame` builds
  its pixels only when its ``buffer`` is read, from one image shared by every
  camera of that size and color format (``picture.synthetic_frame``). A camera
  that nobody watches costs a timer tick per frame and nothing else.
- a :class:`CustomVideoSource` (a bot's camera or custom video track) sends the
  bytes written to it, as they are (no copy); a receiver gets those very bytes,
  converted only if its renderer asked for another color format. Its stamp is
  read from the first 16 bytes written, so a relay that passes the avatar's
  frames through unchanged keeps the avatar's stamp.
"""

import asyncio
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from pipecat_bey.testing.daily_sim.picture import (
    VIDEO_STAMP,
    VideoStamp,
    convert_stamped,
    frame_size,
    read_video_stamp,
    synthetic_frame,
)
from pipecat_bey.testing.daily_sim.threads import call_on_loop


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
            color_format: One of ``picture.COLOR_FORMATS``.
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
                self._buffer = convert_stamped(
                    self._pixels,
                    self.width,
                    self.height,
                    self._pixels_format,
                    self.color_format,
                    self.stamp,
                )
        return self._buffer

    def __repr__(self) -> str:
        return (
            f"VideoFrame({self.width}x{self.height} {self.color_format}, frame={self.stamp.frame},"
            f" audio_position={self.stamp.audio_position})"
        )


# Where a published video source's frames go: ``sink(source, frame)``.
VideoSink = Callable[[Any, SentVideo], None]


class CustomVideoSource:
    """Stand-in for ``daily.CustomVideoSource``: frames an application writes into a track.

    While published (its ``sink`` set by the room layer), each frame written is
    sent to the track's receivers as it is, captured at the time of the write,
    with the stamp read from its first 16 bytes (``picture.read_video_stamp``).
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
            color_format: Color format of the frames (one of ``picture.COLOR_FORMATS``).

        Raises:
            ValueError: If the color format is not simulated.
        """
        self.width, self.height, self.color_format = width, height, color_format
        self.frame_bytes = frame_size(width, height, color_format)
        self.frames_written = 0
        self._sink: VideoSink | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def sink(self) -> VideoSink | None:
        """Where frames go while the source is published (None: nowhere)."""
        return self._sink

    @sink.setter
    def sink(self, sink: VideoSink | None) -> None:
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
        call_on_loop(self._loop, self._send, sent)

    def _send(self, sent: SentVideo) -> None:
        sink = self._sink
        if sink is not None:
            self.frames_written += 1
            sink(self, sent)


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
