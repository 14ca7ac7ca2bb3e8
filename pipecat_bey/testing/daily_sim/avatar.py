"""Participant layer: the simulated Beyond Presence avatar, and how it behaves.

:class:`AvatarBehaviour` says how avatars behave (when they join, listen, show
their face and speak, and the failures to inject); a :class:`SimulatedAvatar`
follows it in a room, speaking what it receives on ``bey-custom-track`` on its
microphone and showing a stamped synthetic camera.
"""

import asyncio
import dataclasses
import time
import warnings
from collections import deque
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from loguru import logger

from pipecat_bey.testing.daily_sim.audio import CustomAudioSource, Resampler
from pipecat_bey.testing.daily_sim.member import Member
from pipecat_bey.testing.daily_sim.participant import ParticipantHost, SimulatedParticipant
from pipecat_bey.testing.daily_sim.realistic import REALISTIC
from pipecat_bey.testing.daily_sim.records import ReceivedAudio, SpokenAudio, assemble
from pipecat_bey.testing.daily_sim.room import JoinError, Room
from pipecat_bey.testing.daily_sim.tracks import CAMERA, custom_audio
from pipecat_bey.testing.daily_sim.video import SyntheticCamera

BEY_TRACK = "bey-custom-track"
_BEY_TRACK_KEY = custom_audio(BEY_TRACK)


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
    call (see :data:`~pipecat_bey.testing.daily_sim.realistic.REALISTIC` for each
    value's source), and
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
        """An avatar with the realistic timings of an avatar (those of ``REALISTIC`` it has).

        Args:
            **overrides: Fields to set otherwise.

        Returns:
            The behaviour.
        """
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{**{k: v for k, v in REALISTIC.items() if k in fields}, **overrides})

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


class SimulatedAvatar(SimulatedParticipant):
    """The Beyond Presence avatar as it behaves in a Daily room.

    It joins with the session's meeting token, publishes a camera (synthetic
    frames stamped with its audio playout position, see
    :func:`~pipecat_bey.testing.daily_sim.picture.read_video_stamp`), subscribes
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
        return assemble(pieces, self.subscribed_since_for(publisher, _BEY_TRACK_KEY))

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
            self.reception.subscriptions.clear()
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
