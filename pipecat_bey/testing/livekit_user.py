"""A person in a LiveKit room: ``LiveKitUser`` joins, hears and sees everyone, and records it.

It is a plain participant of the ``livekit`` SDK, as a browser client would be: it
subscribes to every track, decodes audio at 48 kHz mono (16-bit) and records each 10 ms
frame with the monotonic time it arrived, reads the frame number the avatar stand-in's
stamped face shows (``read_visible_frame_number``) from every video frame, and keeps
every track publication it saw and its mute changes over time. Tracks are recorded under
the publisher identity LiveKit reports: the avatar's tracks come from the avatar
(``bey-avatar-agent``), whose attribute ``lk.publish_on_behalf`` names the bot it speaks
for (``publishers_for(bot)`` finds it).

Made by ``LiveKitWorld.join_user`` (or by hand)::

    user = await world.join_user("demo")
    await user.wait_for(lambda: user.heard_s("bey-avatar-agent") > 1.0, 10)
    assert overlap_s(user.voiced_intervals("bot", "pipecat-audio"),
                     user.voiced_intervals("bey-avatar-agent", "microphone")) < 0.1

It needs the ``livekit`` SDK (and numpy).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType

import numpy as np
from livekit import rtc

from pipecat_bey.livekit.tokens import PUBLISH_ON_BEHALF
from pipecat_bey.testing.daily_sim.picture import looks_like_avatar, read_visible_frame_number

HEARD_RATE = 48000
"""The rate the user decodes audio at (mono, 16-bit)."""

VOICED_DBFS = -40.0
"""A 10 ms frame louder than this (RMS, dB of full scale) is voiced."""


__all__ = [
    "HEARD_RATE",
    "VOICED_DBFS",
    "HeardFrame",
    "LiveKitUser",
    "PublicationEvent",
    "SeenFrame",
    "TrackKey",
    "overlap_s",
]


@dataclass(frozen=True)
class TrackKey:
    """One remote track, as LiveKit reports it.

    Attributes:
        identity: The publisher's identity (the avatar's own, for what it publishes on
            behalf of the bot).
        name: The track's name (``"pipecat-audio"``, ...).
        source: Its source: ``"microphone"``, ``"camera"``, ``"screenshare"``,
            ``"screenshare_audio"`` or ``"unknown"``.
        kind: ``"audio"`` or ``"video"``.
    """

    identity: str
    name: str
    source: str
    kind: str

    def matches(self, identity: str | None, track: str | None) -> bool:
        """Whether it is `identity`'s (any if None) and named or sourced `track` (any if None)."""
        if identity is not None and identity != self.identity:
            return False
        return track is None or track in (self.name, self.source)


@dataclass(frozen=True)
class HeardFrame:
    """10 ms of audio as it arrived: 48 kHz mono 16-bit.

    Attributes:
        at: Monotonic time it arrived.
        samples: The samples (int16).
        dbfs: Its RMS level, in dB of full scale.
    """

    at: float
    samples: np.ndarray
    dbfs: float

    @property
    def voiced(self) -> bool:
        """Whether it is louder than ``VOICED_DBFS``."""
        return self.dbfs > VOICED_DBFS


@dataclass(frozen=True)
class SeenFrame:
    """One video frame as it arrived (its pixels are not kept).

    Attributes:
        at: Monotonic time it arrived.
        width: Its width.
        height: Its height.
        number: The frame number its bottom band shows (``read_visible_frame_number``;
            meaningless for a picture that is not stamped).
        avatar: Whether it shows the stand-ins' picture colour (``looks_like_avatar``).
    """

    at: float
    width: int
    height: int
    number: int
    avatar: bool


@dataclass(frozen=True)
class PublicationEvent:
    """Something that happened to a remote track publication.

    Attributes:
        at: Monotonic time the user learned of it.
        event: ``"present"`` (there when the user joined), ``"published"``,
            ``"subscribed"``, ``"muted"``, ``"unmuted"``, ``"unsubscribed"`` or
            ``"unpublished"``.
        key: The track.
        sid: The publication's id.
        muted: Its muted state after the event.
        attributes: The publisher's attributes at the time.
    """

    at: float
    event: str
    key: TrackKey
    sid: str
    muted: bool
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass
class ParticipantRecord:
    """A remote participant as the user saw it.

    Attributes:
        identity: Its identity.
        kind: Its kind (``"standard"``, ``"agent"``, ...).
        attributes: Its latest attributes.
        joined_at: When the user first saw it (its joining, or the user's).
        left_at: When it left, if it did.
    """

    identity: str
    kind: str
    attributes: dict[str, str]
    joined_at: float
    left_at: float | None = None


