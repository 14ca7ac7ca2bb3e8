"""Beyond Presence avatar service: a lip-synced face for a Pipecat bot on Daily.

The service sits between the bot's TTS and ``transport.output()``. It starts a
Beyond Presence speech-to-video session whose avatar joins the bot's own Daily
room, and sends the bot's speech to the ``bey-custom-track`` custom audio track
the avatar listens to. The user then hears (and sees) the avatar, not the bot.

Audio goes through the output transport's own machinery: the service only
tags speech frames with the track as their ``transport_destination``, so
chunking, resampling, real-time pacing and interruption handling are pipecat's.
"""

import asyncio
import os
import time
import uuid
from collections import deque
from collections.abc import Mapping
from enum import Enum
from typing import Any

import aiohttp
import numpy as np
from loguru import logger
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    CancelFrame,
    EndFrame,
    Frame,
    InterruptionFrame,
    OutputAudioRawFrame,
    StartFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessorSetup
from pipecat.services.ai_service import AIService
from pipecat.services.settings import ServiceSettings
from pipecat.transports.daily.transport import (
    DailyOutputTransportMessageUrgentFrame,
    DailyTransport,
)
from pydantic import BaseModel, Field

from pipecat_bey._urls import daily_room_name
from pipecat_bey.client import BeyClient
from pipecat_bey.daily_room import (
    DEFAULT_DAILY_API_URL,
    AvatarIdentity,
    DailyRoomAPI,
    token_identity,
)
from pipecat_bey.errors import BeyError, DailyAPIError
from pipecat_bey.models import CreatePipecatSessionRequest, PipecatSessionResponse

BEY_AUDIO_TRACK = "bey-custom-track"
"""The Daily custom audio track the avatar listens to."""

DEFAULT_AVATAR_ID = "b9be11b8-89fb-4227-8f86-4a881393cbdb"
"""The stock "Ege" avatar."""

INTERRUPT_MESSAGE = "interrupt"
"""The app message that makes the avatar drop the speech it still holds."""


class BeyParams(BaseModel):
    """Tuning of the avatar's life cycle.

    Parameters:
        avatar_join_timeout_s: Seconds from pipeline start for the avatar to join
            the room before the service gives up on it (error, event, fallback).
        avatar_ready_delay_s: Seconds between the avatar joining and the service
            sending it audio, the time the avatar takes to subscribe to the track.
            Audio written before it has subscribed would be heard by no one.
        fallback_to_bot_voice: Whether the bot speaks in its own voice (its Daily
            microphone) when the avatar cannot start or leaves, so the user still
            hears it.
        max_held_audio_s: At most this many seconds of speech are held while the
            avatar is joining; beyond that the oldest is dropped, with a warning.
        avatar_token_ttl_s: Lifetime of the avatar's meeting token. Daily ejects
            the avatar when it runs out, which bounds what a forgotten avatar costs.
        avatar_user_name: The name the avatar shows in the room.
        eject_timeout_s: How long ejecting the avatar at the end may take.
    """

    avatar_join_timeout_s: float = Field(default=30.0, gt=0)
    avatar_ready_delay_s: float = Field(default=0.3, ge=0)
    fallback_to_bot_voice: bool = True
    max_held_audio_s: float = Field(default=30.0, gt=0)
    avatar_token_ttl_s: float = Field(default=3600.0, ge=60)
    avatar_user_name: str = Field(default="Avatar", min_length=1)
    eject_timeout_s: float = Field(default=5.0, gt=0)


class _Mode(Enum):
    """Where the bot's speech goes."""

    HOLDING = "holding"  # the avatar is on its way: keep speech for it
    AVATAR = "avatar"  # the avatar is in the room and listening
    BOT_VOICE = "bot_voice"  # no avatar: the bot speaks with its own microphone
    MUTED = "muted"  # no avatar and no fallback: speech is dropped (with a warning)


