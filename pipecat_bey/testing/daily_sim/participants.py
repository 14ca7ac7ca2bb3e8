"""Participant layer: scriptable participants of a simulated room, a user and the avatar.

It sits above the room layer, beside the call client and the REST endpoints. A
participant is given a :class:`ParticipantHost` (the simulation, seen only as
what runs its tasks and hears of changes), never looks one up, and measures
what it received: seconds of speech heard, when sound last arrived, what the
avatar was sent. Every time it records is the time something *arrived*, after
the simulated network's delay: for audio and video, when the receiver's jitter
buffer played it out (see ``DailySimulation``'s ``receive_buffer_s``).
"""

import asyncio
import dataclasses
import time
import uuid
import warnings
from collections import deque
from collections.abc import Callable, Collection, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

from loguru import logger

from pipecat_bey.testing.audio import read_wav, resample, speech_segments, to_mono
from pipecat_bey.testing.daily_sim.media import (
    CustomAudioSource,
    Resampler,
    SentVideo,
    SyntheticCamera,
    VideoSource,
    VideoStamp,
)
from pipecat_bey.testing.daily_sim.room import (
    CAMERA,
    MICROPHONE,
    Changes,
    JoinError,
    Member,
    Room,
    custom_audio,
)
from pipecat_bey.testing.daily_sim.tokens import TokenError

BEY_TRACK = "bey-custom-track"
_BEY_TRACK_KEY = custom_audio(BEY_TRACK)


class ParticipantHost(Protocol):
    """What a participant needs from the simulation it runs in."""

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> "asyncio.Task[Any]":
        """Run a task that ends with the simulation.

        Args:
            coro: The coroutine.
            name: Task name.

        Returns:
            The task.
        """
        ...

    def notify(self) -> None:
        """Tell the simulation's waiters that something happened."""
        ...


@dataclass(frozen=True)
class ReceivedAudio:
    """One piece of audio a participant received.

    Parameters:
        at: Monotonic time it was handed over: when the receiver's jitter buffer
            played it out (sent plus the network delay plus the receive buffer),
            or when it arrived if it came later than that.
        publisher_id: Who sent it.
        track: Track key (``"microphone"``, ``"customAudio:<name>"``).
        position: Its position in the sender's track, in samples.
        sample_rate: Its sample rate.
        pcm: 16-bit mono PCM.
        played_at: Monotonic time it started to play at the sender.
    """

    at: float
    publisher_id: str
    track: str
    position: int
    sample_rate: int
    pcm: bytes
    played_at: float

    @property
    def heard_at(self) -> float:
        """When it starts to play at the receiver.

        That is when it plays at the sender plus the delay the network and the
        receive buffer added: audio written ahead of time leaves early but plays
        on time, so without network delay it arrives before it plays.
        """
        return max(self.at, self.played_at)


@dataclass(frozen=True)
class ReceivedVideo:
    """One video frame a participant received (its stamp; no pixels are kept).

    Parameters:
        at: Monotonic time it was handed over: when the receiver's jitter buffer
            rendered it (captured plus the network delay plus the receive
            buffer), or when it arrived if it came later than that.
        publisher_id: Who sent it.
        track: Track key (``"camera"``, ``"customVideo:<name>"``).
        captured_at: Monotonic time it was captured at the sender (a frame a
            client wrote to its video source: when it was written).
        stamp: Its frame number and the sender's audio playout position; of a
            written frame, what its first 16 bytes say (a relay that passes the
            avatar's frames through keeps the avatar's stamp).
        width: Its width in pixels.
        height: Its height in pixels.
    """

    at: float
    publisher_id: str
    track: str
    captured_at: float
    stamp: VideoStamp
    width: int
    height: int


@dataclass(frozen=True)
class SpokenAudio:
    """One piece of audio a participant put on its microphone.

    Parameters:
        start: Monotonic time it starts to play on the microphone track.
        position: Its position in the track, in samples (silence counted).
        sample_rate: Its sample rate.
        pcm: 16-bit mono PCM.
    """

    start: float
    position: int
    sample_rate: int
    pcm: bytes


@dataclass(frozen=True)
class ReceivedMessage:
    """An app message a participant received.

    Parameters:
        at: Monotonic time it arrived.
        sender_id: Who sent it.
        message: The message.
    """

    at: float
    sender_id: str
    message: Any


