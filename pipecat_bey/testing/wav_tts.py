"""A TTS stand-in that speaks recorded WAV clips, so an offline bot produces real TTS frames."""

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from pipecat.frames.frames import ErrorFrame, Frame
from pipecat.services.settings import TTSSettings
from pipecat.services.tts_service import TTSService

from pipecat_bey.testing.audio import read_wav, to_mono


class WavTTSService(TTSService):
    """Speaks text by playing the WAV clip recorded for it.

    It behaves as a streaming TTS service does: ``TTSStartedFrame``, then the
    audio in small ``TTSAudioRawFrame`` chunks (resampled to the pipeline's
    output rate) as fast as they are produced, then ``TTSStoppedFrame``, with
    interruptions handled by pipecat's ``TTSService``.

    Example::

        tts = WavTTSService(clips={"Hello!": "hello.wav"}, default_clip="filler.wav")
    """

    def __init__(
        self,
        *,
        clips: Mapping[str, str | Path] | None = None,
        default_clip: str | Path | None = None,
        chunk_ms: int = 20,
        ttfb_s: float = 0.0,
        **kwargs: Any,
    ) -> None:
        """Create the service, reading the clips now so a bad file fails early.

        Args:
            clips: The clip to play for each text (matched after stripping whitespace).
            default_clip: The clip for any other text; without one, other text is an error.
            chunk_ms: Size of each audio frame, in milliseconds.
            ttfb_s: Delay before the first audio, as a network TTS would have.
            **kwargs: Passed to ``TTSService``.
        """
        super().__init__(
            push_start_frame=True,
            push_stop_frames=True,
            settings=TTSSettings(model=None, voice=None, language=None),
            **kwargs,
        )
        self._clips = {text.strip(): _load(path) for text, path in (clips or {}).items()}
        self._default = _load(default_clip) if default_clip is not None else None
        if not self._clips and self._default is None:
            raise ValueError("WavTTSService needs clips={text: wav} or default_clip=wav")
        self._chunk_ms = chunk_ms
        self._ttfb_s = ttfb_s

    def can_generate_metrics(self) -> bool:
        """Report TTFB like a real TTS service.

        Returns:
            True.
        """
        return True

    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame, None]:
        """Play the clip for ``text``.

        Args:
            text: What to say.
            context_id: The TTS context.

        Yields:
            The TTS frames.
        """
        clip = self._clips.get(text.strip(), self._default)
        if clip is None:
            yield ErrorFrame(error=f"WavTTSService has no clip for {text.strip()!r}")
            return
        pcm, rate = clip
        piece = max(rate * self._chunk_ms // 1000, 1) * 2

        async def chunks() -> AsyncIterator[bytes]:
            if self._ttfb_s:
                await asyncio.sleep(self._ttfb_s)
            for offset in range(0, len(pcm), piece):
                yield pcm[offset : offset + piece]
                await asyncio.sleep(0)  # let the pipeline move, as a network TTS would

        async for frame in self._stream_audio_frames_from_iterator(
            chunks(), in_sample_rate=rate, context_id=context_id
        ):
            await self.stop_ttfb_metrics()
            yield frame


def _load(path: str | Path) -> tuple[bytes, int]:
    pcm, rate, channels = read_wav(path)
    return to_mono(pcm, channels), rate
