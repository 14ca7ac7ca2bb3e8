"""The bot's LiveKit room as the avatar service uses it, through pipecat's ``LiveKitTransport``.

The avatar joins the bot's room as an agent publishing on the bot's behalf.
The bot's speech reaches it as LiveKit's avatar data stream
(:class:`SpeechStream`), not as a track, so no one else in the room receives
it. The bot's own ``pipecat-audio`` track is muted while the avatar speaks for
it (one voice) and is the fallback voice; the avatar's voice, which the bot
receives like any participant's, is unsubscribed so that it never reaches the
bot's STT and VAD. The avatar reports its playback over RPC, which gives the
service its "bot speaking" edges.

Participants are reported to the life cycle as ``{"id": identity, "kind":
..., "attributes": {...}, "camera": bool}``.

This is the one place that reaches into pipecat's ``LiveKitTransport``: its
``rtc.Room`` is ``transport._client.room`` (no public accessor in pipecat 1.14);
:func:`transport_room` fails loudly if pipecat changes that.
"""

from collections.abc import Awaitable, Callable
from typing import Any

from livekit import rtc
from loguru import logger
from pipecat.frames.frames import (
    Frame,
    InterruptionFrame,
    OutputAudioRawFrame,
    TTSStoppedFrame,
)
from pipecat.processors.frame_processor import FrameProcessorSetup
from pipecat.transports.livekit.transport import LiveKitTransport

from pipecat_bey.errors import BeyConfigError
from pipecat_bey.livekit.speech_stream import SPEECH_SAMPLE_RATE, SpeechStream
from pipecat_bey.rooms import FramePusher, Participant, TaskFactory

BOT_AUDIO_TRACK = "pipecat-audio"
"""The microphone track pipecat's LiveKit output publishes: the bot's own voice."""

PLAY_OUT_MARGIN_S = 2.0
"""Beyond what is left to play, how long the end waits for the avatar's report (a guess:
the avatar's render latency and the RPC's round trip)."""

ParticipantCallback = Callable[[Participant], Awaitable[None]]


def _client(transport: LiveKitTransport) -> Any:
    client = getattr(transport, "_client", None)
    if client is None or not hasattr(type(client), "room"):
        raise BeyConfigError(
            "this pipecat-ai version's LiveKitTransport keeps its room differently than "
            "pipecat-bey expects (tested with pipecat-ai 1.14); install a pipecat-ai version "
            "pipecat-bey supports"
        )
    return client


def transport_room(transport: LiveKitTransport) -> rtc.Room:
    """The ``rtc.Room`` a ``LiveKitTransport`` joins (it exists once the pipeline is set up).

    Args:
        transport: The bot's transport.

    Returns:
        The room.
    """
    return _client(transport).room


def transport_url(transport: LiveKitTransport) -> str | None:
    """The server URL a ``LiveKitTransport`` connects to.

    Args:
        transport: The bot's transport.

    Returns:
        The URL, or None when pipecat does not say.
    """
    url = getattr(_client(transport), "_url", None)
    return url if isinstance(url, str) else None


def transport_token(transport: LiveKitTransport) -> str | None:
    """The access token a ``LiveKitTransport`` joins with (never logged).

    Args:
        transport: The bot's transport.

    Returns:
        The token, or None when pipecat does not say.
    """
    token = getattr(_client(transport), "_token", None)
    return token if isinstance(token, str) else None


def describe(participant: rtc.RemoteParticipant) -> Participant:
    """A LiveKit participant as the life cycle reads participants.

    Args:
        participant: A remote participant.

    Returns:
        Its identity as ``id``, its kind, attributes and whether its camera is published.
    """
    camera = any(
        publication.kind == rtc.TrackKind.KIND_VIDEO and not publication.muted
        for publication in participant.track_publications.values()
    )
    return {
        "id": participant.identity,
        "kind": int(participant.kind),
        "attributes": dict(participant.attributes),
        "camera": camera,
    }