def overlap_s(first: Iterable[tuple[float, float]], second: Iterable[tuple[float, float]]) -> float:
    """Seconds during which an interval of `first` and one of `second` both run.

    Args:
        first: ``(start, end)`` intervals, not overlapping each other.
        second: Likewise.

    Returns:
        The total overlap.
    """
    others = list(second)
    return sum(
        max(0.0, min(end, other_end) - max(start, other_start))
        for start, end in first
        for other_start, other_end in others
    )


def _source_name(source: int) -> str:
    return rtc.TrackSource.Name(source).removeprefix("SOURCE_").lower()


def _kind_name(kind: int) -> str:
    return rtc.TrackKind.Name(kind).removeprefix("KIND_").lower()


def _frame_number(pixels: bytes, width: int, height: int) -> int:
    try:
        return read_visible_frame_number(pixels, width, height, "I420")
    except ValueError:  # too small a picture to show a number
        return -1


def _shows_avatar(pixels: bytes, width: int, height: int) -> bool:
    try:
        return looks_like_avatar(pixels, width, height, "I420")
    except ValueError:
        return False


def _dbfs(samples: np.ndarray) -> float:
    if not len(samples):
        return -120.0
    power = float(np.mean((samples.astype(np.float64) / 32768.0) ** 2))
    return 10.0 * float(np.log10(power + 1e-12))


