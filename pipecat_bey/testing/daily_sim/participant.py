"""Participant layer: what the scripted participants of a simulated room share.

It sits above the room layer, beside the call client and the REST endpoints. A
participant is given a :class:`ParticipantHost` (the simulation, seen only as
what runs its tasks and hears of changes), never looks one up, and measures
what it received (:mod:`~pipecat_bey.testing.daily_sim.records`): seconds of
speech heard, when sound last arrived, the frames of the video it watches.
The user (``user``) and the avatar (``avatar``) are built on it.
"""

import asyncio
import time
import uuid
from collections import deque
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Protocol

from pipecat_bey.testing.audio import read_wav, resample, speech_segments, to_mono
from pipecat_bey.testing.daily_sim.audio import CustomAudioSource
from pipecat_bey.testing.daily_sim.changes import Changes
from pipecat_bey.testing.daily_sim.member import Member
from pipecat_bey.testing.daily_sim.records import (
    ReceivedAudio,
    ReceivedMessage,
    ReceivedVideo,
    assemble,
)
from pipecat_bey.testing.daily_sim.room import JoinError, Room
from pipecat_bey.testing.daily_sim.tokens import TokenError
from pipecat_bey.testing.daily_sim.tracks import CAMERA, MICROPHONE
from pipecat_bey.testing.daily_sim.video import SentVideo, VideoSource


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
        return assemble(
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
            pcm = assemble(pieces, self.subscribed_since_for(publisher, track))
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
        for key, active in self.reception.subscriptions.effective():
            if key not in self._first_active:
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
