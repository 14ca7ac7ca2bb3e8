"""16-bit PCM WAV files: reading them, and mixing their channels down to mono."""

import wave
from pathlib import Path

import numpy as np


def read_wav(path: str | Path) -> tuple[bytes, int, int]:
    """Read a 16-bit PCM WAV file.

    Args:
        path: The file.

    Returns:
        ``(pcm, sample_rate, num_channels)``.

    Raises:
        ValueError: If the file is not 16-bit PCM WAV (the message says how to convert it).
    """
    try:
        with wave.open(str(path), "rb") as wav:
            width = wav.getsampwidth()
            if width != 2:
                raise ValueError(
                    f"{path} has {8 * width}-bit samples; 16-bit PCM is needed "
                    f"(convert it, e.g. `sox {path} -b 16 out.wav`)"
                )
            return wav.readframes(wav.getnframes()), wav.getframerate(), wav.getnchannels()
    except wave.Error as e:
        raise ValueError(
            f"{path} is not a PCM WAV file ({e}); convert it to 16-bit PCM WAV, "
            f"e.g. `sox {path} -b 16 out.wav`"
        ) from e


def to_mono(pcm: bytes, num_channels: int) -> bytes:
    """Mix interleaved 16-bit PCM down to mono.

    Args:
        pcm: The audio.
        num_channels: Its channels.

    Returns:
        Mono 16-bit PCM.
    """
    if num_channels == 1:
        return pcm
    samples = np.frombuffer(pcm[: len(pcm) // (2 * num_channels) * 2 * num_channels], np.int16)
    return samples.reshape(-1, num_channels).mean(axis=1).astype(np.int16).tobytes()
