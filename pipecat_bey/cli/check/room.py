"""The check's Daily room over Daily's REST API: created or found, its tokens, deleted."""

import asyncio
import time
from typing import Any

import aiohttp

from pipecat_bey._urls import daily_room_name
from pipecat_bey.cli.check.keys import Keys
from pipecat_bey.cli.check.options import (
    CLEANUP_TIMEOUT_S,
    REQUEST_TIMEOUT_S,
    CheckOptions,
    lifetime_s,
)
from pipecat_bey.cli.check.steps import StepFailed, StepRunner
from pipecat_bey.daily.rest import DailyRoomAPI
from pipecat_bey.errors import DailyAPIError


class CheckRoom:
    """The room of one run: a private one it creates (and deletes), or ``--room-url``.

    Parameters:
        options: What the check runs with.
        keys: The run's keys (Daily's key and URL, once checked).
        runner: The run's steps.
        http: The HTTP session of the run.
    """

    def __init__(
        self,
        options: CheckOptions,
        keys: Keys,
        runner: StepRunner,
        http: aiohttp.ClientSession,
    ) -> None:
        self.url = ""
        self.daily: DailyRoomAPI | None = None
        """Daily's REST API, once anything asked for it."""
        self._options = options
        self._keys = keys
        self._runner = runner
        self._http = http
        self._name: str | None = None  # a room this check creates, to delete
        self._task: asyncio.Task[Any] | None = None

    def api(self) -> DailyRoomAPI:
        """Daily's REST API, for the room, the tokens and the eject.

        Returns:
            The API, made on first use with the checked key and URL.
        """
        if self.daily is None:
            self.daily = DailyRoomAPI(
                api_key=self._keys.daily_key, session=self._http, api_url=self._keys.daily_url
            )
        return self.daily

    async def open(self) -> str:
        """The ``room`` step: create a private room, or look ``--room-url`` up.

        Returns:
            What happened.

        Raises:
            StepFailed: If Daily refused the key, has no such room or could not be reached.
        """
        if self._options.room_url is not None:
            return await self._find(self._options.room_url)
        record = self._runner.record
        name = DailyRoomAPI.new_room_name("pipecat-bey-check")
        lifetime = lifetime_s(self._options)
        # Named before it is asked for, and not cancelled with the check (shielded):
        # a room whose creation was under way when Ctrl-C came is still deleted.
        self._name = name
        started = time.monotonic()
        self._task = asyncio.ensure_future(
            asyncio.wait_for(
                self.api().create_private_room(name, lifetime_s=lifetime), REQUEST_TIMEOUT_S
            )
        )
        try:
            room_url = await asyncio.shield(self._task)
        except (DailyAPIError, TimeoutError, asyncio.TimeoutError) as e:
            self._name = None  # nothing to delete
            status = getattr(e, "status", None)
            if status in (401, 403):
                record["daily_key_valid"] = False
                raise StepFailed(
                    f"Daily refused the key (HTTP {status})",
                    "check DAILY_API_KEY (or --daily-api-key)",
                ) from None
            raise StepFailed(
                f"Daily could not create a room: {e or type(e).__name__}",
                "check DAILY_API_URL and your network, then try again",
            ) from None
        record["room_created_s"] = round(time.monotonic() - started, 3)
        record["room_created"] = True
        record["daily_key_valid"] = True
        self.url = room_url
        record["room_url"] = room_url
        return f"created {room_url} (private, expires in {lifetime / 60:.0f} min)"

    async def _find(self, room_url: str) -> str:
        record = self._runner.record
        name = daily_room_name(room_url)
        try:
            async with self._http.get(
                f"{self._keys.daily_url}/rooms/{name}",
                headers={"Authorization": f"Bearer {self._keys.daily_key}"},
                timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
            ) as response:
                status = response.status
        except (aiohttp.ClientError, TimeoutError, asyncio.TimeoutError) as e:
            raise StepFailed(
                f"could not reach Daily: {e or type(e).__name__}",
                "check DAILY_API_URL and your network",
            ) from None
        if status in (401, 403):
            record["daily_key_valid"] = False
            raise StepFailed(
                f"Daily refused the key (HTTP {status})", "check DAILY_API_KEY (or --daily-api-key)"
            )
        if status == 404:
            record["daily_key_valid"] = True
            raise StepFailed(
                f"Daily has no room {name!r} (HTTP 404)",
                "--room-url is wrong: give a room of the domain DAILY_API_KEY belongs to, "
                "or leave --room-url out to let the check create one",
            )
        if status != 200:
            raise StepFailed(f"Daily answered HTTP {status} for room {name!r}", "try again later")
        record["daily_key_valid"] = True
        self.url = room_url
        record["room_url"] = room_url
        return f"found {room_url} (yours: it is not deleted at the end)"

    async def mint_owner_token(self, user_name: str) -> str:
        """A meeting token for the bot: an owner's, for this room, as long as the run lives.

        Args:
            user_name: The name the bot goes by in the room.

        Returns:
            The token (also one of the run's secrets).

        Raises:
            StepFailed: If Daily could not be reached or refused.
        """
        try:
            token = await asyncio.wait_for(
                self.api().mint_owner_token(
                    self.url, user_name=user_name, ttl_s=lifetime_s(self._options)
                ),
                REQUEST_TIMEOUT_S,
            )
        except (TimeoutError, asyncio.TimeoutError) as e:
            raise StepFailed(
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
            raise StepFailed(str(e), hint) from None
        self._runner.secrets.add(token)
        return token

    async def delete(self) -> None:
        """Clean up: delete the room the check created (said and recorded), if it did."""
        if self._name is None:
            return
        record = self._runner.record
        minutes = lifetime_s(self._options) / 60
        started = time.monotonic()
        task = self._task
        if task is not None and not task.done():
            # Ctrl-C came while the room was being created: let that finish first.
            await asyncio.wait({task}, timeout=CLEANUP_TIMEOUT_S)
        if task is not None and not task.done():
            task.cancel()
            record["room_deleted"] = False
            self._runner.step(
                "room_deleted",
                started,
                False,
                f"Daily did not say in time whether it created room {self._name}",
                "delete it in the Daily dashboard if it is there; it expires by itself within "
                f"{minutes:.0f} min",
            )
            return
        if task is not None and (task.cancelled() or task.exception()):
            return  # it was never created
        try:
            await asyncio.wait_for(self.api().delete_room(self._name), CLEANUP_TIMEOUT_S)
        except (DailyAPIError, TimeoutError, asyncio.TimeoutError) as e:
            record["room_deleted"] = False
            self._runner.step(
                "room_deleted",
                started,
                False,
                f"could not delete room {self._name}: {e or 'timed out'}",
                f"delete it in the Daily dashboard; it expires by itself within {minutes:.0f} min",
            )
            return
        record["room_deleted"] = True
        self._runner.step("room_deleted", started, True, f"deleted {self._name}")
