"""Beyond Presence avatar service: a lip-synced face for a Pipecat bot.

The service sits between the bot's TTS and ``transport.output()``. It starts a
Beyond Presence speech-to-video session and sends the bot's speech to the
avatar, which the user then hears (and sees) instead of the bot. Where the
avatar is, in the bot's own room or backstage with its media relayed, is the
placement's business (``pipecat_bey.placements``); where each piece of speech
goes is the router's (``SpeechRouter``); the avatar's start, join, readiness
and eject are the life cycle's (``AvatarLifecycle``). This class wires them to
pipecat: frames, tasks, events and metrics.
"""

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
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
from pipecat.transports.base_transport import BaseTransport

from pipecat_bey.avatar_lifecycle import AvatarCallbacks, AvatarLifecycle
from pipecat_bey.client import BeyClient
from pipecat_bey.config import BEY_AUDIO_TRACK, BeyParams
from pipecat_bey.errors import BeyConfigError, BeyError
from pipecat_bey.placements.base import ServiceHooks
from pipecat_bey.placements.choose import PlacementName, place_avatar
from pipecat_bey.rooms import SessionResponse
from pipecat_bey.speech_router import Route, Routing, SpeechRouter, is_speech

__all__ = ["BeyVideoService", "BeyVideoSettings"]


@dataclass
class BeyVideoSettings(ServiceSettings):
    """Runtime settings of the avatar service (it has no model; ``extra`` is kept)."""


