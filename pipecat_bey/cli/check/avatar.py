"""The check's avatar and what it measures: its session, its arrival, its speech, its eject.

The session is started as ``BeyVideoService`` starts it; the avatar is told apart
from the other participants by its token's user id. Its speech is what the bot's
:class:`~pipecat_bey.cli.check.bot.MicrophoneMeter` hears of its microphone.
"""

import asyncio
import time
from collections.abc import Mapping
from typing import Any, ClassVar

from pipecat.frames.frames import InterruptionFrame, OutputAudioRawFrame

from pipecat_bey.cli.check.bot import CheckBot
from pipecat_bey.cli.check.keys import Keys
from pipecat_bey.cli.check.options import CLEANUP_TIMEOUT_S, CheckOptions, lifetime_s
from pipecat_bey.cli.check.phrase import load_phrase
from pipecat_bey.cli.check.room import CheckRoom
from pipecat_bey.cli.check.steps import Changes, StepFailed, StepRunner
from pipecat_bey.config import BEY_AUDIO_TRACK, INTERRUPT_MESSAGE, BeyParams
from pipecat_bey.daily.avatar_session import start_avatar_session
from pipecat_bey.daily.bot_room import BotRoom, camera_on
from pipecat_bey.daily.rest import AvatarIdentity
from pipecat_bey.errors import (
    BeyAPIError,
    BeyAuthError,
    BeyConnectionError,
    BeyError,
    BeyValidationError,
    DailyAPIError,
)

AVATAR_NAME = "Avatar"

READY_MARGIN_S = BeyParams().avatar_ready_delay_s
"""After the avatar's camera comes on, the service's own margin for its subscription to the
bot's track (audio written before it has subscribed is heard by no one)."""

SPOKEN_BEFORE_INTERRUPT_S = 0.5
"""How much the avatar speaks before the check interrupts it."""

QUIET_HOLD_S = 1.0
"""The avatar is silent once no speech has arrived from it for this long: longer than the
pauses between the phrase's words and sentences, so a pause is not taken for silence."""

INTERRUPT_LIMIT_MS = 1000.0
"""Speech arriving later than this after ``"interrupt"`` fails the interrupt step."""

INTERRUPT_WAIT_S = 5.0
"""How long to wait for the avatar to fall silent after ``"interrupt"``."""


class AvatarArrival:
    """The avatar's arrival, as the Daily and the LiveKit checks take it: joined, then its camera.

    The check's avatar part keeps ``_changes``, ``_runner``, ``_session_answered_at``,
    ``_joined_at``, ``_camera_at`` and ``_left`` up to date, and says how the avatar shows in the
    lines (``shown_as``) and what to do when it does not come (``join_hint``).
    """

    shown_as: ClassVar[str] = ""
    join_hint: ClassVar[str]
    _changes: Changes
    _runner: StepRunner
    _session_answered_at: float
    _joined_at: float | None
    _camera_at: float | None
    _left: bool

    async def await_joined(self, timeout_s: float) -> str:
        """The ``avatar_joined`` step: the avatar comes into the room.

        Args:
            timeout_s: How long it may take.

        Returns:
            What happened.

        Raises:
            StepFailed: If it did not come in time.
        """
        if not await self._changes.wait(lambda: self._joined_at is not None, timeout_s):
            who = f"the avatar ({self.shown_as})" if self.shown_as else "the avatar"
            raise StepFailed(f"{who} did not join within {timeout_s:g} s", self.join_hint)
        assert self._joined_at is not None
        record = self._runner.record
        record["avatar_token_valid"] = True  # the room let it in with the minted token
        joined_s = max(self._joined_at - self._session_answered_at, 0.0)
        record["avatar_joined_s"] = round(joined_s, 3)
        shown = f"{self.shown_as} " if self.shown_as else ""
        return f"{shown}{joined_s:.2f} s after the session started"

    async def await_camera(self, timeout_s: float) -> str:
        """The ``avatar_video`` step: the avatar's camera comes on.

        Args:
            timeout_s: How long it may take.

        Returns:
            What happened.

        Raises:
            StepFailed: If it did not come on in time, or the avatar left first.
        """
        ok = await self._changes.wait(lambda: self._camera_at is not None or self._left, timeout_s)
        if self._camera_at is None and self._left:
            raise StepFailed(
                "the avatar left the room before its camera came on", "try again, or another avatar"
            )
        if not ok:
            raise StepFailed(
                f"the avatar's camera did not come on within {timeout_s:g} s of it joining",
                "its renderer did not start: try again, or another avatar",
            )
        assert self._camera_at is not None and self._joined_at is not None
        video_s = max(self._camera_at - self._joined_at, 0.0)
        self._runner.record["avatar_video_s"] = round(video_s, 3)
        return f"on {video_s:.2f} s after the avatar joined"


