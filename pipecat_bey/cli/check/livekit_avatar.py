"""The LiveKit check's avatar and what it measures: its session, arrival, speech, removal.

The session is started as ``BeyVideoService`` starts it on LiveKit, by
:class:`~pipecat_bey.livekit.avatar_session.LiveKitAvatarSession` (the avatar's token
minted by :func:`~pipecat_bey.livekit.tokens.mint_avatar_token`), and the avatar
removed by it through the server API. Its speech is sent as the service sends it,
through the bot's ``LiveKitBotRoom``; what it says is what the bot's
:class:`~pipecat_bey.cli.check.bot.MicrophoneMeter` hears of its microphone.
"""

import asyncio
import time

from pipecat.frames.frames import InterruptionFrame, OutputAudioRawFrame, TTSStoppedFrame

from pipecat_bey.cli.check.avatar import (
    AVATAR_NAME,
    INTERRUPT_LIMIT_MS,
    INTERRUPT_WAIT_S,
    QUIET_HOLD_S,
    SPOKEN_BEFORE_INTERRUPT_S,
    AvatarArrival,
    session_failure,
)
from pipecat_bey.cli.check.livekit_bot import LiveKitCheckBot
from pipecat_bey.cli.check.livekit_room import (
    BOT_IDENTITY,
    LiveKitCheckOptions,
    LiveKitCheckRoom,
    LiveKitKeys,
)
from pipecat_bey.cli.check.options import CLEANUP_TIMEOUT_S, lifetime_s
from pipecat_bey.cli.check.phrase import load_phrase
from pipecat_bey.cli.check.steps import Changes, StepFailed, StepRunner
from pipecat_bey.errors import (
    BeyError,
)
from pipecat_bey.livekit.avatar_session import LiveKitAvatarSession
from pipecat_bey.livekit.speech_stream import (
    AUDIO_STREAM_TOPIC,
    RPC_CLEAR_BUFFER,
    RPC_PLAYBACK_FINISHED,
    RPC_PLAYBACK_STARTED,
    SPEECH_SAMPLE_RATE,
)
from pipecat_bey.livekit.tokens import AVATAR_IDENTITY, BotIdentity
from pipecat_bey.models import LivekitSessionResponse
from pipecat_bey.rooms import Participant

CHUNK_S = 0.02
"""The phrase goes to the avatar in pieces this long, as a TTS's audio comes."""

LEFT_WAIT_S = 3.0
"""Once removed, how long the bot waits to see the avatar leave (said, not a failure)."""


