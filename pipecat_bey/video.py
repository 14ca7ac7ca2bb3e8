"""Beyond Presence avatar service: a lip-synced face for a Pipecat bot.

The service sits between the bot's TTS and ``transport.output()``. It starts a
Beyond Presence speech-to-video session and sends the bot's speech to the
``bey-custom-track`` custom audio track the avatar listens to. The user then
hears (and sees) the avatar, not the bot. There are two placements:

- **room**: the bot's transport is a ``DailyTransport``; the avatar joins the
  bot's own room and the user sees it there. Speech frames are only tagged
  with the track as their ``transport_destination``, so chunking, resampling,
  pacing and clearing on interruption are the output transport's.
- **relay**: any other transport (or when asked): the avatar joins a private
  Daily room of the bot's (``BackstageRoom``); its camera and voice come back
  and are pushed down the pipeline as ``OutputImageRawFrame`` and audio frames,
  for the bot's own output transport to send. The bot's raw speech never
  reaches the user.

This class wires small parts to pipecat (frames, tasks, events, metrics):
``SpeechRouter`` decides where speech goes, ``AvatarLifecycle`` runs the
avatar's session (``AvatarSession``) from start to eject, and ``BotRoom`` or
``BackstageRoom`` does what is needed in the room the avatar joins.
"""

import asyncio
import time
from collections.abc import Mapping
from typing import Any, Literal

import aiohttp
from loguru import logger
from pipecat.audio.utils import is_silence
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    CancelFrame,
    EndFrame,
    Frame,
    InterruptionFrame,
    OutputAudioRawFrame,
    OutputImageRawFrame,
    StartFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
)
from pipecat.pipeline.capabilities import BotCapabilities
from pipecat.processors.frame_processor import FrameDirection, FrameProcessorSetup
from pipecat.services.ai_service import AIService
from pipecat.services.settings import ServiceSettings
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import BaseTransport
from pipecat.transports.daily.transport import DailyTransport

from pipecat_bey.avatar_lifecycle import AvatarCallbacks, AvatarLifecycle
from pipecat_bey.avatar_session import AvatarSession
from pipecat_bey.client import BeyClient
from pipecat_bey.config import (
    BEY_AUDIO_TRACK,
    DEFAULT_AVATAR_ID,
    INTERRUPT_MESSAGE,
    BeyParams,
    setting,
)
from pipecat_bey.daily.backstage_room import BackstageRoom
from pipecat_bey.daily.bot_room import BotRoom
from pipecat_bey.errors import BeyConfigError, BeyError
from pipecat_bey.models import PipecatSessionResponse
from pipecat_bey.placements.relay_playout import RelayPlayout
from pipecat_bey.speech_router import Route, Routing, SpeechRouter, is_speech

__all__ = ["BEY_AUDIO_TRACK", "DEFAULT_AVATAR_ID", "BeyParams", "BeyVideoService", "Placement"]

Placement = Literal["room", "relay"]

RELAY_DRAIN_QUIET_S = 0.5
"""At the end, the relay waits for the avatar to be this long silent (all speech sent)."""

RELAY_DRAIN_MARGIN_S = 5.0
"""...and at most this long beyond the speech still queued for it."""


def _placement(transport: BaseTransport | None, placement: str | None) -> Placement:
    """Where the avatar goes: the bot's own Daily room, or backstage with its media relayed."""
    if transport is not None and not isinstance(transport, BaseTransport):
        raise TypeError(
            f"transport must be the bot's pipecat transport, got {type(transport).__name__}"
        )
    if placement not in (None, "room", "relay"):
        raise BeyConfigError(f"placement must be 'room' or 'relay', got {placement!r}")
    if placement == "room" and not isinstance(transport, DailyTransport):
        raise BeyConfigError(
            "placement='room' puts the avatar in the bot's Daily room, so it needs the bot's "
            f"DailyTransport (got {type(transport).__name__}); pass transport=your "
            "DailyTransport, or use placement='relay' for any other transport"
        )
    if placement is None:
        return "room" if isinstance(transport, DailyTransport) else "relay"
    return placement  # type: ignore[return-value]