class SimulatedParticipant(Member):
    """A participant driven by a script: joins, speaks, listens, leaves.

    Its microphone streams continuously while it is in the room, silence
    when it is not speaking, as a browser's does.

    Attributes:
        world: The simulation it runs in.
        received: Every piece of audio it received, in order of arrival.
        received_video: Every video frame it received from the tracks it watches
            (:meth:`watch_video`), in order of arrival.
        app_messages: Every app message it received.
        removed_reason: Why it was removed from the room, if it was (``"ejected"``...).
    """

    def __init__(
        self,
        world: ParticipantHost,
        room: Room,
        user_name: str,
        *,
        token: str | None = None,
        sample_rate: int = 16000,
    ) -> None:
        """Create the participant (not yet in the room).

        Args:
            world: The simulation it runs in.
            room: The room it joins.
            user_name: Its name (a token's name wins).
            token: Its meeting token, if any.
            sample_rate: Rate of its microphone.
        """
        super().__init__(user_name)
        self.world = world
        self.target_room = room
        self.token = token
        self.sample_rate = sample_rate
        self.received: list[ReceivedAudio] = []
        self.received_video: list[ReceivedVideo] = []
        self.app_messages: list[ReceivedMessage] = []
        self._watching: set[tuple[str, str]] = set()
        self.left_at: float | None = None
        self.removed_reason: str | None = None
        self._mic = self._new_microphone()
        self._to_say: deque[tuple[bytes, asyncio.Future[None] | None]] = deque()
        self._mic_task: asyncio.Task | None = None
        self._changes = Changes()
        self._first_active: dict[tuple[str, str], float] = {}

    async def join(self) -> None:
        """Join the room and start the microphone.

        Raises:
            JoinError: If the room refuses (bad or expired token, private room).
        """
        if self.left_at is not None:
            self.id = str(uuid.uuid4())  # Daily gives every session in a call its own id
        try:
            self.target_room.admit(self, self.token)
        except TokenError as e:
            raise JoinError(f"not-allowed: {e}") from e
        self.left_at = None
        self.removed_reason = None
        self._mic = self._new_microphone()
        self.set_publishing(MICROPHONE, self._mic)
        self._mic_task = self.world.spawn(self._stream_microphone(), f"mic-{self.id}")
        self._notify()

    async def leave(self) -> None:
        """Leave the room."""
        if self.room is not None:
            self.room.remove(self, "leftCall")
        self._stopped()

    def _stopped(self) -> None:
        self.left_at = time.monotonic()
        if self._mic_task is not None:
            self._mic_task.cancel()
            self._mic_task = None
        for _, done in self._to_say:
            if done is not None and not done.done():
                done.set_result(None)
        self._to_say.clear()
        self._notify()

    def _new_microphone(self) -> CustomAudioSource:
        """A fresh microphone for a join."""
        return CustomAudioSource(self.sample_rate, 1, auto_silence=True)

    @property
    def in_room(self) -> bool:
        """Whether it is in the room now."""
        return self.room is not None

    async def speak(self, pcm: bytes, sample_rate: int) -> None:
        """Say 16-bit mono PCM into the room, returning once it has played.

        Args:
            pcm: The audio.
            sample_rate: Its rate.
        """
        # In one go: a stream would keep back the end of the speech.
        audio = resample(pcm, sample_rate, self.sample_rate)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._to_say.append((audio, done))
        await done

    async def speak_wav(self, path: str | Path) -> None:
        """Say a 16-bit WAV file (stereo is mixed down).

        Args:
            path: The file.
        """
        pcm, rate, channels = read_wav(path)
        await self.speak(to_mono(pcm, channels), rate)

    async def _stream_microphone(self) -> None:
        piece = self.sample_rate // 50 * 2  # 20 ms, as a browser sends
        silence = bytes(piece)
        loop = asyncio.get_running_loop()
        while True:
            chunk, done = silence, None
            if self._to_say:
                audio, future = self._to_say[0]
                chunk = audio[:piece]
                if len(audio) > piece:
                    self._to_say[0] = (audio[piece:], future)
                else:
                    self._to_say.popleft()
                    done = future
            written: asyncio.Future[int] = loop.create_future()
            self._mic.write_frames(
                chunk, completion=lambda n, f=written: f.done() or f.set_result(n)
            )
            await written
            if done is not None and not done.done():
                done.set_result(None)

    def send_app_message(self, message: Any, to: str | None = None) -> str | None:
        """Send an app message.

        Args:
            message: The message.
            to: A participant id, or None for everyone.

        Returns:
            An error, or None.
        """
        if self.room is None:
            return "not in the room"
        return self.room.send_app_message(self, message, to)

    def watch_video(self, publisher_id: str, track: str = CAMERA) -> None:
        """Record the stamps of a participant's video frames in :attr:`received_video`.

        Frames arrive while the subscription to the track has taken effect, through
        the network like audio, so their arrival can be set against the audio's.

        Args:
            publisher_id: Whose video.
            track: The track key.
        """
        self._watching.add((publisher_id, track))

    def heard_audio(self, publisher_id: str, track: str = MICROPHONE) -> bytes:
        """Everything received from one track, silence between pieces filled in.

        Args:
            publisher_id: Who sent it.
            track: The track key.

        Returns:
            16-bit mono PCM.
        """
        return _assemble(
            self._pieces(publisher_id, track), self.subscribed_since_for(publisher_id, track)
        )

    def heard_speech_s(
        self,
        publisher_id: str | None = None,
        *,
        exclude: str | None = None,
        track: str = MICROPHONE,
    ) -> float:
        """Seconds of speech heard on a track, from one publisher or from all.

        Speech is what ``pipecat_bey.testing.audio.speech_segments`` finds in
        :meth:`heard_audio`.

        Args:
            publisher_id: Whose track (None: every publisher's, summed per publisher).
            exclude: A publisher not to count.
            track: The track key.

        Returns:
            The seconds, rounded to the millisecond.
        """
        if publisher_id is None:
            publishers = {r.publisher_id for r in self.received if r.track == track}
        else:
            publishers = {publisher_id}
        total = 0.0
        for publisher in publishers - {exclude}:
            pieces = self._pieces(publisher, track)
            if not pieces:
                continue
            pcm = _assemble(pieces, self.subscribed_since_for(publisher, track))
            segments = speech_segments(pcm, pieces[0].sample_rate)
            total += sum(end - start for start, end in segments)
        return round(total, 3)

    def last_sound_at(self) -> float | None:
        """When the last piece of audio that was not all silence arrived, on any track.

        Returns:
            A monotonic time, or None if nothing but silence (or nothing) arrived.
        """
        return next((r.at for r in reversed(self.received) if any(r.pcm)), None)

    def subscribed_since_for(self, publisher_id: str, track: str) -> float | None:
        """When this participant's first subscription to a track took effect (for leading silence).

        Args:
            publisher_id: Who publishes it.
            track: The track key.

        Returns:
            A monotonic time, or None.
        """
        return self._first_active.get((publisher_id, track))

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        """Wait until ``predicate()`` holds, re-checking it whenever something arrives.

        Args:
            predicate: The condition.
            timeout: Seconds to wait at most (``float("inf")``: forever).

        Returns:
            True once it holds, False if the time ran out first.
        """
        return await self._changes.wait_for(predicate, timeout)

    def _pieces(self, publisher_id: str, track: str) -> list[ReceivedAudio]:
        return [r for r in self.received if r.publisher_id == publisher_id and r.track == track]

    def _notify(self) -> None:
        self._changes.notify()
        self.world.notify()

    # Member hooks.
    def refresh_subscriptions(self, *, report: bool = True) -> None:  # noqa: D102
        super().refresh_subscriptions(report=report)
        # Media starts playing out one network delay and the receive buffer after the
        # subscription took effect.
        delay = self.room.host.network.playout_delay_s if self.room is not None else 0.0
        for key, active in self._active_from.items():
            if active is not None and key not in self._first_active:
                self._first_active[key] = active + delay

    def on_audio(  # noqa: D102
        self,
        publisher: Member,
        track: str,
        source: CustomAudioSource,
        pcm: bytes,
        start: float,
        position: int,
    ) -> None:
        self.received.append(
            ReceivedAudio(
                time.monotonic(), publisher.id, track, position, source.sample_rate, pcm, start
            )
        )
        self._notify()

    def on_app_message(self, message: Any, sender: Member) -> None:  # noqa: D102
        self.app_messages.append(ReceivedMessage(time.monotonic(), sender.id, message))
        self._notify()

    def wants_video(self, publisher_id: str, track: str) -> bool:  # noqa: D102
        return (publisher_id, track) in self._watching

    def on_video(  # noqa: D102
        self, publisher: Member, track: str, source: VideoSource, frame: SentVideo
    ) -> None:
        self.received_video.append(
            ReceivedVideo(
                time.monotonic(),
                publisher.id,
                track,
                frame.captured_at,
                frame.stamp,
                frame.width,
                frame.height,
            )
        )
        self._notify()

    def on_participant_joined(self, member: Member) -> None:  # noqa: D102
        self._notify()

    def on_participant_left(self, member: Member, reason: str) -> None:  # noqa: D102
        self._notify()

    def on_participant_updated(self, member: Member) -> None:  # noqa: D102
        self._notify()

    def on_removed(self, reason: str) -> None:  # noqa: D102
        self.removed_reason = reason
        self._stopped()


