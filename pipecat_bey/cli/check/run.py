"""``pipecat-bey check``: try your keys and a real avatar in a short-lived Daily room.

The first thing to run with real keys. It goes through every step a bot with an
avatar goes through, prints one line per step as it happens, and measures what
no document tells: how long the session takes to start, the avatar to join and
to show its face, how soon it speaks what it is sent, and how soon it falls
silent after ``"interrupt"``.

1. ``keys``: ``BEY_API_KEY`` and ``DAILY_API_KEY`` are set (and the URLs acceptable).
2. ``room``: a private room that expires in a few minutes (``exp``,
   ``eject_at_room_exp``) is created through Daily's REST API, or ``--room-url``
   is looked up.
3. ``bot_joined``: a bot joins it through pipecat's ``DailyTransport``, with an
   owner meeting token minted for it.
4. ``session_created``: the avatar's token is minted and its session started,
   by :func:`~pipecat_bey.avatar_session.start_avatar_session`.
5. ``avatar_joined``, ``avatar_video``: the avatar joins (the participant whose
   ``info.userId`` is its token's user id), then its camera comes on.
6. ``avatar_spoke``, ``interrupt``: after a short margin, a few seconds of the
   packaged speech go to the avatar on ``bey-custom-track``; its microphone, as
   the bot receives it, tells when it speaks. Once it has spoken about half a
   second, the bot sends ``"interrupt"`` and clears the track's queue, and the
   time until the avatar's microphone falls silent is measured.
7. ``ejected``, ``room_deleted``: the avatar is ejected and the room the check
   created deleted, whatever happened before, Ctrl-C included.

With ``--offline`` the very same code runs against the local Beyond Presence API
and the simulated Daily (``pipecat_bey.testing``), with throwaway keys.

The recording
-------------
``--record FILE`` writes the run as JSON (never a key or a token):

- ``steps``: ``{"name", "ok", "seconds", "hint", "detail"}`` per step taken, in
  order; ``seconds`` is how long the step took, ``hint`` what to do when it failed.
- ``ok``, ``interrupted``, ``started_at``, ``avatar_id``, ``room_url``,
  ``room_created``, ``session_id``; ``offline`` and, offline, ``world`` (the
  simulation's settings).
- ``bey_key_valid``, ``daily_key_valid``: True or False once known, else null.
  ``avatar_token_valid``: True once the avatar joined with it, else null (an
  avatar that does not come may have been refused, or may never have tried).
- ``room_created_s``: the room's creation, one REST round trip.
- ``bot_joined_s``: from the bot's transport starting to the bot being in the room.
- ``session_created_s``: from asking (the avatar's token, then ``POST /v1/sessions``)
  to the session's answer.
- ``avatar_joined_s``: from the session's answer to the avatar joining the room.
- ``avatar_video_s``: from the avatar joining to its camera coming on.
- ``first_avatar_speech_ms``: from the phrase being sent to the avatar's first
  speech arriving back at the bot (both ways through Daily, and its rendering).
- ``interrupt_silence_ms``: from ``"interrupt"`` being sent to the avatar's last
  speech arriving at the bot.
- ``ejected``, ``room_deleted``: whether Daily accepted the eject, and deleted
  the room (null when there was nothing to do).

``pipecat_bey.cli.check_recording.load_recording`` turns a recording into settings
of the simulated Daily (``DailySimulation.from_settings``), so your own timings
drive offline tests; ``pipecat-bey check --offline --world FILE`` runs against them.
"""