class BeyVideoService(AIService):
    """Gives a Pipecat bot on Daily a Beyond Presence video avatar.

    Place it right after the TTS service and before ``transport.output()``::

        transport = DailyTransport(room_url, token, "Bot", DailyParams(...))
        avatar = BeyVideoService(transport=transport, session=http_session)
        pipeline = Pipeline([transport.input(), stt, user_aggregator, llm, tts,
                             avatar, transport.output(), assistant_aggregator])

    While the pipeline is being set up (in parallel with the bot joining the
    room) the service mints a meeting token for the avatar and starts a
    Beyond Presence session with ``transport: "pipecat"``. The avatar joins the
    room, and the bot's speech goes to it on the ``bey-custom-track`` custom
    track. Speech produced before the avatar is ready is held and delivered
    once it is. The bot's own microphone is not published while the avatar
    speaks for it, and the avatar's microphone is not fed back into the bot.

    If the session cannot start, or the avatar does not join in time, the
    pipeline keeps running: a non-fatal ``ErrorFrame`` goes upstream,
    ``on_session_error`` fires and (by default) the bot speaks in its own voice.
    At the end (``EndFrame`` or ``CancelFrame``) the avatar is ejected.

    Event handlers available:

    - on_session_started(service, session): the API accepted the session
      (a ``PipecatSessionResponse``).
    - on_avatar_joined(service, participant): the avatar joined the room.
    - on_avatar_left(service, participant, reason): the avatar left the room.
    - on_session_error(service, error): the avatar could not start or was lost
      (``error`` is a ``BeyError``; the bot falls back to its own voice if set).

    Metrics (with ``enable_metrics``): TTFB is the time from ``TTSStartedFrame``
    to the first chunk written to the avatar's track; the processing time
    reported once per session is the time the session took to start.

    Example::

        @avatar.event_handler("on_session_error")
        async def on_session_error(service, error):
            logger.warning(f"No avatar this time: {error}")

        @transport.event_handler("on_participant_joined")
        async def on_participant_joined(transport, participant):
            if not avatar.is_avatar(participant):
                await task.queue_frame(TTSSpeakFrame("Hello!"))
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
            ValueError: If a setting is missing or invalid; the message says
                which argument or environment variable to set.
        """
        super().__init__(settings=ServiceSettings(model=None), **kwargs)
        if not isinstance(transport, DailyTransport):
            raise TypeError(
                f"BeyVideoService needs the bot's DailyTransport, got {type(transport).__name__}; "
                "the avatar joins the bot's Daily room"
            )
        self._transport = transport
        self._params = params or BeyParams()
        self._room_url = transport.room_url
        daily_room_name(self._room_url)  # fail now on a URL the avatar could not join

        avatar_id = avatar_id if avatar_id is not None else os.getenv("BEY_AVATAR_ID")
        avatar_id = (avatar_id or DEFAULT_AVATAR_ID).strip() if avatar_id != "" else ""
        if not avatar_id:
            raise ValueError(
                "avatar_id is empty; pass avatar_id=... or set BEY_AVATAR_ID "
                f"(or unset it for the stock avatar {DEFAULT_AVATAR_ID})"
            )
        self._avatar_id = avatar_id

        # BeyClient checks the key and URL now and opens no connection until used.
        self._client = BeyClient(api_key, base_url=api_url, session=session)
        self._session = session
        self._own_session: aiohttp.ClientSession | None = None

        self._daily_api_key = daily_api_key or os.getenv("DAILY_API_KEY") or None
        self._daily_api_url = daily_api_url or os.getenv("DAILY_API_URL") or DEFAULT_DAILY_API_URL
        if avatar_token is not None:
            self._identity = token_identity(avatar_token)
        elif self._daily_api_key is None:
            raise ValueError(
                "the avatar needs a Daily meeting token: set DAILY_API_KEY (or pass "
                "daily_api_key=...) so the service can mint one, or pass avatar_token=..."
            )
        else:
            self._identity = AvatarIdentity(
                user_id=f"bey-avatar-{uuid.uuid4().hex[:12]}",
                user_name=self._params.avatar_user_name,
            )
        if self._daily_api_key is None:
            logger.warning(
                f"{self}: no DAILY_API_KEY, so the avatar cannot be ejected at the end; "
                "it leaves when its token expires"
            )
        self._avatar_token = avatar_token
        self._daily: DailyRoomAPI | None = None

        self._mode = _Mode.HOLDING
        self._held: deque[Frame] = deque()
        self._held_s = 0.0
        self._route_lock = asyncio.Lock()
        self._started = asyncio.Event()
        self._joined_room = False
        self._ending = False
        self._session_requested = False
        self._muted_warned = False
        self._microphone_speaking = False
        self._partial = b""
        self._out_channels = transport._params.audio_out_channels

        self._bey_session: PipecatSessionResponse | None = None
        self._avatar_participant_id: str | None = None
        self._start_task: asyncio.Task | None = None
        self._watchdog_task: asyncio.Task | None = None
        self._ready_task: asyncio.Task | None = None

        self._register_event_handler("on_session_started")
        self._register_event_handler("on_avatar_joined")
        self._register_event_handler("on_avatar_left")
        self._register_event_handler("on_session_error")

        # The avatar listens on a custom track: register it with the transport
        # so its output gets a media sender (chunking, pacing, interruptions).
        transport_params = transport._params
        if BEY_AUDIO_TRACK not in transport_params.audio_out_destinations:
            transport_params.audio_out_destinations.append(BEY_AUDIO_TRACK)

        transport.add_event_handler("on_joined", self._on_transport_joined)
        transport.add_event_handler("on_participant_joined", self._on_participant_joined)
        transport.add_event_handler("on_participant_left", self._on_participant_left)

    def __repr__(self) -> str:
        return f"BeyVideoService(name={self.name!r}, avatar_id={self._avatar_id!r})"

    @property
    def session(self) -> PipecatSessionResponse | None:
        """The Beyond Presence session, once the API has accepted it."""
        return self._bey_session

    @property
    def avatar_participant_id(self) -> str | None:
        """The avatar's Daily participant id while it is in the room."""
        return self._avatar_participant_id

    def is_avatar(self, participant: Mapping[str, Any]) -> bool:
        """Tell whether a Daily participant is this service's avatar.

        ``DailyTransport`` reports the avatar like any other participant (in
        ``on_first_participant_joined`` too), so greeting logic should skip it.

        Args:
            participant: A participant as passed to the transport's events.

        Returns:
            True if the participant is the avatar.
        """
        return self._identity.matches(participant)

    def can_generate_metrics(self) -> bool:
        """Report TTFB and session start time as pipecat metrics.

        Returns:
            True.
        """
        return True

    #
    # Life cycle
    #

    async def setup(self, setup: FrameProcessorSetup) -> None:
        """Start the avatar session while the transport joins the room.

        The pipeline sets processors up concurrently, and ``DailyTransport``
        joins the room in its own setup, so starting here overlaps the token
        and session requests with the bot's join instead of adding to it.

        Args:
            setup: The processor setup.
        """
        await super().setup(setup)
        if self._session is None:
            self._own_session = aiohttp.ClientSession()
        http = self._session or self._own_session
        assert http is not None
        self._client.use_session(http)
        if self._daily_api_key:
            self._daily = DailyRoomAPI(
                api_key=self._daily_api_key, session=http, api_url=self._daily_api_url
            )
        self._start_task = self.create_task(self._start_session(), "bey_start_session")
        self._watchdog_task = self.create_task(self._join_watchdog(), "bey_join_watchdog")

    async def cancel(self, frame: CancelFrame) -> None:
        """Stop at once; the avatar is ejected in cleanup.

        Args:
            frame: The cancel frame.
        """
        await super().cancel(frame)
        self._ending = True
        await self._stop_tasks()

    async def stop(self, frame: EndFrame) -> None:
        """Stop; speech already sent still plays out before the avatar is ejected.

        Args:
            frame: The end frame.
        """
        await super().stop(frame)
        self._ending = True
        await self._stop_tasks()

    async def cleanup(self) -> None:
        """Eject the avatar and release every task and connection of ours."""
        await super().cleanup()
        self._ending = True
        await self._stop_tasks()
        if self._start_task:
            await self.cancel_task(self._start_task)
            self._start_task = None
        await self._eject_avatar()
        await self._client.close()
        if self._own_session:
            await self._own_session.close()
            self._own_session = None

    async def _stop_tasks(self) -> None:
        for attr in ("_watchdog_task", "_ready_task"):
            task = getattr(self, attr)
            if task:
                await self.cancel_task(task)
                setattr(self, attr, None)

    #
    # Frames
    #

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Route the bot's speech to the avatar and handle interruptions.

        Args:
            frame: The frame.
            direction: Its direction.
        """
        await super().process_frame(frame, direction)

        if isinstance(frame, StartFrame):
            await self.push_frame(frame, direction)
            self._started.set()
        elif isinstance(frame, InterruptionFrame):
            await self._interrupt(frame, direction)
        elif direction == FrameDirection.UPSTREAM:
            await self._track_bot_speech(frame)
            await self.push_frame(frame, direction)
        elif _is_speech(frame):
            if isinstance(frame, TTSStartedFrame) and self._mode in (_Mode.HOLDING, _Mode.AVATAR):
                await self.start_ttfb_metrics()
            if isinstance(frame, OutputAudioRawFrame):
                frame = self._normalised(frame)
            elif isinstance(frame, TTSStoppedFrame):
                self._partial = b""
            if frame is not None:
                async with self._route_lock:
                    await self._route(frame)
        else:
            await self.push_frame(frame, direction)

    async def _track_bot_speech(self, frame: Frame) -> None:
        """Follow the output transport's speaking reports, per destination."""
        if isinstance(frame, BotStartedSpeakingFrame):
            if frame.transport_destination == BEY_AUDIO_TRACK:
                await self.stop_ttfb_metrics()
            elif frame.transport_destination is None:
                self._microphone_speaking = True
        elif isinstance(frame, BotStoppedSpeakingFrame) and frame.transport_destination is None:
            self._microphone_speaking = False
            if self._mode is _Mode.AVATAR:
                # The bot's own voice has played out since the avatar took over.
                await self._publish_microphone(False)

    def _normalised(self, frame: OutputAudioRawFrame) -> OutputAudioRawFrame | None:
        """Whole samples only, mixed down to the transport's channels; None if nothing is left.

        A TTS may split a sample across frames: the odd bytes wait for the next frame
        instead of shifting every sample after them.
        """
        width = 2 * frame.num_channels
        audio = self._partial + frame.audio
        whole = len(audio) - len(audio) % width
        self._partial = audio[whole:]
        audio = audio[:whole]
        if frame.num_channels > 1 and self._out_channels == 1:
            samples = np.frombuffer(audio, dtype=np.int16).reshape(-1, frame.num_channels)
            audio = samples.mean(axis=1).astype(np.int16).tobytes()
            frame.num_channels = 1
        frame.audio = audio
        return frame if audio else None

    async def _route(self, frame: Frame) -> None:
        """Send one speech frame where the bot's voice goes now. Call with the lock."""
        if self._mode is _Mode.AVATAR:
            frame.transport_destination = BEY_AUDIO_TRACK
            await self.push_frame(frame)
        elif self._mode is _Mode.BOT_VOICE:
            await self.push_frame(frame)
        elif self._mode is _Mode.HOLDING:
            self._hold(frame)
        elif isinstance(frame, OutputAudioRawFrame) and not self._muted_warned:
            self._muted_warned = True
            logger.warning(
                f"{self}: no avatar and fallback_to_bot_voice is off, so the bot's speech "
                "is dropped; enable fallback_to_bot_voice to let the user hear the bot"
            )

    def _hold(self, frame: Frame) -> None:
        self._held.append(frame)
        if isinstance(frame, OutputAudioRawFrame):
            self._held_s += _duration_s(frame)
        dropped_s = 0.0
        while self._held_s > self._params.max_held_audio_s:
            oldest = self._held.popleft()
            if isinstance(oldest, OutputAudioRawFrame):
                self._held_s -= _duration_s(oldest)
                dropped_s += _duration_s(oldest)
        if dropped_s:
            logger.warning(
                f"{self}: the avatar is not ready yet and more than "
                f"{self._params.max_held_audio_s:.0f} s of speech is waiting; "
                f"dropped the oldest {dropped_s:.2f} s (raise max_held_audio_s to keep more)"
            )

    async def _release_held(self) -> None:
        """Deliver the held speech, in order, where it goes now. Call with the lock."""
        if not self._held:
            return
        target = "the avatar" if self._mode is _Mode.AVATAR else "the bot's own voice"
        logger.info(f"{self}: delivering {self._held_s:.2f} s of held speech to {target}")
        held, self._held = self._held, deque()
        self._held_s = 0.0
        for frame in held:
            await self._route(frame)

    async def _interrupt(self, frame: InterruptionFrame, direction: FrameDirection) -> None:
        """Barge-in: drop held speech, clear the track's queue, tell the avatar at once."""
        async with self._route_lock:
            if self._held:
                logger.debug(f"{self}: interruption drops {self._held_s:.2f} s of held speech")
            self._held.clear()
            self._held_s = 0.0
            self._partial = b""
            await self.cancel_ttfb_metrics()
            downstream = direction == FrameDirection.DOWNSTREAM
            if self._mode is _Mode.AVATAR and downstream:
                # The output transport clears the queue of the destination the
                # interruption names; the bot's speech is queued on the track.
                frame.transport_destination = BEY_AUDIO_TRACK
            await self.push_frame(frame, direction)
            if self._avatar_participant_id and downstream:
                # Urgent (system) frames skip the audio queue, so the message goes
                # out at once, right after the track's queue was cleared: no
                # speech from before the interruption follows it.
                await self.push_frame(
                    DailyOutputTransportMessageUrgentFrame(
                        message=INTERRUPT_MESSAGE, participant_id=self._avatar_participant_id
                    )
                )

    #
    # Session
    #

    async def _start_session(self) -> None:
        """Mint the avatar's token if needed, then start the Beyond Presence session."""
        started_at = time.time()
        try:
            token = self._avatar_token
            if token is None:
                assert self._daily is not None
                token = await self._daily.mint_avatar_token(
                    self._room_url, self._identity, self._params.avatar_token_ttl_s
                )
            request = CreatePipecatSessionRequest(
                avatar_id=self._avatar_id, url=self._room_url, token=token
            )
            self._session_requested = True
            response = await self._client.create_session(request)
        except (BeyError, DailyAPIError) as e:
            await self._fail(f"the avatar could not start: {e}", e)
            return
        session_started_at = time.time()
        assert isinstance(response, PipecatSessionResponse)
        self._bey_session = response
        logger.info(f"{self}: Beyond Presence session {response.id} started")
        # Metrics frames may only follow the StartFrame downstream.
        await self._started.wait()
        await self.start_processing_metrics(start_time=started_at)
        await self.stop_processing_metrics(end_time=session_started_at)
        await self._call_event_handler("on_session_started", response)

    async def _join_watchdog(self) -> None:
        await asyncio.sleep(self._params.avatar_join_timeout_s)
        if self._avatar_participant_id is None and self._mode is _Mode.HOLDING:
            await self._fail(
                f"the avatar did not join the room within "
                f"{self._params.avatar_join_timeout_s:.0f} s (avatar_join_timeout_s)",
                BeyError(
                    "the avatar did not join within avatar_join_timeout_s "
                    f"({self._params.avatar_join_timeout_s:.0f} s)"
                ),
            )

    async def _fail(self, message: str, error: Exception) -> None:
        """Report that the avatar is not coming and let the bot speak for itself."""
        await self._started.wait()
        if self._ending:
            return
        await self.push_error(message, exception=error)
        await self._call_event_handler("on_session_error", error)
        await self._leave_avatar_mode()

    async def _leave_avatar_mode(self) -> None:
        async with self._route_lock:
            if self._params.fallback_to_bot_voice:
                self._mode = _Mode.BOT_VOICE
                await self._publish_microphone(True)
            else:
                self._mode = _Mode.MUTED
            await self._release_held()

    #
    # Room events
    #

    async def _on_transport_joined(self, transport: DailyTransport, data: Any) -> None:
        self._joined_room = True
        # The avatar is the bot's voice: unless we already fell back, the bot's
        # own microphone stays unpublished.
        if self._mode is not _Mode.BOT_VOICE:
            await self._publish_microphone(False)

    async def _publish_microphone(self, on: bool) -> None:
        if not self._joined_room:
            return
        error = await self._transport.update_publishing({"microphone": {"isPublishing": on}})
        if error:
            logger.warning(
                f"{self}: could not turn the bot's microphone {'on' if on else 'off'}: {error}"
            )

    async def _on_participant_joined(
        self, transport: DailyTransport, participant: Mapping[str, Any]
    ) -> None:
        if self._ending or not self.is_avatar(participant):
            return
        participant_id = str(participant["id"])
        if self._avatar_participant_id and self._avatar_participant_id != participant_id:
            logger.warning(f"{self}: a second avatar joined the room; ejecting it")
            if self._daily:
                try:
                    await self._daily.eject(self._room_url, participant_ids=[participant_id])
                except DailyAPIError as e:
                    logger.warning(f"{self}: could not eject the second avatar: {e}")
            return
        self._avatar_participant_id = participant_id
        # DailyTransport captures every participant's microphone; the avatar's
        # is the bot's own speech coming back, so stop it reaching STT and VAD.
        error = await transport.update_subscriptions(
            participant_settings={participant_id: {"media": {"microphone": "unsubscribed"}}}
        )
        if error:
            logger.warning(f"{self}: could not unsubscribe from the avatar's microphone: {error}")
        logger.info(f"{self}: the avatar joined the room ({participant_id})")
        await self._call_event_handler("on_avatar_joined", participant)
        if self._ready_task:
            await self.cancel_task(self._ready_task)
        self._ready_task = self.create_task(self._avatar_ready(), "bey_avatar_ready")

    async def _avatar_ready(self) -> None:
        # Give the avatar time to subscribe to the track before audio flows.
        await asyncio.sleep(self._params.avatar_ready_delay_s)
        async with self._route_lock:
            if self._ending or self._avatar_participant_id is None:
                return
            previous = self._mode
            self._mode = _Mode.AVATAR
            # Speech already queued for the bot's own voice plays out first.
            if previous is _Mode.BOT_VOICE and not self._microphone_speaking:
                await self._publish_microphone(False)
            await self._release_held()

    async def _on_participant_left(
        self, transport: DailyTransport, participant: Mapping[str, Any], reason: str
    ) -> None:
        if str(participant.get("id")) != self._avatar_participant_id:
            return
        self._avatar_participant_id = None
        if self._ready_task:
            await self.cancel_task(self._ready_task)
            self._ready_task = None
        await self._call_event_handler("on_avatar_left", participant, reason)
        if self._ending:
            return
        logger.warning(f"{self}: the avatar left the room ({reason})")
        await self._fail(
            f"the avatar left the room ({reason})", BeyError(f"the avatar left the room ({reason})")
        )

    async def _eject_avatar(self) -> None:
        """Eject the avatar so it stops rendering (and billing) once the bot is done."""
        if not self._session_requested or self._daily is None:
            return
        ids = [self._avatar_participant_id] if self._avatar_participant_id else None
        user_ids = [self._identity.user_id] if self._identity.user_id else None
        if not ids and not user_ids:
            return
        try:
            ejected = await asyncio.wait_for(
                self._daily.eject(self._room_url, user_ids=user_ids, participant_ids=ids),
                timeout=self._params.eject_timeout_s,
            )
            logger.info(f"{self}: ejected the avatar ({len(ejected)} participant(s))")
        except (DailyAPIError, TimeoutError) as e:
            logger.warning(
                f"{self}: could not eject the avatar ({e or 'timed out'}); it leaves when its "
                f"token expires"
            )
        self._session_requested = False


def _is_speech(frame: Frame) -> bool:
    """Speech frames are the bot's voice: audio and the TTS start/stop around it."""
    return (
        isinstance(frame, (OutputAudioRawFrame, TTSStartedFrame, TTSStoppedFrame))
        and frame.transport_destination is None
    )


def _duration_s(frame: OutputAudioRawFrame) -> float:
    bytes_per_s = frame.sample_rate * frame.num_channels * 2
    return len(frame.audio) / bytes_per_s if bytes_per_s else 0.0