def _assemble(pieces: list[ReceivedAudio], subscribed_at: float | None) -> bytes:
    """Lay received pieces out by track position; silence where the track carried it."""
    if not pieces:
        return b""
    rate = pieces[0].sample_rate
    out = bytearray()
    lead = 0
    if subscribed_at is not None:
        lead = max(round((pieces[0].at - subscribed_at) * rate), 0)
    out.extend(bytes(lead * 2))
    base = pieces[0].position - lead
    for piece in pieces:
        offset = (piece.position - base) * 2
        if offset > len(out):
            out.extend(bytes(offset - len(out)))
        out.extend(piece.pcm)
    return bytes(out)


class SimulatedUser(SimulatedParticipant):
    """A person in the room: speaks into its microphone and hears the others.

    Like a browser on Daily Prebuilt, it plays participants' microphones and not
    their custom audio tracks, unless ``plays_custom_tracks``: then it is a custom
    client that subscribes to and plays every audio track it receives, and a test
    can measure whether it heard a bot's raw speech, e.g.
    ``user.heard_speech_s(bot_id, track=custom_audio("bey-custom-track"))``.

    Attributes:
        plays_custom_tracks: Whether it subscribes to custom audio tracks too.
    """

    def __init__(
        self,
        world: ParticipantHost,
        room: Room,
        user_name: str,
        *,
        token: str | None = None,
        sample_rate: int = 16000,
        plays_custom_tracks: bool = False,
    ) -> None:
        """Create the user (not yet in the room).

        Args:
            world: The simulation it runs in.
            room: The room it joins.
            user_name: Its name (a token's name wins).
            token: Its meeting token, if any.
            sample_rate: Rate of its microphone.
            plays_custom_tracks: Subscribe to and record custom audio tracks too.
        """
        super().__init__(world, room, user_name, token=token, sample_rate=sample_rate)
        self.plays_custom_tracks = plays_custom_tracks
        if not plays_custom_tracks:
            self.update_profiles({"base": {"customAudio": "unsubscribed"}})


