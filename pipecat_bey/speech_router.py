"""Where the bot's speech goes: the avatar service's decisions, with no I/O.

The router is told what happens (a speech frame, the avatar ready or lost, an
interruption, the bot's microphone speaking) and answers with the frames to
push downstream, in order. It never pushes, sleeps or logs, so every decision
can be tested on frames alone, without a pipeline or a clock.

Speech is audio plus the TTS start and stop around it. While the avatar is on
its way the speech is held; once it listens, speech is tagged for its track
(``transport_destination``) and pipecat's output transport does the rest; with
no avatar the bot speaks in its own voice, or (without fallback) not at all.
"""

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

import numpy as np
from pipecat.frames.frames import Frame, OutputAudioRawFrame, TTSStartedFrame, TTSStoppedFrame


class Route(Enum):
    """Where the bot's speech goes now."""

    HOLDING = "holding"  # the avatar is on its way: keep speech for it
    AVATAR = "avatar"  # the avatar is in the room and listening
    BOT_VOICE = "bot_voice"  # no avatar: the bot speaks with its own microphone
    MUTED = "muted"  # no avatar and no fallback: speech is dropped


class NoticeKind(Enum):
    """What a notice is about."""

    HELD_SPEECH_OVERFLOW = "held_speech_overflow"  # first drop of held speech in an episode
    SPEECH_MUTED = "speech_muted"  # first speech dropped for want of avatar and fallback
    HELD_SPEECH_RELEASED = "held_speech_released"  # held speech went where speech goes now
    AVATAR_WAITS = "avatar_waits"  # a late avatar takes over once the bot's own voice ends
    UNSENT_SPEECH_RECLAIMED = "unsent_speech_reclaimed"  # a lost avatar's unsent speech


@dataclass(frozen=True)
class Notice:
    """Something the service should tell its user about (each at most once per episode).

    Parameters:
        kind: What it is about.
        message: What to say, naming the setting that changes it where there is one.
        warning: Whether it is a warning (else information).
    """

    kind: NoticeKind
    message: str
    warning: bool = True


@dataclass
class Routing:
    """The router's answer.

    Parameters:
        frames: Frames to push downstream now, in order.
        notices: What to tell the user about (each at most once per episode).
    """

    frames: list[Frame] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)


@dataclass(frozen=True)
class Interruption:
    """What an interruption means here.

    Parameters:
        destination: The output destination whose queued audio must be cleared
            (the avatar's track), or None for the bot's own output.
        dropped_held_s: Seconds of held speech the interruption dropped.
    """

    destination: str | None
    dropped_held_s: float


def is_speech(frame: Frame) -> bool:
    """Tell whether a frame is the bot's voice (and not already routed elsewhere).

    Args:
        frame: A downstream frame.

    Returns:
        True for TTS audio and the TTS start and stop around it.
    """
    return (
        isinstance(frame, (OutputAudioRawFrame, TTSStartedFrame, TTSStoppedFrame))
        and frame.transport_destination is None
    )


def duration_s(frame: OutputAudioRawFrame) -> float:
    """Seconds of audio a frame carries.

    Args:
        frame: The frame.

    Returns:
        Its duration.
    """
    bytes_per_s = frame.sample_rate * frame.num_channels * 2
    return len(frame.audio) / bytes_per_s if bytes_per_s else 0.0


