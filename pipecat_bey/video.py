"""Beyond Presence avatar service: a lip-synced face for a Pipecat bot on Daily.

The service sits between the bot's TTS and ``transport.output()``. It starts a
Beyond Presence speech-to-video session whose avatar joins the bot's own Daily
room, and sends the bot's speech to the ``bey-custom-track`` custom audio track
the avatar listens to. The user then hears (and sees) the avatar, not the bot.

This class wires small parts to pipecat (frames, tasks, events, metrics):
``SpeechRouter`` decides where speech goes, ``AvatarLifecycle`` runs the
avatar's session (``AvatarSession``) from start to eject, and ``BotRoom`` does
what is needed in the bot's Daily room. Audio goes through the output
transport's own machinery: speech frames are only tagged with the track as
their ``transport_destination``, so chunking, resampling, pacing and clearing
on interruption are pipecat's.
"""

import asyncio
from collections.abc import Mapping
from typing import Any

import aiohttp
from loguru import logger
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    CancelFrame,
    EndFrame,
    Frame,
    InterruptionFrame,
    StartFrame,
    TTSStartedFrame,
)
from pipecat.pipeline.capabilities import BotCapabilities
from pipecat.processors.frame_processor import FrameDirection, FrameProcessorSetup
from pipecat.services.ai_service import AIService
from pipecat.services.settings import ServiceSettings
from pipecat.transports.daily.transport import DailyTransport

from pipecat_bey.avatar_lifecycle import AvatarCallbacks, AvatarLifecycle
from pipecat_bey.avatar_session import AvatarSession
from pipecat_bey.bot_room import BotRoom
from pipecat_bey.client import BeyClient
from pipecat_bey.config import BEY_AUDIO_TRACK, DEFAULT_AVATAR_ID, INTERRUPT_MESSAGE, BeyParams
from pipecat_bey.errors import BeyConfigError, BeyError
from pipecat_bey.models import PipecatSessionResponse
from pipecat_bey.speech_router import Route, Routing, SpeechRouter, is_speech

__all__ = ["BEY_AUDIO_TRACK", "DEFAULT_AVATAR_ID", "BeyParams", "BeyVideoService"]


