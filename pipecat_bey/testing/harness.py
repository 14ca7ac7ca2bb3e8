"""Run a real bot pipeline offline: one object for the stand-ins, one for the run.

``OfflineWorld`` starts everything a bot with an avatar talks to (the local
Beyond Presence API, a simulated Daily with a room, the avatar it sends in,
and a simulated user), builds the bot's transport and avatar service with the
right keys and URLs, and runs pipelines. ``BotRun`` is one running pipeline.
On exit the world ends every run still going and closes the stand-ins, so
nothing is left running, whether the block ended normally, raised or was
cancelled (Ctrl-C under ``asyncio.run`` cancels the main task).

Example::

    async with OfflineWorld(behaviour=AvatarBehaviour(join_delay_s=0.5)) as world:
        transport = world.transport()
        avatar = world.avatar_service(transport)
        tts = WavTTSService(default_clip="hello.wav")
        run = await world.start(standard_pipeline(transport, tts, avatar))
        await run.queue_frames(TTSSpeakFrame("Hello!"))
        await world.daily.wait_for(lambda: world.user.heard_speech_s() > 1.0, 15)
        await run.end()
    # world.avatar.received_audio() is what the avatar was sent.
"""

import asyncio
import secrets
from collections.abc import Sequence
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any

from loguru import logger
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.frames.frames import EndFrame, Frame
from pipecat.observers.base_observer import BaseObserver
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.transports.daily.transport import DailyParams, DailyTransport
from pipecat.workers.runner import WorkerRunner

from pipecat_bey.testing.bey_emulator import BeyEmulator
from pipecat_bey.testing.daily_sim import (
    AvatarBehaviour,
    DailySimulation,
    Room,
    SimulatedAvatar,
    SimulatedUser,
)
from pipecat_bey.video import BeyVideoService


class BotRun:
    """One bot pipeline running in an :class:`OfflineWorld`.

    Attributes:
        worker: The pipeline's worker.
        task: The task running it (done once the pipeline has finished).
    """

    def __init__(self, worker: PipelineWorker, runner: WorkerRunner) -> None:
        """Start running ``worker`` on ``runner`` (use :meth:`OfflineWorld.start`).

        Args:
            worker: The pipeline's worker, already added to the runner.
            runner: The runner; it installs no signal handler.
        """
        self.worker = worker
        self.task: asyncio.Task[None] = asyncio.create_task(
            runner.run(), name=f"offline-run-{worker.name}"
        )
        self._end_queued = False

    def __repr__(self) -> str:
        state = "done" if self.task.done() else "running"
        return f"BotRun(worker={self.worker.name!r}, {state})"

    @property
    def done(self) -> bool:
        """Whether the pipeline has finished."""
        return self.task.done()

    async def queue_frames(self, *frames: Frame) -> None:
        """Push frames into the pipeline, from its start.

        Args:
            *frames: The frames, in order.
        """
        await self.worker.queue_frames(frames)

    async def end(self, timeout_s: float = 30.0) -> None:
        """End the pipeline gracefully (``EndFrame``) and wait until it has finished.

        Speech already queued plays out first. Calling it again, or after the
        run has finished, only waits.

        Args:
            timeout_s: Seconds to wait for the pipeline to finish.

        Raises:
            TimeoutError: If it did not finish in time (it keeps running; see :meth:`cancel`).
        """
        if not self.task.done() and not self._end_queued:
            self._end_queued = True
            await self.worker.queue_frame(EndFrame())
        # asyncio.wait, not wait_for: a timeout (or our own cancellation) must not
        # cancel the run itself half-way through its shutdown.
        await asyncio.wait({self.task}, timeout=timeout_s)
        if not self.task.done():
            raise TimeoutError(f"{self} did not end within {timeout_s:g} s")
        if not self.task.cancelled():
            self.task.result()  # a run that failed fails here

    async def cancel(self, timeout_s: float = 10.0) -> None:
        """Stop the pipeline at once (``CancelFrame``) and wait until it has finished.

        Processors clean up as on any cancellation: the avatar service ejects its
        avatar, the transport leaves the room. If the pipeline does not finish in
        time, its task is cancelled outright. Calling it again, or after the run
        has finished, does nothing.

        Args:
            timeout_s: Seconds to wait for the pipeline, then as long again for its task.
        """
        if self.task.done():
            return
        await self.worker.cancel(reason="the offline run was cancelled")
        await asyncio.wait({self.task}, timeout=timeout_s)
        if not self.task.done():
            logger.warning(f"{self}: the pipeline did not stop within {timeout_s:g} s; killing it")
            self.task.cancel()
            await asyncio.wait({self.task}, timeout=timeout_s)


