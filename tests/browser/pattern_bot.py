"""Stand-in bot for the browser test's self-check: a SmallWebRTC bot with no avatar.

It sends what ``examples/offline_web_bot.py`` promises the browser, drawn directly:
320x240 frames at 25 fps, flat colour (40, 110, 170) with the frame number as 16
black/white cells in the bottom band, and a 440 Hz tone as its "greeting" (8 s).
An RTVI client message ``barge-in`` silences the tone at once. Run it like the real bot:

    python tests/browser/pattern_bot.py --host 10.203.0.1 --port 7860
"""

import asyncio
import math

import numpy as np
from loguru import logger
from pipecat.frames.frames import (
    Frame,
    InterruptionFrame,
    OutputAudioRawFrame,
    OutputImageRawFrame,
    StartFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.runner.types import RunnerArguments, SmallWebRTCRunnerArguments
from pipecat.transports.base_transport import TransportParams
from pipecat.transports.smallwebrtc.transport import SmallWebRTCTransport
from pipecat.workers.runner import WorkerRunner

WIDTH, HEIGHT, FPS = 320, 240, 25
COLOUR = (40, 110, 170)
SAMPLE_RATE = 24000
CHUNK_S = 0.02
GREETING_S = 8.0


def pattern_frame(number: int, width: int = WIDTH, height: int = HEIGHT) -> bytes:
    """RGB bytes of one frame: flat colour, frame number in the bottom band's 16 cells."""
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[:] = COLOUR
    band = max(16, height // 8)
    value = number % 65536
    for i in range(16):
        lit = (value >> (15 - i)) & 1
        x0, x1 = i * width // 16, (i + 1) * width // 16
        image[height - band :, x0:x1] = 255 if lit else 0
    return image.tobytes()


class PatternSource(FrameProcessor):
    """Pushes the numbered frames at FPS, and the tone while it is "speaking"."""

    def __init__(self) -> None:
        super().__init__()
        self._tasks: list[asyncio.Task] = []
        self._speaking_until = 0.0

    def speak(self, seconds: float) -> None:
        self._speaking_until = asyncio.get_running_loop().time() + seconds

    def hush(self) -> None:
        self._speaking_until = 0.0

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)
        if isinstance(frame, StartFrame) and not self._tasks:
            self._tasks = [
                self.create_task(self._video(), "pattern-video"),
                self.create_task(self._audio(), "pattern-audio"),
            ]

    async def cleanup(self) -> None:
        await super().cleanup()
        for task in self._tasks:
            await self.cancel_task(task)
        self._tasks = []

    async def _video(self) -> None:
        loop = asyncio.get_running_loop()
        start, number = loop.time(), 0
        while True:
            frame = OutputImageRawFrame(pattern_frame(number), (WIDTH, HEIGHT), "RGB")
            await self.push_frame(frame)
            number += 1
            await asyncio.sleep(max(0.0, start + number / FPS - loop.time()))

    async def _audio(self) -> None:
        loop = asyncio.get_running_loop()
        n = int(SAMPLE_RATE * CHUNK_S)
        phase = 0
        start, sent = loop.time(), 0
        while True:
            # Keep at most ~60 ms ahead of real time, so a barge-in is heard at once.
            ahead = start + sent * CHUNK_S - loop.time()
            if ahead > 0.06:
                await asyncio.sleep(ahead - 0.06)
            if loop.time() < self._speaking_until:
                t = (np.arange(n) + phase) / SAMPLE_RATE
                samples = (0.3 * 32767 * np.sin(2 * math.pi * 440 * t)).astype(np.int16)
                phase += n
                await self.push_frame(OutputAudioRawFrame(samples.tobytes(), SAMPLE_RATE, 1))
            sent += 1
            if ahead < -0.5:  # fell behind (e.g. a slow start): don't burst to catch up
                start, sent = loop.time(), 0


async def bot(runner_args: RunnerArguments) -> None:
    """Serve one browser session (the runner calls this per connection)."""
    assert isinstance(runner_args, SmallWebRTCRunnerArguments), "run with -t webrtc"
    transport = SmallWebRTCTransport(
        webrtc_connection=runner_args.webrtc_connection,
        params=TransportParams(
            audio_in_enabled=False,
            audio_out_enabled=True,
            audio_out_sample_rate=SAMPLE_RATE,
            video_out_enabled=True,
            video_out_is_live=True,
            video_out_width=WIDTH,
            video_out_height=HEIGHT,
            video_out_framerate=FPS,
        ),
    )
    source = PatternSource()
    worker = PipelineWorker(
        Pipeline([transport.input(), source, transport.output()]),
        params=PipelineParams(audio_out_sample_rate=SAMPLE_RATE),
        idle_timeout_secs=None,
    )

    @transport.event_handler("on_client_connected")
    async def on_client_connected(transport: SmallWebRTCTransport, client: object) -> None:
        logger.info("client connected: greeting")
        source.speak(GREETING_S)

    @transport.event_handler("on_client_disconnected")
    async def on_client_disconnected(transport: SmallWebRTCTransport, client: object) -> None:
        await worker.cancel()

    @worker.rtvi.event_handler("on_client_message")
    async def on_client_message(rtvi: object, message: object) -> None:
        if getattr(message, "type", None) == "barge-in":
            logger.info("barge-in: silent")
            source.hush()
            await worker.queue_frame(InterruptionFrame())

    await WorkerRunner(handle_sigint=False).run(worker)


if __name__ == "__main__":
    from pipecat.runner.run import main

    main()
