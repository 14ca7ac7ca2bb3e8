"""The avatar's private room, for bots whose users are not in a Daily room of theirs.

In the relay placement the avatar does not join the user: the bot creates a
short-lived private Daily room (or uses one it is given), joins it itself with
pipecat's ``DailyTransportClient``, sends its speech there on
``bey-custom-track``, and takes the avatar's camera and microphone back. The
relay placement then pushes them down the pipeline, to whatever output
transport the bot has (SmallWebRTC, WebSocket, LiveKit, a Daily room it does
not own...).

``BackstageRoom`` is a :class:`~pipecat_bey.rooms.RelayRoom`: the calls of every
avatar room (events, the avatar's arrival, speech, barge-in) plus what only a
relay needs: a paced speech writer whose queue a barge-in clears, the avatar's
media as pipecat frames, and the room's deletion at the end, whatever happened.
"""

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any

from loguru import logger
from pipecat.frames.frames import (
    Frame,
    InterruptionFrame,
    OutputAudioRawFrame,
    OutputImageRawFrame,
    SpeechOutputAudioRawFrame,
    TTSStoppedFrame,
)
from pipecat.processors.frame_processor import FrameProcessorSetup
from pipecat.transports.daily.transport import (
    DailyCallbacks,
    DailyOutputTransportMessageUrgentFrame,
    DailyParams,
    DailyTransportClient,
)

from pipecat_bey.config import INTERRUPT_MESSAGE
from pipecat_bey.daily.bot_room import camera_on
from pipecat_bey.daily.private_room import PrivateRoom
from pipecat_bey.daily.rest import DailyRoomAPI
from pipecat_bey.daily.speech_writer import SPEECH_SAMPLE_RATE, SpeechWriter
from pipecat_bey.errors import DailyAPIError
from pipecat_bey.rooms import AudioHandler, FramePusher, Participant, TaskFactory, VideoHandler

AVATAR_AUDIO_INTERVAL_MS = 40
"""The avatar's voice comes back in 40 ms pieces: the output's chunk, and half the
per-piece work of daily-python's 20 ms default (measured: 11.5 % of a core per relayed
bot instead of 12.7 %, same latency)."""


async def _ignore(*args: Any) -> None:
    """A Daily event the backstage room has no use for."""


