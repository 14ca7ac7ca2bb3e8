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
from pipecat_bey.speech_dispatch import SpeechDispatch
from pipecat_bey.speech_router import Route, is_speech

__all__ = ["BeyVideoService", "BeyVideoSettings"]

EVENTS = ("on_session_started", "on_avatar_joined", "on_avatar_left", "on_session_error")


@dataclass
class BeyVideoSettings(ServiceSettings):
    """Runtime settings of the avatar service (it has no model; ``extra`` is kept)."""


class BeyVideoService(AIService):
    """Gives a Pipecat bot a Beyond Presence video avatar.

    Place it right after the TTS, before ``transport.output()``. With a ``DailyTransport`` or
    a ``LiveKitTransport`` the avatar joins the bot's room; with any other, a private room, its
    face and voice going out through the bot's output. Speech is held until the avatar listens;
    the bot's own voice is silent while it speaks. An avatar that cannot start, does not join in
    time or leaves: a non-fatal ``ErrorFrame`` upstream, ``on_session_error``, and (by default)
    the bot's own voice. At the end the avatar is removed.

    Event handlers available: on_session_started(service, session), the API accepted the
    session; on_avatar_joined(service, participant) and on_avatar_left(service, participant,
    reason); on_session_error(service, error), the avatar could not start or was lost.

    Metrics (``enable_metrics``): TTFB to the avatar's first speech; the session's start.
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
        livekit_url: str | None = None,
        livekit_api_key: str | None = None,
        livekit_api_secret: str | None = None,
        params: BeyParams | None = None,
        settings: BeyVideoSettings | None = None,
        **kwargs: Any,
    ) -> None:
        """Create the service; every setting is checked here, not at start.

        Args:
            transport: The bot's transport: a ``DailyTransport`` or ``LiveKitTransport`` puts the
                avatar in its room ("room"); any other, or None, relays it ("relay").
            placement: "room" or "relay" (a Daily bot may relay, to keep the avatar out of
                its room); None decides from ``transport``.
            relay_room_url: Relay only: a Daily room of the caller's for the avatar; None
                creates a private one (with the Daily API key), deleted at the end.
            relay_room_token: Relay only: the bot's token for ``relay_room_url``; None mints
                an owner's token with the Daily API key (or joins without one).
            api_key: Beyond Presence API key. Defaults to ``BEY_API_KEY``.
            avatar_id: The avatar. Defaults to ``BEY_AVATAR_ID``, then stock "Ege".
            session: HTTP session for the APIs; None opens one, closed at the end.
            avatar_token: The avatar's meeting token; None mints one with the Daily key.
            daily_api_key: Daily API key (the avatar's token, its eject): ``DAILY_API_KEY``.
            daily_api_url: Daily REST base URL. Defaults to ``DAILY_API_URL``, then Daily's.
            api_url: Beyond Presence API base URL. Defaults to ``BEY_API_URL``, then Bey's.
            livekit_url: LiveKit: the avatar's server (``LIVEKIT_URL``, else the transport's).
            livekit_api_key: LiveKit: mints the avatar's token (``LIVEKIT_API_KEY``).
            livekit_api_secret: LiveKit: its secret (``LIVEKIT_API_SECRET``).
            params: Life-cycle tuning; see ``BeyParams``.
            settings: Runtime settings, as every pipecat service takes them.
            **kwargs: Passed to ``AIService``.

        Raises:
            TypeError: If ``transport`` is not a pipecat transport.
            BeyConfigError: If a setting is missing or invalid (the message names the fix).
        """
        super().__init__(settings=BeyVideoSettings(model=None), **kwargs)
        if settings is not None:
            self._settings.apply_update(settings)
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
            livekit_url=livekit_url,
            livekit_api_key=livekit_api_key,
            livekit_api_secret=livekit_api_secret,
        )
        self.placement: PlacementName = self._placement.name  # type: ignore[assignment]
        """Where the avatar is: "room" or "relay"."""
        self._dispatch = SpeechDispatch(
            self._placement,
            self._avatar,
            params=self._params,
            push_frame=self.push_frame,
            speaker=repr(self),
        )
        self._router = self._dispatch.router
        self._lifecycle = AvatarLifecycle(
            self._avatar,
            self._placement.room,
            AvatarCallbacks(
                on_session_started=self._on_session_started,
                on_avatar_joined=lambda p: self._call_event_handler("on_avatar_joined", p),
                on_avatar_ready=lambda: self._dispatch.reroute(ready=True),
                on_avatar_left=lambda p, r: self._call_event_handler("on_avatar_left", p, r),
                on_avatar_lost=self._on_avatar_lost,
            ),
            params=self._params,
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
                push_upstream=lambda frame: self.push_frame(frame, FrameDirection.UPSTREAM),
            )
        )
        self._http = session
        self._started = asyncio.Event()
        self._ttfb_pending = False
        for name in EVENTS:
            self._register_event_handler(name)
        self._placement.room.on_events(joined=self._dispatch.sync_microphone)  # at the join

    def __repr__(self) -> str:
        avatar_id, placement = self._avatar.avatar_id, self.placement
        return f"BeyVideoService(name={self.name!r}, {avatar_id=!r}, {placement=!r})"

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
        """Video out, for RTVI's ``bot-ready``: ``PipelineWorker(capabilities=...)``."""
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
        """Report TTFB and session start time as pipecat metrics: True."""
        return True

    async def setup(self, setup: FrameProcessorSetup) -> None:
        """Start the avatar session now: it overlaps the transport's join (also in setup).

        Args:
            setup: The processor setup.
        """
        await super().setup(setup)
        self._placement.setup(setup)
        self._lifecycle.start(self._http)

    async def start(self, frame: StartFrame) -> None:
        """Start the placement (the relay's playout) as the pipeline starts.

        Args:
            frame: The start frame.
        """
        await super().start(frame)
        await self._placement.start(self.next)

    async def stop(self, frame: EndFrame) -> None:
        """Let the avatar finish what it was sent; :meth:`cleanup` removes it, once played.

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
        if isinstance(frame, TTSStartedFrame) and self._router.for_avatar:
            await self.start_ttfb_metrics()
            self._ttfb_pending = True
        await self._dispatch.speech(frame)

    async def _track_bot_speech(self, frame: Frame, direction: FrameDirection) -> None:
        """Follow the output transport's speaking reports, per destination."""
        speaking = isinstance(frame, BotStartedSpeakingFrame)
        if speaking and frame.transport_destination == BEY_AUDIO_TRACK:
            await self._stop_ttfb()
        elif speaking or isinstance(frame, BotStoppedSpeakingFrame):
            if frame.transport_destination is None:  # the bot's own voice
                await self._dispatch.microphone_speaking(speaking)
        await self.push_frame(frame, direction)

    async def _interrupt(self, frame: InterruptionFrame, direction: FrameDirection) -> None:
        """Barge-in: no TTFB to wait for; the avatar is told, and told again."""
        await self.cancel_ttfb_metrics()
        self._ttfb_pending = False
        if await self._dispatch.interrupt(frame, direction):
            # Speech still in flight when "interrupt" arrives is spoken: repeat it.
            self._lifecycle.repeat_interrupt(self._dispatch.interrupt_again)

    async def _stop_ttfb(self) -> None:
        if self._ttfb_pending:
            self._ttfb_pending = False
            await self.stop_ttfb_metrics()

    def _passes_avatar_media(self, voice: bool) -> bool:
        """Whether the avatar's voice (or face) goes downstream now (see the router)."""
        return self._started.is_set() and self._router.passes_avatar_media(voice)

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
        await self._dispatch.reroute(ready=False)