def _output_transport(processor: Any) -> BaseOutputTransport | None:
    """The first output transport downstream of a processor, if it is linked to one."""
    seen = 0
    while processor is not None and seen < 1000:  # a pipeline is a chain: this ends
        if isinstance(processor, BaseOutputTransport):
            return processor
        processor, seen = getattr(processor, "next", None), seen + 1
    return None


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
        transport: BaseTransport | None = None,
        placement: Placement | None = None,
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
            **kwargs: Passed to ``AIService``.

        Raises:
            TypeError: If ``transport`` is not a pipecat transport.
            BeyConfigError: If a setting is missing or invalid (``placement="room"``
                without a ``DailyTransport`` included); the message says which
                argument or environment variable to set.
        """
        super().__init__(settings=ServiceSettings(model=None), **kwargs)
        if params is not None and not isinstance(params, BeyParams):
            raise BeyConfigError(f"params must be a BeyParams, got {type(params).__name__}")
        self._params = params or BeyParams()
        self.placement: Placement = _placement(transport, placement)
        """Where the avatar is: "room" (the bot's Daily room) or "relay" (backstage)."""
        self._backstage: BackstageRoom | None = None
        self._playout: RelayPlayout | None = None
        self._room: BotRoom | BackstageRoom
        if self.placement == "room":
            assert isinstance(transport, DailyTransport)
            if relay_room_url or relay_room_token:
                raise BeyConfigError(
                    "relay_room_url and relay_room_token are for placement='relay'; "
                    "leave them out, or pass placement='relay'"
                )
            self._room = BotRoom(transport, track=BEY_AUDIO_TRACK)
            room_url = transport.room_url
        else:
            room_url = setting(relay_room_url, argument="relay_room_url")
        # Everything is checked now; no connection is opened until setup.
        self._avatar = AvatarSession(
            client=BeyClient(api_key, base_url=api_url, session=session),
            room_url=room_url,
            avatar_id=avatar_id,
            avatar_token=avatar_token,
            daily_api_key=daily_api_key,
            daily_api_url=daily_api_url,
            user_name=self._params.avatar_user_name,
            token_ttl_s=self._params.avatar_token_ttl_s,
        )
        if self.placement == "relay":
            self._backstage = self._room = BackstageRoom(
                track=BEY_AUDIO_TRACK,
                room_url=room_url,
                token=setting(relay_room_token, argument="relay_room_token"),
                can_create_room=self._avatar.has_daily_api_key,
                lifetime_s=self._params.avatar_token_ttl_s,
            )
            self._playout = RelayPlayout(
                push_voice=self._relay_audio,
                push_face=self._relay_video,
                create_task=self.create_task,
            )
            self._backstage.on_avatar_media(audio=self._playout.voice, video=self._playout.face)
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
        self._relaying = True  # relay: the avatar's media goes downstream until the end
        self._ttfb_pending = False
        self._voice_at = 0.0  # relay: when the avatar's voice was last heard (monotonic)
        events = ("on_session_started", "on_avatar_joined", "on_avatar_left", "on_session_error")
        for name in events:
            self._register_event_handler(name)
        self._room.on_events(joined=self._on_joined)

    def __repr__(self) -> str:
        return (
            f"BeyVideoService(name={self.name!r}, avatar_id={self._avatar.avatar_id!r}, "
            f"placement={self.placement!r})"
        )

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
        if self._backstage is not None:
            self._backstage.bind(setup, self._avatar.daily, self.create_task)
        self._lifecycle.start()

    async def cleanup(self) -> None:
        """Eject the avatar and release every task and connection of ours.

        The avatar is ejected here, after the pipeline ended, so speech already
        sent still plays out before it leaves.
        """
        await super().cleanup()
        self._stop_relaying()
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
            if self._backstage is not None:
                self._check_relay_output()
                assert self._playout is not None
                self._playout.start()
            self._started.set()
        elif isinstance(frame, EndFrame) and self._backstage is not None:
            await self._drain_relay()
            self._stop_relaying()
            await self.push_frame(frame, direction)
        elif isinstance(frame, CancelFrame):
            self._stop_relaying()
            await self.push_frame(frame, direction)
        elif isinstance(frame, InterruptionFrame):
            await self._interrupt(frame, direction)
        elif direction == FrameDirection.UPSTREAM:
            await self._track_bot_speech(frame)
            await self.push_frame(frame, direction)
        elif is_speech(frame):
            waiting_for_avatar = self._router.route in (Route.HOLDING, Route.AVATAR)
            if isinstance(frame, TTSStartedFrame) and waiting_for_avatar:
                await self.start_ttfb_metrics()
                self._ttfb_pending = True
            async with self._route_lock:
                await self._apply(self._router.speech(frame))
        else:
            await self.push_frame(frame, direction)

    async def _apply(self, routing: Routing) -> None:
        """Push what the router sent and say what it noticed. Call with the lock."""
        for notice in routing.notices:
            logger.log("WARNING" if notice.warning else "INFO", f"{self}: {notice.message}")
        for frame in routing.frames:
            if self._backstage is not None and frame.transport_destination == BEY_AUDIO_TRACK:
                await self._to_backstage(frame)
            else:
                await self.push_frame(frame)
        await self._room.publish_microphone(self._router.microphone_on)

    async def _to_backstage(self, frame: Frame) -> None:
        """Relay: the avatar's speech goes to its private room, never downstream."""
        assert self._backstage is not None
        if isinstance(frame, OutputAudioRawFrame):
            await self._backstage.send_speech(frame)
        elif isinstance(frame, TTSStoppedFrame):
            self._backstage.end_of_speech()

    async def _reroute(self, ready: bool) -> None:
        """The avatar listens (ready) or is gone: held speech goes where speech goes now."""
        async with self._route_lock:
            await self._apply(self._router.avatar_ready() if ready else self._router.avatar_lost())

    async def _track_bot_speech(self, frame: Frame) -> None:
        """Follow the output transport's speaking reports, per destination."""
        if isinstance(frame, BotStartedSpeakingFrame):
            if frame.transport_destination == BEY_AUDIO_TRACK:
                await self._stop_ttfb()
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
            self._ttfb_pending = False
            downstream = direction == FrameDirection.DOWNSTREAM
            if self._backstage is not None:
                # The speech not yet sent goes; the interruption, untagged, clears the
                # avatar's voice and face queued in the output; what the avatar still
                # says of the old speech is not relayed.
                if downstream:
                    self._backstage.clear_speech()
                    assert self._playout is not None
                    self._playout.drop_voice()
            elif downstream and interruption.destination:
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
        participant_id = self._avatar.participant_id
        if not participant_id:
            return
        if self._backstage is not None:
            await self._backstage.send_interrupt(INTERRUPT_MESSAGE, participant_id)
        else:
            await self.push_frame(BotRoom.message_frame(INTERRUPT_MESSAGE, participant_id))

    async def _stop_ttfb(self) -> None:
        if self._ttfb_pending:
            self._ttfb_pending = False
            await self.stop_ttfb_metrics()

    def _relaying_avatar(self) -> bool:
        """Whether the avatar's media goes downstream now.

        From the start to the end, but not while the bot speaks in its own voice (an
        avatar given up on may still come and show its face).
        """
        return (
            self._started.is_set()
            and self._relaying
            and self._router.route in (Route.HOLDING, Route.AVATAR)
        )

    async def _relay_audio(self, frame: OutputAudioRawFrame) -> None:
        """Relay: the avatar's voice, pushed to the output like a TTS's."""
        if not self._relaying_avatar():
            return
        if self._router.avatar_voice_is_stale:
            return  # what it still says of the interrupted speech
        # Whether it speaks matters for TTFB and, to a tenth of a second, for the end:
        # no need to look at every piece.
        now = time.monotonic()
        if (self._ttfb_pending or now - self._voice_at > 0.1) and not is_silence(frame.audio):
            self._voice_at = now
            await self._stop_ttfb()  # TTFB: TTS start to the avatar's first voice out
        await self.push_frame(frame)

    async def _relay_video(self, frame: OutputImageRawFrame) -> None:
        """Relay: the avatar's face, pushed as it comes (a live output keeps its pace)."""
        if self._relaying_avatar():
            await self.push_frame(frame)

    def _stop_relaying(self) -> None:
        """From the end on, none of the avatar's media goes downstream."""
        self._relaying = False
        if self._playout is not None:
            self._playout.stop()

    async def _drain_relay(self) -> None:
        """At the end, let the avatar say what it was sent before the output stops."""
        assert self._backstage is not None
        if self._router.route is not Route.AVATAR or not self._avatar.participant_id:
            return
        deadline = time.monotonic() + self._backstage.queued_speech_s + RELAY_DRAIN_MARGIN_S
        while time.monotonic() < deadline and self._avatar.participant_id:
            quiet_s = time.monotonic() - max(self._voice_at, self._backstage.last_sent_at)
            assert self._playout is not None
            sent = self._backstage.queued_speech_s == 0 and not self._playout.holding_voice
            if sent and quiet_s >= RELAY_DRAIN_QUIET_S:
                return
            await asyncio.sleep(0.05)

    def _check_relay_output(self) -> None:
        """Fit the relay to the output transport; say once, with the fix, if it cannot show it.

        The playout holds the face so that it leaves the output within half a frame of
        the voice (see ``relay_playout``).
        pipecat keeps an output's params private; they are read with ``getattr``, so
        should they move, only this fitting and its warnings are lost.
        """
        output = _output_transport(self.next)
        params = getattr(output, "_params", None)
        if output is None or params is None:
            return
        assert self._playout is not None
        framerate = getattr(params, "video_out_framerate", 0) or 0
        if getattr(params, "video_out_enabled", False) and framerate > 0:
            self._playout.align_with_video(1.0 / framerate)
        if not getattr(params, "video_out_enabled", False):
            logger.warning(
                f"{self}: the output transport has video_out_enabled=False, so the user only "
                "hears the avatar; set video_out_enabled=True, video_out_is_live=True and "
                "video_out_width/height to the avatar's size in the transport's params"
            )
        elif not getattr(params, "video_out_is_live", False):
            # A choice, not a mistake: it keeps no backlog after a stalled loop.
            logger.info(
                f"{self}: the output transport has video_out_is_live=False, so it shows the "
                "avatar's latest frame on its own clock (a frame repeated or skipped now and "
                "then); video_out_is_live=True sends every frame"
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
