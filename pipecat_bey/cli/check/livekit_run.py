"""One run of the LiveKit check: its steps in order, its recording, its clean-up; offline too.

The same steps as the Daily check (:mod:`pipecat_bey.cli.check.run`), taken and
recorded by the same :class:`~pipecat_bey.cli.check.steps.StepRunner`, with the
avatar removed through LiveKit's server API (``removed``) where Daily ejects it.
:func:`run_offline_livekit_check` runs the very same check against a real local
``livekit-server``, the local Beyond Presence API and LiveKit's own avatar code
(``pipecat_bey.testing.livekit_world``), imported only once it runs.
"""

import asyncio
import json
import secrets as token_bytes
from collections.abc import Mapping, MutableSet
from dataclasses import replace
from typing import Any

import aiohttp

from pipecat_bey.cli._io import ExitsFully, cancel_reason, finish, print_now
from pipecat_bey.cli.check.avatar import READY_MARGIN_S
from pipecat_bey.cli.check.livekit_avatar import LEFT_WAIT_S, LiveKitCheckAvatar
from pipecat_bey.cli.check.livekit_bot import LiveKitCheckBot
from pipecat_bey.cli.check.livekit_room import LiveKitCheckOptions, LiveKitCheckRoom, LiveKitKeys
from pipecat_bey.cli.check.options import given
from pipecat_bey.cli.check.steps import (
    LABELS,
    MEASUREMENTS,
    Changes,
    Progress,
    StepFailed,
    StepRunner,
)

LIVEKIT_STEPS = (
    "keys",
    "room",
    "bot_joined",
    "session_created",
    "avatar_joined",
    "avatar_video",
    "avatar_spoke",
    "interrupt",
    "removed",
    "room_deleted",
)
"""The LiveKit check's steps, in the order they are taken."""

LIVEKIT_LABELS = {
    **{name: label for name, label in LABELS.items() if name in LIVEKIT_STEPS},
    "removed": "avatar removed",
}
"""How each step is named on its line."""

LIVEKIT_MEASUREMENTS = (*MEASUREMENTS, "playback_started_ms", "playback_finished_ms")
"""The timings a LiveKit recording holds: the Daily check's, and the avatar's playback
reports (``lk.playback_started`` after the phrase was sent, ``lk.playback_finished``
after the clear)."""


class LiveKitStepRunner(StepRunner):
    """The Daily check's step runner, with the LiveKit steps' labels and recording.

    Parameters:
        progress: Where the lines go, one call per line.
        secrets: Every key and token of the run, masked in each line and in the recording.
        offline: Whether the run is against the local stand-ins (noted in the recording).
    """

    labels = LIVEKIT_LABELS

    def __init__(self, progress: Progress, secrets: MutableSet[str], offline: bool) -> None:
        super().__init__(progress, secrets, offline)
        daily = self.record
        self.record = {
            "transport": "livekit",
            "offline": offline,
            "started_at": daily["started_at"],
            "avatar_id": None,
            "livekit_url": None,
            "room_name": None,
            "room_created": False,
            "session_id": None,
            "bey_key_valid": None,
            "livekit_key_valid": None,
            "avatar_token_valid": None,
            **dict.fromkeys(LIVEKIT_MEASUREMENTS),
            "spoken_before_interrupt_s": None,
            "playback_finished": None,
            "removed": None,
            "room_deleted": None,
        }


class LiveKitCheckRun:
    """One LiveKit run: the keys, the room, the bot and the avatar, step by step.

    Parameters:
        options: What to run with.
        progress: Where the step lines go.
        secrets: Filled with every key and token the run uses.
        offline: Whether the settings point at the local stand-ins.
    """

    def __init__(
        self,
        options: LiveKitCheckOptions,
        progress: Progress,
        secrets: MutableSet[str],
        offline: bool,
    ) -> None:
        self.options = options
        self.runner = LiveKitStepRunner(progress, secrets, offline)
        self._changes = Changes()

    async def run(self) -> None:
        """Take every step, then clean up whatever happened (cancellation included).

        The clean-up runs to the end even if the run is cancelled while it is under
        way (Ctrl-C during it, or a second one); the cancellation goes on after.
        """
        options, runner, changes = self.options, self.runner, self._changes
        async with aiohttp.ClientSession() as http:
            keys = LiveKitKeys(options, runner, http)
            room = LiveKitCheckRoom(options, keys, runner)
            bot = LiveKitCheckBot(keys, room, runner, changes, options.timeout_s)
            avatar = LiveKitCheckAvatar(options, keys, room, bot, runner, changes)
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
    async def _clean_up(
        avatar: LiveKitCheckAvatar, bot: LiveKitCheckBot, room: LiveKitCheckRoom
    ) -> None:
        # Each action bounded in time, each said and recorded.
        await avatar.remove()
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

    async def _steps(
        self,
        keys: LiveKitKeys,
        room: LiveKitCheckRoom,
        bot: LiveKitCheckBot,
        avatar: LiveKitCheckAvatar,
    ) -> None:
        take = self.runner.take
        await take("keys", keys.check)
        await take("room", room.open)
        await take(
            "bot_joined",
            lambda: bot.join(
                on_participant=avatar.on_participant,
                on_participant_left=avatar.on_participant_left,
                on_speaking=avatar.on_speaking,
            ),
        )
        await take("session_created", avatar.start_session)
        timeout = self.options.timeout_s
        await take("avatar_joined", lambda: avatar.await_joined(timeout))
        await take("avatar_video", lambda: avatar.await_camera(timeout))
        # The service's own margin after the avatar's camera, kept so that the check
        # measures what a bot gets.
        await asyncio.sleep(READY_MARGIN_S)
        await take("avatar_spoke", avatar.speak)
        await take("interrupt", avatar.interrupt)


