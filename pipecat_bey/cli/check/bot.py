"""The check's bot: its pipeline on pipecat's ``DailyTransport``, and its microphone meter."""

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import numpy as np
from pipecat.frames.frames import Frame, UserAudioRawFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.transports.daily.transport import DailyParams, DailyTransport
from pipecat.workers.runner import WorkerRunner

from pipecat_bey.cli.check.options import CLEANUP_TIMEOUT_S
from pipecat_bey.cli.check.room import CheckRoom
from pipecat_bey.cli.check.steps import Changes, StepFailed, StepRunner
from pipecat_bey.config import BEY_AUDIO_TRACK
from pipecat_bey.daily.bot_room import BotRoom

BOT_NAME = "pipecat-bey check"

SPEECH_RMS = 300.0
"""A 10-20 ms piece of the avatar's microphone louder than this (RMS of 16-bit samples,
about -40 dBFS) is speech; decoded silence and comfort noise stay well below it."""

ParticipantHandler = Callable[[Mapping[str, Any]], Awaitable[None]]
LeftHandler = Callable[[Mapping[str, Any], str], Awaitable[None]]


def _rms(audio: bytes) -> float:
    samples = np.frombuffer(audio[: len(audio) // 2 * 2], dtype=np.int16)
    if not samples.size:
        return 0.0
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


class MicrophoneMeter(FrameProcessor):
    """Tells when each participant's microphone carries speech, as the bot receives it.

    ``DailyTransport`` (audio in, ``audio_in_user_tracks``) captures every
    participant's microphone as ``UserAudioRawFrame`` with its ``user_id``. This
    processor keeps, per participant, when speech first and last arrived and how
    much arrived, and drops the frames (nothing after it needs them).
    """

    def __init__(self, on_speech: Callable[[], None], threshold_rms: float = SPEECH_RMS) -> None:
        """Create the meter.

        Args:
            on_speech: Called whenever a piece of speech arrives.
            threshold_rms: A piece louder than this is speech.
        """
        super().__init__(name="CheckMicrophoneMeter")
        self._on_speech = on_speech
        self._threshold = threshold_rms
        self._speech: dict[str, list[tuple[float, float]]] = {}

    def speech(self, participant_id: str, after: float = -math.inf) -> list[tuple[float, float]]:
        """The pieces of speech that arrived from a participant.

        Args:
            participant_id: The participant.
            after: Only pieces that arrived after this monotonic time.

        Returns:
            ``(arrival time, seconds of audio)`` of each piece, in order.
        """
        return [p for p in self._speech.get(participant_id, []) if p[0] > after]

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Measure microphone audio; pass every other frame on.

        Args:
            frame: The frame.
            direction: Its direction.
        """
        await super().process_frame(frame, direction)
        if isinstance(frame, UserAudioRawFrame):
            if frame.user_id and frame.sample_rate and _rms(frame.audio) > self._threshold:
                seconds = len(frame.audio) / 2 / frame.num_channels / frame.sample_rate
                self._speech.setdefault(frame.user_id, []).append((time.monotonic(), seconds))
                self._on_speech()
            return
        await self.push_frame(frame, direction)


class CheckBot:
    """The bot of one run: in the room through ``DailyTransport``, measuring what it hears.

    Parameters:
        room: The run's room (its URL, the bot's token).
        runner: The run's steps (its recording).
        changes: Told of the room's events and of each piece of speech.
        timeout_s: How long the bot may take to join.
    """

    def __init__(
        self, room: CheckRoom, runner: StepRunner, changes: Changes, timeout_s: float
    ) -> None:
        self.meter: MicrophoneMeter | None = None
        """What the bot hears, once it is joining."""
        self._room = room
        self._runner = runner
        self._changes = changes
        self._timeout_s = timeout_s
        self._transport: DailyTransport | None = None
        self._worker: PipelineWorker | None = None
        self._run_task: asyncio.Task[None] | None = None
        self._joined_at: float | None = None
        self._join_error: str | None = None

    @property
    def sample_rate(self) -> int:
        """The sample rate of the bot's audio out."""
        assert self._transport is not None
        return self._transport.output().sample_rate

    async def join(
        self, *, on_participant: ParticipantHandler, on_participant_left: LeftHandler
    ) -> str:
        """The ``bot_joined`` step: mint the bot's token, start its pipeline, join.

        Args:
            on_participant: Called when a participant joins or is updated.
            on_participant_left: Called when a participant leaves, with the reason.

        Returns:
            What happened.

        Raises:
            StepFailed: If the token could not be minted, or the bot did not join in time.
        """
        token = await self._room.mint_owner_token(BOT_NAME)
        transport = DailyTransport(
            self._room.url,
            token,
            BOT_NAME,
            # The bot speaks only on the avatar's track; its microphone is captured
            # from every participant (the avatar's is what is measured).
            DailyParams(
                audio_in_enabled=True, audio_out_enabled=True, microphone_out_enabled=False
            ),
        )
        self._transport = transport
        room = BotRoom(transport, track=BEY_AUDIO_TRACK)  # registers bey-custom-track
        room.on_events(
            joined=self._on_joined,
            participant_joined=on_participant,
            participant_updated=on_participant,
            participant_left=on_participant_left,
        )

        @transport.event_handler("on_error")
        async def on_error(transport: DailyTransport, error: Any) -> None:
            self._join_error = str(error)
            self._changes.notify()

        self.meter = MicrophoneMeter(self._changes.notify)
        pipeline = Pipeline([transport.input(), self.meter, transport.output()])
        self._worker = PipelineWorker(
            pipeline, params=PipelineParams(), idle_timeout_secs=None, enable_rtvi=False
        )
        runner = WorkerRunner(handle_sigint=False)  # Ctrl-C is the check's to handle
        await runner.add_workers(self._worker)
        started = time.monotonic()
        self._run_task = asyncio.create_task(runner.run(), name="pipecat-bey-check")
        timeout = self._timeout_s
        await self._changes.wait(
            lambda: (
                self._joined_at is not None
                or self._join_error is not None
                or self._run_task is None
                or self._run_task.done()
            ),
            timeout,
        )
        if self._joined_at is None:
            why = self._join_error or (
                "its pipeline stopped"
                if self._run_task.done()
                else f"not in the room within {timeout:g} s"
            )
            raise StepFailed(
                f"the bot could not join: {why}",
                "check the room URL, and that DAILY_API_KEY belongs to the room's domain",
            )
        self._runner.record["bot_joined_s"] = round(self._joined_at - started, 3)
        return f"in the room with an owner token ({self._joined_at - started:.2f} s)"

    async def _on_joined(self) -> None:
        self._joined_at = time.monotonic()
        self._changes.notify()

    async def send(self, frames: list[Frame]) -> None:
        """Queue frames into the bot's pipeline, for its audio out or its app messages.

        Args:
            frames: The frames.
        """
        assert self._worker is not None
        await self._worker.queue_frames(frames)

    async def stop(self) -> None:
        """Clean up: stop the bot's pipeline (it leaves the room), each wait bounded."""
        if self._run_task is None or self._worker is None:
            return
        if not self._run_task.done():
            await self._worker.cancel(reason="the check is over")
            await asyncio.wait({self._run_task}, timeout=CLEANUP_TIMEOUT_S)
        if not self._run_task.done():
            self._run_task.cancel()
            await asyncio.wait({self._run_task}, timeout=CLEANUP_TIMEOUT_S)
