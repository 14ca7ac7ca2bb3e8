"""Speech as a TTS sends it, made up for tests: noise no two utterances share."""

import numpy as np
from pipecat.frames.frames import TTSAudioRawFrame, TTSStartedFrame, TTSStoppedFrame


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
