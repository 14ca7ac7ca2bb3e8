"""The phrase the check sends the avatar: the first seconds of a packaged speech clip."""

from importlib.resources import files
from pathlib import Path

from pipecat.audio.utils import create_file_resampler

from pipecat_bey.wav import read_wav, to_mono

PHRASE_S = 3.0
"""Seconds of the packaged clip sent as the phrase."""


def default_phrase() -> Path:
    """The clip the check sends the avatar (its first :data:`PHRASE_S` seconds).

    Returns:
        Its path.
    """
    return Path(str(files("pipecat_bey") / "assets" / "demo_speech.wav"))


async def load_phrase(path: Path, sample_rate: int, seconds: float = PHRASE_S) -> bytes:
    """The phrase: the first seconds of a 16-bit WAV, mono, at a sample rate.

    Args:
        path: The WAV file.
        sample_rate: The rate to resample to (the transport's output rate).
        seconds: How much of the clip.

    Returns:
        16-bit mono PCM.

    Raises:
        ValueError: If the file is not a 16-bit PCM WAV.
    """
    pcm, rate, channels = read_wav(path)
    mono = to_mono(pcm, channels)[: int(seconds * rate) * 2]
    if rate == sample_rate:
        return mono
    return await create_file_resampler().resample(mono, rate, sample_rate)
