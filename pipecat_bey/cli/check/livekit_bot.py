"""The LiveKit check's bot: its pipeline on pipecat's ``LiveKitTransport``, and what it hears.

The bot speaks to the avatar as the service does, through
:class:`~pipecat_bey.livekit.bot_room.LiveKitBotRoom` (its
:class:`~pipecat_bey.livekit.speech_stream.SpeechStream`: ``lk.audio_stream``,
``lk.clear_buffer``, the playback RPCs). Unlike the service, it keeps the avatar's
microphone subscribed: the :class:`~pipecat_bey.cli.check.bot.MicrophoneMeter` measures
it, as the Daily check's bot does.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.transports.livekit.transport import LiveKitParams, LiveKitTransport
from pipecat.workers.runner import WorkerRunner

from pipecat_bey.cli.check.bot import MicrophoneMeter
from pipecat_bey.cli.check.livekit_room import BOT_IDENTITY, LiveKitCheckRoom, LiveKitKeys
from pipecat_bey.cli.check.options import CLEANUP_TIMEOUT_S
from pipecat_bey.cli.check.steps import Changes, StepFailed, StepRunner
from pipecat_bey.livekit.bot_room import LiveKitBotRoom, describe, transport_room
from pipecat_bey.livekit.tokens import AVATAR_IDENTITY
from pipecat_bey.rooms import Participant

ParticipantHandler = Callable[[Participant], Awaitable[None]]
LeftHandler = Callable[[Participant, str], Awaitable[None]]
SpeakingHandler = Callable[[bool], Awaitable[None]]


class LiveKitCheckBot:
    """The bot of one LiveKit run: in the room through ``LiveKitTransport``, hearing the avatar.

    Parameters:
        keys: The run's keys (the server's URL).
        room: The run's room (its name, the bot's token).
        runner: The run's steps (its recording).
        changes: Told of the room's events and of each piece of speech.
        timeout_s: How long the bot may take to join.
    """

    def __init__(
        self,
        keys: LiveKitKeys,
        room: LiveKitCheckRoom,
        runner: StepRunner,
        changes: Changes,
        timeout_s: float,
    ) -> None:
        self.meter: MicrophoneMeter | None = None
        """What the bot hears, once it is joining."""
        self.room: LiveKitBotRoom | None = None
        """The bot's side of the room (its speech to the avatar), once it is joining."""
        self._keys = keys
        self._room = room
        self._runner = runner
        self._changes = changes
        self._timeout_s = timeout_s
        self._transport: LiveKitTransport | None = None
        self._worker: PipelineWorker | None = None
        self._run_task: asyncio.Task[None] | None = None
        self._joined_at: float | None = None

    def __repr__(self) -> str:
        return f"LiveKitCheckBot(room={self._room.name!r}, joined={self._joined_at is not None})"

    async def join(
        self,
        *,
        on_participant: ParticipantHandler,
        on_participant_left: LeftHandler,
        on_speaking: SpeakingHandler,
    ) -> str:
        """The ``bot_joined`` step: mint the bot's token, start its pipeline, join.

        Args:
            on_participant: Called when a participant joins, or one of its tracks is
                subscribed (as ``describe`` gives it).
            on_participant_left: Called when a participant leaves, with the reason.
            on_speaking: Told when the avatar reports it started (True) and finished
                (False) playing what it was sent.

        Returns:
            What happened.

        Raises:
            StepFailed: If the bot did not join in time.
        """
        token = self._room.bot_token()
        transport = LiveKitTransport(
            url=self._keys.url,
            token=token,
            room_name=self._room.name,
            # The bot speaks to the avatar over a data stream only; every participant's
            # microphone is captured as its own stream (the avatar's is what is measured).
            params=LiveKitParams(audio_in_enabled=True, audio_out_enabled=False),
        )
        self._transport = transport
        self.room = LiveKitBotRoom(transport, avatar_identity=AVATAR_IDENTITY)
        self.room.on_speaking(on_speaking)

        async def joined(transport: LiveKitTransport) -> None:
            self._joined_at = time.monotonic()
            self._changes.notify()

        def forward(handler: ParticipantHandler) -> Callable[..., Awaitable[None]]:
            async def each(transport: LiveKitTransport, participant_id: str, *args: Any) -> None:
                participant = transport_room(transport).remote_participants.get(participant_id)
                if participant is not None:
                    await handler(describe(participant))

            return each

        async def left(transport: LiveKitTransport, participant_id: str) -> None:
            await on_participant_left({"id": participant_id}, "left the room")

        transport.add_event_handler("on_connected", joined)
        for event in (
            "on_participant_connected",
            "on_video_track_subscribed",
            "on_audio_track_subscribed",
        ):
            transport.add_event_handler(event, forward(on_participant))
        transport.add_event_handler("on_participant_disconnected", left)

        self.meter = MicrophoneMeter(self._changes.notify)
        pipeline = Pipeline([transport.input(), self.meter, transport.output()])
        self._worker = PipelineWorker(
            pipeline, params=PipelineParams(), idle_timeout_secs=None, enable_rtvi=False
        )
        runner = WorkerRunner(handle_sigint=False)  # Ctrl-C is the check's to handle
        await runner.add_workers(self._worker)
        started = time.monotonic()
        self._run_task = asyncio.create_task(runner.run(), name="pipecat-bey-check-livekit")
        run_task, timeout = self._run_task, self._timeout_s
        self._run_task.add_done_callback(lambda _: self._changes.notify())
        await self._changes.wait(lambda: self._joined_at is not None or run_task.done(), timeout)
        if self._joined_at is None:
            if run_task.done():
                error = None if run_task.cancelled() else run_task.exception()
                why = f"its pipeline stopped ({error or 'no error given'})"
            else:
                why = f"not in the room within {timeout:g} s"
            raise StepFailed(
                f"the bot could not join room {self._room.name}: {why}",
                "check LIVEKIT_URL (the server's wss:// URL) and your network; a server that "
                "refuses the bot's token refuses LIVEKIT_API_KEY and LIVEKIT_API_SECRET",
            )
        joined_s = self._joined_at - started
        self._runner.record["bot_joined_s"] = round(joined_s, 3)
        return f"in the room as {BOT_IDENTITY} ({joined_s:.2f} s)"

    async def stop(self) -> None:
        """Clean up: stop speaking, stop the bot's pipeline (it leaves), each wait bounded."""
        if self.room is not None:
            await self.room.close(CLEANUP_TIMEOUT_S)
        if self._run_task is None or self._worker is None:
            return
        if not self._run_task.done():
            await self._worker.cancel(reason="the check is over")
            await asyncio.wait({self._run_task}, timeout=CLEANUP_TIMEOUT_S)
        if not self._run_task.done():
            self._run_task.cancel()
            await asyncio.wait({self._run_task}, timeout=CLEANUP_TIMEOUT_S)
        if self._run_task.done() and not self._run_task.cancelled():
            self._run_task.exception()  # retrieved: said as the join's failure, if it was