class BeyVideoService(AIService):
    """Gives a Pipecat bot a Beyond Presence video avatar.

    Place it right after the TTS and before ``transport.output()``. With a
    ``DailyTransport`` the avatar joins the bot's room; with any other transport
    it sits in a private room and its face and voice go out through the bot's
    own output. Speech produced before the avatar listens is held for it; the
    bot's own voice is silent while the avatar speaks for it. If the avatar
    cannot start, does not join in time or leaves, a non-fatal ``ErrorFrame``
    goes upstream, ``on_session_error`` fires and (by default) the bot speaks in
    its own voice. At the end the avatar is removed.

    Event handlers available:

    - on_session_started(service, session): the API accepted the session.
    - on_avatar_joined(service, participant): the avatar joined the room.
    - on_avatar_left(service, participant, reason): the avatar left the room.
    - on_session_error(service, error): the avatar could not start or was lost.

    Metrics (with ``enable_metrics``): TTFB is the time from ``TTSStartedFrame``
    to the avatar's first speech out (the first audio on its track in the room,
    its first relayed voice backstage); the processing time, reported once, is
    the time the session took to start.
    """

    Settings = BeyVideoSettings
    _settings: BeyVideoSettings

    def __init__(
        self,
        *,
        transport: BaseTransport | None = None,
        placement: PlacementName | None = None,
        relay_room_url: str | None = None,
        relay_room_token: str | None = None,
        api_key: str | None = None,
        avatar_id: str | None = None,
        session: aiohttp.ClientSession | None = None,
        avatar_token: str | None = None,
        daily_api_key: str | None = None,
        daily_api_url: str | None = None,
        api_url: str | None = None,
        params: BeyParams | None = None,
        settings: BeyVideoSettings | None = None,
        **kwargs: Any,
    ) -> None:
        """Create the service; every setting is checked here, not at start.

        Args:
            transport: The bot's transport. With a ``DailyTransport`` the avatar
                joins its room (placement "room"); with any other (or None) the
                avatar is relayed (placement "relay").
            placement: "room" or "relay" to choose; None decides from ``transport``.
                A bot on Daily may choose "relay" to keep the avatar out of its room.
            relay_room_url: Relay only: a Daily room of the caller's for the avatar.
                If None, a private room is created (with the Daily API key) and
                deleted at the end.
            relay_room_token: Relay only: the bot's meeting token for
                ``relay_room_url``. If None, an owner's token is minted with the
                Daily API key (or the bot joins without one).
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
            settings: Runtime settings, as every pipecat service takes them.
            **kwargs: Passed to ``AIService``.

        Raises:
            TypeError: If ``transport`` is not a pipecat transport.
            BeyConfigError: If a setting is missing or invalid (``placement="room"``
                without a ``DailyTransport`` included); the message says which
                argument or environment variable to set.
        """
        default_settings = BeyVideoSettings(model=None)
        if settings is not None:
            default_settings.apply_update(settings)
        super().__init__(settings=default_settings, **kwargs)
        if params is not None and not isinstance(params, BeyParams):
            raise BeyConfigError(f"params must be a BeyParams, got {type(params).__name__}")
        self._params = params or BeyParams()
        self._placement, self._avatar = place_avatar(
            transport,
            placement,
            client=BeyClient(api_key, base_url=api_url, session=session),
            params=self._params,
            avatar_id=avatar_id,
            avatar_token=avatar_token,
            daily_api_key=daily_api_key,
            daily_api_url=daily_api_url,
            relay_room_url=relay_room_url,
            relay_room_token=relay_room_token,
        )
        self.placement: PlacementName = self._placement.name  # type: ignore[assignment]
        """Where the avatar is: "room" (the bot's room) or "relay" (backstage)."""
        self._router = SpeechRouter(
            track=BEY_AUDIO_TRACK,
            max_held_s=self._params.max_held_audio_s,
            out_channels=self._placement.output_channels,
            fallback=self._params.fallback_to_bot_voice,
        )
        self._lifecycle = AvatarLifecycle(
            self._avatar,
            self._placement.room,
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
        self._placement.bind(
            ServiceHooks(
                push_frame=self.push_frame,
                create_task=self.create_task,
                passes_avatar_media=self._passes_avatar_media,
                awaiting_avatar_voice=lambda: self._ttfb_pending,
                avatar_voice_heard=self._stop_ttfb,
            )
        )
        self._http = session
        self._route_lock = asyncio.Lock()
        self._started = asyncio.Event()
        self._ttfb_pending = False
        events = ("on_session_started", "on_avatar_joined", "on_avatar_left", "on_session_error")
        for name in events:
            self._register_event_handler(name)
        self._placement.room.on_events(joined=self._on_joined)

    def __repr__(self) -> str:
        return (
            f"BeyVideoService(name={self.name!r}, avatar_id={self._avatar.avatar_id!r}, "
            f"placement={self.placement!r})"
        )

    @property
    def session(self) -> SessionResponse | None:
        """The Beyond Presence session, once the API has accepted it."""
        return self._avatar.session

    @property
    def avatar_participant_id(self) -> str | None:
        """The avatar's participant id while it is in the room."""
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
        """Tell the avatar, which the transport reports like any participant, from the user.

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
        self._placement.setup(setup)
        self._lifecycle.start()

    async def start(self, frame: StartFrame) -> None:
        """Start the placement (the relay's playout) as the pipeline starts.

        Args:
            frame: The start frame.
        """
        await super().start(frame)
        await self._placement.start(self.next)

    async def stop(self, frame: EndFrame) -> None:
        """Let the avatar finish what it was sent before the ``EndFrame`` goes on.

        The avatar is removed in :meth:`cleanup`, once the output has played out
        what it queued, so its last words are not cut.

        Args:
            frame: The end frame.
        """
        await super().stop(frame)
        await self._lifecycle.stop_timers()  # from the end on, speech stays where it goes
        if self._router.route is Route.AVATAR and self._avatar.participant_id:
            await self._placement.finish(lambda: self._avatar.participant_id is not None)
        await self._halt()

    async def cancel(self, frame: CancelFrame) -> None:
        """Stop at once: no timer, no more of the avatar's media.

        Args:
            frame: The cancel frame.
        """
        await super().cancel(frame)
        await self._halt()

    async def cleanup(self) -> None:
        """Remove the avatar and release every task and connection of ours."""
        await super().cleanup()
        await self._teardown()

    async def _halt(self) -> None:
        """From the end on, nothing changes where speech goes and no media comes back."""
        await self._lifecycle.stop_timers()
        self._placement.stop()

    async def _teardown(self) -> None:
        """Halt, remove the avatar, release its room and connections; safe to call again."""
        await self._halt()
        await self._lifecycle.end()
        await self._avatar.close()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Route the bot's speech to the avatar and handle interruptions.

        Args:
            frame: The frame.
            direction: Its direction.
        """
        await super().process_frame(frame, direction)
        if isinstance(frame, StartFrame):
            await self._push_start(frame, direction)
        elif isinstance(frame, InterruptionFrame):
            await self._interrupt(frame, direction)
        elif direction == FrameDirection.UPSTREAM:
            await self._track_bot_speech(frame, direction)
        elif is_speech(frame):
            await self._route_speech(frame)
        else:
            await self.push_frame(frame, direction)

    async def _push_start(self, frame: StartFrame, direction: FrameDirection) -> None:
        await self.push_frame(frame, direction)
        self._started.set()  # metrics and the avatar's media may follow it now

    async def _route_speech(self, frame: Frame) -> None:
        if isinstance(frame, TTSStartedFrame) and self._router.route in (
            Route.HOLDING,
            Route.AVATAR,
        ):
            await self.start_ttfb_metrics()
            self._ttfb_pending = True
        async with self._route_lock:
            await self._apply(self._router.speech(frame))

    async def _apply(self, routing: Routing) -> None:
        """Send what the router routed and say what it noticed. Call with the lock."""
        for notice in routing.notices:
            logger.log("WARNING" if notice.warning else "INFO", f"{self}: {notice.message}")
        for frame in routing.frames:
            if frame.transport_destination == BEY_AUDIO_TRACK:
                await self._placement.send(frame)
            else:
                await self.push_frame(frame)
        await self._placement.publish_microphone(self._router.microphone_on)

    async def _reroute(self, ready: bool) -> None:
        """The avatar listens (ready) or is gone: held speech goes where speech goes now."""
        async with self._route_lock:
            await self._apply(self._router.avatar_ready() if ready else self._router.avatar_lost())

    async def _track_bot_speech(self, frame: Frame, direction: FrameDirection) -> None:
        """Follow the output transport's speaking reports, per destination."""
        if isinstance(frame, BotStartedSpeakingFrame):
            if frame.transport_destination == BEY_AUDIO_TRACK:
                await self._stop_ttfb()
            elif frame.transport_destination is None:
                self._router.microphone_speaking(True)
        elif isinstance(frame, BotStoppedSpeakingFrame) and frame.transport_destination is None:
            self._router.microphone_speaking(False)
            # The bot's own voice may have played out since the avatar took over.
            await self._placement.publish_microphone(self._router.microphone_on)
        await self.push_frame(frame, direction)

    async def _interrupt(self, frame: InterruptionFrame, direction: FrameDirection) -> None:
        """Barge-in: drop held speech, clear what is queued, tell the avatar at once."""
        async with self._route_lock:
            interruption = self._router.interrupt()
            await self.cancel_ttfb_metrics()
            self._ttfb_pending = False
            downstream = direction == FrameDirection.DOWNSTREAM
            if downstream:
                await self._placement.interrupt(frame, interruption.destination)
            await self.push_frame(frame, direction)
            if self._avatar.participant_id and downstream:
                await self._interrupt_avatar()
                # Speech still in flight when "interrupt" arrives is spoken: repeat it.
                self._lifecycle.repeat_interrupt(self._interrupt_again)

    async def _interrupt_avatar(self) -> None:
        participant_id = self._avatar.participant_id
        if participant_id:
            await self._placement.interrupt_avatar(participant_id)

    async def _interrupt_again(self) -> bool:
        async with self._route_lock:
            if self._router.spoke_since_interrupt:
                return False  # new speech is on its way: a repeat would cut it
            await self._interrupt_avatar()
            return True

    async def _stop_ttfb(self) -> None:
        if self._ttfb_pending:
            self._ttfb_pending = False
            await self.stop_ttfb_metrics()

    def _passes_avatar_media(self, voice: bool) -> bool:
        """Whether the avatar's voice (or face) goes downstream now (see the router)."""
        return self._started.is_set() and self._router.passes_avatar_media(voice)

    async def _on_joined(self) -> None:
        async with self._route_lock:  # the join published the microphone: set it now
            await self._placement.publish_microphone(self._router.microphone_on)

    async def _on_session_started(
        self, session: SessionResponse, requested_at: float, answered_at: float
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

