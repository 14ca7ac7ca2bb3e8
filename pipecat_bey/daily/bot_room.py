"""The bot's Daily room as the avatar service uses it, through pipecat's ``DailyTransport``.

The avatar listens on a custom audio track of the bot's; the bot's own
microphone must be silent while the avatar speaks for it; the avatar's
microphone must not reach the bot's speech-to-text; the avatar is told of a
barge-in with an app message. ``BotRoom`` does each of these with the
transport's own calls and frames.

It is also the one place that reaches into pipecat's internals. The custom
track needs a media sender of its own in the output transport (chunking,
pacing, clearing on interruption); pipecat 1.14 creates one per name in
``DailyParams.audio_out_destinations`` when the output starts, but offers no
public way to add a name once the transport is built, and the service is built
after it. So the name is appended to the transport's params before the
pipeline starts (:func:`add_output_destination`), and the end silence, sent per
destination, is shared between them (:func:`share_end_silence`).
``tests/test_bot_room.py`` proves this still makes a working track, and fails
loudly if pipecat changes it.
"""

from collections.abc import Awaitable, Callable
from typing import Any

from loguru import logger
from pipecat.frames.frames import Frame, InterruptionFrame, OutputAudioRawFrame
from pipecat.processors.frame_processor import FrameProcessorSetup
from pipecat.transports.daily.transport import (
    DailyOutputTransportMessageUrgentFrame,
    DailyParams,
    DailyTransport,
)

from pipecat_bey.config import INTERRUPT_MESSAGE
from pipecat_bey.errors import BeyConfigError
from pipecat_bey.rooms import FramePusher, Participant, TaskFactory


def _params(transport: DailyTransport) -> DailyParams:
    params = getattr(transport, "_params", None)
    if not isinstance(params, DailyParams) or not isinstance(
        getattr(params, "audio_out_destinations", None), list
    ):
        raise BeyConfigError(
            "this pipecat-ai version's DailyTransport keeps its params differently than "
            "pipecat-bey expects (tested with pipecat-ai 1.14); install a pipecat-ai version "
            "pipecat-bey supports"
        )
    return params


def add_output_destination(transport: DailyTransport, destination: str) -> None:
    """Make the transport's output publish a custom audio track of that name.

    Call it before the pipeline starts; adding a name twice is harmless.

    Args:
        transport: The bot's transport.
        destination: The custom track's name.
    """
    destinations = _params(transport).audio_out_destinations
    if destination not in destinations:
        destinations.append(destination)


def camera_on(participant: Participant) -> bool:
    """Whether a participant's camera is published, as the bot sees it.

    Published is enough: the bot need not receive the video (DailyTransport does
    not subscribe to cameras) to know the participant sends it.

    Args:
        participant: A participant as Daily reports it.

    Returns:
        True unless the camera is absent, off or blocked.
    """
    camera = (participant.get("media") or {}).get("camera") or {}
    return camera.get("state") not in (None, "off", "blocked")


def _forward(
    callback: Callable[[Participant], Awaitable[None]],
) -> Callable[[DailyTransport, Any], Awaitable[None]]:
    async def handler(transport: DailyTransport, participant: Any) -> None:
        await callback(participant)

    return handler