def _coerce(default: Any, value: Any) -> Any:
    """A setting's value, as the type of the field's default."""
    if isinstance(default, bool):
        return bool(value)
    if isinstance(default, int):
        return int(value)
    if isinstance(default, float) or default is None:
        return None if value is None else float(value)
    if isinstance(default, tuple):
        return tuple(int(v) for v in value)
    return value


@dataclass
class AvatarBehaviour:
    """How simulated avatars behave, failure modes included.

    The defaults keep tests fast and are not measurements: delays of zero, or
    short, where reality is slower. :meth:`realistic` gives values nearer a real
    call (see :data:`REALISTIC_AVATAR` for each value's source), and
    :meth:`from_settings` builds one from a mapping, such as recorded timings.

    Parameters:
        join_delay_s: Seconds from the session starting to the avatar joining
            (default: short, for tests).
        never_join: The avatar never comes.
        leave_after_s: The avatar leaves this long after joining (once).
        rejoin_after_s: After leaving by itself, it rejoins this long after, and stays.
        second_avatar: Two avatars join for one session.
        playback_delay_s: Time from receiving audio to speaking it (rendering; a guess).
        sample_rate: Rate of the avatar's microphone (the reference: the earlier
            integration worked at 24 kHz).
        subscribe_delay_s: Seconds from joining to subscribing to ``bey-custom-track``;
            audio sent before then reaches no one (default: at once, for tests; the
            reference: nothing tells the sender when it has subscribed).
        camera: Whether it publishes a camera track, as the real avatar does (the
            reference); synthetic frames, cheap to make.
        camera_lead_s: How long before it listens its camera already plays. The
            avatar renders its face from the audio it receives, so its camera
            starting is the one sign a bot can see that it listens (a guess,
            following the LiveKit integration, which waits for the avatar's video
            before sending audio). 0 (the default) starts the camera as it
            subscribes; a lead is the harsher case where the face shows first, and
            a bot must cover it with a margin.
        video_size: Camera frame ``(width, height)`` (small, to stay cheap; the real
            avatar's size is not known here).
        video_fps: Camera frames per second (the reference: 25 fps, one frame per
            40 ms chunk of audio).
    """

    join_delay_s: float = 1.0
    never_join: bool = False
    leave_after_s: float | None = None
    rejoin_after_s: float | None = None
    second_avatar: bool = False
    playback_delay_s: float = 0.08
    sample_rate: int = 24000
    subscribe_delay_s: float = 0.0
    camera: bool = True
    camera_lead_s: float = 0.0
    video_size: tuple[int, int] = (320, 240)
    video_fps: float = 25.0

    @classmethod
    def realistic(cls, **overrides: Any) -> "AvatarBehaviour":
        """An avatar with the timings of :data:`REALISTIC_AVATAR`.

        Args:
            **overrides: Fields to set otherwise.

        Returns:
            The behaviour.
        """
        return cls(**{**REALISTIC_AVATAR, **overrides})

    @classmethod
    def from_settings(
        cls, settings: Mapping[str, Any], *, known_elsewhere: Collection[str] = ()
    ) -> "AvatarBehaviour":
        """A behaviour from a mapping of field names to values (e.g. recorded timings).

        Fields it does not name keep their defaults; values are converted to the
        fields' types. Keys that are no field are ignored with a warning.

        Args:
            settings: ``{field name: value}``.
            known_elsewhere: Keys to ignore without a warning (settings of the world).

        Returns:
            The behaviour.
        """
        fields = {f.name: f for f in dataclasses.fields(cls)}
        defaults = cls()
        values = {}
        for key, value in settings.items():
            if key in fields:
                values[key] = _coerce(getattr(defaults, key), value)
            elif key not in known_elsewhere:
                warnings.warn(f"unknown avatar setting {key!r} ignored", stacklevel=2)
        return cls(**values)