class OfflineWorld:
    """The local Beyond Presence API, a simulated Daily room, an avatar and a user.

    Use it as an async context manager. Inside, the real ``DailyTransport``
    joins simulated rooms, every session started on ``bey`` sends an avatar
    (behaving as ``behaviour`` says) into the room it names, and ``user`` is
    in ``room``. Measure on the participants: ``user.heard_speech_s()``,
    ``world.avatar.speech_received_s()``, ``world.avatar.received_audio()``.

    Attributes:
        bey: The local Beyond Presence API.
        daily: The simulated Daily.
        room: The room the world starts with.
        user: The simulated user in ``room`` (None if ``user=False``).
        bey_key: The Beyond Presence API key ``bey`` accepts.
        daily_key: The Daily API key ``daily`` accepts.
    """

    bey: BeyEmulator
    daily: DailySimulation
    room: Room
    user: SimulatedUser | None

    def __init__(
        self,
        *,
        behaviour: AvatarBehaviour | None = None,
        api_latency_s: float = 0.0,
        bey_key: str | None = None,
        daily_key: str | None = None,
        room_name: str | None = None,
        user: bool = True,
        user_plays_custom_tracks: bool = False,
        bey: BeyEmulator | None = None,
        daily: DailySimulation | None = None,
        **simulation_settings: Any,
    ) -> None:
        """Describe the world (it starts when entered).

        Args:
            behaviour: How avatars behave (join delay, failures); by default the
                simulation's ``default_behaviour`` (e.g. ``DailySimulation.realistic()``'s),
                else ``AvatarBehaviour()``, which joins after 1 s.
            api_latency_s: Seconds the local Beyond Presence API takes to answer.
            bey_key: The Beyond Presence API key (default: a fresh random one).
            daily_key: The Daily API key (default: a fresh random one).
            room_name: The room's name (default: a fresh one).
            user: Whether a simulated user joins ``room`` on entry.
            user_plays_custom_tracks: Whether that user plays every audio track it
                receives, custom tracks included, as a custom client might (so
                hearing the bot's raw speech on its track can be measured).
            bey: A local Beyond Presence API already running, to use instead of
                starting one (a test fixture, say); the world does not stop it.
                ``bey_key`` must then be a key it accepts.
            daily: A simulation already active, to use instead of starting one;
                the world does not stop it. ``daily_key`` must then be its key.
            **simulation_settings: Passed to ``DailySimulation`` (``join_latency_s``,
                ``rest_latency_s``, ``subscribe_latency_s``...).

        Raises:
            ValueError: If stand-ins are passed in without their keys, or settings
                (``api_latency_s``, ``simulation_settings``) for stand-ins already running.
        """
        if (bey is not None and bey_key is None) or (daily is not None and daily_key is None):
            raise ValueError("pass the keys of the stand-ins you bring: bey_key=..., daily_key=...")
        if daily is not None and simulation_settings:
            raise ValueError(
                f"simulation settings {sorted(simulation_settings)} cannot apply to a "
                "DailySimulation that is already running"
            )
        if bey is not None and api_latency_s:
            raise ValueError("set the latency of a BeyEmulator you bring on it: bey.latency = ...")
        self.bey_key = bey_key or f"bey-local-{secrets.token_hex(12)}"
        self.daily_key = daily_key or f"daily-local-{secrets.token_hex(12)}"
        self._behaviour = behaviour  # None: the simulation's default_behaviour
        self._api_latency_s = api_latency_s
        self._room_name = room_name
        self._with_user = user
        self._user_plays_custom_tracks = user_plays_custom_tracks
        self._given_bey = bey
        self._given_daily = daily
        self._simulation_settings = simulation_settings
        self._stack = AsyncExitStack()
        self._runs: list[BotRun] = []
        self.user = None

    def __repr__(self) -> str:
        room = getattr(self, "room", None)
        return f"OfflineWorld(room={room.name if room else None!r}, runs={len(self._runs)})"

    async def __aenter__(self) -> "OfflineWorld":
        try:
            self.bey = self._given_bey or await self._stack.enter_async_context(
                BeyEmulator(api_keys={self.bey_key}, latency=self._api_latency_s)
            )
            self.daily = self._given_daily or await self._stack.enter_async_context(
                DailySimulation(api_key=self.daily_key, **self._simulation_settings)
            )
            self.daily.attach_bey(self.bey, self._behaviour)
            self.room = self.daily.create_room(self._room_name)
            if self._with_user:
                self.user = SimulatedUser(
                    self.daily,
                    self.room,
                    "User",
                    plays_custom_tracks=self._user_plays_custom_tracks,
                )
                await self.user.join()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """End every run still going, then close the stand-ins the world started.

        After a normal exit each run is ended gracefully (and cancelled if it
        hangs); after an exception or a cancellation, cancelled at once.
        """
        graceful = exc_type is None
        try:
            failures = await self._finish_runs(graceful=graceful)
        finally:
            await self._stack.aclose()
        if graceful and failures:
            raise failures[0]

    async def _finish_runs(self, *, graceful: bool) -> list[BaseException]:
        async def finish(run: BotRun) -> None:
            if graceful:
                try:
                    await run.end()
                    return
                except TimeoutError:
                    logger.warning(f"{run} did not end in time; cancelling it")
            await run.cancel()

        running = [run for run in self._runs if not run.done]
        results = await asyncio.gather(*(finish(run) for run in running), return_exceptions=True)
        return [r for r in results if isinstance(r, BaseException)]

    def new_room(self, name: str | None = None) -> Room:
        """Create another room in the same world (for more bots at once).

        Sessions naming it get an avatar too.

        Args:
            name: Its name (default: a fresh one).

        Returns:
            The room.
        """
        return self.daily.create_room(name)

    def transport(
        self,
        room: Room | None = None,
        *,
        name: str = "Bot",
        token: str | None = None,
        **daily_params: Any,
    ) -> DailyTransport:
        """Build the bot's real ``DailyTransport`` for a room of the world.

        Args:
            room: The room (default: ``room``).
            name: The bot's name in the room.
            token: The bot's meeting token (default: one making the bot the meeting's
                owner, as pipecat's runner mints for a bot).
            **daily_params: ``DailyParams`` fields; audio in and out are on unless set.

        Returns:
            The transport.
        """
        room = room or self.room
        if token is None:
            token = self.daily.mint_token(room, user_name=name, is_owner=True)
        params = DailyParams(
            **({"audio_in_enabled": True, "audio_out_enabled": True} | daily_params)
        )
        return DailyTransport(room.url, token, name, params)

    def avatar_service(self, transport: DailyTransport, **kwargs: Any) -> BeyVideoService:
        """Build ``BeyVideoService`` pointed at the world's local APIs, with their keys.

        Args:
            transport: The bot's transport (from :meth:`transport`).
            **kwargs: More ``BeyVideoService`` arguments (``params=...``); they win.

        Returns:
            The service.
        """
        arguments: dict[str, Any] = {
            "api_key": self.bey_key,
            "api_url": self.bey.url,
            "daily_api_key": self.daily_key,
            "daily_api_url": self.daily.rest_url,
        }
        return BeyVideoService(transport=transport, **(arguments | kwargs))

    async def start(
        self,
        pipeline: Pipeline,
        *,
        params: PipelineParams | None = None,
        observers: Sequence[BaseObserver] = (),
        **worker_kwargs: Any,
    ) -> BotRun:
        """Start running a pipeline; the world ends it on exit if it is still going.

        The run installs no signal handler: cancelling the task that holds the
        world (as Ctrl-C under ``asyncio.run`` does) cancels the pipeline.

        Args:
            pipeline: The bot's pipeline.
            params: Its ``PipelineParams``.
            observers: Pipecat observers to attach.
            **worker_kwargs: More ``PipelineWorker`` arguments (``idle_timeout_secs=None``...).

        Returns:
            The run.
        """
        worker = PipelineWorker(
            pipeline, params=params or PipelineParams(), observers=list(observers), **worker_kwargs
        )
        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(worker)
        run = BotRun(worker, runner)
        self._runs.append(run)
        return run

    @property
    def avatar(self) -> SimulatedAvatar | None:
        """The avatar that first received the bot's speech, else the first that joined.

        None while no avatar has joined.
        """
        speaking = [a for a in self.daily.avatars if a.first_speech_at() is not None]
        if speaking:
            return min(speaking, key=lambda a: a.first_speech_at() or 0.0)
        joined = [a for a in self.daily.avatars if a.joined_at_first is not None]
        return min(joined, key=lambda a: a.joined_at_first or 0.0) if joined else None