class LiveKitUser:
    """A participant that hears and sees everyone in a LiveKit room, and records it.

    Args:
        url: The server's URL (``ws://...``).
        token: Its access token (kept private: not in its repr).
        video: Whether to read the frames of video tracks (their number and colour).

    Attributes:
        room: Its ``rtc.Room``.
        participants: Every remote participant it saw, by identity.
        publications: Every publication event, in order.
    """

    def __init__(self, url: str, token: str, *, video: bool = True) -> None:
        self._url, self._token = url, token
        self._video = video
        self.room = rtc.Room()
        self.participants: dict[str, ParticipantRecord] = {}
        self.publications: list[PublicationEvent] = []
        self._audio: dict[TrackKey, list[HeardFrame]] = {}
        self._frames: dict[TrackKey, list[SeenFrame]] = {}
        self._tasks: set[asyncio.Task] = set()
        self._changed = asyncio.Event()
        self._microphone: rtc.AudioSource | None = None
        self._listen()

    def __repr__(self) -> str:
        identity = self.room.local_participant.identity if self.room.isconnected() else None
        return f"LiveKitUser(identity={identity!r}, participants={sorted(self.participants)})"

    @property
    def identity(self) -> str:
        """Its identity (from its token), once joined."""
        return self.room.local_participant.identity

    # Joining and leaving.

    async def join(self, timeout_s: float = 15.0) -> None:
        """Join the room, subscribing to every track (present and future)."""
        await asyncio.wait_for(
            self.room.connect(self._url, self._token, rtc.RoomOptions(auto_subscribe=True)),
            timeout_s,
        )
        for participant in self.room.remote_participants.values():
            self._participant_joined(participant)
            for publication in participant.track_publications.values():
                self._publication("present", publication, participant)

    async def leave(self) -> None:
        """Stop reading tracks and leave the room. Safe to call more than once."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.room.disconnect()

    async def __aenter__(self) -> LiveKitUser:
        await self.join()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.leave()

    # Speaking.

    async def speak(self, pcm: bytes, sample_rate: int = HEARD_RATE) -> None:
        """Say mono 16-bit PCM into its microphone, in real time (published on first use).

        Args:
            pcm: The audio.
            sample_rate: Its rate (the microphone keeps the first rate used).
        """
        if self._microphone is None:
            self._microphone = rtc.AudioSource(sample_rate, 1)
            track = rtc.LocalAudioTrack.create_audio_track("microphone", self._microphone)
            options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
            await self.room.local_participant.publish_track(track, options)
        rate = self._microphone.sample_rate
        samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], np.int16)
        chunk = rate // 100
        for start in range(0, len(samples), chunk):
            part = samples[start : start + chunk]
            frame = rtc.AudioFrame(part.tobytes(), rate, 1, len(part))
            await self._microphone.capture_frame(frame)

    # What it recorded.

    def tracks(self, identity: str | None = None, kind: str | None = None) -> list[TrackKey]:
        """The tracks it received media of, of `identity` (all if None), of `kind` if given."""
        keys = list(self._audio) + list(self._frames)
        return [k for k in keys if k.matches(identity, None) and kind in (None, k.kind)]

    def publishers_for(self, identity: str) -> list[str]:
        """`identity` and every participant publishing on its behalf (``lk.publish_on_behalf``)."""
        others = [
            record.identity
            for record in self.participants.values()
            if record.attributes.get(PUBLISH_ON_BEHALF) == identity
        ]
        return [identity, *others]

    def audio_frames(
        self, identity: str | None = None, track: str | None = None
    ) -> list[HeardFrame]:
        """Every 10 ms frame heard from matching audio tracks, in arrival order.

        Args:
            identity: The publisher (any if None).
            track: A track name or source (``"microphone"``, ``"pipecat-audio"``); any if None.
        """
        frames = [f for k, fs in self._audio.items() if k.matches(identity, track) for f in fs]
        return sorted(frames, key=lambda frame: frame.at)

    def audio(self, identity: str, track: str | None = None) -> np.ndarray:
        """What one audio track carried, 48 kHz mono int16, its frames end to end.

        Raises:
            ValueError: When more than one track matches (name the track).
        """
        keys = [k for k in self._audio if k.matches(identity, track)]
        if len(keys) > 1:
            raise ValueError(f"{identity!r} has several audio tracks {keys}: name one")
        frames = self._audio[keys[0]] if keys else []
        return np.concatenate([f.samples for f in frames]) if frames else np.zeros(0, np.int16)

    def heard_s(self, identity: str | None = None, track: str | None = None) -> float:
        """Seconds of voice (frames above ``VOICED_DBFS``) heard from matching tracks."""
        voiced = [f for f in self.audio_frames(identity, track) if f.voiced]
        return round(sum(len(f.samples) for f in voiced) / HEARD_RATE, 3)

    def voiced_intervals(
        self, identity: str | None = None, track: str | None = None, *, min_gap_s: float = 0.1
    ) -> list[tuple[float, float]]:
        """When voice arrived from matching tracks: ``(start, end)`` monotonic times.

        A frame that arrived at ``t`` covers ``t - its length`` to ``t``; gaps shorter than
        `min_gap_s` are bridged.
        """
        intervals: list[tuple[float, float]] = []
        for frame in self.audio_frames(identity, track):
            if not frame.voiced:
                continue
            start = frame.at - len(frame.samples) / HEARD_RATE
            if intervals and start - intervals[-1][1] < min_gap_s:
                intervals[-1] = (intervals[-1][0], frame.at)
            else:
                intervals.append((start, frame.at))
        return intervals

    def video_frames(
        self, identity: str | None = None, track: str | None = None
    ) -> list[SeenFrame]:
        """Every video frame seen from matching tracks, in arrival order."""
        frames = [f for k, fs in self._frames.items() if k.matches(identity, track) for f in fs]
        return sorted(frames, key=lambda frame: frame.at)

    def fps(self, identity: str, track: str | None = None) -> float:
        """The frame rate seen from matching video tracks, over the whole time they arrived."""
        frames = self.video_frames(identity, track)
        if len(frames) < 2:
            return 0.0
        return (len(frames) - 1) / (frames[-1].at - frames[0].at)

    def publications_of(self, identity: str) -> list[PublicationEvent]:
        """The publication events of `identity`'s tracks, in order."""
        return [event for event in self.publications if event.key.identity == identity]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        """Wait until ``predicate()`` holds, re-checking it whenever something arrives.

        Returns:
            True once it holds, False if `timeout` seconds passed first.
        """
        deadline = time.monotonic() + timeout
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 0.5))
        return True

    # Room events.

    def _listen(self) -> None:
        room = self.room
        room.on("participant_connected", self._participant_joined)
        room.on("participant_disconnected", self._participant_left)
        room.on("participant_attributes_changed", self._attributes_changed)
        room.on("track_published", lambda pub, who: self._publication("published", pub, who))
        room.on("track_unpublished", lambda pub, who: self._publication("unpublished", pub, who))
        room.on("track_muted", lambda who, pub: self._publication("muted", pub, who))
        room.on("track_unmuted", lambda who, pub: self._publication("unmuted", pub, who))
        room.on("track_subscribed", self._subscribed)
        room.on(
            "track_unsubscribed",
            lambda track, pub, who: self._publication("unsubscribed", pub, who),
        )

    def _participant_joined(self, participant: rtc.RemoteParticipant) -> None:
        if participant.identity not in self.participants:
            self.participants[participant.identity] = ParticipantRecord(
                identity=participant.identity,
                kind=rtc.ParticipantKind.Name(participant.kind)
                .removeprefix("PARTICIPANT_KIND_")
                .lower(),
                attributes=dict(participant.attributes),
                joined_at=time.monotonic(),
            )
        self._changed.set()

    def _participant_left(self, participant: rtc.RemoteParticipant) -> None:
        record = self.participants.get(participant.identity)
        if record is not None:
            record.left_at = time.monotonic()
        self._changed.set()

    def _attributes_changed(self, changed: dict, participant: rtc.Participant) -> None:
        record = self.participants.get(participant.identity)
        if record is not None:
            record.attributes = dict(participant.attributes)

    def _publication(
        self, event: str, publication: rtc.TrackPublication, participant: rtc.Participant
    ) -> None:
        if participant.identity not in self.participants and isinstance(
            participant, rtc.RemoteParticipant
        ):
            self._participant_joined(participant)
        self.publications.append(
            PublicationEvent(
                at=time.monotonic(),
                event=event,
                key=self._key(publication, participant),
                sid=publication.sid,
                muted=publication.muted,
                attributes=dict(participant.attributes),
            )
        )
        self._changed.set()

    @staticmethod
    def _key(publication: rtc.TrackPublication, participant: rtc.Participant) -> TrackKey:
        return TrackKey(
            identity=participant.identity,
            name=publication.name,
            source=_source_name(publication.source),
            kind=_kind_name(publication.kind),
        )

    def _subscribed(
        self,
        track: rtc.Track,
        publication: rtc.RemoteTrackPublication,
        participant: rtc.RemoteParticipant,
    ) -> None:
        self._publication("subscribed", publication, participant)
        key = self._key(publication, participant)
        if track.kind == rtc.TrackKind.KIND_AUDIO:
            self._spawn(self._hear(track, self._audio.setdefault(key, [])))
        elif self._video:
            self._spawn(self._see(track, self._frames.setdefault(key, [])))

    def _spawn(self, coroutine: object) -> None:
        task = asyncio.ensure_future(coroutine)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _hear(self, track: rtc.Track, frames: list[HeardFrame]) -> None:
        stream = rtc.AudioStream.from_track(
            track=track, sample_rate=HEARD_RATE, num_channels=1, frame_size_ms=10
        )
        try:
            async for event in stream:
                samples = np.frombuffer(event.frame.data, np.int16).copy()
                frames.append(HeardFrame(time.monotonic(), samples, _dbfs(samples)))
                self._changed.set()
        finally:
            await stream.aclose()

    async def _see(self, track: rtc.Track, frames: list[SeenFrame]) -> None:
        stream = rtc.VideoStream(track)
        try:
            async for event in stream:
                at = time.monotonic()
                frame = event.frame
                if frame.type != rtc.VideoBufferType.I420:
                    frame = frame.convert(rtc.VideoBufferType.I420)
                pixels = bytes(frame.data)
                frames.append(
                    SeenFrame(
                        at=at,
                        width=frame.width,
                        height=frame.height,
                        number=_frame_number(pixels, frame.width, frame.height),
                        avatar=_shows_avatar(pixels, frame.width, frame.height),
                    )
                )
                self._changed.set()
        finally:
            await stream.aclose()
