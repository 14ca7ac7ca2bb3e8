"""A Beyond Presence avatar stand-in for LiveKit rooms, built on LiveKit's own avatar side.

``LiveKitAvatar`` joins a room of a real LiveKit server (see ``livekit_server``) with the
token it is given, as the Beyond Presence avatar does: that token is the avatar's, minted
as the LiveKit plugin mints it (``avatar_token``: identity ``bey-avatar-agent``, kind
``agent``, attribute ``lk.publish_on_behalf`` = the bot's identity). It then runs
livekit-agents' avatar side, unchanged:

- ``DataStreamAudioReceiver`` takes the bot's speech, sent as byte streams on
  ``lk.audio_stream`` (one per utterance, ``sample_rate``/``num_channels`` attributes),
  answers the RPC ``lk.clear_buffer`` (barge-in: what it buffered is dropped), and calls
  the bot's RPCs ``lk.playback_started`` and ``lk.playback_finished``
  (``{"playback_position": s, "interrupted": bool}``) for each utterance;
- ``AvatarRunner`` publishes the avatar's microphone and camera, in sync
  (``AVSynchronizer``), from ``StampedFace``, the video generator here: it speaks what it
  received, at its own rate, and shows a face that can be recognised after video coding,
  the picture of the Daily stand-in (``pipecat_bey.testing.daily_sim.picture``): one flat
  colour, ``AVATAR_COLOR``, with the frame number in 16 black/white cells along the bottom
  (``read_visible_frame_number``), and in its first 16 bytes the frame number and the
  audio position it shows (``read_video_stamp``; lossy coding destroys that part).

It records what it received and did, for tests to judge (``segments``, ``clears``,
``playback_finished``, ``spoken_s``)::

    async with LiveKitAvatar(server.url, avatar_token(key, secret, room, "bot")) as avatar:
        ...  # the bot speaks to avatar.identity; its video is avatar's camera

It needs ``livekit-agents`` (and ``livekit``, ``livekit-api``), which the LiveKit tests
install.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import TracebackType

import numpy as np
from livekit import rtc
from livekit.agents.voice.avatar import (
    AudioSegmentEnd,
    AvatarOptions,
    AvatarRunner,
    DataStreamAudioReceiver,
    VideoGenerator,
)

from pipecat_bey.livekit.tokens import AVATAR_IDENTITY, PUBLISH_ON_BEHALF, mint_avatar_token
from pipecat_bey.testing.daily_sim.picture import AVATAR_COLOR, VideoStamp, synthetic_frame

__all__ = [
    "AVATAR_COLOR",
    "AVATAR_IDENTITY",
    "PUBLISH_ON_BEHALF",
    "LiveKitAvatar",
    "PlaybackFinished",
    "ReceivedSegment",
    "StampedFace",
    "avatar_token",
]


def avatar_token(
    api_key: str,
    api_secret: str,
    room: str,
    bot_identity: str,
    *,
    identity: str = AVATAR_IDENTITY,
    name: str | None = None,
    ttl_s: float = 3600.0,
) -> str:
    """The avatar's access token, as the service mints it (``mint_avatar_token``).

    Args:
        api_key: The LiveKit API key.
        api_secret: Its secret.
        room: The bot's room.
        bot_identity: The bot's identity: the avatar publishes on its behalf.
        identity: The avatar's identity.
        name: The avatar's display name (default: none).
        ttl_s: Its lifetime, in seconds.

    Returns:
        A JWT.
    """
    return mint_avatar_token(
        api_key, api_secret, room=room, bot_identity=bot_identity, ttl_s=ttl_s,
        identity=identity, name=name,
    )  # fmt: skip


@dataclass
class ReceivedSegment:
    """One utterance as it reached the avatar's renderer (after the receiver's buffer).

    Speech arrives faster than real time, so an utterance may have arrived whole long
    before it finished playing.

    Attributes:
        sample_rate: Its rate, as the byte stream's attributes said.
        num_channels: Its channels, likewise.
        pcm: 16-bit PCM received, interleaved.
        started_at: Monotonic time its first audio arrived.
        ended_at: When its stream ended, or it was cleared before that, if either happened.
        cleared: Whether ``lk.clear_buffer`` came while it played (or before it did): what
            was left of it was dropped.
    """

    sample_rate: int
    num_channels: int
    pcm: bytearray = field(default_factory=bytearray)
    started_at: float = field(default_factory=time.monotonic)
    ended_at: float | None = None
    cleared: bool = False

    @property
    def duration_s(self) -> float:
        """Seconds of audio received."""
        return len(self.pcm) / 2 / self.num_channels / self.sample_rate


@dataclass(frozen=True)
class PlaybackFinished:
    """A ``lk.playback_finished`` notification the avatar sent.

    Attributes:
        playback_position: Seconds of the utterance it played.
        interrupted: Whether it was cut short by ``lk.clear_buffer``.
        at: Monotonic time it was sent.
    """

    playback_position: float
    interrupted: bool
    at: float


class StampedFace(VideoGenerator):
    """The avatar's renderer: speaks what it receives and shows a stamped face.

    It yields, for each video frame, the frame (at ``fps``) and then the audio it speaks
    during that frame (``sample_rate / fps`` samples) while it has any; when idle, frames
    only. The ``AVSynchronizer`` of ``AvatarRunner`` paces both. Each frame is
    ``synthetic_frame`` of the Daily stand-in, in I420, stamped with its number and the
    audio position it shows: samples spoken (at ``sample_rate``) before the frame's audio.
    An utterance's end yields ``AudioSegmentEnd`` once all of it was spoken.

    Args:
        width: Frame width.
        height: Frame height.
        fps: Frames per second.
        sample_rate: The rate it speaks at (the avatar's microphone).
    """

    def __init__(self, width: int, height: int, fps: float, sample_rate: int) -> None:
        self.width, self.height, self.fps, self.sample_rate = width, height, fps, sample_rate
        self._chunk = max(1, round(sample_rate / fps))
        self._queue: deque[rtc.AudioFrame | AudioSegmentEnd] = deque()
        self._carry = np.zeros(0, np.int16)
        self._resampler: rtc.AudioResampler | None = None
        self._resampler_rate = 0
        self._clears = 0
        self.frames = 0
        """Frames yielded so far."""
        self.spoken_samples = 0
        """Samples of speech yielded so far, at ``sample_rate``."""
        self.spoken: list[tuple[float, int]] = []
        """Each piece of speech yielded: its monotonic time and its samples."""

    async def push_audio(self, frame: rtc.AudioFrame | AudioSegmentEnd) -> None:
        """Queue received audio, in chunks of one video frame, or the utterance's end."""
        if isinstance(frame, AudioSegmentEnd):
            if self._resampler is not None:
                for out in self._resampler.flush():
                    self._add(out)
                self._resampler = None
            if len(self._carry):
                self._queue.append(self._audio_frame(self._carry))
                self._carry = np.zeros(0, np.int16)
            self._queue.append(frame)
            return
        mono = _mono(frame)
        if mono.sample_rate == self.sample_rate:
            self._add(mono)
            return
        if self._resampler is None or self._resampler_rate != mono.sample_rate:
            self._resampler = rtc.AudioResampler(mono.sample_rate, self.sample_rate, num_channels=1)
            self._resampler_rate = mono.sample_rate
        for out in self._resampler.push(mono):
            self._add(out)

    def _add(self, frame: rtc.AudioFrame) -> None:
        samples = np.concatenate([self._carry, np.frombuffer(frame.data, np.int16)])
        whole = len(samples) - len(samples) % self._chunk
        for start in range(0, whole, self._chunk):
            self._queue.append(self._audio_frame(samples[start : start + self._chunk]))
        self._carry = samples[whole:].copy()

    def _audio_frame(self, samples: np.ndarray) -> rtc.AudioFrame:
        return rtc.AudioFrame(samples.tobytes(), self.sample_rate, 1, len(samples))

    def clear_buffer(self) -> None:
        """Drop everything received and not yet spoken (barge-in)."""
        self._queue.clear()
        self._carry = np.zeros(0, np.int16)
        self._resampler = None
        self._clears += 1

    def _video_frame(self) -> rtc.VideoFrame:
        stamp = VideoStamp(self.frames, self.spoken_samples)
        pixels = synthetic_frame(self.width, self.height, "I420", stamp)
        self.frames += 1
        return rtc.VideoFrame(self.width, self.height, rtc.VideoBufferType.I420, pixels)

    def __aiter__(self) -> AsyncIterator[rtc.VideoFrame | rtc.AudioFrame | AudioSegmentEnd]:
        return self._frames()

    async def _frames(self) -> AsyncIterator[rtc.VideoFrame | rtc.AudioFrame | AudioSegmentEnd]:
        while True:
            if self._queue and isinstance(self._queue[0], AudioSegmentEnd):
                yield self._queue.popleft()
                continue
            audio = self._queue.popleft() if self._queue else None
            cleared = self._clears
            yield self._video_frame()
            # A barge-in while the frame was taken drops the audio that goes with it.
            if isinstance(audio, rtc.AudioFrame) and cleared == self._clears:
                self.spoken_samples += audio.samples_per_channel
                self.spoken.append((time.monotonic(), audio.samples_per_channel))
                yield audio


def _mono(frame: rtc.AudioFrame) -> rtc.AudioFrame:
    if frame.num_channels == 1:
        return frame
    samples = np.frombuffer(frame.data, np.int16).reshape(-1, frame.num_channels)
    mono = samples.mean(axis=1).astype(np.int16)
    return rtc.AudioFrame(mono.tobytes(), frame.sample_rate, 1, len(mono))


class _RecordingReceiver(DataStreamAudioReceiver):
    """LiveKit's receiver, noting each playback notification it sends."""

    def __init__(self, room: rtc.Room, *, sender_identity: str, avatar: LiveKitAvatar) -> None:
        super().__init__(room, sender_identity=sender_identity)
        self._avatar = avatar

    def notify_playback_finished(self, playback_position: float, interrupted: bool) -> None:
        self._avatar._playback_finished(playback_position, interrupted)
        super().notify_playback_finished(playback_position, interrupted)

    def notify_playback_started(self) -> None:
        if not self._avatar.calls_playback_started:
            return  # an avatar worker that does not make the optional call
        self._avatar.playback_started.append(time.monotonic())
        super().notify_playback_started()


class _RecordingFace(StampedFace):
    """The face, noting what reaches it, per utterance."""

    def __init__(self, avatar: LiveKitAvatar, options: AvatarOptions) -> None:
        super().__init__(
            options.video_width, options.video_height, options.video_fps, options.audio_sample_rate
        )
        self._avatar = avatar

    async def push_audio(self, frame: rtc.AudioFrame | AudioSegmentEnd) -> None:
        self._avatar._received(frame)
        await super().push_audio(frame)


class LiveKitAvatar:
    """The Beyond Presence avatar in a LiveKit room, as an async context manager.

    Args:
        url: The LiveKit server's URL (``ws://...``).
        token: The avatar's token (``avatar_token``).
        sender_identity: Whose speech it takes; by default the participant its token's
            ``lk.publish_on_behalf`` attribute names (the bot).
        width: Camera width.
        height: Camera height.
        fps: Camera frames per second.
        sample_rate: The rate of its microphone (the plugin sends 16 kHz speech).
        join_timeout_s: How long joining, and waiting for the bot to be in the room, may
            take.
        calls_playback_started: Whether it calls the bot's ``lk.playback_started`` as each
            utterance starts playing. livekit-agents' receiver (1.8.9) does, and so by
            default does this avatar; LiveKit's protocol makes the call optional ("where
            registered"), and whether Beyond Presence's worker makes it is not published:
            False plays the avatar that does not.
        leave_after_s: In ``LiveKitWorld``: it leaves by itself this long after joining
            (its worker crashing, say), with ``left_reason`` "left". None: it stays.

    One per bot in a process: livekit-agents keeps the receivers' ``lk.clear_buffer``
    handlers process-wide, one per sender.

    Attributes:
        segments: Each utterance as it reached the renderer.
        arrivals: Each piece of audio that reached the renderer: its monotonic time and its
            seconds.
        clears: Monotonic time of each ``lk.clear_buffer`` it answered.
        playback_started: When it sent each ``lk.playback_started``.
        playback_finished: Each ``lk.playback_finished`` it sent.
        face: Its renderer, once started (frames and samples it produced).
        joined_at: Monotonic time it joined the room, once it has.
        left_at: When it left the room (or gave up joining), once it has.
        left_reason: Why: the server's ``rtc.DisconnectReason`` name when the server made
            it leave (``"PARTICIPANT_REMOVED"`` when the bot removed it through the server
            API, ``"ROOM_DELETED"`` when the room ended, ...), else the reason given to
            ``aclose`` (``"closed"`` by default). When the server disconnects it, it
            closes itself.
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        sender_identity: str | None = None,
        width: int = 320,
        height: int = 240,
        fps: float = 25.0,
        sample_rate: int = 16000,
        join_timeout_s: float = 20.0,
        calls_playback_started: bool = True,
        leave_after_s: float | None = None,
    ) -> None:
        self._url, self._token = url, token
        self.calls_playback_started = calls_playback_started
        self.leave_after_s = leave_after_s
        self._sender_identity = sender_identity
        self._options = AvatarOptions(
            video_width=width,
            video_height=height,
            video_fps=fps,
            audio_sample_rate=sample_rate,
            audio_channels=1,
        )
        self._join_timeout_s = join_timeout_s
        self.room = rtc.Room()
        self.segments: list[ReceivedSegment] = []
        self.arrivals: list[tuple[float, float]] = []
        self.clears: list[float] = []
        self.playback_started: list[float] = []
        self.playback_finished: list[PlaybackFinished] = []
        self.face: StampedFace | None = None
        self._receiver: _RecordingReceiver | None = None
        self._runner: AvatarRunner | None = None
        self._open: ReceivedSegment | None = None
        self.joined_at: float | None = None
        self.left_at: float | None = None
        self.left_reason: str | None = None
        self._left = asyncio.Event()
        self._closing: asyncio.Task | None = None
        self.room.on("disconnected", self._disconnected)

    def __repr__(self) -> str:
        state = self.left_reason or ("in the room" if self.joined_at else "not joined")
        return f"LiveKitAvatar(url={self._url!r}, {state})"

    @property
    def removed(self) -> bool:
        """Whether the server made it leave: the bot removed it, or the room ended."""
        return self.left_reason in ("PARTICIPANT_REMOVED", "ROOM_DELETED")

    async def wait_left(self, timeout_s: float) -> bool:
        """Wait until it has left the room; False if `timeout_s` passed first."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._left.wait(), timeout_s)
        return self._left.is_set()

    def _disconnected(self, reason: int) -> None:
        """The server disconnected it (removed, room ended...): note why and close."""
        if self.left_reason is not None:
            return  # it is closing on its own
        self._note_left(rtc.DisconnectReason.Name(reason))
        self._closing = asyncio.ensure_future(self.aclose())

    def _note_left(self, reason: str) -> None:
        if self.left_reason is None:
            self.left_reason = reason
            self.left_at = time.monotonic()
            self._left.set()

    @property
    def identity(self) -> str:
        """Its identity in the room (from its token), once joined."""
        return self.room.local_participant.identity

    @property
    def sender_identity(self) -> str | None:
        """Whose speech it takes, once joined."""
        return self._sender_identity

    @property
    def spoken_s(self) -> float:
        """Seconds of speech it has put on its microphone."""
        if self.face is None:
            return 0.0
        return self.face.spoken_samples / self.face.sample_rate

    def spoke_s(self, after: float | None = None) -> float:
        """Seconds of speech it put on its microphone (after monotonic time `after`, if given)."""
        if self.face is None:
            return 0.0
        spoken = sum(n for at, n in self.face.spoken if after is None or at > after)
        return spoken / self.face.sample_rate

    def received_s(self, after: float | None = None) -> float:
        """Seconds of audio it received (after monotonic time `after`, if given)."""
        return sum(s for at, s in self.arrivals if after is None or at > after)

    def received_audio(self) -> tuple[bytes, int]:
        """Everything it received, utterance after utterance, as mono 16-bit PCM and its rate.

        Raises:
            ValueError: When its utterances came at different rates or channel counts.
        """
        formats = {(s.sample_rate, s.num_channels) for s in self.segments}
        if len(formats) > 1:
            raise ValueError(f"utterances came in several formats: {sorted(formats)}")
        if not formats:
            return b"", 16000
        rate, channels = formats.pop()
        pcm = np.frombuffer(b"".join(bytes(s.pcm) for s in self.segments), np.int16)
        if channels > 1:
            pcm = pcm[: len(pcm) // channels * channels].reshape(-1, channels).mean(axis=1)
        return pcm.astype(np.int16).tobytes(), rate

    async def start(self) -> None:
        """Join, wait for the bot to be in the room, and start speaking and showing its face.

        Raises:
            asyncio.TimeoutError: When joining or the bot's arrival takes over
                ``join_timeout_s``.
            ValueError: When no sender is given and the token names none.
        """
        try:
            await asyncio.wait_for(self._start(), self._join_timeout_s)
        except BaseException:
            await self.aclose("join_failed")
            raise

    async def _start(self) -> None:
        # It listens to byte streams and RPCs only: it subscribes to no track.
        await self.room.connect(self._url, self._token, rtc.RoomOptions(auto_subscribe=False))
        self.joined_at = time.monotonic()
        if self._sender_identity is None:
            self._sender_identity = self.room.local_participant.attributes.get(PUBLISH_ON_BEHALF)
        if not self._sender_identity:
            raise ValueError(f"no sender_identity given and the token sets no {PUBLISH_ON_BEHALF}")
        self.face = _RecordingFace(self, self._options)
        self._receiver = _RecordingReceiver(
            self.room, sender_identity=self._sender_identity, avatar=self
        )
        self._receiver.on("clear_buffer", self._cleared)
        self._runner = AvatarRunner(
            self.room, audio_recv=self._receiver, video_gen=self.face, options=self._options
        )
        await self._runner.start()  # waits for the sender to be in the room

    def _received(self, frame: rtc.AudioFrame | AudioSegmentEnd) -> None:
        if isinstance(frame, AudioSegmentEnd):
            if self._open is not None:
                self._open.ended_at = time.monotonic()
                self._open = None
            return
        if self._open is None:
            self._open = ReceivedSegment(frame.sample_rate, frame.num_channels)
            self.segments.append(self._open)
        self._open.pcm += bytes(frame.data)
        self.arrivals.append((time.monotonic(), frame.samples_per_channel / frame.sample_rate))

    def _cleared(self) -> None:
        now = time.monotonic()
        self.clears.append(now)
        # The utterance playing (each one that finished playing was notified, in order),
        # whether or not all of it had arrived; the rest of its stream is dropped.
        playing = len(self.playback_finished)
        if playing < len(self.segments):
            segment = self.segments[playing]
            segment.cleared = True
            if segment.ended_at is None:
                segment.ended_at = now
        self._open = None

    def _playback_finished(self, playback_position: float, interrupted: bool) -> None:
        self.playback_finished.append(
            PlaybackFinished(playback_position, interrupted, time.monotonic())
        )

    async def aclose(self, reason: str = "closed") -> None:
        """Stop rendering and leave the room. Safe to call more than once.

        Args:
            reason: Why, for ``left_reason``, unless it has left already.
        """
        self._note_left(reason)
        runner, self._runner = self._runner, None
        if runner is not None:
            with contextlib.suppress(Exception):
                await runner.aclose()
        elif self._receiver is not None:
            with contextlib.suppress(Exception):
                await self._receiver.aclose()
        self._receiver = None
        with contextlib.suppress(Exception):
            await self.room.disconnect()

    async def __aenter__(self) -> LiveKitAvatar:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