class BackstageRoom:
    """The avatar's private room, joined by the bot through ``DailyTransportClient``."""

    def __init__(
        self,
        *,
        track: str,
        room_url: str | None = None,
        token: str | None = None,
        can_create_room: bool = True,
        rest: Callable[[], DailyRoomAPI | None] = lambda: None,
        lifetime_s: float = 3600.0,
        bot_name: str = "pipecat-bey relay",
    ) -> None:
        """Prepare the room; nothing is created or joined until :meth:`prepare`.

        Args:
            track: The custom audio track the avatar listens to.
            room_url: A Daily room of the caller's to use; None creates a private
                one (which needs a Daily API key) and deletes it at the end.
            token: The bot's meeting token for ``room_url``; None mints an owner's
                token when a Daily API key is there, else joins without one.
            can_create_room: Whether there is a Daily API key to create a room with.
            rest: Daily's REST API once there is an HTTP session (to create and
                delete the room and mint the bot's token), or None without a key.
            lifetime_s: Lifetime of a created room and of a minted token: Daily
                closes the room by itself then, should the bot never delete it.
            bot_name: The bot's name in the room.

        Raises:
            BeyConfigError: If ``room_url`` is not a Daily room URL, or there is
                neither a room nor a key to create one with.
        """
        self._room = PrivateRoom(
            url=room_url,
            token=token,
            can_create=can_create_room,
            rest=rest,
            lifetime_s=lifetime_s,
            bot_name=bot_name,
        )
        self.track = track
        self._bot_name = bot_name
        self._setup: FrameProcessorSetup | None = None
        self._create_task: TaskFactory | None = None
        self._client: DailyTransportClient | None = None
        self._join_error: str | None = None
        self._events: dict[str, Callable[..., Awaitable[None]]] = {}
        self._on_audio: AudioHandler | None = None
        self._on_video: VideoHandler | None = None
        self._out_sample_rate = SPEECH_SAMPLE_RATE
        self.speech = SpeechWriter(track)
        """The speech on its way to the avatar."""
        self._writer: asyncio.Task | None = None
        self._closed = False
        self.output_channels = 1  # the avatar listens in mono

    def __repr__(self) -> str:
        return f"BackstageRoom(room_url={self.room_url!r})"

    @property
    def room_url(self) -> str | None:
        """The private room's URL, once known."""
        return self._room.url

    def on_events(
        self,
        *,
        joined: Callable[[], Awaitable[None]] | None = None,
        participant_joined: Callable[[Participant], Awaitable[None]] | None = None,
        participant_updated: Callable[[Participant], Awaitable[None]] | None = None,
        participant_left: Callable[[Participant, str], Awaitable[None]] | None = None,
    ) -> None:
        """Be told when the bot joins, and when participants join, change and leave.

        Args:
            joined: Called once the bot is in the room.
            participant_joined: Called with each participant that joins.
            participant_updated: Called with a participant whose state changed.
            participant_left: Called with each participant that leaves, and why.
        """
        for name, callback in (
            ("joined", joined),
            ("participant_joined", participant_joined),
            ("participant_updated", participant_updated),
            ("participant_left", participant_left),
        ):
            if callback is not None:
                self._events[name] = callback

    def on_avatar_media(self, *, audio: AudioHandler, video: VideoHandler) -> None:
        """Be handed the avatar's voice and camera, as pipecat frames, as they arrive.

        Args:
            audio: Called with each piece of its voice (``SpeechOutputAudioRawFrame``
                at the pipeline's output rate).
            video: Called with each camera frame (``OutputImageRawFrame``, RGB),
                as it arrives: an output in live mode shows it at the avatar's pace.
        """
        self._on_audio, self._on_video = audio, video

    def bind(
        self, *, setup: FrameProcessorSetup, push_frame: FramePusher, create_task: TaskFactory
    ) -> None:
        """Give the room what it needs from the pipeline and the service.

        Args:
            setup: The service's setup (task manager, output sample rate).
            push_frame: Unused: the avatar's media goes to ``on_avatar_media``.
            create_task: Creates a named task (the service's ``create_task``).
        """
        self._setup = setup
        self._create_task = create_task
        self._out_sample_rate = setup.audio_out_sample_rate or SPEECH_SAMPLE_RATE

    async def prepare(self) -> str:
        """Create the room if needed, join it, and publish the speech track.

        Returns:
            The room's URL, where the avatar is to join.

        Raises:
            DailyAPIError: If the room could not be created or joined.
        """
        if self._setup is None or self._create_task is None:
            raise RuntimeError("bind() the backstage room before preparing it")
        room_url = await self._room.open()
        if self._closed:
            raise DailyAPIError("the pipeline ended while the avatar's room was being prepared")
        self._client = DailyTransportClient(
            room_url,
            self._room.token,
            self._bot_name,
            DailyParams(
                audio_in_enabled=True,
                audio_in_user_tracks=True,  # per-participant renderers: the avatar's voice
                video_in_enabled=True,
                audio_out_enabled=True,
                microphone_out_enabled=False,  # the bot speaks on the avatar's track only
                audio_out_sample_rate=SPEECH_SAMPLE_RATE,
                audio_out_channels=1,
            ),
            self._callbacks(),
            "bey-backstage",
        )
        await self._client.setup(self._setup)
        await self._client.join()
        if self._join_error is not None or not self._client.participants().get("local"):
            raise DailyAPIError(
                f"could not join the avatar's room: {self._join_error or 'no answer'}"
            )
        await self._client.register_audio_destination(self.track)
        self._writer = self._create_task(self.speech.run(self._write), "bey_backstage_speech")
        return room_url

    def _callbacks(self) -> DailyCallbacks:
        """Daily's events, the few the room needs forwarded, the rest ignored."""
        handlers: dict[str, Any] = dict.fromkeys(DailyCallbacks.model_fields, _ignore)
        handlers.update(
            on_joined=self._joined,
            on_error=self._error,
            on_participant_joined=partial(self._forward, "participant_joined"),
            on_participant_updated=partial(self._forward, "participant_updated"),
            on_participant_left=partial(self._forward, "participant_left"),
        )
        return DailyCallbacks(**handlers)

    async def _joined(self, data: Mapping[str, Any]) -> None:
        logger.info("the bot joined the avatar's private room")
        if "joined" in self._events:
            await self._events["joined"]()

    async def _error(self, message: str) -> None:
        self._join_error = message
        logger.warning(f"the avatar's private room: {message}")

    async def _forward(self, event: str, *args: Any) -> None:
        if event in self._events:
            await self._events[event](*args)

    async def avatar_arrived(self, participant_id: str) -> None:
        """Take the avatar's voice and camera, to relay them.

        Args:
            participant_id: The avatar's participant id.
        """
        if self._client is None:
            return
        await self._client.capture_participant_audio(
            participant_id,
            self._avatar_audio,
            "microphone",
            sample_rate=self._out_sample_rate,
            callback_interval_ms=AVATAR_AUDIO_INTERVAL_MS,
        )
        await self._client.capture_participant_video(
            participant_id, self._avatar_video, None, "camera", "RGB"
        )

    async def _avatar_audio(self, participant_id: str, audio: Any, source: str) -> None:
        if self._on_audio is not None:
            await self._on_audio(
                SpeechOutputAudioRawFrame(
                    audio=audio.audio_frames,
                    sample_rate=audio.sample_rate,
                    num_channels=audio.num_channels,
                )
            )

    async def _avatar_video(self, participant_id: str, video: Any, source: str) -> None:
        if self._on_video is None:
            return
        frame = OutputImageRawFrame(
            image=video.buffer, size=(video.width, video.height), format=video.color_format
        )
        await self._on_video(frame)

    def camera_on(self, participant: Participant) -> bool:
        """Whether a participant's camera is published.

        Args:
            participant: A participant as Daily reports it.

        Returns:
            True unless the camera is absent, off or blocked.
        """
        return camera_on(participant)

    async def keep_track_from(self, participant_id: str, track: str) -> str | None:
        """Nobody but the avatar hears the speech track: the room is private.

        Args:
            participant_id: Someone else who joined the private room.
            track: The speech track.

        Returns:
            None.
        """
        logger.warning(f"participant {participant_id} joined the avatar's private room")
        return None

    async def publish_microphone(self, on: bool) -> None:
        """Nothing to switch: the bot's own voice, if any, goes out through its own output.

        Args:
            on: Ignored.
        """

    async def send_speech(self, frame: Frame) -> None:
        """Queue speech for the avatar; ``TTSStoppedFrame`` sends the utterance's tail too.

        Args:
            frame: Mono speech audio at any rate, or the TTS start or stop.
        """
        if isinstance(frame, OutputAudioRawFrame):
            await self.speech.add(frame)
        elif isinstance(frame, TTSStoppedFrame):
            self.speech.end_of_speech()

    async def clear_speech(self, interruption: InterruptionFrame, destination: str | None) -> None:
        """Barge-in: drop the speech not yet sent.

        Args:
            interruption: Unused: nothing of the avatar's speech is in the output.
            destination: Unused.
        """
        self.speech.drop()

    @property
    def queued_speech_s(self) -> float:
        """Seconds of speech waiting to be sent to the avatar."""
        return self.speech.queued_s

    @property
    def last_sent_at(self) -> float:
        """When speech was last sent to the avatar (``time.monotonic()``)."""
        return self.speech.last_sent_at

    async def _write(self, frame: OutputAudioRawFrame) -> None:
        if self._client is not None:
            await self._client.write_audio_frame(frame)

    async def interrupt_avatar(self, participant_id: str) -> None:
        """Send the avatar the "interrupt" app message, ahead of any queued speech.

        Args:
            participant_id: The avatar.
        """
        if self._client is None:
            return
        error = await self._client.send_message(
            DailyOutputTransportMessageUrgentFrame(
                message=INTERRUPT_MESSAGE, participant_id=participant_id
            )
        )
        if error:
            logger.warning(f"could not tell the avatar to stop: {error}")

    def on_speaking(self, callback: Callable[[bool], Awaitable[None]]) -> None:
        """Never called back: the relay hears the avatar's voice itself.

        Args:
            callback: Unused.
        """

    def take_unsent_speech(self) -> list[OutputAudioRawFrame]:
        """None to take: what the speech writer holds goes with the private room.

        Returns:
            Nothing.
        """
        return []

    async def play_out(self) -> bool:
        """Nothing to wait for here: the relay placement drains the speech and the voice.

        Returns:
            True.
        """
        return True

    async def close(self, timeout_s: float) -> None:
        """Leave the room and delete it if the bot created it; safe to call again.

        Args:
            timeout_s: How long leaving and deleting may take, each.
        """
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            self._writer.cancel()
            self._writer = None
        client, self._client = self._client, None
        if client is not None:
            try:
                await asyncio.wait_for(client.leave(), timeout_s)
            except (TimeoutError, asyncio.TimeoutError):
                logger.warning("leaving the avatar's private room timed out")
            await client.cleanup()
        await self._room.delete(timeout_s)