class BeyVideoService(AIService):
    """Gives a Pipecat bot on Daily a Beyond Presence video avatar.

    Place it right after the TTS and before ``transport.output()``. The avatar's
    session starts while the bot joins the room; speech produced before the
    avatar listens is held for it; the bot's own microphone is off while the
    avatar speaks for it. If the avatar cannot start, does not join in time or
    leaves, a non-fatal ``ErrorFrame`` goes upstream, ``on_session_error`` fires
    and (by default) the bot speaks in its own voice. At the end the avatar is
    ejected.

    Event handlers available:

    - on_session_started(service, session): the API accepted the session.
    - on_avatar_joined(service, participant): the avatar joined the room.
    - on_avatar_left(service, participant, reason): the avatar left the room.
    - on_session_error(service, error): the avatar could not start or was lost.

    Metrics (with ``enable_metrics``): TTFB is the time from ``TTSStartedFrame``
    to the first audio the output transport plays on the avatar's track; the
    processing time, reported once, is the time the session took to start.
    """

    def __init__(
        self,
        *,
        transport: DailyTransport,
        api_key: str | None = None,
        avatar_id: str | None = None,
        session: aiohttp.ClientSession | None = None,
        avatar_token: str | None = None,
        daily_api_key: str | None = None,
        daily_api_url: str | None = None,
        api_url: str | None = None,
        params: BeyParams | None = None,
        **kwargs: Any,
    ) -> None:
        """Create the service; every setting is checked here, not at start.

        Args:
            transport: The bot's ``DailyTransport``; the avatar joins its room.
            api_key: Beyond Presence API key. Defaults to ``BEY_API_KEY``.
            avatar_id: Avatar to use. Defaults to ``BEY_AVATAR_ID``, then the
                stock "Ege" avatar.
            session: HTTP session for the Beyond Presence and Daily APIs. If
                None, the service opens one and closes it at the end.
            avatar_token: Meeting token the avatar joins with. If None, the
                service mints one with the Daily API key.
            daily_api_key: Daily API key, to mint the avatar's token and eject
                it at the end. Defaults to ``DAILY_API_KEY``.
            daily_api_url: Daily REST API base URL. Defaults to ``DAILY_API_URL``,
                then ``https://api.daily.co/v1``.
            api_url: Beyond Presence API base URL. Defaults to ``BEY_API_URL``,
                then ``https://api.bey.dev``.
            params: Life-cycle tuning; see ``BeyParams``.
            **kwargs: Passed to ``AIService``.

        Raises:
            TypeError: If ``transport`` is not a ``DailyTransport``.
            BeyConfigError: If a setting is missing or invalid; the message says
                which argument or environment variable to set.
        """
        super().__init__(settings=ServiceSettings(model=None), **kwargs)
        if params is not None and not isinstance(params, BeyParams):
            raise BeyConfigError(f"params must be a BeyParams, got {type(params).__name__}")
        self._params = params or BeyParams()
        self._room = BotRoom(transport, track=BEY_AUDIO_TRACK)
        # Everything is checked now; no connection is opened until setup.
        self._avatar = AvatarSession(
            client=BeyClient(api_key, base_url=api_url, session=session),
            room_url=transport.room_url,
            avatar_id=avatar_id,
            avatar_token=avatar_token,
            daily_api_key=daily_api_key,
            daily_api_url=daily_api_url,
            user_name=self._params.avatar_user_name,
            token_ttl_s=self._params.avatar_token_ttl_s,
        )
        self._router = SpeechRouter(
            track=BEY_AUDIO_TRACK,
            max_held_s=self._params.max_held_audio_s,
            out_channels=self._room.output_channels,
            fallback=self._params.fallback_to_bot_voice,
        )
        self._lifecycle = AvatarLifecycle(
            self._avatar,
            self._room,
            AvatarCallbacks(
                on_session_started=self._on_session_started,
                on_avatar_joined=lambda p: self._call_event_handler("on_avatar_joined", p),
                on_avatar_ready=lambda: self._reroute(ready=True),
                on_avatar_left=lambda p, r: self._call_event_handler("on_avatar_left", p, r),
                on_avatar_lost=self._on_avatar_lost,
            ),
            params=self._params,
            track=BEY_AUDIO_TRACK,
            create_task=self.create_task,
            cancel_task=self.cancel_task,
        )
        self._http = session
        self._route_lock = asyncio.Lock()
        self._started = asyncio.Event()
        events = ("on_session_started", "on_avatar_joined", "on_avatar_left", "on_session_error")
        for name in events:
            self._register_event_handler(name)
        self._room.on_events(joined=self._on_joined)

    def __repr__(self) -> str:
        return f"BeyVideoService(name={self.name!r}, avatar_id={self._avatar.avatar_id!r})"

    @property
    def session(self) -> PipecatSessionResponse | None:
        """The Beyond Presence session, once the API has accepted it."""
        return self._avatar.session

    @property
    def avatar_participant_id(self) -> str | None:
        """The avatar's Daily participant id while it is in the room."""
        return self._avatar.participant_id

    @property
    def bot_capabilities(self) -> BotCapabilities:
        """What the avatar adds to the bot: video out, for RTVI clients' ``bot-ready``.

        pipecat derives a worker's capabilities from its transports only, so
        pass this on: ``PipelineWorker(..., capabilities=avatar.bot_capabilities)``.
        """
        return BotCapabilities(video_out=True)

    @property
    def dropped_speech_s(self) -> float:
        """Seconds of speech dropped because more than ``max_held_audio_s`` was waiting."""
        return self._router.dropped_s

    def is_avatar(self, participant: Mapping[str, Any]) -> bool:
        """Tell the avatar, which ``DailyTransport`` reports like any participant, from the user.

        Args:
            participant: A participant as passed to the transport's events.

        Returns:
            True if the participant is the avatar.
        """
        return self._avatar.is_avatar(participant)

    def can_generate_metrics(self) -> bool:
        """Report TTFB and session start time as pipecat metrics.

        Returns:
            True.
        """
        return True

    async def setup(self, setup: FrameProcessorSetup) -> None:
        """Start the avatar session while the transport joins the room.

        Processors are set up concurrently and ``DailyTransport`` joins in its
        own setup, so starting here overlaps the token and session requests
        with the bot's join instead of adding to it.

        Args:
            setup: The processor setup.
        """
        await super().setup(setup)
        try:
            self._avatar.use_session(self._http)
        except Exception as e:  # never silence the bot: fall back instead
            self._lifecycle.fail(f"the avatar service could not set up: {e}", BeyError(str(e)))
            return
        self._lifecycle.start()

    async def cleanup(self) -> None:
        """Eject the avatar and release every task and connection of ours.

        The avatar is ejected here, after the pipeline ended, so speech already
        sent still plays out before it leaves.
        """
        await super().cleanup()
        await self._lifecycle.end()
        await self._avatar.close()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Route the bot's speech to the avatar and handle interruptions.

        Args:
            frame: The frame.
            direction: Its direction.
        """
        await super().process_frame(frame, direction)
        if isinstance(frame, (EndFrame, CancelFrame)):
            await self._lifecycle.stop_timers()  # from the end on, speech stays where it goes
        if isinstance(frame, StartFrame):
            await self.push_frame(frame, direction)
            self._started.set()
        elif isinstance(frame, InterruptionFrame):
            await self._interrupt(frame, direction)
        elif direction == FrameDirection.UPSTREAM:
            await self._track_bot_speech(frame)
            await self.push_frame(frame, direction)
        elif is_speech(frame):
            waiting_for_avatar = self._router.route in (Route.HOLDING, Route.AVATAR)
            if isinstance(frame, TTSStartedFrame) and waiting_for_avatar:
                await self.start_ttfb_metrics()
            async with self._route_lock:
                await self._apply(self._router.speech(frame))
        else:
            await self.push_frame(frame, direction)

    async def _apply(self, routing: Routing) -> None:
        """Push what the router sent and say what it noticed. Call with the lock."""
        for notice in routing.notices:
            logger.log("WARNING" if notice.warning else "INFO", f"{self}: {notice.message}")
        for frame in routing.frames:
            await self.push_frame(frame)
        await self._room.publish_microphone(self._router.microphone_on)

    async def _reroute(self, ready: bool) -> None:
        """The avatar listens (ready) or is gone: held speech goes where speech goes now."""
        async with self._route_lock:
            await self._apply(self._router.avatar_ready() if ready else self._router.avatar_lost())

    async def _track_bot_speech(self, frame: Frame) -> None:
        """Follow the output transport's speaking reports, per destination."""
        if isinstance(frame, BotStartedSpeakingFrame):
            if frame.transport_destination == BEY_AUDIO_TRACK:
                await self.stop_ttfb_metrics()
            elif frame.transport_destination is None:
                self._router.microphone_speaking(True)
        elif isinstance(frame, BotStoppedSpeakingFrame) and frame.transport_destination is None:
            self._router.microphone_speaking(False)
            # The bot's own voice may have played out since the avatar took over.
            await self._room.publish_microphone(self._router.microphone_on)

    async def _interrupt(self, frame: InterruptionFrame, direction: FrameDirection) -> None:
        """Barge-in: drop held speech, clear the track's queue, tell the avatar at once."""
        async with self._route_lock:
            interruption = self._router.interrupt()
            await self.cancel_ttfb_metrics()
            downstream = direction == FrameDirection.DOWNSTREAM
            if downstream and interruption.destination:
                # The output transport clears the queue of the destination the
                # interruption names; the bot's speech is queued on the track.
                frame.transport_destination = interruption.destination
            await self.push_frame(frame, direction)
            if self._avatar.participant_id and downstream:
                # Urgent (system) frames skip the audio queue: the message goes out
                # right after the track's queue was cleared.
                await self._send_interrupt()
                # Speech still in flight when "interrupt" arrives is spoken: repeat it.
                self._lifecycle.repeat_interrupt(self._interrupt_again)

    async def _send_interrupt(self) -> None:
        if self._avatar.participant_id:
            await self.push_frame(
                self._room.message_frame(INTERRUPT_MESSAGE, self._avatar.participant_id)
            )

    async def _interrupt_again(self) -> bool:
        async with self._route_lock:
            if self._router.spoke_since_interrupt:
                return False  # new speech is on its way: a repeat would cut it
            await self._send_interrupt()
            return True

    async def _on_joined(self) -> None:
        async with self._route_lock:  # the join published the microphone: set it now
            await self._room.publish_microphone(self._router.microphone_on)

    async def _on_session_started(
        self, session: PipecatSessionResponse, requested_at: float, answered_at: float
    ) -> None:
        await self._started.wait()  # metrics frames may only follow the StartFrame
        await self.start_processing_metrics(start_time=requested_at)
        await self.stop_processing_metrics(end_time=answered_at)
        await self._call_event_handler("on_session_started", session)

    async def _on_avatar_lost(self, message: str, error: BeyError) -> None:
        """Report that the avatar is not coming and let the bot speak for itself."""
        await self._started.wait()
        if self._lifecycle.ending:
            return
        await self.push_error(message, exception=error)
        await self._call_event_handler("on_session_error", error)
        await self._reroute(ready=False)
