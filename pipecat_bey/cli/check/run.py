"""One run of the check: its parts put together, its steps in order, its clean-up."""

import asyncio
import json
from collections.abc import Mapping, MutableSet
from typing import Any

import aiohttp

from pipecat_bey.cli._io import cancel_reason, finish, print_now
from pipecat_bey.cli.check.avatar import READY_MARGIN_S, CheckAvatar
from pipecat_bey.cli.check.bot import CheckBot
from pipecat_bey.cli.check.keys import Keys
from pipecat_bey.cli.check.options import CheckOptions
from pipecat_bey.cli.check.room import CheckRoom
from pipecat_bey.cli.check.steps import LABELS, Changes, Progress, StepFailed, StepRunner


class CheckRun:
    """One run of the check: the keys, the room, the bot and the avatar, step by step.

    Parameters:
        options: What to run with.
        progress: Where the step lines go.
        secrets: Filled with every key and token the run uses.
        offline: Whether the URLs point at the local stand-ins.
    """

    def __init__(
        self, options: CheckOptions, progress: Progress, secrets: MutableSet[str], offline: bool
    ) -> None:
        self.options = options
        self.runner = StepRunner(progress, secrets, offline)
        self._changes = Changes()

    async def run(self) -> None:
        """Take every step, then clean up whatever happened (cancellation included).

        The clean-up runs to the end even if the run is cancelled while it is
        under way (Ctrl-C during it, or a second one); the cancellation goes on after.
        """
        options, runner, changes = self.options, self.runner, self._changes
        async with aiohttp.ClientSession() as http:
            keys = Keys(options, runner, http)
            room = CheckRoom(options, keys, runner, http)
            bot = CheckBot(room, runner, changes, options.timeout_s)
            avatar = CheckAvatar(options, keys, room, bot, runner, changes)
            try:
                await self._steps(keys, room, bot, avatar)
            except StepFailed:
                pass  # said and recorded; clean up below
            except asyncio.CancelledError as e:
                runner.interrupted = True
                runner.say(f"interrupted ({cancel_reason(e)}): cleaning up")
                raise
            finally:
                await finish(self._clean_up(avatar, bot, room), on_cancel=self._cancelled_cleaning)

    @staticmethod
    async def _clean_up(avatar: CheckAvatar, bot: CheckBot, room: CheckRoom) -> None:
        # Each action bounded in time, each said and recorded.
        await avatar.eject()
        await bot.stop()
        await room.delete()

    def _cancelled_cleaning(self, error: asyncio.CancelledError) -> None:
        runner = self.runner
        reason = cancel_reason(error)
        if runner.interrupted:
            runner.say(f"{reason} again: still cleaning up")
        else:
            runner.interrupted = True
            runner.say(f"interrupted ({reason}) while cleaning up: finishing the clean-up")

    async def _steps(self, keys: Keys, room: CheckRoom, bot: CheckBot, avatar: CheckAvatar) -> None:
        take = self.runner.take
        await take("keys", keys.check)
        await take("room", room.open)
        await take(
            "bot_joined",
            lambda: bot.join(
                on_participant=avatar.on_participant,
                on_participant_left=avatar.on_participant_left,
            ),
        )
        await take("session_created", avatar.start_session)
        timeout = self.options.timeout_s
        await take("avatar_joined", lambda: avatar.await_joined(timeout))
        await take("avatar_video", lambda: avatar.await_camera(timeout))
        # An intentional margin, as the avatar service keeps one: its subscription
        # to the bot's track may lag its camera, and nothing tells when it has.
        await asyncio.sleep(READY_MARGIN_S)
        await take("avatar_spoke", avatar.speak)
        await take("interrupt", avatar.interrupt)


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
    room, however often and whenever it is cancelled; the recording is written,
    then the cancellation goes on.

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
    check = CheckRun(options, progress, secrets if secrets is not None else set(), offline)
    runner = check.runner
    runner.record.update(notes or {})
    try:
        await check.run()
    finally:
        recording = runner.result()
        if options.record is not None:
            options.record.write_text(json.dumps(recording, indent=2) + "\n")
        if recording["ok"]:
            runner.say("check passed: every step is ok")
        elif not runner.interrupted:
            failed = next((s for s in runner.steps if not s.ok), None)
            runner.say(f"check failed at {LABELS[failed.name] if failed else 'the start'}")
        if options.record is not None:
            runner.say(f"recording written to {options.record}")
    return recording