class SpeechRouter:
    """Decides where each piece of the bot's speech goes.

    Example::

        router = SpeechRouter(track="bey-custom-track", max_held_s=30, out_channels=1)
        router.speech(frame).frames   # [] while the avatar joins: held
        router.avatar_ready().frames  # the held speech, tagged for the track
    """

    def __init__(
        self, *, track: str, max_held_s: float, out_channels: int, fallback: bool = True
    ) -> None:
        """Create the router; speech is held until the avatar is ready or lost.

        Args:
            track: The output destination the avatar listens on.
            max_held_s: Most seconds of speech held; the oldest goes beyond that.
            out_channels: Channels of the output transport (stereo TTS is mixed
                down for a mono output).
            fallback: Whether the bot speaks in its own voice without an avatar.
        """
        self._track = track
        self._max_held_s = max_held_s
        self._out_channels = out_channels
        self._fallback = fallback
        self._route = Route.HOLDING
        self._held: deque[Frame] = deque()
        self._held_s = 0.0
        self._partial = b""
        self._microphone_speaking = False
        self._episode_dropped_s = 0.0
        self._muted_noticed = False
        self._to_avatar_since_interrupt = False
        self._avatar_interrupted = False
        self._avatar_waiting = False  # ready, but the bot's own voice still plays
        self.dropped_s = 0.0
        """Seconds of held speech dropped so far, for want of room."""

    @property
    def route(self) -> Route:
        """Where speech goes now."""
        return self._route

    @property
    def held_s(self) -> float:
        """Seconds of speech held now."""
        return self._held_s

    @property
    def spoke_since_interrupt(self) -> bool:
        """Whether audio went to the avatar since the last interruption.

        Until it does, repeating ``"interrupt"`` can only drop stale speech.
        """
        return self._to_avatar_since_interrupt

    @property
    def avatar_voice_is_stale(self) -> bool:
        """Whether the avatar's voice now is speech a barge-in cut, still on its way.

        After an interruption of the avatar, until new speech went to it, what it
        says is what it was told to stop saying: a relay does not pass it on.
        """
        return self._avatar_interrupted and not self._to_avatar_since_interrupt

    def passes_avatar_media(self, voice: bool) -> bool:
        """Whether a relayed avatar's voice (or face) goes on to the user now.

        While the avatar is on its way or speaks for the bot; not while the bot
        speaks in its own voice (an avatar given up on may still come and show
        its face), and not the voice that a barge-in cut.

        Args:
            voice: True for the avatar's voice, False for its face.

        Returns:
            True if it goes on.
        """
        return self.for_avatar and not (voice and self.avatar_voice_is_stale)

    @property
    def for_avatar(self) -> bool:
        """Whether speech is for the avatar now: held for it, or sent to it."""
        return self._route in (Route.HOLDING, Route.AVATAR)

    @property
    def microphone_on(self) -> bool:
        """Whether the bot's own microphone should be published now.

        It is while the bot speaks in its own voice, and after the avatar took
        over until what the bot already said in its own voice has played out.
        """
        return self._route is Route.BOT_VOICE or (
            self._route is Route.AVATAR and self._microphone_speaking
        )

    def speech(self, frame: Frame) -> Routing:
        """Route one speech frame (see :func:`is_speech`).

        Args:
            frame: TTS audio, ``TTSStartedFrame`` or ``TTSStoppedFrame``.

        Returns:
            What to push now (nothing while holding).
        """
        if isinstance(frame, OutputAudioRawFrame):
            whole = self._whole_samples(frame)
            if whole is None:
                return Routing()
            frame = whole
        elif isinstance(frame, TTSStoppedFrame):
            self._partial = b""
        routing = Routing()
        self._send(frame, routing)
        return routing

    def avatar_ready(self) -> Routing:
        """The avatar listens: speech goes to its track, held speech first.

        An avatar that comes late, while the bot speaks in its own voice, takes
        over once that voice has played out (:meth:`microphone_speaking`): one
        voice, and no silent face beside the bot's voice.

        Returns:
            The held speech, tagged for the track (nothing while the avatar waits).
        """
        if self._route is Route.BOT_VOICE and self._microphone_speaking:
            self._avatar_waiting = True
            return Routing(
                notices=[
                    Notice(
                        NoticeKind.AVATAR_WAITS,
                        "the avatar is ready; it speaks for the bot once the bot's own "
                        "voice has played out",
                        warning=False,
                    )
                ]
            )
        self._avatar_waiting = False
        self._route = Route.AVATAR
        return self._release()

    def avatar_lost(self, unsent: Sequence[Frame] = ()) -> Routing:
        """The avatar is not coming, or left: the bot's own voice, or silence.

        Args:
            unsent: Speech that was on its way to the avatar and never went out, taken back
                from the room (it comes before the held speech).

        Returns:
            The unsent and the held speech, for the bot's own voice (or nothing without
            fallback).
        """
        self._avatar_waiting = False
        self._route = Route.BOT_VOICE if self._fallback else Route.MUTED
        routing = Routing()
        unsent_s = sum(duration_s(f) for f in unsent if isinstance(f, OutputAudioRawFrame))
        if unsent_s:
            where = "the bot's own voice" if self._fallback else "nobody (no fallback)"
            routing.notices.append(
                Notice(
                    NoticeKind.UNSENT_SPEECH_RECLAIMED,
                    f"{unsent_s:.2f} s of speech not yet sent to the lost avatar goes to {where}",
                    warning=False,
                )
            )
        for frame in unsent:
            frame.transport_destination = None
            self._send(frame, routing)
        released = self._release()
        routing.frames += released.frames
        routing.notices += released.notices
        return routing

    def interrupt(self) -> Interruption:
        """Barge-in: drop held speech and any partial sample.

        Returns:
            Which destination's queue to clear, and how much held speech went.
        """
        dropped = self._held_s
        self._held.clear()
        self._held_s = 0.0
        self._partial = b""
        self._episode_dropped_s = 0.0
        self._to_avatar_since_interrupt = False
        self._avatar_interrupted = self._route is Route.AVATAR
        destination = self._track if self._route is Route.AVATAR else None
        return Interruption(destination=destination, dropped_held_s=dropped)

    def microphone_speaking(self, speaking: bool) -> Routing:
        """Note the output transport's report on the bot's own microphone.

        Args:
            speaking: True on ``BotStartedSpeakingFrame``, False on
                ``BotStoppedSpeakingFrame`` (for the microphone destination).

        Returns:
            What a waiting avatar taking over sends (see :meth:`avatar_ready`).
        """
        self._microphone_speaking = speaking
        if not speaking and self._avatar_waiting:
            return self.avatar_ready()
        return Routing()

    def _whole_samples(self, frame: OutputAudioRawFrame) -> OutputAudioRawFrame | None:
        """Whole samples only, mixed down to the output's channels; None if nothing is left.

        A TTS may split a sample across frames: the odd bytes wait for the next
        frame instead of shifting every sample after them.
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

    def _send(self, frame: Frame, routing: Routing) -> None:
        if self._route is Route.AVATAR:
            frame.transport_destination = self._track
            routing.frames.append(frame)
            if isinstance(frame, OutputAudioRawFrame):
                self._to_avatar_since_interrupt = True
        elif self._route is Route.BOT_VOICE:
            routing.frames.append(frame)
        elif self._route is Route.HOLDING:
            self._hold(frame, routing)
        elif isinstance(frame, OutputAudioRawFrame) and not self._muted_noticed:
            self._muted_noticed = True
            routing.notices.append(
                Notice(
                    NoticeKind.SPEECH_MUTED,
                    "no avatar and fallback_to_bot_voice is off, so the bot's speech is "
                    "dropped; enable fallback_to_bot_voice to let the user hear the bot",
                )
            )

    def _hold(self, frame: Frame, routing: Routing) -> None:
        self._held.append(frame)
        if isinstance(frame, OutputAudioRawFrame):
            self._held_s += duration_s(frame)
        dropped = 0.0
        while self._held_s > self._max_held_s:
            oldest = self._held.popleft()
            if isinstance(oldest, OutputAudioRawFrame):
                self._held_s -= duration_s(oldest)
                dropped += duration_s(oldest)
        if dropped:
            if not self._episode_dropped_s:
                routing.notices.append(
                    Notice(
                        NoticeKind.HELD_SPEECH_OVERFLOW,
                        f"the avatar is not ready yet and more than {self._max_held_s:g} s of "
                        "speech is waiting; dropping the oldest until it is (raise "
                        "max_held_audio_s to keep more)",
                    )
                )
            self._episode_dropped_s += dropped
            self.dropped_s += dropped

    def _release(self) -> Routing:
        """Send the held speech, in order, where speech goes now."""
        routing = Routing()
        if self._held:
            where = {Route.AVATAR: "the avatar", Route.BOT_VOICE: "the bot's own voice"}
            dropped = self._episode_dropped_s
            routing.notices.append(
                Notice(
                    NoticeKind.HELD_SPEECH_RELEASED,
                    f"{self._held_s:.2f} s of held speech goes to "
                    f"{where.get(self._route, 'nobody')}"
                    + (f" ({dropped:.2f} s older was dropped while waiting)" if dropped else ""),
                    warning=False,
                )
            )
        held, self._held = self._held, deque()
        self._held_s = 0.0
        self._episode_dropped_s = 0.0
        for frame in held:
            self._send(frame, routing)
        return routing