class LiveKitBotRoom:
    """The bot's side of its LiveKit room: the avatar's speech, the bot's voice, the events.

    Attributes:
        output_channels: The avatar takes mono speech.
        speech: The speech stream to the avatar.
    """

    output_channels = 1

    def __init__(self, transport: LiveKitTransport, *, avatar_identity: str) -> None:
        """Use the bot's transport (before the pipeline starts).

        Args:
            transport: The bot's ``LiveKitTransport``.
            avatar_identity: The avatar's identity in the room.

        Raises:
            TypeError: If ``transport`` is not a ``LiveKitTransport``.
        """
        if not isinstance(transport, LiveKitTransport):
            raise TypeError(
                f"LiveKitBotRoom needs the bot's LiveKitTransport, got {type(transport).__name__}"
            )
        _client(transport)  # fail now on a pipecat that keeps its room elsewhere
        self._transport = transport
        self._avatar_identity = avatar_identity
        self.speech = SpeechStream(avatar_identity)
        self._push_frame: FramePusher | None = None
        self._on_speaking: Callable[[bool], Awaitable[None]] | None = None
        self._microphone_on: bool | None = None
        self._connected = False
        self._closed = False
        transport.add_event_handler("on_connected", self._on_connected)

    def __repr__(self) -> str:
        return f"LiveKitBotRoom(url={transport_url(self._transport)!r})"

    @property
    def room(self) -> rtc.Room:
        """The bot's ``rtc.Room``."""
        return transport_room(self._transport)

    def bind(
        self, *, setup: FrameProcessorSetup, push_frame: FramePusher, create_task: TaskFactory
    ) -> None:
        """Take the service's ``push_frame`` (for the fallback voice's frames).

        Args:
            setup: The service's setup (unused).
            push_frame: Pushes a frame downstream.
            create_task: Unused.
        """
        self._push_frame = push_frame

    def on_speaking(self, callback: Callable[[bool], Awaitable[None]]) -> None:
        """Be told when the avatar starts and finishes playing an utterance.

        Args:
            callback: Called with True at its start, False once all it was sent played.
        """
        self._on_speaking = callback

    async def _speaking(self, speaking: bool) -> None:
        if self._on_speaking is not None:
            await self._on_speaking(speaking)

    async def _on_connected(self, transport: LiveKitTransport) -> None:
        self._connected = True
        self.speech.attach(self.room.local_participant, self._speaking)

    def on_events(
        self,
        *,
        joined: Callable[[], Awaitable[None]] | None = None,
        participant_joined: ParticipantCallback | None = None,
        participant_updated: ParticipantCallback | None = None,
        participant_left: Callable[[Participant, str], Awaitable[None]] | None = None,
    ) -> None:
        """Be told when the bot joins, and when participants join, change and leave.

        Args:
            joined: Called once the bot is in the room.
            participant_joined: Called with each participant that joins.
            participant_updated: Called with a participant whose tracks changed.
            participant_left: Called with each participant that leaves, and why.
        """
        transport = self._transport
        if joined is not None:

            async def on_connected(transport: LiveKitTransport) -> None:
                await joined()

            transport.add_event_handler("on_connected", on_connected)
        if participant_joined is not None:
            transport.add_event_handler(
                "on_participant_connected", self._forward(participant_joined)
            )
        if participant_updated is not None:
            for event in ("on_video_track_subscribed", "on_audio_track_subscribed"):
                transport.add_event_handler(event, self._forward(participant_updated))
        if participant_left is not None:

            async def on_disconnected(transport: LiveKitTransport, participant_id: str) -> None:
                await participant_left({"id": participant_id}, "left the room")

            transport.add_event_handler("on_participant_disconnected", on_disconnected)

    def _forward(self, callback: ParticipantCallback) -> Callable[..., Awaitable[None]]:
        async def handler(transport: LiveKitTransport, participant_id: str, *args: Any) -> None:
            participant = self.room.remote_participants.get(participant_id)
            if participant is not None:
                await self._keep_avatar_voice_from_bot(participant)
                await callback(describe(participant))

        return handler

    async def _keep_avatar_voice_from_bot(self, participant: rtc.RemoteParticipant) -> None:
        """The avatar's voice is the bot's own: never let it reach the bot's STT and VAD."""
        if participant.identity != self._avatar_identity:
            return
        for publication in participant.track_publications.values():
            if publication.kind == rtc.TrackKind.KIND_AUDIO and publication.subscribed:
                publication.set_subscribed(False)

    async def prepare(self) -> str:
        """Nothing to prepare: the avatar joins the bot's room on the bot's server.

        Returns:
            The server's URL.
        """
        return transport_url(self._transport) or ""

    async def avatar_arrived(self, participant_id: str) -> None:
        """The avatar joined: keep its voice from the bot (as its tracks come, too).

        Args:
            participant_id: The avatar's identity.
        """
        participant = self.room.remote_participants.get(participant_id)
        if participant is not None:
            await self._keep_avatar_voice_from_bot(participant)

    def camera_on(self, participant: Participant) -> bool:
        """Whether a participant has published an unmuted video track.

        Args:
            participant: As :func:`describe` gives it.

        Returns:
            True once its camera is published.
        """
        return bool(participant.get("camera"))

    async def keep_track_from(self, participant_id: str, track: str) -> str | None:
        """Nothing to withhold: the avatar's speech is a byte stream to the avatar only.

        Args:
            participant_id: Unused.
            track: Unused.

        Returns:
            None.
        """
        return None

    async def publish_microphone(self, on: bool) -> None:
        """Mute or unmute the bot's own ``pipecat-audio`` track (repeats are free).

        Args:
            on: Whether the user should hear the bot's own voice.
        """
        if not self._connected or self._microphone_on == on:
            return
        for publication in self.room.local_participant.track_publications.values():
            if publication.name == BOT_AUDIO_TRACK and publication.track is not None:
                track = publication.track
                track.unmute() if on else track.mute()
                self._microphone_on = on
                return
        state = "on" if on else "off"
        logger.warning(f"the bot publishes no {BOT_AUDIO_TRACK} track to turn {state}")

    async def send_speech(self, frame: Frame) -> None:
        """Send the avatar a piece of its speech: audio into the utterance's stream.

        Args:
            frame: Audio, or the TTS start or stop around it.
        """
        if isinstance(frame, OutputAudioRawFrame):
            await self.speech.write(frame)
        elif isinstance(frame, TTSStoppedFrame):
            await self.speech.end()

    async def clear_speech(self, interruption: InterruptionFrame, destination: str | None) -> None:
        """Barge-in: drop the speech queued for the avatar and end its stream; it is told next.

        Args:
            interruption: Unused: the bot's own output clears its own queue.
            destination: Unused.
        """
        await self.speech.stop()

    async def interrupt_avatar(self, participant_id: str) -> None:
        """Tell the avatar to drop the speech it holds (``lk.clear_buffer``).

        Args:
            participant_id: The avatar.
        """
        await self.speech.clear()

    def take_unsent_speech(self) -> list[OutputAudioRawFrame]:
        """Take back the speech not yet sent to the avatar (it is lost), for the bot's voice.

        Returns:
            It, as one frame at the avatar's rate (the output resamples it), or nothing.
        """
        unsent = self.speech.take_unsent()
        return [OutputAudioRawFrame(unsent, SPEECH_SAMPLE_RATE, 1)] if unsent else []

    async def play_out(self) -> bool:
        """At the end, wait until the avatar reports it played out what it was sent.

        The avatar buffers speech sent faster than real time, so its last words may
        still be to come when the bot ends; the wait is bounded by what it has not
        yet reported played, plus :data:`PLAY_OUT_MARGIN_S`.

        Returns:
            Whether it did in time.
        """
        await self.speech.end()
        bound_s = self.speech.unplayed_bound_s() + PLAY_OUT_MARGIN_S
        played = await self.speech.played_out(bound_s)
        if not played:
            logger.warning(f"the avatar did not report its last words played in {bound_s:.1f} s")
        return played

    async def close(self, timeout_s: float) -> None:
        """Stop speaking to the avatar (the transport leaves the room); safe to call again.

        Args:
            timeout_s: Unused.
        """
        if not self._closed:
            self._closed = True
            await self.speech.close()