def share_end_silence(transport: DailyTransport) -> None:
    """Keep a bot's ending as short with the avatar's track as without it.

    On ``EndFrame`` the output transport sends ``audio_out_end_silence_secs`` of
    silence on each destination, one after the other, so the avatar's track
    doubles the time a bot takes to end after its last word (4 s by default).
    Unless the bot set the value itself, each destination gets half of it (at
    least 1 s: the setting is whole seconds), which still lets the avatar speak
    its last words before it is ejected.

    Args:
        transport: The bot's transport.
    """
    params = _params(transport)
    if "audio_out_end_silence_secs" not in params.model_fields_set:
        params.audio_out_end_silence_secs = max(1, params.audio_out_end_silence_secs // 2)


class BotRoom:
    """The bot's side of the room: its tracks, its microphone, the room's events."""

    def __init__(self, transport: DailyTransport, *, track: str) -> None:
        """Give the transport the avatar's track (before the pipeline starts).

        Args:
            transport: The bot's ``DailyTransport``.
            track: The custom audio track the avatar listens to.

        Raises:
            TypeError: If ``transport`` is not a ``DailyTransport``.
        """
        if not isinstance(transport, DailyTransport):
            raise TypeError(
                f"BeyVideoService needs the bot's DailyTransport, got {type(transport).__name__}; "
                "the avatar joins the bot's Daily room"
            )
        self._transport = transport
        add_output_destination(transport, track)
        share_end_silence(transport)
        self.output_channels: int = _params(transport).audio_out_channels
        self._joined = False
        self._microphone_on: bool | None = None  # as the join left it: unknown
        self._push_frame: FramePusher | None = None
        transport.add_event_handler("on_joined", self._on_joined)

    def __repr__(self) -> str:
        return f"BotRoom(room_url={self._transport.room_url!r})"

    def bind(
        self, *, setup: FrameProcessorSetup, push_frame: FramePusher, create_task: TaskFactory
    ) -> None:
        """Take the service's ``push_frame``: speech reaches the avatar through the output.

        Args:
            setup: The service's setup (unused).
            push_frame: Pushes a frame downstream, towards the output transport.
            create_task: Unused.
        """
        self._push_frame = push_frame

    async def _push(self, frame: Frame) -> None:
        if self._push_frame is None:
            raise RuntimeError("bind() the bot's room before sending through it")
        await self._push_frame(frame)

    async def _on_joined(self, transport: DailyTransport, data: Any) -> None:
        self._joined = True

    @property
    def room_url(self) -> str:
        """The room the bot joins."""
        return self._transport.room_url

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
            participant_updated: Called with a participant whose state changed
                (a track becoming playable, say).
            participant_left: Called with each participant that leaves, and why.
        """
        if joined is not None:

            async def on_joined(transport: DailyTransport, data: Any) -> None:
                self._joined = True  # whichever handler pipecat runs first
                await joined()

            self._transport.add_event_handler("on_joined", on_joined)
        for event, callback in (
            ("on_participant_joined", participant_joined),
            ("on_participant_updated", participant_updated),
        ):
            if callback is not None:
                self._transport.add_event_handler(event, _forward(callback))
        if participant_left is not None:

            async def on_participant_left(
                transport: DailyTransport, participant: Any, reason: str
            ) -> None:
                await participant_left(participant, reason)

            self._transport.add_event_handler("on_participant_left", on_participant_left)

    async def publish_microphone(self, on: bool) -> None:
        """Publish the bot's own microphone or not (once in the room; repeats are free).

        Args:
            on: Whether the user should hear the bot's own voice.
        """
        if not self._joined or self._microphone_on == on:
            return
        self._microphone_on = on
        error = await self._transport.update_publishing({"microphone": {"isPublishing": on}})
        if error:
            logger.warning(f"could not turn the bot's microphone {'on' if on else 'off'}: {error}")

    async def prepare(self) -> str:
        """Nothing to prepare: the avatar joins the bot's room, which the transport joins.

        Returns:
            The room's URL.
        """
        return self._transport.room_url

    async def avatar_arrived(self, participant_id: str) -> None:
        """The avatar joined: its voice is the bot's own, keep it from STT and VAD.

        Args:
            participant_id: The avatar's participant id.
        """
        await self.ignore_microphone_of(participant_id)

    def on_speaking(self, callback: Callable[[bool], Awaitable[None]]) -> None:
        """Never called back: the output transport reports the avatar's track itself.

        Args:
            callback: Unused.
        """

    def take_unsent_speech(self) -> list[OutputAudioRawFrame]:
        """None to take: the avatar's speech is queued in the output transport, on its track.

        Returns:
            Nothing.
        """
        return []

    async def play_out(self) -> bool:
        """Nothing to wait for here: the output transport plays the track's queue out.

        Returns:
            True.
        """
        return True

    async def close(self, timeout_s: float) -> None:
        """Nothing to release: the transport leaves the room.

        Args:
            timeout_s: Unused.
        """

    def camera_on(self, participant: Participant) -> bool:
        """Whether a participant's camera is published, as the bot sees it.

        Args:
            participant: A participant as Daily reports it.

        Returns:
            True unless the camera is absent, off or blocked.
        """
        return camera_on(participant)

    async def send_speech(self, frame: Frame) -> None:
        """Speech tagged for the avatar's track goes to the output transport.

        The output transport chunks, resamples and paces it on the track, and
        flushes its tail on ``TTSStoppedFrame``.

        Args:
            frame: Audio, or the TTS start or stop, tagged for the track.
        """
        await self._push(frame)

    async def clear_speech(self, interruption: InterruptionFrame, destination: str | None) -> None:
        """Barge-in: the interruption clears the queue of the destination it names.

        The bot's speech is queued in the output transport on the avatar's track, so
        the interruption names that track while the avatar speaks.

        Args:
            interruption: The interruption about to go downstream.
            destination: The avatar's track while it speaks, else None.
        """
        if destination:
            interruption.transport_destination = destination

    async def interrupt_avatar(self, participant_id: str) -> None:
        """Send the avatar the "interrupt" app message, ahead of any queued audio.

        Urgent (system) frames skip the audio queue: the message goes out right
        after the track's queue was cleared.

        Args:
            participant_id: The avatar.
        """
        await self._push(self.message_frame(INTERRUPT_MESSAGE, participant_id))

    async def ignore_microphone_of(self, participant_id: str) -> None:
        """Stop a participant's microphone reaching the bot (its STT and VAD).

        Args:
            participant_id: The participant (the avatar, whose voice is the bot's own).
        """
        error = await self._transport.update_subscriptions(
            participant_settings={participant_id: {"media": {"microphone": "unsubscribed"}}}
        )
        if error:
            logger.warning(f"could not unsubscribe from the avatar's microphone: {error}")

    def may_set_permissions(self) -> bool | None:
        """Whether the bot may change other participants' permissions, as far as it shows.

        Returns:
            True for a meeting owner or a ``canAdmin`` holder for participants,
            False when its participant info says neither, None when it does not say.
        """
        info = (self._transport.participants().get("local") or {}).get("info") or {}
        if info.get("isOwner"):
            return True
        can_admin = (info.get("permissions") or {}).get("canAdmin")
        if can_admin is None:
            return None
        return can_admin is True or (
            isinstance(can_admin, (list, tuple, set)) and "participants" in can_admin
        )

    async def keep_track_from(self, participant_id: str, track: str) -> str | None:
        """Withhold one of the bot's custom audio tracks from a participant.

        Daily's ``canReceive`` permission, set at runtime: it needs the bot to be
        a meeting owner (or to have ``canAdmin`` for participants).

        Args:
            participant_id: Who must not receive it (the user).
            track: The custom audio track's name.

        Returns:
            Daily's error, or None once it is withheld.
        """
        bot_id = self._transport.participants().get("local", {}).get("id")
        if not bot_id:
            return "the bot is not in the room"
        if self.may_set_permissions() is False:
            return "the bot's meeting token is neither an owner's nor a participant admin's"
        permissions = {"canReceive": {"byParticipantId": {bot_id: {"customAudio": {track: False}}}}}
        return await self._transport.update_remote_participants(
            {participant_id: {"permissions": permissions}}
        )

    @staticmethod
    def message_frame(message: Any, participant_id: str) -> Frame:
        """An app message to one participant that skips the queued audio.

        Args:
            message: The message.
            participant_id: Its recipient.

        Returns:
            An urgent transport message frame (a system frame).
        """
        return DailyOutputTransportMessageUrgentFrame(
            message=message, participant_id=participant_id
        )