class LiveKitCheckAvatar(AvatarArrival):
    """The avatar of one LiveKit run, from its session to its removal, and its timings.

    Parameters:
        options: What the check runs with.
        keys: The run's keys (the Beyond Presence client, the server, the avatar id).
        room: The run's room.
        bot: The run's bot, which speaks to the avatar and hears it.
        runner: The run's steps (its recording).
        changes: Told when the avatar joins, shows its face, speaks or leaves.
    """

    shown_as = AVATAR_IDENTITY
    join_hint = (
        "check that LIVEKIT_URL is reachable from the internet (the avatar runs at Beyond "
        "Presence), that the avatar id is yours or a stock one and that your plan allows "
        "another session; or retry with a longer --timeout"
    )

    def __init__(
        self,
        options: LiveKitCheckOptions,
        keys: LiveKitKeys,
        room: LiveKitCheckRoom,
        bot: LiveKitCheckBot,
        runner: StepRunner,
        changes: Changes,
    ) -> None:
        self._options = options
        self._keys = keys
        self._room = room
        self._bot = bot
        self._runner = runner
        self._changes = changes
        self._session: LiveKitAvatarSession | None = None
        self._asked = False  # a session was asked for: an avatar may be on its way
        self._starting: asyncio.Future[LivekitSessionResponse] | None = None
        self._session_answered_at = 0.0
        self._joined_at: float | None = None
        self._camera_at: float | None = None
        self._left_at: float | None = None
        self._phrase_sent_at: float | None = None
        self._phrase_s = 0.0
        self._playback_started_at: float | None = None
        self._playback_finished_at: float | None = None

    def __repr__(self) -> str:
        return f"LiveKitCheckAvatar(room={self._room.name!r}, joined={self._joined_at is not None})"

    # The room's events, through the bot.
    async def on_participant(self, participant: Participant) -> None:
        """Note the avatar joining, and its camera coming on.

        Args:
            participant: A participant who joined, or one of whose tracks was subscribed.
        """
        session = self._session
        if session is None or not session.is_avatar(participant):
            return
        if self._joined_at is None:
            self._joined_at = time.monotonic()
            session.arrived(participant)
        if self._camera_at is None and participant.get("camera"):
            self._camera_at = time.monotonic()
        self._changes.notify()

    async def on_participant_left(self, participant: Participant, reason: str) -> None:
        """Note the avatar leaving.

        Args:
            participant: A participant who left.
            reason: Why.
        """
        if self._session is not None and self._session.departed(participant):
            self._left_at = time.monotonic()
            self._changes.notify()

    async def on_speaking(self, speaking: bool) -> None:
        """Note the avatar's playback reports (``lk.playback_started``, ``lk.playback_finished``).

        Args:
            speaking: True when it started playing, False when it finished.
        """
        now = time.monotonic()
        sent = self._phrase_sent_at
        if speaking and self._playback_started_at is None and sent is not None:
            self._playback_started_at = now
            self._runner.record["playback_started_ms"] = round((now - sent) * 1000, 1)
        elif not speaking and self._playback_finished_at is None:
            self._playback_finished_at = now
        self._changes.notify()

    @property
    def _left(self) -> bool:
        return self._left_at is not None

    # The steps.
    async def start_session(self) -> str:
        """The ``session_created`` step: mint the avatar's token and start its session.

        Returns:
            What happened.

        Raises:
            StepFailed: If the session was refused, or the API failed.
        """
        keys, record = self._keys, self._runner.record
        assert keys.client is not None
        avatar_id = keys.avatar_id
        session = LiveKitAvatarSession(
            client=keys.client,
            url=keys.url,
            api_key=keys.api_key,
            api_secret=keys.api_secret,
            bot=BotIdentity(identity=BOT_IDENTITY, room=self._room.name),
            avatar_id=avatar_id,
            name=AVATAR_NAME,
            token_ttl_s=lifetime_s(self._options),
        )
        session.use_session(keys.http)
        self._session = session
        self._asked = True  # from here on the end removes it, whatever the answer
        started = time.monotonic()
        # Not cancelled with the check (shielded): the clean-up waits for the answer to a
        # request under way when Ctrl-C came, so that it knows whether an avatar comes.
        self._starting = asyncio.ensure_future(session.start())
        try:
            answer = await asyncio.shield(self._starting)
        except BeyError as e:
            raise session_failure(e, avatar_id, record) from None
        answered = time.monotonic()
        self._session_answered_at = answered
        record["session_created_s"] = round(answered - started, 3)
        record["session_id"] = answer.id
        record["bey_key_valid"] = True
        return f"session {answer.id} for avatar {avatar_id} ({answered - started:.2f} s)"

    def _heard(self, after: float) -> list[tuple[float, float]]:
        meter = self._bot.meter
        assert meter is not None
        return meter.speech(AVATAR_IDENTITY, after)

    async def speak(self) -> str:
        """The ``avatar_spoke`` step: send the phrase on ``lk.audio_stream``; the avatar speaks it.

        Returns:
            What happened.

        Raises:
            StepFailed: If the avatar did not speak in time, or left first.
        """
        room = self._bot.room
        assert room is not None
        phrase = await load_phrase(self._options.phrase, SPEECH_SAMPLE_RATE)
        self._phrase_s = len(phrase) / 2 / SPEECH_SAMPLE_RATE
        piece = round(CHUNK_S * SPEECH_SAMPLE_RATE) * 2
        sent = time.monotonic()
        self._phrase_sent_at = sent
        # Queued at once, as a TTS's audio comes; the speech stream paces it (MAX_LEAD_S).
        for start in range(0, len(phrase), piece):
            frame = OutputAudioRawFrame(
                audio=phrase[start : start + piece], sample_rate=SPEECH_SAMPLE_RATE, num_channels=1
            )
            await room.send_speech(frame)
        await room.send_speech(TTSStoppedFrame())
        timeout = self._options.timeout_s
        ok = await self._changes.wait(lambda: bool(self._heard(sent)) or self._left, timeout)
        if not self._heard(sent) and self._left:
            raise StepFailed("the avatar left the room before it spoke", "try again")
        if not ok:
            started = self._playback_started_at is not None
            raise StepFailed(
                f"the avatar joined but was not heard within {timeout:g} s of the phrase "
                f"({RPC_PLAYBACK_STARTED} {'came' if started else 'did not come'})",
                f"it did not get the bot's {AUDIO_STREAM_TOPIC} byte stream, or its microphone "
                "does not reach the bot: check that the bot's token may publish data and "
                "subscribe, and that nothing else in the room speaks to it",
            )
        first_ms = (self._heard(sent)[0][0] - sent) * 1000
        self._runner.record["first_avatar_speech_ms"] = round(first_ms, 1)
        detail = f"first speech {first_ms:.0f} ms after the phrase was sent"
        if self._playback_started_at is not None:
            detail += (
                f"; {RPC_PLAYBACK_STARTED} after {(self._playback_started_at - sent) * 1000:.0f} ms"
            )
        else:
            detail += f"; no {RPC_PLAYBACK_STARTED} yet"
        return detail

    async def interrupt(self) -> str:
        """The ``interrupt`` step: ``lk.clear_buffer`` mid-phrase; the avatar falls silent.

        The bot's side is the service's barge-in: the speech queued for the avatar is
        dropped and its stream ended, then the avatar is told to drop what it holds.

        Returns:
            What happened.

        Raises:
            StepFailed: If it spoke on too long past the clear, or never reported its
                playback finished.
        """
        room, sent = self._bot.room, self._phrase_sent_at
        assert room is not None and sent is not None

        def spoken_s() -> float:
            return sum(seconds for _, seconds in self._heard(sent))

        # If the avatar loses the phrase's start, interrupt by the phrase's end anyway.
        await self._changes.wait(lambda: spoken_s() >= SPOKEN_BEFORE_INTERRUPT_S, self._phrase_s)
        cleared = time.monotonic()
        self._runner.record["spoken_before_interrupt_s"] = round(spoken_s(), 3)
        await room.clear_speech(InterruptionFrame(), None)
        await room.interrupt_avatar(AVATAR_IDENTITY)
        deadline = cleared + INTERRUPT_WAIT_S
        while True:
            pieces = self._heard(sent)
            last = pieces[-1][0] if pieces else cleared
            now = time.monotonic()
            quiet_from = max(last, cleared)
            if now - quiet_from >= QUIET_HOLD_S or now >= deadline:
                break
            await self._changes.pause(min(quiet_from + QUIET_HOLD_S, deadline) - now)
        silence_ms = max(last - cleared, 0.0) * 1000
        record = self._runner.record
        record["interrupt_silence_ms"] = round(silence_ms, 1)
        if now >= deadline and now - quiet_from < QUIET_HOLD_S:
            raise StepFailed(
                f"the avatar still spoke {INTERRUPT_WAIT_S:g} s after {RPC_CLEAR_BUFFER}",
                f"it ignores {RPC_CLEAR_BUFFER}: check that nothing else speaks to it",
            )
        speech = room.speech
        await self._changes.wait(
            lambda: bool(speech.playbacks) or self._left,
            max(cleared + INTERRUPT_WAIT_S - time.monotonic(), 0.0),
        )
        if speech.playbacks:
            playback = speech.playbacks[0]
            finished_at = self._playback_finished_at or time.monotonic()
            record["playback_finished"] = {
                "position_s": round(playback.position_s, 3),
                "interrupted": playback.interrupted,
            }
            record["playback_finished_ms"] = round(max(finished_at - cleared, 0.0) * 1000, 1)
        if silence_ms > INTERRUPT_LIMIT_MS:
            raise StepFailed(
                f"the avatar spoke {silence_ms:.0f} ms past {RPC_CLEAR_BUFFER} "
                f"(at most {INTERRUPT_LIMIT_MS:.0f} ms expected)",
                "it holds audio past a clear: a bot should send less ahead of it",
            )
        if not speech.playbacks:
            raise StepFailed(
                f"the avatar fell silent {silence_ms:.0f} ms after {RPC_CLEAR_BUFFER} but did "
                f"not call the bot's {RPC_PLAYBACK_FINISHED} within {INTERRUPT_WAIT_S:g} s",
                "the service learns that the avatar stopped speaking from it: check that the "
                "bot's token lets the avatar reach it (the bot's identity is its "
                "lk.publish_on_behalf)",
            )
        playback = speech.playbacks[0]
        how = "interrupted" if playback.interrupted else "not marked interrupted"
        return (
            f"silent {silence_ms:.0f} ms after {RPC_CLEAR_BUFFER}; {RPC_PLAYBACK_FINISHED} "
            f"at {playback.position_s:.2f} s, {how}"
        )

    # Clean-up.
    async def remove(self) -> None:
        """Clean up: remove the avatar through the server API (said and recorded), if asked for."""
        session = self._session
        if session is None or not self._asked:
            return  # no session was asked for: no avatar can be on its way
        self._asked = False
        record = self._runner.record
        started = time.monotonic()
        starting = self._starting
        if starting is not None and not starting.done():
            # Ctrl-C came while the session was being asked for: let that finish first.
            await asyncio.wait({starting}, timeout=CLEANUP_TIMEOUT_S)
            if not starting.done():
                starting.cancel()
        if starting is not None and starting.done() and not starting.cancelled():
            starting.exception()  # retrieved: said by the step, or not asked for any more
        try:
            removed = await session.eject(CLEANUP_TIMEOUT_S)
            why = "see the warning above"
        except Exception as e:  # eject reports the server's refusals itself
            removed, why = None, str(e) or type(e).__name__
        if removed is None:
            record["removed"] = False
            minutes = lifetime_s(self._options) / 60
            self._runner.step(
                "removed",
                started,
                False,
                f"could not remove the avatar through the server API ({why})",
                f"remove {AVATAR_IDENTITY} from room {self._room.name} in the LiveKit dashboard; "
                f"its token expires within {minutes:.0f} min, and deleting the room ends it too",
            )
            return
        record["removed"] = True
        if not removed:
            detail = "no avatar was in the room"
            if session.session is not None:
                minutes = lifetime_s(self._options) / 60
                detail += (
                    f" (session {session.session.id} had started; its token lets it join for "
                    f"{minutes:.0f} min, and it finds no bot)"
                )
            self._runner.step("removed", started, True, detail)
            return
        if self._left_at is not None and self._left_at <= started:
            seen = "it had left the room already"
        elif await self._changes.wait(lambda: self._left, LEFT_WAIT_S):
            assert self._left_at is not None
            seen = f"the bot saw it leave {self._left_at - started:.2f} s later"
        else:
            seen = f"the bot did not see it leave within {LEFT_WAIT_S:g} s"
        self._runner.step("removed", started, True, f"removed {AVATAR_IDENTITY}; {seen}")