# Timings of a real avatar, as far as they are known; each is a guess, for the
# harsher plausible case, unless a source is given.
REALISTIC_AVATAR: Mapping[str, Any] = MappingProxyType(
    {
        # A guess: Beyond Presence starts a render worker and connects it to Daily
        # after the session is created; "a few seconds".
        "join_delay_s": 3.0,
        # A guess: the avatar subscribes to the bot's track about a second after it
        # joins; the reference notes that nothing tells the sender when it has.
        "subscribe_delay_s": 1.0,
        # A guess: the avatar shows its face a little before it listens.
        "camera_lead_s": 0.2,
        # A guess: lip-sync rendering holds the audio for a couple of video frames.
        "playback_delay_s": 0.08,
        # The reference: the earlier integration cut audio in 40 ms chunks, one
        # 25 fps video frame each.
        "video_fps": 25.0,
    }
)


class SimulatedAvatar(SimulatedParticipant):
    """The Beyond Presence avatar as it behaves in a Daily room.

    It joins with the session's meeting token, publishes a camera (synthetic
    frames stamped with its audio playout position, see
    :func:`~pipecat_bey.testing.daily_sim.media.read_video_stamp`), subscribes
    to ``bey-custom-track`` (and nothing else) once ``subscribe_delay_s`` has
    passed, records every sample it receives, and speaks each piece it receives
    ``playback_delay_s`` after it arrived, on its microphone. On the
    ``"interrupt"`` app message it drops what it has received and not yet
    spoken *when the message arrives*; audio that arrives after the message,
    even if it was sent before it, is spoken. It leaves when ejected or when its
    token expires.

    Attributes:
        behaviour: How it behaves.
        session_id: The Beyond Presence session it belongs to.
        joined_times: Monotonic time of each of its joins.
        interrupts: Monotonic time each ``"interrupt"`` app message arrived.
        camera: Its camera while it publishes one.
    """

    def __init__(
        self,
        world: ParticipantHost,
        room: Room,
        token: str,
        behaviour: AvatarBehaviour,
        *,
        session_id: str = "",
    ) -> None:
        """Create the avatar (it joins when run).

        Args:
            world: The simulation it runs in.
            room: The room named by the session.
            token: The session's meeting token.
            behaviour: How it behaves.
            session_id: The Beyond Presence session it belongs to.
        """
        super().__init__(world, room, "Avatar", token=token, sample_rate=behaviour.sample_rate)
        self.behaviour = behaviour
        self.session_id = session_id
        self.joined_times: list[float] = []
        self.interrupts: list[float] = []
        self.spoken: list[tuple[float, bytes]] = []
        """``(monotonic time, pcm)`` of each piece it spoke, at its own rate."""
        self.mic_pieces: list[SpokenAudio] = []
        """Each piece it put on its microphone, with when it plays and its track
        position (its own timeline, for lip sync: a camera frame stamped with
        position ``P`` shows the mouth for the sample that plays at
        ``start + (P - position) / sample_rate``)."""
        self.camera: SyntheticCamera | None = None
        self._pending: deque[tuple[float, bytes]] = deque()  # (when to speak it, audio)
        self._playback_resampler: Resampler | None = None
        self._generation = 0  # which join the delayed steps belong to

    @property
    def received_chunks(self) -> list[tuple[float, bytes]]:
        """``(arrival time, pcm)`` of every piece received on ``bey-custom-track``."""
        return [(r.at, r.pcm) for r in self._bey_pieces()]

    def received_audio(self) -> bytes:
        """Everything received on ``bey-custom-track``, with the silence the track carried.

        Returns:
            16-bit mono PCM at the track's rate (``received_sample_rate``).
        """
        pieces = self._bey_pieces()
        if not pieces:
            return b""
        publisher = pieces[0].publisher_id
        pieces = [p for p in pieces if p.publisher_id == publisher]
        return _assemble(pieces, self.subscribed_since_for(publisher, _BEY_TRACK_KEY))

    @property
    def received_sample_rate(self) -> int | None:
        """Sample rate of the audio received, once some has arrived."""
        pieces = self._bey_pieces()
        return pieces[0].sample_rate if pieces else None

    def speech_received_s(self, after: float | None = None) -> float:
        """Seconds of sound received on ``bey-custom-track`` (pieces not all silence).

        Args:
            after: Count only pieces that arrived after this monotonic time.

        Returns:
            The seconds, at the rate of the audio received.
        """
        pieces = self._bey_pieces()
        if not pieces:
            return 0.0
        sound = sum(len(p.pcm) for p in pieces if (after is None or p.at > after) and any(p.pcm))
        return sound / 2 / pieces[0].sample_rate

    def first_speech_at(self) -> float | None:
        """When the first piece that was not all silence arrived on ``bey-custom-track``.

        Returns:
            A monotonic time, or None if none has.
        """
        return next((p.at for p in self._bey_pieces() if any(p.pcm)), None)

    def _bey_pieces(self) -> list[ReceivedAudio]:
        return [r for r in self.received if r.track == _BEY_TRACK_KEY]

    @property
    def joined_at_first(self) -> float | None:
        """When it first joined (monotonic), if it has."""
        return self.joined_times[0] if self.joined_times else None

    @property
    def listening(self) -> bool:
        """Whether it has subscribed to ``bey-custom-track`` since it last joined."""
        # It subscribes by profile, to whoever publishes the track: any id will do.
        return self.in_room and self.subscription("*", _BEY_TRACK_KEY) == "subscribed"

    async def run(self, extra_delay_s: float = 0.0) -> None:
        """Join after the configured delay and follow the behaviour's script.

        Args:
            extra_delay_s: Added to the join delay (a second avatar comes a bit later).
        """
        if self.behaviour.never_join:
            return
        await asyncio.sleep(self.behaviour.join_delay_s + extra_delay_s)
        loop = asyncio.get_running_loop()
        while True:
            # Until it subscribes, it receives nothing: not even what Daily would
            # subscribe it to automatically.
            self._profiles.clear()
            self._participant_settings.clear()
            self.update_profiles({"base": "unsubscribed"})
            try:
                await self.join()
            except JoinError as e:
                logger.warning(f"simulated avatar could not join: {e}")
                return
            self.joined_times.append(time.monotonic())
            self._generation += 1
            self._after(loop, self.behaviour.subscribe_delay_s, self._listen)
            if self.behaviour.camera:
                camera_at = self.behaviour.subscribe_delay_s - self.behaviour.camera_lead_s
                self._after(loop, max(camera_at, 0.0), self._start_camera)
            playback = self.world.spawn(self._play_back(), f"avatar-playback-{self.id}")
            try:
                # It leaves by itself once at most: after a rejoin it stays.
                if self.behaviour.leave_after_s is None or len(self.joined_times) > 1:
                    await self.wait_for(lambda: not self.in_room, timeout=float("inf"))
                    return
                await asyncio.sleep(self.behaviour.leave_after_s)
                await self.leave()
            finally:
                playback.cancel()
                self._pending.clear()
                self.camera = None
            if self.behaviour.rejoin_after_s is None or self.removed_reason:
                return
            await asyncio.sleep(self.behaviour.rejoin_after_s)

    def _after(
        self, loop: asyncio.AbstractEventLoop, delay_s: float, step: Callable[[], None]
    ) -> None:
        """Take a step of this join now or later (not if it has left by then)."""
        generation = self._generation

        def take() -> None:
            if self.in_room and self._generation == generation:
                step()

        if delay_s > 0:
            loop.call_later(delay_s, take)
        else:
            take()

    def _listen(self) -> None:
        # Only the bot's speech matters to it, on the track it is sent on.
        self.update_profiles({"base": {"customAudio": {BEY_TRACK: "subscribed"}}})

    def _start_camera(self) -> None:
        # Its microphone carries silence from now: frames captured before it speaks
        # are stamped with the silence playing, not with the first sample it will say.
        self._mic.start_clock()
        width, height = self.behaviour.video_size
        self.camera = SyntheticCamera(
            width, height, self.behaviour.video_fps, audio_position=self._audio_position
        )
        self.set_publishing(CAMERA, self.camera)

    def _audio_position(self, at: float) -> int:
        return self._mic.played_position(at)

    def _new_microphone(self) -> CustomAudioSource:
        mic = super()._new_microphone()
        rate = mic.sample_rate

        def note(pcm: bytes, start: float, position: int) -> None:
            self.mic_pieces.append(SpokenAudio(start, position, rate, pcm))

        mic.on_write = note
        return mic

    async def _play_back(self) -> None:
        """Speak each piece received once its rendering delay has passed."""
        loop = asyncio.get_running_loop()
        while True:
            await self.wait_for(lambda: bool(self._pending), timeout=float("inf"))
            due, audio = self._pending[0]
            wait = due - time.monotonic()
            if wait > 0:
                # An interrupt may empty the queue meanwhile: look at it again after.
                await asyncio.sleep(wait)
                continue
            self._pending.popleft()
            self.spoken.append((time.monotonic(), audio))
            written: asyncio.Future[int] = loop.create_future()
            self._mic.write_frames(
                audio, completion=lambda n, f=written: f.done() or f.set_result(n)
            )
            await written

    def spoke_s(self, after: float | None = None) -> float:
        """Seconds of speech the avatar spoke (started speaking after ``after``, if given).

        After a barge-in, ``spoke_s(after=avatar.interrupts[0])`` is the stale speech
        it spoke: what was still on its way when ``"interrupt"`` arrived.

        Args:
            after: A monotonic time.

        Returns:
            Seconds of audio it put on its microphone.
        """
        pieces = [pcm for at, pcm in self.spoken if after is None or at > after]
        return sum(len(pcm) for pcm in pieces) / 2 / self.sample_rate

    async def _stream_microphone(self) -> None:
        # The avatar's microphone carries its speech only (auto silence fills the rest).
        await asyncio.Event().wait()

    def on_audio(  # noqa: D102
        self,
        publisher: Member,
        track: str,
        source: CustomAudioSource,
        pcm: bytes,
        start: float,
        position: int,
    ) -> None:
        super().on_audio(publisher, track, source, pcm, start, position)
        if (
            self._playback_resampler is None
            or self._playback_resampler.from_rate != source.sample_rate
        ):
            self._playback_resampler = Resampler(source.sample_rate, self.sample_rate)
        if any(pcm):
            due = time.monotonic() + self.behaviour.playback_delay_s
            self._pending.append((due, self._playback_resampler(pcm)))

    def on_app_message(self, message: Any, sender: Member) -> None:  # noqa: D102
        super().on_app_message(message, sender)
        if message == "interrupt":
            # What has arrived and not been spoken is dropped; what is still on its
            # way (sent before the message, arriving after it) will be spoken.
            self.interrupts.append(time.monotonic())
            self._pending.clear()
