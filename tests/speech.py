"""Speech as a TTS sends it, made up for tests: noise no two utterances share."""

import numpy as np
from pipecat.frames.frames import TTSAudioRawFrame, TTSStartedFrame, TTSStoppedFrame

from pipecat_bey.testing.audio import best_alignment, speech_duration_s


def noise(samples, seed=0, channels=1):
    """16-bit noise, loud enough to count as speech, the same for the same seed."""
    rng = np.random.default_rng(seed)
    return rng.integers(-12000, 12000, samples * channels, dtype=np.int16).tobytes()


def utterance(pcm, sizes, rate=24000, channels=1):
    """One TTS utterance: start, the audio cut in frames of ``sizes`` bytes in turn, stop."""
    frames, offset, i = [TTSStartedFrame()], 0, 0
    while offset < len(pcm):
        size = sizes[i % len(sizes)]
        frames.append(TTSAudioRawFrame(pcm[offset : offset + size], rate, channels))
        offset += size
        i += 1
    return [*frames, TTSStoppedFrame()]


def found_in(said, heard, rate, *, block_s=0.25, correlation=0.9):
    """The share of the voiced blocks of ``said`` that ``heard`` holds, each found on its own.

    Block by block, so that a gap a loaded machine leaves in the playout shifts what
    follows it without hiding it; a block of silence proves nothing and is left out.
    """
    size = int(block_s * rate) * 2
    blocks = [said[i : i + size] for i in range(0, len(said) - size + 1, size)]
    voiced = [b for b in blocks if speech_duration_s(b, rate) > block_s / 2]
    found = [b for b in voiced if best_alignment(b, heard)[1] >= correlation]
    return len(found) / len(voiced) if voiced else 0.0
