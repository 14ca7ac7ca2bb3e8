"""The check's steps: each taken, printed as it happens and recorded; and waiting for events.

:class:`StepRunner` takes a step (an action that returns what happened, or raises
:class:`StepFailed` with what to do), prints its line and keeps it for the
recording, every key and token masked. :class:`Changes` wakes the waits when the
room, the bot or the microphone meter says something happened.
"""

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping, MutableSet
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from pipecat_bey._secrets import redact
from pipecat_bey.cli._io import cancel_reason

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

LABELS = {
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
"""How each step is named on its line."""

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

Progress = Callable[[str], None]


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


class StepFailed(Exception):
    """A step failed; the check stops there and cleans up.

    Parameters:
        detail: What happened.
        hint: What to do about it.
    """

    def __init__(self, detail: str, hint: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.hint = hint


class StepRunner:
    """Takes the steps of one run, prints a line for each and keeps the recording.

    Parameters:
        progress: Where the lines go, one call per line.
        secrets: Every key and token of the run, masked in each line and in the recording.
        offline: Whether the run is against the local stand-ins (noted in the recording).
    """

    labels: Mapping[str, str] = LABELS
    """How each step is named on its line."""

    def __init__(self, progress: Progress, secrets: MutableSet[str], offline: bool) -> None:
        self.secrets = secrets
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
        self._progress = progress
        self._t0 = time.monotonic()

    def say(self, text: str) -> None:
        """Print a line, stamped with the time since the start.

        Args:
            text: The line.
        """
        self._progress(redact(f"[{time.monotonic() - self._t0:6.2f}s] {text}", *self.secrets))

    def step(
        self, name: str, started: float, ok: bool, detail: str, hint: str | None = None
    ) -> Step:
        """Print and record a step that has ended.

        Args:
            name: One of :data:`STEPS`.
            started: When it started (monotonic).
            ok: Whether it passed.
            detail: What happened.
            hint: On failure, what to do about it.

        Returns:
            The step.
        """
        step = Step(name, ok, time.monotonic() - started, detail, hint)
        step.detail = redact(step.detail, *self.secrets)
        step.hint = redact(step.hint, *self.secrets) if step.hint else None
        self.steps.append(step)
        mark = "ok  " if ok else "FAIL" if hint or not self.interrupted else "STOP"
        line = f"{mark} {self.labels[name]}: {step.detail}"
        if step.hint:
            line += f". Fix: {step.hint}"
        self.say(line)
        return step

    async def take(self, name: str, action: Callable[[], Awaitable[str]]) -> None:
        """Take one step: print and record it; a failure stops the check.

        Args:
            name: One of :data:`STEPS`.
            action: Does the step and returns what happened; raises :class:`StepFailed`.

        Raises:
            StepFailed: If the step failed (an unexpected error becomes one).
            asyncio.CancelledError: If the run was cancelled during the step.
        """
        started = time.monotonic()
        try:
            detail = await action()
        except StepFailed as failed:
            self.step(name, started, False, failed.detail, failed.hint)
            raise
        except asyncio.CancelledError as e:
            self.interrupted = True
            self.step(name, started, False, f"interrupted ({cancel_reason(e)})")
            raise
        except Exception as e:  # still a failed step: said, recorded, cleaned up after
            hint = "this is not one of the failures the check knows; report it with this line"
            self.step(name, started, False, f"unexpected error: {e!r}", hint)
            raise StepFailed(str(e), hint) from e
        self.step(name, started, True, detail)

    def result(self) -> dict[str, Any]:
        """The recording of the run (no key, no token).

        Returns:
            The recording; its ``ok`` says whether every step passed.
        """
        record = dict(self.record)
        record["steps"] = [step.to_json() for step in self.steps]
        record["interrupted"] = self.interrupted
        record["ok"] = (
            not self.interrupted
            and any(step.name == "interrupt" for step in self.steps)  # it went all the way
            and all(step.ok for step in self.steps)
        )
        text = redact(json.dumps(record), *self.secrets)
        return json.loads(text)


class Changes:
    """Wakes the check's waits whenever the room, the bot or the meter tells of a change."""

    def __init__(self) -> None:
        self._changed = asyncio.Event()

    def notify(self) -> None:
        """Say that something changed: every wait checks its condition again."""
        self._changed.set()

    async def wait(self, condition: Callable[[], bool], timeout_s: float) -> bool:
        """Wait until a condition holds, checking it again at each change.

        Args:
            condition: What is waited for.
            timeout_s: How long to wait at most.

        Returns:
            Whether it held before the time was up.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            self._changed.clear()
            if condition():
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            await self._next(remaining)

    async def pause(self, timeout_s: float) -> None:
        """Wait for the next change, or until the time is up.

        Args:
            timeout_s: How long to wait at most.
        """
        self._changed.clear()
        await self._next(timeout_s)

    async def _next(self, timeout_s: float) -> None:
        try:
            await asyncio.wait_for(self._changed.wait(), timeout_s)
        except (TimeoutError, asyncio.TimeoutError):
            pass