import asyncio
import json
import logging
import math
import secrets as token_bytes
import sys
import time
from collections.abc import Callable, Collection, Iterable, Mapping, MutableSet
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from importlib.resources import files
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
from pipecat.audio.utils import create_file_resampler
from pipecat.frames.frames import (
    Frame,
    InterruptionFrame,
    OutputAudioRawFrame,
    UserAudioRawFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.transports.daily.transport import DailyParams, DailyTransport
from pipecat.workers.runner import WorkerRunner

from pipecat_bey._secrets import redact
from pipecat_bey._urls import daily_room_name
from pipecat_bey.avatar_session import start_avatar_session
from pipecat_bey.cli._io import check_writable, print_now
from pipecat_bey.client import BeyClient
from pipecat_bey.config import (
    BEY_AUDIO_TRACK,
    INTERRUPT_MESSAGE,
    BeyParams,
    avatar_id_setting,
    daily_api_url_setting,
    env,
)
from pipecat_bey.daily.bot_room import BotRoom, camera_on
from pipecat_bey.daily.rest import AvatarIdentity, DailyRoomAPI
from pipecat_bey.errors import (
    BeyAPIError,
    BeyAuthError,
    BeyConfigError,
    BeyConnectionError,
    BeyError,
    BeyValidationError,
    DailyAPIError,
)
from pipecat_bey.testing.audio import read_wav, to_mono

STEPS = (
    "keys",
    "room",
    "bot_joined",
    "session_created",
    "avatar_joined",
    "avatar_video",
    "avatar_spoke",
    "interrupt",
    "ejected",
    "room_deleted",
)
"""The steps, in the order they are taken."""

_LABELS = {
    "keys": "keys",
    "room": "room",
    "bot_joined": "bot joined",
    "session_created": "session created",
    "avatar_joined": "avatar joined",
    "avatar_video": "avatar camera",
    "avatar_spoke": "avatar spoke",
    "interrupt": "interrupt",
    "ejected": "avatar ejected",
    "room_deleted": "room deleted",
}

MEASUREMENTS = (
    "room_created_s",
    "bot_joined_s",
    "session_created_s",
    "avatar_joined_s",
    "avatar_video_s",
    "first_avatar_speech_ms",
    "interrupt_silence_ms",
)
"""The timings a recording holds (null where the check did not get that far)."""

BOT_NAME = "pipecat-bey check"
AVATAR_NAME = "Avatar"

READY_MARGIN_S = BeyParams().avatar_ready_delay_s
"""After the avatar's camera comes on, the service's own margin for its subscription to the
bot's track (audio written before it has subscribed is heard by no one)."""

PHRASE_S = 3.0
"""Seconds of the packaged clip sent as the phrase."""

SPOKEN_BEFORE_INTERRUPT_S = 0.5
"""How much the avatar speaks before the check interrupts it."""

SPEECH_RMS = 300.0
"""A 10-20 ms piece of the avatar's microphone louder than this (RMS of 16-bit samples,
about -40 dBFS) is speech; decoded silence and comfort noise stay well below it."""

QUIET_HOLD_S = 1.0
"""The avatar is silent once no speech has arrived from it for this long: longer than the
pauses between the phrase's words and sentences, so a pause is not taken for silence."""

INTERRUPT_LIMIT_MS = 1000.0
"""Speech arriving later than this after ``"interrupt"`` fails the interrupt step."""

INTERRUPT_WAIT_S = 5.0
"""How long to wait for the avatar to fall silent after ``"interrupt"``."""

REQUEST_TIMEOUT_S = 15.0
"""How long one Daily REST request may take."""

CLEANUP_TIMEOUT_S = 10.0
"""How long each clean-up action (eject, leave, delete the room) may take."""

# The bot's and the avatar's tokens, and the room, live a few minutes: long enough
# for every wait of the check, short enough that nothing outlives a crashed check.
_MIN_LIFETIME_S = 300.0

Progress = Callable[[str], None]


def default_phrase() -> Path:
    """The clip the check sends the avatar (its first :data:`PHRASE_S` seconds).

    Returns:
        Its path.
    """
    return Path(str(files("pipecat_bey") / "assets" / "demo_speech.wav"))


@dataclass
class CheckOptions:
    """What ``pipecat-bey check`` runs with.

    Parameters:
        api_key: Beyond Presence API key (None: ``BEY_API_KEY``).
        daily_api_key: Daily API key (None: ``DAILY_API_KEY``).
        api_url: Beyond Presence API URL (None: ``BEY_API_URL``, then the service's).
        daily_api_url: Daily REST URL (None: ``DAILY_API_URL``, then Daily's).
        avatar_id: The avatar (None: ``BEY_AVATAR_ID``, then the stock one).
        room_url: A Daily room of yours to use instead of creating one (it is not deleted).
        timeout_s: How long each wait may take: the bot joining, the avatar
            joining, its camera, its first speech.
        record: Where to write the recording, if anywhere.
        phrase: A 16-bit WAV whose first seconds are sent to the avatar.
    """

    api_key: str | None = None
    daily_api_key: str | None = None
    api_url: str | None = None
    daily_api_url: str | None = None
    avatar_id: str | None = None
    room_url: str | None = None
    timeout_s: float = 30.0
    record: Path | None = None
    phrase: Path = field(default_factory=default_phrase)


@dataclass
class Step:
    """One step of the check, as printed and recorded.

    Parameters:
        name: One of :data:`STEPS`.
        ok: Whether it passed.
        seconds: How long it took.
        detail: What happened, in a few words.
        hint: On failure, what to do about it.
    """

    name: str
    ok: bool
    seconds: float
    detail: str
    hint: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The step as the recording holds it.

        Returns:
            ``{"name", "ok", "seconds", "hint", "detail"}``.
        """
        return {
            "name": self.name,
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
            "hint": self.hint,
            "detail": self.detail,
        }


class _StepFailed(Exception):
    """A step failed; the check stops there and cleans up."""

    def __init__(self, detail: str, hint: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.hint = hint


def _given(value: str | None) -> str | None:
    """An option's value, empty or blank counting as not given (as for the variables)."""
    return value.strip() if value and value.strip() else None


def _rms(audio: bytes) -> float:
    samples = np.frombuffer(audio[: len(audio) // 2 * 2], dtype=np.int16)
    if not samples.size:
        return 0.0
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


class MicrophoneMeter(FrameProcessor):
    """Tells when each participant's microphone carries speech, as the bot receives it.

    ``DailyTransport`` (audio in, ``audio_in_user_tracks``) captures every
    participant's microphone as ``UserAudioRawFrame`` with its ``user_id``. This
    processor keeps, per participant, when speech first and last arrived and how
    much arrived, and drops the frames (nothing after it needs them).
    """

    def __init__(self, on_speech: Callable[[], None], threshold_rms: float = SPEECH_RMS) -> None:
        """Create the meter.

        Args:
            on_speech: Called whenever a piece of speech arrives.
            threshold_rms: A piece louder than this is speech.
        """
        super().__init__(name="CheckMicrophoneMeter")
        self._on_speech = on_speech
        self._threshold = threshold_rms
        self._speech: dict[str, list[tuple[float, float]]] = {}

    def speech(self, participant_id: str, after: float = -math.inf) -> list[tuple[float, float]]:
        """The pieces of speech that arrived from a participant.

        Args:
            participant_id: The participant.
            after: Only pieces that arrived after this monotonic time.

        Returns:
            ``(arrival time, seconds of audio)`` of each piece, in order.
        """
        return [p for p in self._speech.get(participant_id, []) if p[0] > after]

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Measure microphone audio; pass every other frame on.

        Args:
            frame: The frame.
            direction: Its direction.
        """
        await super().process_frame(frame, direction)
        if isinstance(frame, UserAudioRawFrame):
            if frame.user_id and frame.sample_rate and _rms(frame.audio) > self._threshold:
                seconds = len(frame.audio) / 2 / frame.num_channels / frame.sample_rate
                self._speech.setdefault(frame.user_id, []).append((time.monotonic(), seconds))
                self._on_speech()
            return
        await self.push_frame(frame, direction)


async def load_phrase(path: Path, sample_rate: int, seconds: float = PHRASE_S) -> bytes:
    """The phrase: the first seconds of a 16-bit WAV, mono, at a sample rate.

    Args:
        path: The WAV file.
        sample_rate: The rate to resample to (the transport's output rate).
        seconds: How much of the clip.

    Returns:
        16-bit mono PCM.

    Raises:
        ValueError: If the file is not a 16-bit PCM WAV.
    """
    pcm, rate, channels = read_wav(path)
    mono = to_mono(pcm, channels)[: int(seconds * rate) * 2]
    if rate == sample_rate:
        return mono
    return await create_file_resampler().resample(mono, rate, sample_rate)


class _Check:
    """One run of the check: its state, its steps, its clean-up."""

    def __init__(
        self, options: CheckOptions, progress: Progress, secrets: MutableSet[str], offline: bool
    ) -> None:
        self.options = options
        self._progress = progress
        self._secrets = secrets
        self._t0 = time.monotonic()
        self.steps: list[Step] = []
        self.interrupted = False
        self.record: dict[str, Any] = {
            "offline": offline,
            "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "avatar_id": None,
            "room_url": None,
            "room_created": False,
            "session_id": None,
            "bey_key_valid": None,
            "daily_key_valid": None,
            "avatar_token_valid": None,
            **dict.fromkeys(MEASUREMENTS),
            "ejected": None,
            "room_deleted": None,
        }
        self._http: aiohttp.ClientSession | None = None
        self._daily_key = ""
        self._daily_url = ""
        self._room_url = ""
        self._room_name: str | None = None  # a room this check creates, to delete
        self._room_task: asyncio.Task[Any] | None = None
        self._identity: AvatarIdentity | None = None
        self._daily: DailyRoomAPI | None = None
        self._worker: PipelineWorker | None = None
        self._run_task: asyncio.Task[None] | None = None
        self._transport: DailyTransport | None = None
        self._meter: MicrophoneMeter | None = None
        self._changed = asyncio.Event()
        self._joined_at: float | None = None
        self._join_error: str | None = None
        self._avatar_id: str | None = None
        self._avatar_joined_at: float | None = None
        self._avatar_left = False
        self._camera_at: float | None = None
        self._session_answered_at = 0.0

    # Output.
    def _say(self, text: str) -> None:
        self._progress(redact(f"[{time.monotonic() - self._t0:6.2f}s] {text}", *self._secrets))

    def _step(
        self, name: str, started: float, ok: bool, detail: str, hint: str | None = None
    ) -> Step:
        step = Step(name, ok, time.monotonic() - started, detail, hint)
        step.detail = redact(step.detail, *self._secrets)
        step.hint = redact(step.hint, *self._secrets) if step.hint else None
        self.steps.append(step)
        mark = "ok  " if ok else "FAIL" if hint or not self.interrupted else "STOP"
        line = f"{mark} {_LABELS[name]}: {step.detail}"
        if step.hint:
            line += f". Fix: {step.hint}"
        self._say(line)
        return step

    async def _take(self, name: str, action: Callable[[], Any]) -> None:
        """Take one step: print and record it; a failure stops the check."""
        started = time.monotonic()
        try:
            detail = await action()
        except _StepFailed as failed:
            self._step(name, started, False, failed.detail, failed.hint)
            raise
        except asyncio.CancelledError:
            self.interrupted = True
            self._step(name, started, False, "interrupted (Ctrl-C)")
            raise
        except Exception as e:  # still a failed step: said, recorded, cleaned up after
            hint = "this is not one of the failures the check knows; report it with this line"
            self._step(name, started, False, f"unexpected error: {e!r}", hint)
            raise _StepFailed(str(e), hint) from e
        self._step(name, started, True, detail)

    # Waiting, woken by the room's events and the microphone meter.
    def _notify(self) -> None:
        self._changed.set()

    async def _wait(self, condition: Callable[[], bool], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while True:
            self._changed.clear()
            if condition():
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except (TimeoutError, asyncio.TimeoutError):
                pass

    # The run.
    async def run(self) -> None:
        """Take every step, then clean up whatever happened (cancellation included)."""
        try:
            async with aiohttp.ClientSession() as http:
                self._http = http
                try:
                    await self._steps()
                except _StepFailed:
                    pass  # said and recorded; clean up below
                except asyncio.CancelledError:
                    self.interrupted = True
                    self._say("interrupted (Ctrl-C): cleaning up")
                    raise
                finally:
                    await self._clean_up()
        finally:
            self._http = None

    async def _steps(self) -> None:
        keys: dict[str, Any] = {}
        await self._take("keys", lambda: self._check_keys(keys))
        await self._take("room", self._open_room)
        await self._take("bot_joined", self._join_bot)
        await self._take("session_created", lambda: self._start_session(keys))
        timeout = self.options.timeout_s
        await self._take("avatar_joined", lambda: self._await_avatar(timeout))
        await self._take("avatar_video", lambda: self._await_camera(timeout))
        # An intentional margin, as the avatar service keeps one: its subscription
        # to the bot's track may lag its camera, and nothing tells when it has.
        await asyncio.sleep(READY_MARGIN_S)
        spoken: dict[str, float] = {}
        await self._take("avatar_spoke", lambda: self._speak(spoken))
        await self._take("interrupt", lambda: self._interrupt(spoken))

    async def _check_keys(self, keys: dict[str, Any]) -> str:
        options = self.options
        api_key = _given(options.api_key) or env("BEY_API_KEY")
        daily_key = _given(options.daily_api_key) or env("DAILY_API_KEY")
        self._secrets.update(k for k in (api_key, daily_key) if k)
        missing = []
        if api_key is None:
            missing.append(
                ("BEY_API_KEY", "set BEY_API_KEY (from https://app.bey.chat) or pass --api-key")
            )
        if daily_key is None:
            missing.append(
                (
                    "DAILY_API_KEY",
                    "set DAILY_API_KEY (from the Daily dashboard, Developers) "
                    "or pass --daily-api-key",
                )
            )
        if missing:
            names = " and ".join(name for name, _ in missing)
            raise _StepFailed(
                f"{names} {'is' if len(missing) == 1 else 'are'} not set",
                "; ".join(hint for _, hint in missing),
            )
        assert api_key is not None and daily_key is not None
        try:
            keys["client"] = BeyClient(
                api_key, base_url=_given(options.api_url), session=self._http
            )
            self._daily_url = daily_api_url_setting(_given(options.daily_api_url))
            keys["avatar_id"] = avatar_id_setting(_given(options.avatar_id))
        except BeyConfigError as e:
            raise _StepFailed(str(e), "fix the option or variable named above") from None
        if options.room_url is not None:
            try:
                daily_room_name(options.room_url)
            except BeyConfigError as e:
                raise _StepFailed(str(e), "fix --room-url, or leave it out") from None
        self._daily_key = daily_key
        self.record["avatar_id"] = keys["avatar_id"]
        return "BEY_API_KEY and DAILY_API_KEY are set"

    def _rooms(self) -> DailyRoomAPI:
        """Daily's REST API, for the room, the tokens and the eject."""
        assert self._http is not None
        if self._daily is None:
            self._daily = DailyRoomAPI(
                api_key=self._daily_key, session=self._http, api_url=self._daily_url
            )
        return self._daily

    def _lifetime_s(self) -> float:
        return max(_MIN_LIFETIME_S, 4 * self.options.timeout_s + 60)

    async def _open_room(self) -> str:
        if self.options.room_url is not None:
            return await self._find_room(self.options.room_url)
        name = DailyRoomAPI.new_room_name("pipecat-bey-check")
        lifetime = self._lifetime_s()
        # Named before it is asked for, and not cancelled with the check (shielded):
        # a room whose creation was under way when Ctrl-C came is still deleted.
        self._room_name = name
        started = time.monotonic()
        self._room_task = asyncio.ensure_future(
            asyncio.wait_for(
                self._rooms().create_private_room(name, lifetime_s=lifetime), REQUEST_TIMEOUT_S
            )
        )
        try:
            room_url = await asyncio.shield(self._room_task)
        except (DailyAPIError, TimeoutError, asyncio.TimeoutError) as e:
            self._room_name = None  # nothing to delete
            status = getattr(e, "status", None)
            if status in (401, 403):
                self.record["daily_key_valid"] = False
                raise _StepFailed(
                    f"Daily refused the key (HTTP {status})",
                    "check DAILY_API_KEY (or --daily-api-key)",
                ) from None
            raise _StepFailed(
                f"Daily could not create a room: {e or type(e).__name__}",
                "check DAILY_API_URL and your network, then try again",
            ) from None
        self.record["room_created_s"] = round(time.monotonic() - started, 3)
        self.record["room_created"] = True
        self.record["daily_key_valid"] = True
        self._room_url = room_url
        self.record["room_url"] = room_url
        return f"created {room_url} (private, expires in {lifetime / 60:.0f} min)"

    async def _find_room(self, room_url: str) -> str:
        assert self._http is not None
        name = daily_room_name(room_url)
        try:
            async with self._http.get(
                f"{self._daily_url}/rooms/{name}",
                headers={"Authorization": f"Bearer {self._daily_key}"},
                timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
            ) as response:
                status = response.status
        except (aiohttp.ClientError, TimeoutError, asyncio.TimeoutError) as e:
            raise _StepFailed(
                f"could not reach Daily: {e or type(e).__name__}",
                "check DAILY_API_URL and your network",
            ) from None
        if status in (401, 403):
            self.record["daily_key_valid"] = False
            raise _StepFailed(
                f"Daily refused the key (HTTP {status})", "check DAILY_API_KEY (or --daily-api-key)"
            )
        if status == 404:
            self.record["daily_key_valid"] = True
            raise _StepFailed(
                f"Daily has no room {name!r} (HTTP 404)",
                "--room-url is wrong: give a room of the domain DAILY_API_KEY belongs to, "
                "or leave --room-url out to let the check create one",
            )
        if status != 200:
            raise _StepFailed(f"Daily answered HTTP {status} for room {name!r}", "try again later")
        self.record["daily_key_valid"] = True
        self._room_url = room_url
        self.record["room_url"] = room_url
        return f"found {room_url} (yours: it is not deleted at the end)"

    async def _join_bot(self) -> str:
        try:
            token = await asyncio.wait_for(
                self._rooms().mint_owner_token(
                    self._room_url, user_name=BOT_NAME, ttl_s=self._lifetime_s()
                ),
                REQUEST_TIMEOUT_S,
            )
        except (TimeoutError, asyncio.TimeoutError) as e:
            raise _StepFailed(
                f"could not reach Daily to mint the bot's token: {e or type(e).__name__}",
                "check DAILY_API_URL and your network",
            ) from None
        except DailyAPIError as e:
            if e.status is None:
                hint = "check DAILY_API_URL and your network"
            elif e.status in (401, 403):
                hint = "check DAILY_API_KEY"
            else:
                hint = "check the room and try again"
            raise _StepFailed(str(e), hint) from None
        self._secrets.add(token)

        transport = DailyTransport(
            self._room_url,
            token,
            BOT_NAME,
            # The bot speaks only on the avatar's track; its microphone is captured
            # from every participant (the avatar's is what is measured).
            DailyParams(
                audio_in_enabled=True, audio_out_enabled=True, microphone_out_enabled=False
            ),
        )
        self._transport = transport
        room = BotRoom(transport, track=BEY_AUDIO_TRACK)  # registers bey-custom-track
        room.on_events(
            joined=self._on_joined,
            participant_joined=self._on_participant,
            participant_updated=self._on_participant,
            participant_left=self._on_participant_left,
        )

        @transport.event_handler("on_error")
        async def on_error(transport: DailyTransport, error: Any) -> None:
            self._join_error = str(error)
            self._notify()

        self._meter = MicrophoneMeter(self._notify)
        pipeline = Pipeline([transport.input(), self._meter, transport.output()])
        self._worker = PipelineWorker(
            pipeline, params=PipelineParams(), idle_timeout_secs=None, enable_rtvi=False
        )
        runner = WorkerRunner(handle_sigint=False)  # Ctrl-C is the check's to handle
        await runner.add_workers(self._worker)
        started = time.monotonic()
        self._run_task = asyncio.create_task(runner.run(), name="pipecat-bey-check")
        timeout = self.options.timeout_s
        await self._wait(
            lambda: (
                self._joined_at is not None
                or self._join_error is not None
                or self._run_task is None
                or self._run_task.done()
            ),
            timeout,
        )
        if self._joined_at is None:
            why = self._join_error or (
                "its pipeline stopped"
                if self._run_task.done()
                else f"not in the room within {timeout:g} s"
            )
            raise _StepFailed(
                f"the bot could not join: {why}",
                "check the room URL, and that DAILY_API_KEY belongs to the room's domain",
            )
        self.record["bot_joined_s"] = round(self._joined_at - started, 3)
        return f"in the room with an owner token ({self._joined_at - started:.2f} s)"

    async def _on_joined(self) -> None:
        self._joined_at = time.monotonic()
        self._notify()

    async def _on_participant(self, participant: Mapping[str, Any]) -> None:
        if self._identity is None or not self._identity.matches(participant):
            return
        if self._avatar_joined_at is None:
            self._avatar_joined_at = time.monotonic()
            self._avatar_id = str(participant.get("id"))
        if self._camera_at is None and camera_on(participant):
            self._camera_at = time.monotonic()
        self._notify()

    async def _on_participant_left(self, participant: Mapping[str, Any], reason: str) -> None:
        if self._avatar_id is not None and str(participant.get("id")) == self._avatar_id:
            self._avatar_left = True
            self._notify()

    async def _start_session(self, keys: dict[str, Any]) -> str:
        assert self._http is not None
        avatar_id = keys["avatar_id"]
        self._identity = AvatarIdentity.new(AVATAR_NAME)
        started = time.monotonic()
        try:
            session = await start_avatar_session(
                keys["client"],
                avatar_id=avatar_id,
                room_url=self._room_url,
                identity=self._identity,
                daily=self._rooms(),
                token_ttl_s=self._lifetime_s(),
            )
        except BeyAuthError as e:
            self.record["bey_key_valid"] = False
            raise _StepFailed(
                str(e), "copy BEY_API_KEY (or --api-key) again from https://app.bey.chat"
            ) from None
        except BeyValidationError as e:
            self.record["bey_key_valid"] = True
            raise _StepFailed(
                str(e), f"check the avatar id {avatar_id!r} (--avatar-id or BEY_AVATAR_ID)"
            ) from None
        except DailyAPIError as e:
            hint = (
                "check DAILY_API_KEY (or --daily-api-key)"
                if e.status in (401, 403)
                else "try again later"
            )
            raise _StepFailed(str(e), hint) from None
        except BeyConnectionError as e:
            raise _StepFailed(str(e), "check BEY_API_URL and your network") from None
        except BeyAPIError as e:
            if e.status == 404:
                self.record["bey_key_valid"] = True
                raise _StepFailed(
                    str(e), f"check the avatar id {avatar_id!r} (--avatar-id or BEY_AVATAR_ID)"
                ) from None
            raise _StepFailed(
                str(e), "the Beyond Presence API failed; try again in a minute"
            ) from None
        except BeyError as e:
            raise _StepFailed(
                str(e), "try again; if it persists, report it with this line"
            ) from None
        answered = time.monotonic()
        self._session_answered_at = answered
        self.record["session_created_s"] = round(answered - started, 3)
        self.record["session_id"] = session.id
        self.record["bey_key_valid"] = True
        return f"session {session.id} for avatar {avatar_id} ({answered - started:.2f} s)"

    async def _await_avatar(self, timeout_s: float) -> str:
        if not await self._wait(lambda: self._avatar_joined_at is not None, timeout_s):
            raise _StepFailed(
                f"the avatar did not join within {timeout_s:g} s",
                "check that the avatar id is yours or a stock one, and that your plan allows "
                "another session (an avatar left in a room blocks the next); or retry with a "
                "longer --timeout",
            )
        assert self._avatar_joined_at is not None
        self.record["avatar_token_valid"] = True  # Daily let it in with the minted token
        joined_s = max(self._avatar_joined_at - self._session_answered_at, 0.0)
        self.record["avatar_joined_s"] = round(joined_s, 3)
        return f"{joined_s:.2f} s after the session started"

    async def _await_camera(self, timeout_s: float) -> str:
        ok = await self._wait(lambda: self._camera_at is not None or self._avatar_left, timeout_s)
        if self._avatar_left:
            raise _StepFailed(
                "the avatar left the room before its camera came on", "try again, or another avatar"
            )
        if not ok:
            raise _StepFailed(
                f"the avatar's camera did not come on within {timeout_s:g} s of it joining",
                "its renderer did not start: try again, or another avatar",
            )
        assert self._camera_at is not None and self._avatar_joined_at is not None
        video_s = max(self._camera_at - self._avatar_joined_at, 0.0)
        self.record["avatar_video_s"] = round(video_s, 3)
        return f"on {video_s:.2f} s after the avatar joined"

    async def _speak(self, spoken: dict[str, float]) -> str:
        assert self._transport is not None and self._worker is not None
        assert self._meter is not None and self._avatar_id is not None
        rate = self._transport.output().sample_rate
        phrase = await load_phrase(self.options.phrase, rate)
        frame = OutputAudioRawFrame(audio=phrase, sample_rate=rate, num_channels=1)
        frame.transport_destination = BEY_AUDIO_TRACK
        sent = time.monotonic()
        spoken["sent"] = sent
        spoken["length_s"] = len(phrase) / 2 / rate
        await self._worker.queue_frames([frame])
        meter, avatar = self._meter, self._avatar_id
        timeout = self.options.timeout_s
        ok = await self._wait(
            lambda: bool(meter.speech(avatar, sent)) or self._avatar_left, timeout
        )
        if self._avatar_left and not meter.speech(avatar, sent):
            raise _StepFailed("the avatar left the room before it spoke", "try again")
        if not ok:
            raise _StepFailed(
                f"the avatar joined but did not speak within {timeout:g} s of the phrase",
                f"it did not receive {BEY_AUDIO_TRACK}: check that the bot may send custom "
                "audio in this room (owner_only_broadcast, token permissions) and that "
                "nothing else in the room speaks to it",
            )
        first = meter.speech(avatar, sent)[0][0]
        spoken["first"] = first
        first_ms = (first - sent) * 1000
        self.record["first_avatar_speech_ms"] = round(first_ms, 1)
        return f"first speech {first_ms:.0f} ms after the phrase was sent"

    async def _interrupt(self, spoken: dict[str, float]) -> str:
        assert self._worker is not None and self._meter is not None
        assert self._avatar_id is not None
        meter, avatar, sent = self._meter, self._avatar_id, spoken["sent"]

        def spoken_s() -> float:
            return sum(seconds for _, seconds in meter.speech(avatar, sent))

        # If the avatar loses the phrase's start, interrupt by the phrase's end anyway.
        await self._wait(lambda: spoken_s() >= SPOKEN_BEFORE_INTERRUPT_S, spoken["length_s"])
        interruption = InterruptionFrame()
        # Naming the track makes the output transport clear the audio queued on it.
        interruption.transport_destination = BEY_AUDIO_TRACK
        interrupted = time.monotonic()
        await self._worker.queue_frames(
            [interruption, BotRoom.message_frame(INTERRUPT_MESSAGE, avatar)]
        )
        deadline = interrupted + INTERRUPT_WAIT_S
        while True:
            pieces = meter.speech(avatar)
            last = pieces[-1][0] if pieces else interrupted
            now = time.monotonic()
            quiet_from = max(last, interrupted)
            if now - quiet_from >= QUIET_HOLD_S or now >= deadline:
                break
            self._changed.clear()
            try:
                wait = min(quiet_from + QUIET_HOLD_S, deadline) - now
                await asyncio.wait_for(self._changed.wait(), wait)
            except (TimeoutError, asyncio.TimeoutError):
                pass
        silence_ms = max(last - interrupted, 0.0) * 1000
        self.record["interrupt_silence_ms"] = round(silence_ms, 1)
        if now >= deadline and now - quiet_from < QUIET_HOLD_S:
            raise _StepFailed(
                f'the avatar still spoke {INTERRUPT_WAIT_S:g} s after "interrupt"',
                "it ignores the interrupt app message: check that nothing else feeds its track",
            )
        if silence_ms > INTERRUPT_LIMIT_MS:
            raise _StepFailed(
                f'the avatar spoke {silence_ms:.0f} ms past "interrupt" '
                f"(at most {INTERRUPT_LIMIT_MS:.0f} ms expected)",
                "it holds audio past an interrupt: a bot should send less ahead of it",
            )
        return f'silent {silence_ms:.0f} ms after "interrupt" was sent'

    # Clean-up: each action bounded in time, each said and recorded.
    async def _clean_up(self) -> None:
        await self._eject()
        await self._stop_bot()
        await self._delete_room()

    async def _eject(self) -> None:
        if self._daily is None or self._identity is None or self._identity.user_id is None:
            return  # no session was asked for: no avatar can be on its way
        started = time.monotonic()
        try:
            ejected = await asyncio.wait_for(
                self._daily.eject(
                    self._room_url,
                    user_ids=[self._identity.user_id],
                    participant_ids=[self._avatar_id] if self._avatar_id else None,
                ),
                CLEANUP_TIMEOUT_S,
            )
        except (DailyAPIError, TimeoutError, asyncio.TimeoutError) as e:
            self.record["ejected"] = False
            minutes = self._lifetime_s() / 60
            self._step(
                "ejected",
                started,
                False,
                f"could not eject the avatar: {e or 'timed out'}",
                f"end it in the Daily dashboard; its token expires within {minutes:.0f} min "
                "and takes it out of the room",
            )
            return
        self.record["ejected"] = True
        what = "ejected the avatar" if ejected else "no avatar was in the room"
        self._step("ejected", started, True, f"{what} ({len(ejected)} participant(s))")

    async def _stop_bot(self) -> None:
        if self._run_task is None or self._worker is None:
            return
        if not self._run_task.done():
            await self._worker.cancel(reason="the check is over")
            await asyncio.wait({self._run_task}, timeout=CLEANUP_TIMEOUT_S)
        if not self._run_task.done():
            self._run_task.cancel()
            await asyncio.wait({self._run_task}, timeout=CLEANUP_TIMEOUT_S)

    async def _delete_room(self) -> None:
        if self._room_name is None:
            return
        started = time.monotonic()
        task = self._room_task
        if task is not None and not task.done():
            # Ctrl-C came while the room was being created: let that finish first.
            await asyncio.wait({task}, timeout=CLEANUP_TIMEOUT_S)
        if task is not None and not task.done():
            task.cancel()
            self.record["room_deleted"] = False
            self._step(
                "room_deleted",
                started,
                False,
                f"Daily did not say in time whether it created room {self._room_name}",
                "delete it in the Daily dashboard if it is there; it expires by itself within "
                f"{self._lifetime_s() / 60:.0f} min",
            )
            return
        if task is not None and (task.cancelled() or task.exception()):
            return  # it was never created
        try:
            await asyncio.wait_for(self._rooms().delete_room(self._room_name), CLEANUP_TIMEOUT_S)
        except (DailyAPIError, TimeoutError, asyncio.TimeoutError) as e:
            self.record["room_deleted"] = False
            self._step(
                "room_deleted",
                started,
                False,
                f"could not delete room {self._room_name}: {e or 'timed out'}",
                "delete it in the Daily dashboard; it expires by itself within "
                f"{self._lifetime_s() / 60:.0f} min",
            )
            return
        self.record["room_deleted"] = True
        self._step("room_deleted", started, True, f"deleted {self._room_name}")

    def result(self) -> dict[str, Any]:
        """The recording of the run (no key, no token)."""
        record = dict(self.record)
        record["steps"] = [step.to_json() for step in self.steps]
        record["interrupted"] = self.interrupted
        record["ok"] = (
            not self.interrupted
            and any(step.name == "interrupt" for step in self.steps)  # it went all the way
            and all(step.ok for step in self.steps)
        )
        text = redact(json.dumps(record), *self._secrets)
        return json.loads(text)


async def run_check(
    options: CheckOptions,
    *,
    progress: Progress = print_now,
    secrets: MutableSet[str] | None = None,
    offline: bool = False,
    notes: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Run the check and return its recording (written to ``options.record`` too).

    Cancelling it (Ctrl-C) still ejects the avatar, stops the bot and deletes the
    room; the recording is written, then the cancellation goes on.

    Args:
        options: What to run with.
        progress: Where the step lines go, one call per line.
        secrets: Filled with every key and token the check uses, so a caller can
            keep them out of its logs too; none is ever printed or recorded.
        offline: Whether the URLs point at the local stand-ins (noted in the recording).
        notes: More fields for the recording (the simulated world's settings, say).

    Returns:
        The recording; its ``ok`` says whether every step passed.
    """
    check = _Check(options, progress, secrets if secrets is not None else set(), offline)
    check.record.update(notes or {})
    try:
        await check.run()
    finally:
        recording = check.result()
        if options.record is not None:
            options.record.write_text(json.dumps(recording, indent=2) + "\n")
        if recording["ok"]:
            check._say("check passed: every step is ok")
        elif not check.interrupted:
            failed = next((s for s in check.steps if not s.ok), None)
            check._say(f"check failed at {_LABELS[failed.name] if failed else 'the start'}")
        if options.record is not None:
            check._say(f"recording written to {options.record}")
    return recording


# Offline: the same check against the local stand-ins.


async def run_offline_check(
    options: CheckOptions,
    *,
    world: Mapping[str, Any] | None = None,
    progress: Progress = print_now,
    secrets: MutableSet[str] | None = None,
    bey_key: str | None = None,
    daily_key: str | None = None,
) -> dict[str, Any]:
    """Run the check against the local Beyond Presence API and the simulated Daily.

    The very same :func:`run_check`, its URLs pointed at the stand-ins. They
    accept only their own keys (throwaway ones unless given): a key passed in
    ``options`` is sent as it is, so a wrong key is refused as the real API
    would refuse it. Keys from the environment are not used.

    Args:
        options: What to run with (``api_url``, ``daily_api_url`` are replaced).
        world: Settings of the simulated Daily
            (:func:`~pipecat_bey.cli.check_recording.load_world`); None:
            ``DailySimulation.realistic()``.
        progress: Where the step lines go.
        secrets: Filled with every key and token used (see :func:`run_check`).
        bey_key: The key the local Beyond Presence API accepts.
        daily_key: The key the simulated Daily accepts.

    Returns:
        The recording.
    """
    from pipecat_bey.testing.bey_emulator import BeyEmulator
    from pipecat_bey.testing.daily_sim import REALISTIC, DailySimulation

    bey_key = bey_key or f"bey-offline-{token_bytes.token_hex(12)}"
    daily_key = daily_key or f"daily-offline-{token_bytes.token_hex(12)}"
    secrets = secrets if secrets is not None else set()
    secrets.update((bey_key, daily_key))
    settings = dict(REALISTIC) if world is None else dict(world)
    simulation = DailySimulation.from_settings(settings, api_key=daily_key)
    progress(
        "offline: the local Beyond Presence API and a simulated Daily "
        f"({'realistic timings' if world is None else 'the given world'})"
    )
    async with BeyEmulator(api_keys={bey_key}) as bey, simulation as daily:
        daily.attach_bey(bey)
        local = replace(
            options,
            api_key=_given(options.api_key) or bey_key,
            daily_api_key=_given(options.daily_api_key) or daily_key,
            api_url=bey.url,
            daily_api_url=daily.rest_url,
        )
        return await run_check(
            local, progress=progress, secrets=secrets, offline=True, notes={"world": settings}
        )


# The command line.


def _log_to_stderr(secrets: Collection[str]) -> None:
    """Show pipecat's warnings and errors, one line each, with every secret masked."""
    from loguru import logger

    def sink(message: Any) -> None:
        sys.stderr.write(redact(str(message), *secrets))

    logger.remove()
    logger.add(sink, level="WARNING", format="{level}: {message}")


def run_check_cli(args: Any) -> int:
    """Run ``pipecat-bey check`` with a parsed command line.

    Args:
        args: The command line (``api_key``, ``daily_api_key``, ``api_url``,
            ``daily_api_url``, ``avatar_id``, ``room_url``, ``timeout``,
            ``record``, ``offline``, ``world``).

    Returns:
        0 when every step passed, 1 otherwise, 130 when interrupted (Ctrl-C).

    Raises:
        ValueError: If ``--record`` or ``--world`` is unusable; nothing has run.
    """
    if args.record is not None:
        check_writable(args.record, "--record")
    world = None
    if args.world is not None:
        from pipecat_bey.cli.check_recording import load_world  # offline only

        world = load_world(args.world)
    options = CheckOptions(
        api_key=args.api_key,
        daily_api_key=args.daily_api_key,
        api_url=args.api_url,
        daily_api_url=args.daily_api_url,
        avatar_id=args.avatar_id,
        room_url=args.room_url,
        timeout_s=args.timeout,
        record=args.record,
    )
    secrets: set[str] = {s for s in _secrets_of(args) if s}
    _log_to_stderr(secrets)
    if args.offline:
        # The local services log a client hanging up mid-request (as Ctrl-C makes the
        # check do) with a traceback; that is the check's own doing, not a fault.
        logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    try:
        # Ctrl-C cancels the check, which cleans up (eject, delete the room) and
        # writes its recording before asyncio.run raises KeyboardInterrupt here.
        if args.offline:
            recording = asyncio.run(run_offline_check(options, world=world, secrets=secrets))
        else:
            recording = asyncio.run(run_check(options, secrets=secrets))
    except KeyboardInterrupt:
        print("pipecat-bey: check interrupted", file=sys.stderr)
        return 130
    return 0 if recording["ok"] else 1


def _secrets_of(args: Any) -> Iterable[str | None]:
    yield getattr(args, "api_key", None)
    yield getattr(args, "daily_api_key", None)
    yield env("BEY_API_KEY")
    yield env("DAILY_API_KEY")