async def run_livekit_check(
    options: LiveKitCheckOptions,
    *,
    progress: Progress = print_now,
    secrets: MutableSet[str] | None = None,
    offline: bool = False,
    notes: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Run the LiveKit check and return its recording (written to ``options.record`` too).

    Cancelling it (Ctrl-C) still removes the avatar, stops the bot and deletes the
    room, however often and whenever it is cancelled; the recording is written,
    then the cancellation goes on.

    Args:
        options: What to run with.
        progress: Where the step lines go, one call per line.
        secrets: Filled with every key and token the check uses (the API secret
            among them), so a caller can keep them out of its logs too; none is ever
            printed or recorded.
        offline: Whether the settings point at the local stand-ins (noted in the recording).
        notes: More fields for the recording (the offline world's, say).

    Returns:
        The recording; its ``ok`` says whether every step passed.
    """
    check = LiveKitCheckRun(options, progress, secrets if secrets is not None else set(), offline)
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
            runner.say(f"check failed at {LIVEKIT_LABELS[failed.name] if failed else 'the start'}")
        if options.record is not None:
            runner.say(f"recording written to {options.record}")
    return recording


async def run_offline_livekit_check(
    options: LiveKitCheckOptions,
    *,
    progress: Progress = print_now,
    secrets: MutableSet[str] | None = None,
    bey_key: str | None = None,
) -> dict[str, Any]:
    """Run the LiveKit check against a local ``livekit-server`` and Beyond Presence API.

    The very same :func:`run_livekit_check`, its settings pointed at
    ``LiveKitWorld``: the pinned server in development mode, the local Beyond
    Presence API (which accepts only its own key, a throwaway one unless given;
    a key passed in ``options`` is sent as it is) and, for each session, LiveKit's
    own avatar code joining the room. It must run in a fresh network namespace
    (``unshare -n``). Settings from the environment are not used.

    Args:
        options: What to run with (``api_url`` and the LiveKit settings are replaced).
        progress: Where the step lines go.
        secrets: Filled with every key and token used (see :func:`run_livekit_check`).
        bey_key: The key the local Beyond Presence API accepts.

    Returns:
        The recording.

    Raises:
        pipecat_bey.testing.netns.NamespaceError: Outside a fresh network namespace.
    """
    from pipecat_bey.testing.livekit_server import LIVEKIT_SERVER_VERSION
    from pipecat_bey.testing.livekit_world import LiveKitWorld

    bey_key = bey_key or f"bey-offline-{token_bytes.token_hex(12)}"
    secrets = secrets if secrets is not None else set()
    secrets.add(bey_key)
    progress(
        f"offline: a local livekit-server {LIVEKIT_SERVER_VERSION}, the local Beyond Presence "
        "API and LiveKit's own avatar code, in a private network namespace"
    )
    world = LiveKitWorld(user=False, bey_api_keys=(bey_key,))
    # Closed to the end even if the run is cancelled as it closes (Ctrl-C just then).
    async with ExitsFully(world) as local:
        livekit = local.livekit_settings()
        settings = replace(
            options,
            api_key=given(options.api_key) or bey_key,
            api_url=local.bey_settings()["api_url"],
            **livekit,
        )
        notes = {
            "world": {
                "livekit_server": LIVEKIT_SERVER_VERSION,
                "avatar_join_delay_s": local.avatar_join_delay_s,
            }
        }
        try:
            return await run_livekit_check(
                settings, progress=progress, secrets=secrets, offline=True, notes=notes
            )
        finally:
            # What the world saw of its avatars, the check's clean-up done (Ctrl-C included).
            for avatar in local.avatars:
                await finish(avatar.wait_left(LEFT_WAIT_S))
                progress(f"offline: the local avatar left: {avatar.left_reason or 'it did not'}")