class CheckAvatar(AvatarArrival):
    """The avatar of one run, from its session to its eject, and its timings.

    Parameters:
        options: What the check runs with.
        keys: The run's keys (the Beyond Presence client, the avatar id).
        room: The run's room.
        bot: The run's bot, which speaks to the avatar and hears it.
        runner: The run's steps (its recording).
        changes: Told when the avatar joins, shows its face or leaves.
    """

    join_hint = (
        "check that the avatar id is yours or a stock one, and that your plan allows another "
        "session (an avatar left in a room blocks the next); or retry with a longer --timeout"
    )

    def __init__(
        self,
        options: CheckOptions,
        keys: Keys,
        room: CheckRoom,
        bot: CheckBot,
        runner: StepRunner,
        changes: Changes,
    ) -> None:
        self._options = options
        self._keys = keys
        self._room = room
        self._bot = bot
        self._runner = runner
        self._changes = changes
        self._identity: AvatarIdentity | None = None
        self._session_answered_at = 0.0
        self._id: str | None = None  # its participant id in the room
        self._joined_at: float | None = None
        self._camera_at: float | None = None
        self._left = False
        self._phrase_sent_at = 0.0
        self._phrase_s = 0.0

    # The room's events, through the bot.
    async def on_participant(self, participant: Mapping[str, Any]) -> None:
        """Note the avatar joining, and its camera coming on.

        Args:
            participant: A participant who joined or was updated.
        """
        if self._identity is None or not self._identity.matches(participant):
            return
        if self._joined_at is None:
            self._joined_at = time.monotonic()
            self._id = str(participant.get("id"))
        if self._camera_at is None and camera_on(participant):
            self._camera_at = time.monotonic()
        self._changes.notify()

    async def on_participant_left(self, participant: Mapping[str, Any], reason: str) -> None:
        """Note the avatar leaving.

        Args:
            participant: A participant who left.
            reason: Why.
        """
        if self._id is not None and str(participant.get("id")) == self._id:
            self._left = True
            self._changes.notify()

    # The steps.
    async def start_session(self) -> str:
        """The ``session_created`` step: mint the avatar's token and start its session.

        Returns:
            What happened.

        Raises:
            StepFailed: If the token or the session was refused, or an API failed.
        """
        assert self._keys.client is not None
        record = self._runner.record
        avatar_id = self._keys.avatar_id
        self._identity = AvatarIdentity.new(AVATAR_NAME)
        started = time.monotonic()
        try:
            session = await start_avatar_session(
                self._keys.client,
                avatar_id=avatar_id,
                room_url=self._room.url,
                identity=self._identity,
                daily=self._room.api(),
                token_ttl_s=lifetime_s(self._options),
            )
        except DailyAPIError as e:
            hint = (
                "check DAILY_API_KEY (or --daily-api-key)"
                if e.status in (401, 403)
                else "try again later"
            )
            raise StepFailed(str(e), hint) from None
        except BeyError as e:
            raise session_failure(e, avatar_id, record) from None
        answered = time.monotonic()
        self._session_answered_at = answered
        record["session_created_s"] = round(answered - started, 3)
        record["session_id"] = session.id
        record["bey_key_valid"] = True
        return f"session {session.id} for avatar {avatar_id} ({answered - started:.2f} s)"

    async def speak(self) -> str:
        """The ``avatar_spoke`` step: send the phrase on its track; the avatar speaks it.

        Returns:
            What happened.

        Raises:
            StepFailed: If the avatar did not speak in time, or left first.
        """
        bot, meter, avatar = self._bot, self._bot.meter, self._id
        assert meter is not None and avatar is not None
        rate = bot.sample_rate
        phrase = await load_phrase(self._options.phrase, rate)
        frame = OutputAudioRawFrame(audio=phrase, sample_rate=rate, num_channels=1)
        frame.transport_destination = BEY_AUDIO_TRACK
        sent = time.monotonic()
        self._phrase_sent_at = sent
        self._phrase_s = len(phrase) / 2 / rate
        await bot.send([frame])
        timeout = self._options.timeout_s
        ok = await self._changes.wait(
            lambda: bool(meter.speech(avatar, sent)) or self._left, timeout
        )
        if self._left and not meter.speech(avatar, sent):
            raise StepFailed("the avatar left the room before it spoke", "try again")
        if not ok:
            raise StepFailed(
                f"the avatar joined but did not speak within {timeout:g} s of the phrase",
                f"it did not receive {BEY_AUDIO_TRACK}: check that the bot may send custom "
                "audio in this room (owner_only_broadcast, token permissions) and that "
                "nothing else in the room speaks to it",
            )
        first = meter.speech(avatar, sent)[0][0]
        first_ms = (first - sent) * 1000
        self._runner.record["first_avatar_speech_ms"] = round(first_ms, 1)
        return f"first speech {first_ms:.0f} ms after the phrase was sent"

    async def interrupt(self) -> str:
        """The ``interrupt`` step: send ``"interrupt"`` mid-phrase; the avatar falls silent.

        Returns:
            What happened.

        Raises:
            StepFailed: If it spoke on too long past the interrupt.
        """
        meter, avatar, sent = self._bot.meter, self._id, self._phrase_sent_at
        assert meter is not None and avatar is not None

        def spoken_s() -> float:
            return sum(seconds for _, seconds in meter.speech(avatar, sent))

        # If the avatar loses the phrase's start, interrupt by the phrase's end anyway.
        await self._changes.wait(lambda: spoken_s() >= SPOKEN_BEFORE_INTERRUPT_S, self._phrase_s)
        interruption = InterruptionFrame()
        # Naming the track makes the output transport clear the audio queued on it.
        interruption.transport_destination = BEY_AUDIO_TRACK
        interrupted = time.monotonic()
        await self._bot.send([interruption, BotRoom.message_frame(INTERRUPT_MESSAGE, avatar)])
        deadline = interrupted + INTERRUPT_WAIT_S
        while True:
            pieces = meter.speech(avatar)
            last = pieces[-1][0] if pieces else interrupted
            now = time.monotonic()
            quiet_from = max(last, interrupted)
            if now - quiet_from >= QUIET_HOLD_S or now >= deadline:
                break
            await self._changes.pause(min(quiet_from + QUIET_HOLD_S, deadline) - now)
        silence_ms = max(last - interrupted, 0.0) * 1000
        self._runner.record["interrupt_silence_ms"] = round(silence_ms, 1)
        if now >= deadline and now - quiet_from < QUIET_HOLD_S:
            raise StepFailed(
                f'the avatar still spoke {INTERRUPT_WAIT_S:g} s after "interrupt"',
                "it ignores the interrupt app message: check that nothing else feeds its track",
            )
        if silence_ms > INTERRUPT_LIMIT_MS:
            raise StepFailed(
                f'the avatar spoke {silence_ms:.0f} ms past "interrupt" '
                f"(at most {INTERRUPT_LIMIT_MS:.0f} ms expected)",
                "it holds audio past an interrupt: a bot should send less ahead of it",
            )
        return f'silent {silence_ms:.0f} ms after "interrupt" was sent'

    # Clean-up.
    async def eject(self) -> None:
        """Clean up: eject the avatar (said and recorded), if a session was asked for."""
        daily, identity = self._room.daily, self._identity
        if daily is None or identity is None or identity.user_id is None:
            return  # no session was asked for: no avatar can be on its way
        record = self._runner.record
        started = time.monotonic()
        try:
            ejected = await asyncio.wait_for(
                daily.eject(
                    self._room.url,
                    user_ids=[identity.user_id],
                    participant_ids=[self._id] if self._id else None,
                ),
                CLEANUP_TIMEOUT_S,
            )
        except (DailyAPIError, TimeoutError, asyncio.TimeoutError) as e:
            record["ejected"] = False
            minutes = lifetime_s(self._options) / 60
            self._runner.step(
                "ejected",
                started,
                False,
                f"could not eject the avatar: {e or 'timed out'}",
                f"end it in the Daily dashboard; its token expires within {minutes:.0f} min "
                "and takes it out of the room",
            )
            return
        record["ejected"] = True
        what = "ejected the avatar" if ejected else "no avatar was in the room"
        self._runner.step("ejected", started, True, f"{what} ({len(ejected)} participant(s))")


def session_failure(error: BeyError, avatar_id: str, record: dict[str, Any]) -> StepFailed:
    """The ``session_created`` step's failure for a Beyond Presence error, with its fix.

    Args:
        error: What the API client raised.
        avatar_id: The avatar asked for.
        record: The recording: ``bey_key_valid`` is set when the error tells.

    Returns:
        The failure to raise.
    """
    if isinstance(error, BeyAuthError):
        record["bey_key_valid"] = False
        return StepFailed(
            str(error), "copy BEY_API_KEY (or --api-key) again from https://app.bey.chat"
        )
    if isinstance(error, BeyValidationError) or (
        isinstance(error, BeyAPIError) and error.status == 404
    ):
        record["bey_key_valid"] = True
        return StepFailed(
            str(error), f"check the avatar id {avatar_id!r} (--avatar-id or BEY_AVATAR_ID)"
        )
    if isinstance(error, BeyConnectionError):
        return StepFailed(str(error), "check BEY_API_URL and your network")
    if isinstance(error, BeyAPIError):
        return StepFailed(str(error), "the Beyond Presence API failed; try again in a minute")
    return StepFailed(str(error), "try again; if it persists, report it with this line")