def relayed_video(behaviour: AvatarBehaviour) -> dict[str, Any]:
    """What an output transport needs to show a relayed avatar: live video, its size and rate.

    Pass it into ``DailyParams``/``TransportParams`` (``world.transport(**relayed_video(b))``).

    Args:
        behaviour: The avatar's behaviour (its camera's size and frame rate).

    Returns:
        The params' video fields.
    """
    width, height = behaviour.video_size
    return {
        "video_out_enabled": True,
        "video_out_is_live": True,
        "video_out_width": width,
        "video_out_height": height,
        "video_out_framerate": round(behaviour.video_fps),
    }


def standard_pipeline(
    transport: DailyTransport,
    tts: FrameProcessor,
    avatar: FrameProcessor,
    *,
    vad: bool = True,
) -> Pipeline:
    """The usual bot around the avatar, without speech recognition and LLM.

    The shape of ``examples/bot.py``: ``transport.input()``, the user context
    aggregator (with Silero VAD, so the user can barge in), the TTS, the avatar
    service, ``transport.output()``, the assistant context aggregator.

    Args:
        transport: The bot's transport.
        tts: The TTS (e.g. ``WavTTSService``).
        avatar: The avatar service.
        vad: Whether the user aggregator detects speech (needed for barge-in).

    Returns:
        The pipeline.
    """
    user_params = LLMUserAggregatorParams(vad_analyzer=SileroVADAnalyzer() if vad else None)
    aggregators = LLMContextAggregatorPair(LLMContext(), user_params=user_params)
    return Pipeline(
        [
            transport.input(),
            aggregators.user(),
            tts,
            avatar,
            transport.output(),
            aggregators.assistant(),
        ]
    )
