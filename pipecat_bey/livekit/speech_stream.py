"""The bot's speech to the avatar over LiveKit: one byte stream per utterance, and its playback.

LiveKit's avatar protocol (livekit-agents' data-stream audio) takes speech as a
byte stream on the topic ``lk.audio_stream``, one per utterance, raw 16-bit
PCM with ``sample_rate`` and ``num_channels`` attributes, closed at the
utterance's end. The avatar buffers what comes faster than real time. A
barge-in is the avatar's RPC ``lk.clear_buffer``; the avatar calls the bot's
``lk.playback_started`` and ``lk.playback_finished`` (``{"playback_position":
s, "interrupted": bool}``) for each utterance.

``SpeechStream`` does that for one avatar. Speech is queued and sent by a task
of its own at most ``MAX_LEAD_S`` ahead of real time: speech and the clear share
one ordered data channel, so whatever waits there when the user barges in
reaches the avatar first and plays. A barge-in drops the queue at once. After it
no new stream opens before the avatar has answered the clear (bounded), so that
the clear cannot reach the avatar after the start of the next utterance and cut
it.
"""

import asyncio
import json
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from livekit import rtc
from loguru import logger
from pipecat.audio.resamplers.soxr_stream_resampler import SOXRStreamAudioResampler
from pipecat.frames.frames import OutputAudioRawFrame

AUDIO_STREAM_TOPIC = "lk.audio_stream"
RPC_CLEAR_BUFFER = "lk.clear_buffer"
RPC_PLAYBACK_STARTED = "lk.playback_started"
RPC_PLAYBACK_FINISHED = "lk.playback_finished"

SPEECH_SAMPLE_RATE = 16000
"""The avatar renders 16 kHz mono speech (LiveKit's Beyond Presence plugin resamples to it)."""

CLEAR_TIMEOUT_S = 2.0
"""How long new speech waits for the avatar to answer a clear (the plugin's bound)."""

PLAYBACK_STARTED_WAIT_S = 1.0
"""How long after an utterance's stream opened the avatar has to call ``lk.playback_started``
before the bot takes the utterance as started (a guess). The call is optional in LiveKit's
protocol (made "where registered"); an avatar that never makes it has each utterance taken
as started when its stream opens, from then on, so that its events and TTFB still come."""

MAX_LEAD_S = 0.5
"""How far ahead of real time an utterance is sent (a guess, proven over the netem grid).

Speech and the clear share one reliable, ordered data channel: on a lossy or slow link
what is queued there reaches the avatar before a clear can, and plays. Sending at most
this much ahead of real time bounds that queue, and leaves the avatar half a second to
ride out jitter and a retransmission or two; what the TTS makes faster waits here, where
a barge-in drops it at once."""


@dataclass(frozen=True)
class Playback:
    """What the avatar said of an utterance it finished playing.

    Parameters:
        position_s: How far it got, in seconds.
        interrupted: Whether a clear cut it short.
    """

    position_s: float
    interrupted: bool


SpeakingHandler = Callable[[bool], Awaitable[None]]
"""Told True when the avatar starts playing an utterance, False when it finished."""


