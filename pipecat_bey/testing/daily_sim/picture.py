"""Media layer: what every simulated video frame looks like, pixel by pixel.

Nothing here knows about sources, rooms or the simulation: these are the
frames' bytes. A frame is ``width`` x ``height`` in one of the color formats a
renderer may ask for (:data:`COLOR_FORMATS`); :func:`convert_frame` turns one
into another. Written frames keep the pixels their writer gave; synthetic frames
(the avatar's camera) are the picture below, built by :func:`synthetic_frame`
from one flat image shared by every camera of that size and color format.

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

import functools
import struct
from typing import Any, NamedTuple

import numpy as np

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


def convert_stamped(
    buffer: bytes | bytearray | memoryview,
    width: int,
    height: int,
    from_format: str,
    to_format: str,
    stamp: VideoStamp,
) -> bytes:
    """A frame in another color format, with its stamp written again at the start.

    Converting changes the first 16 bytes like any pixels (:func:`convert_frame`);
    this writes the stamp back over them, so the converted frame still says
    which frame it is.

    Args:
        buffer: The frame.
        width: Width in pixels.
        height: Height in pixels.
        from_format: Its color format.
        to_format: The color format wanted.
        stamp: The frame's stamp.

    Returns:
        The converted frame, starting with the stamp.

    Raises:
        ValueError: If a format is not simulated, or the buffer too short.
    """
    converted = _convert(buffer, width, height, from_format, to_format)
    if not converted.flags.writeable:
        converted = converted.copy()
    head = np.frombuffer(VIDEO_STAMP.pack(*stamp), np.uint8)
    n = min(len(head), len(converted))
    converted[:n] = head[:n]
    return converted.tobytes()
