"""Audio helpers for offline bots, tests and benchmarks: WAV files, resampling, comparison."""

import wave
from pathlib import Path

import numpy as np

from pipecat_bey.wav import read_wav as read_wav
from pipecat_bey.wav import to_mono as to_mono


def write_wav(path: str | Path, pcm: bytes, sample_rate: int, num_channels: int = 1) -> None:
    """Write 16-bit PCM to a WAV file.

    Args:
        path: The file.
        pcm: Interleaved 16-bit PCM.
        sample_rate: Its rate.
        num_channels: Its channels.
    """
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(num_channels)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm)


def resample(pcm: bytes, from_rate: int, to_rate: int) -> bytes:
    """Resample mono 16-bit PCM in one go.

    Args:
        pcm: The audio.
        from_rate: Its rate.
        to_rate: The rate wanted.

    Returns:
        The resampled audio.
    """
    if from_rate == to_rate:
        return pcm
    import soxr

    return soxr.resample(np.frombuffer(pcm, np.int16), from_rate, to_rate, quality="VHQ").tobytes()


def samples(pcm: bytes) -> np.ndarray:
    """16-bit PCM as float samples in [-1, 1].

    Args:
        pcm: The audio.

    Returns:
        The samples.
    """
    return np.frombuffer(pcm[: len(pcm) // 2 * 2], np.int16).astype(np.float64) / 32768.0


def speech_segments(
    pcm: bytes, sample_rate: int, *, threshold_db: float = -40.0, min_silence_s: float = 0.25
) -> list[tuple[float, float]]:
    """Find stretches of sound by energy in 10 ms windows.

    Args:
        pcm: Mono 16-bit PCM.
        sample_rate: Its rate.
        threshold_db: Level (dBFS) above which a window counts as sound.
        min_silence_s: Gaps shorter than this are bridged.

    Returns:
        ``(start_s, end_s)`` of each stretch.
    """
    x = samples(pcm)
    window = max(sample_rate // 100, 1)
    n = len(x) // window
    if n == 0:
        return []
    rms = np.sqrt(np.mean(x[: n * window].reshape(n, window) ** 2, axis=1) + 1e-12)
    loud = 20 * np.log10(rms) > threshold_db
    segments: list[tuple[float, float]] = []
    start = None
    for i, on in enumerate(loud):
        if on and start is None:
            start = i
        elif not on and start is not None:
            segments.append((start * window / sample_rate, i * window / sample_rate))
            start = None
    if start is not None:
        segments.append((start * window / sample_rate, n * window / sample_rate))
    merged: list[tuple[float, float]] = []
    for seg in segments:
        if merged and seg[0] - merged[-1][1] < min_silence_s:
            merged[-1] = (merged[-1][0], seg[1])
        else:
            merged.append(seg)
    return merged


def speech_duration_s(pcm: bytes, sample_rate: int) -> float:
    """Time from the first sound to the last.

    Args:
        pcm: Mono 16-bit PCM.
        sample_rate: Its rate.

    Returns:
        Seconds (0 for silence).
    """
    segments = speech_segments(pcm, sample_rate)
    return segments[-1][1] - segments[0][0] if segments else 0.0


def best_alignment(reference: bytes, received: bytes) -> tuple[int, float]:
    """Where the reference sits in the received audio, and how alike they are there.

    Args:
        reference: What was said (mono 16-bit PCM).
        received: What arrived, at the same rate, possibly with silence around it.

    Returns:
        ``(offset in samples, normalized correlation in [-1, 1])``.
    """
    ref, got = samples(reference), samples(received)
    if len(ref) == 0 or len(got) == 0:
        return 0, 0.0
    size = 1 << int(np.ceil(np.log2(len(ref) + len(got))))
    corr = np.fft.irfft(np.fft.rfft(got, size) * np.conj(np.fft.rfft(ref, size)), size)
    corr = corr[: len(got)]
    offset = int(np.argmax(corr))
    window = got[offset : offset + len(ref)]
    ref_part = ref[: len(window)]
    denom = np.linalg.norm(ref_part) * np.linalg.norm(window)
    return offset, float(np.dot(ref_part, window) / denom) if denom else 0.0