class SpeechStream:
    """Speech to one avatar in a LiveKit room, an utterance per byte stream.

    Attributes:
        sent_s: Seconds of speech written in the utterance open now.
        playbacks: What the avatar reported of each utterance it finished.
    """

    def __init__(
        self,
        avatar_identity: str,
        *,
        response_timeout_s: float = CLEAR_TIMEOUT_S,
        max_lead_s: float = MAX_LEAD_S,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """Speak to one avatar; nothing is sent until :meth:`attach` and :meth:`write`.

        Args:
            avatar_identity: The avatar's identity in the room.
            response_timeout_s: How long an RPC to the avatar may take.
            max_lead_s: How far ahead of real time an utterance is sent (``MAX_LEAD_S``).
            clock: Monotonic seconds (for pacing).
            sleep: Waits that many seconds (for pacing).
        """
        self.avatar_identity = avatar_identity
        self._response_timeout_s = response_timeout_s
        self._max_lead_s = max_lead_s
        self._clock = clock
        self._sleep = sleep
        self._opened_at = 0.0
        self._pending: deque[bytes | None] = deque()  # audio, or None: the utterance's end
        self._pending_s = 0.0
        self._generation = 0  # bumped by each barge-in: what was queued before is stale
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._sender: asyncio.Task | None = None
        self._reports_start: bool | None = None  # whether the avatar calls playback_started
        self._announced = False  # the avatar was said to speak, and not yet to have finished
        self._announcing: asyncio.Task | None = None
        self._participant: rtc.LocalParticipant | None = None
        self._resampler: SOXRStreamAudioResampler | None = None  # the utterance's
        self._in_rate: int | None = None
        self._writer: rtc.ByteStreamWriter | None = None
        self._count = 0
        self._clearing: asyncio.Task | None = None
        self._sent_since_clear = False
        self._on_speaking: SpeakingHandler | None = None
        self._unfinished = 0  # utterances opened, not reported finished
        self._unfinished_sent_s = 0.0  # what those carried
        self._finished = asyncio.Event()
        self._finished.set()
        self.sent_s = 0.0
        self.playbacks: list[Playback] = []

    def __repr__(self) -> str:
        return f"SpeechStream(avatar_identity={self.avatar_identity!r})"

    def attach(self, participant: rtc.LocalParticipant, on_speaking: SpeakingHandler) -> None:
        """Speak as the bot's participant, and answer the avatar's playback RPCs.

        Args:
            participant: The bot's local participant (once it is connected).
            on_speaking: Told when the avatar starts and finishes an utterance.
        """
        self._participant = participant
        self._on_speaking = on_speaking
        participant.register_rpc_method(RPC_PLAYBACK_STARTED, self._playback_started)
        participant.register_rpc_method(RPC_PLAYBACK_FINISHED, self._playback_finished)

    @property
    def speaking(self) -> bool:
        """Whether an utterance is queued, open or still playing at the avatar."""
        return bool(self._pending) or self._writer is not None or self._unfinished > 0

    async def write(self, frame: OutputAudioRawFrame) -> None:
        """Queue a piece of the current utterance; it is sent paced, in its own task.

        Args:
            frame: Mono speech at any rate.
        """
        if self._participant is None:
            logger.warning("the bot is not in its LiveKit room: the avatar's speech is dropped")
            return
        if self._resampler is None or self._in_rate != frame.sample_rate:
            await self._flush()  # a new utterance, or its rate changed: a resampler per rate
            # Never cleared by a pause in the TTS's output: its history is speech.
            self._resampler = SOXRStreamAudioResampler(clear_after_secs=None)
            self._in_rate = frame.sample_rate
        audio = await self._resampler.resample(frame.audio, frame.sample_rate, SPEECH_SAMPLE_RATE)
        self._enqueue(audio)

    async def _flush(self) -> None:
        """Queue what the resampler still holds of the utterance (its last milliseconds)."""
        resampler, self._resampler = self._resampler, None
        if resampler is not None:
            self._enqueue(await resampler.flush())

    def _enqueue(self, item: bytes | None) -> None:
        """Queue audio, or (None) the utterance's end, and have the sender send it."""
        if item == b"" or self._participant is None:
            return
        self._pending.append(item)
        self._pending_s += len(item) / 2 / SPEECH_SAMPLE_RATE if item else 0.0
        self._idle.clear()
        self._wake.set()
        if self._sender is None or self._sender.done():
            self._sender = asyncio.ensure_future(self._send_pending())

    async def _send_pending(self) -> None:
        """The sender: each queued piece in order, at most ``max_lead_s`` ahead of real time."""
        while True:
            if not self._pending:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            item, generation = self._pending[0], self._generation
            if item is None:
                self._pending.popleft()
                writer, self._writer = self._writer, None
                if writer is not None:
                    await self._close(writer)
                continue
            seconds = len(item) / 2 / SPEECH_SAMPLE_RATE
            if self._writer is not None:  # after this piece the avatar holds at most the lead
                ahead = self.sent_s + seconds - (self._clock() - self._opened_at)
                if ahead > self._max_lead_s:
                    await self._sleep(ahead - self._max_lead_s)
            if generation != self._generation:
                continue  # a barge-in dropped it meanwhile
            self._pending.popleft()
            self._pending_s -= seconds
            await self._send(item, generation)

    async def _send(self, audio: bytes, generation: int) -> None:
        if self._participant is None:
            return
        seconds = len(audio) / 2 / SPEECH_SAMPLE_RATE
        try:
            writer = self._writer or await self._open()
            await writer.write(audio)
        except Exception as e:  # the avatar or the room is gone: the life cycle reports it
            logger.warning(f"could not send speech to the avatar: {e}")
            return
        self.sent_s += seconds
        self._unfinished_sent_s += seconds
        if generation == self._generation:
            self._sent_since_clear = True

    def take_unsent(self) -> bytes:
        """Take back the speech queued and not yet sent (the avatar is lost), as 16 kHz PCM.

        Returns:
            The audio, mono 16-bit at ``SPEECH_SAMPLE_RATE``; the queue is empty after.
        """
        unsent = b"".join(item for item in self._pending if item)
        self._generation += 1
        self._pending.clear()
        self._pending_s = 0.0
        self._idle.set()
        return unsent

    async def sent(self) -> None:
        """Wait until everything queued has been sent (or dropped by a barge-in)."""
        await self._idle.wait()

    async def end(self) -> None:
        """The utterance is over: queue its tail and its end (the avatar plays it out)."""
        await self._flush()
        if self._pending or self._writer is not None:
            self._enqueue(None)

    async def stop(self) -> None:
        """Barge-in, the bot's side: drop what is queued and end the open stream."""
        self._resampler = None  # what it holds is stale
        self._generation += 1
        self._pending.clear()
        self._pending_s = 0.0
        self._idle.set()
        writer, self._writer = self._writer, None
        if writer is not None:
            await self._close(writer)

    async def clear(self) -> None:
        """Barge-in: drop what is queued, end the stream, tell the avatar to drop what it holds.

        Sends nothing when nothing went to the avatar since the last clear (a
        repeated clear must not cut the next utterance). New speech waits for
        the avatar's answer.
        """
        await self.stop()
        if self._participant is None or not self._sent_since_clear:
            return
        self._sent_since_clear = False
        self._clearing = asyncio.ensure_future(self._perform_clear(self._participant))

    def unplayed_bound_s(self) -> float:
        """At most how many seconds of speech the avatar has still to play (queued included)."""
        return self._unfinished_sent_s + self._pending_s

    async def played_out(self, timeout_s: float) -> bool:
        """Wait until the avatar reports every utterance played.

        Args:
            timeout_s: How long to wait.

        Returns:
            Whether it did in time.
        """

        async def played() -> None:
            await self._idle.wait()
            await self._finished.wait()

        if self._idle.is_set() and self._finished.is_set():
            return True
        try:
            await asyncio.wait_for(played(), timeout_s)
        except (TimeoutError, asyncio.TimeoutError):
            return False
        return True

    async def close(self) -> None:
        """Drop what is queued, end the open stream, forget the avatar's RPCs (safe again)."""
        if self._sender is not None and not self._sender.done():
            self._sender.cancel()
            await asyncio.gather(self._sender, return_exceptions=True)
        self._sender = None
        await self.stop()
        for task in (self._clearing, self._announcing):
            if task is not None and not task.done():
                task.cancel()
        participant, self._participant = self._participant, None
        if participant is not None:
            for method in (RPC_PLAYBACK_STARTED, RPC_PLAYBACK_FINISHED):
                try:
                    participant.unregister_rpc_method(method)
                except Exception:  # the room is gone with its handlers
                    pass

    async def _open(self) -> rtc.ByteStreamWriter:
        if self._clearing is not None:
            await asyncio.shield(self._clearing)  # the clear lands before the new utterance
            self._clearing = None
        assert self._participant is not None
        self._count += 1
        self._writer = await self._participant.stream_bytes(
            f"speech-{self._count}",
            topic=AUDIO_STREAM_TOPIC,
            destination_identities=[self.avatar_identity],
            attributes={"sample_rate": str(SPEECH_SAMPLE_RATE), "num_channels": "1"},
        )
        self.sent_s = 0.0
        self._opened_at = self._clock()
        self._unfinished += 1
        self._finished.clear()
        if self._reports_start is not True and not self._announced:
            self._announcing = asyncio.ensure_future(self._announce_unless_told())
        return self._writer

    async def _announce_unless_told(self) -> None:
        """Take the utterance as started, unless the avatar says so first (or is known to)."""
        if self._reports_start is None:
            await self._sleep(PLAYBACK_STARTED_WAIT_S)
            if self._reports_start is not None or self._announced:
                return
            self._reports_start = False
            logger.info(
                "the avatar does not call lk.playback_started: its utterances are taken as "
                "started when their streams open"
            )
            if not self._unfinished:
                return  # it finished playing meanwhile: nothing to announce any more
        await self._say_speaking(True)

    async def _say_speaking(self, speaking: bool) -> None:
        if self._announced == speaking or self._on_speaking is None:
            return
        self._announced = speaking
        await self._on_speaking(speaking)

    async def _close(self, writer: rtc.ByteStreamWriter) -> None:
        try:
            await writer.aclose()
        except Exception as e:
            logger.warning(f"could not end the avatar's speech stream: {e}")

    async def _perform_clear(self, participant: rtc.LocalParticipant) -> None:
        try:
            await participant.perform_rpc(
                destination_identity=self.avatar_identity,
                method=RPC_CLEAR_BUFFER,
                payload="",
                response_timeout=self._response_timeout_s,
            )
        except Exception as e:  # an avatar that cannot answer is reported by the life cycle
            logger.warning(f"the avatar did not confirm the barge-in ({e})")

    def _from_avatar(self, data: rtc.RpcInvocationData) -> bool:
        return data.caller_identity == self.avatar_identity

    async def _playback_started(self, data: rtc.RpcInvocationData) -> str:
        if not self._from_avatar(data):
            return "reject"
        self._reports_start = True
        await self._say_speaking(True)
        return "ok"

    async def _playback_finished(self, data: rtc.RpcInvocationData) -> str:
        if not self._from_avatar(data):
            return "reject"
        try:
            report = json.loads(data.payload or "{}")
            playback = Playback(
                position_s=float(report.get("playback_position", 0.0)),
                interrupted=bool(report.get("interrupted", False)),
            )
        except (ValueError, TypeError, AttributeError):
            return "reject"
        self.playbacks.append(playback)
        self._unfinished = max(0, self._unfinished - 1)
        if self._unfinished == 0:
            self._unfinished_sent_s = 0.0
            self._finished.set()
        if not self.speaking:
            await self._say_speaking(False)
        return "ok"
