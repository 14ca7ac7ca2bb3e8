"""The LiveKit check's settings, its ``keys`` step, and its room over LiveKit's server API.

The room is created with ``RoomService.CreateRoom`` (it closes by itself once
empty for a while) and deleted with ``RoomService.DeleteRoom`` at the end; the
bot's token is minted here. The API secret signs the tokens and the server API's
requests: it is never sent, printed, recorded or put in an error, nor is any token.
"""

import asyncio
import math
import secrets as token_bytes
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import aiohttp
from livekit import api

from pipecat_bey.cli.check.options import (
    CLEANUP_TIMEOUT_S,
    REQUEST_TIMEOUT_S,
    CheckOptions,
    given,
    lifetime_s,
)
from pipecat_bey.cli.check.steps import StepFailed, StepRunner
from pipecat_bey.client import BeyClient
from pipecat_bey.config import avatar_id_setting, env
from pipecat_bey.errors import BeyConfigError
from pipecat_bey.livekit.avatar_session import livekit_url_setting, server_api_url
from pipecat_bey.livekit.tokens import quiet_jwt

ROOM_PREFIX = "pipecat-bey-check"
"""The check's rooms are named ``pipecat-bey-check-<random>``."""

BOT_IDENTITY = "pipecat-bey-check-bot"
"""The bot's identity in the check's room."""

MAX_PARTICIPANTS = 3
"""The check's room takes the bot and the avatar, and one more (someone watching)."""

EMPTY_GRACE_S = 30.0
"""Beyond the bot's join timeout, how long the room waits for its first participant."""

_KEY_HINT = (
    "check LIVEKIT_API_KEY and LIVEKIT_API_SECRET (or --livekit-api-key and "
    "--livekit-api-secret): a key and its secret of the project LIVEKIT_URL belongs to"
)


@dataclass
class LiveKitCheckOptions(CheckOptions):
    """What ``pipecat-bey check --livekit`` runs with (the Daily options are not used).

    Parameters:
        livekit_url: The LiveKit server (None: ``LIVEKIT_URL``).
        livekit_api_key: Its API key (None: ``LIVEKIT_API_KEY``).
        livekit_api_secret: The key's secret (None: ``LIVEKIT_API_SECRET``); never shown.
    """

    livekit_url: str | None = None
    livekit_api_key: str | None = None
    livekit_api_secret: str | None = field(default=None, repr=False)


class LiveKitKeys:
    """The keys and settings of a LiveKit run, known once :meth:`check` has passed.

    Parameters:
        options: What the check runs with.
        runner: The run's steps (its secrets and recording).
        http: The HTTP session of the run.
    """

    def __init__(
        self, options: LiveKitCheckOptions, runner: StepRunner, http: aiohttp.ClientSession
    ) -> None:
        self.client: BeyClient | None = None
        self.avatar_id = ""
        self.url = ""
        self.api_key = ""
        self.api_secret = ""
        self.http = http
        self._options = options
        self._runner = runner

    def __repr__(self) -> str:
        return f"LiveKitKeys(url={self.url!r}, avatar_id={self.avatar_id!r})"

    async def check(self) -> str:
        """The ``keys`` step: the four settings are given, and acceptable.

        Returns:
            What happened.

        Raises:
            StepFailed: If a setting is missing (each named, with where to get it), or
                a URL or the avatar id is not acceptable.
        """
        options = self._options
        bey_key = given(options.api_key) or env("BEY_API_KEY")
        url = given(options.livekit_url) or env("LIVEKIT_URL")
        key = given(options.livekit_api_key) or env("LIVEKIT_API_KEY")
        secret = given(options.livekit_api_secret) or env("LIVEKIT_API_SECRET")
        self._runner.secrets.update(s for s in (bey_key, secret) if s)
        wanted = (
            (
                bey_key,
                "BEY_API_KEY",
                "set BEY_API_KEY (from https://app.bey.chat) or pass --api-key",
            ),
            (
                url,
                "LIVEKIT_URL",
                "set LIVEKIT_URL to your LiveKit server's URL (wss://<project>.livekit.cloud, "
                "in the LiveKit Cloud dashboard's Settings) or pass --livekit-url",
            ),
            (
                key,
                "LIVEKIT_API_KEY",
                "set LIVEKIT_API_KEY (the LiveKit dashboard's Settings, API keys) "
                "or pass --livekit-api-key",
            ),
            (
                secret,
                "LIVEKIT_API_SECRET",
                "set LIVEKIT_API_SECRET (given with the API key when it was created) "
                "or pass --livekit-api-secret",
            ),
        )
        missing = [(name, hint) for value, name, hint in wanted if value is None]
        if missing:
            names = [name for name, _ in missing]
            listed = ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]
            raise StepFailed(
                f"{listed} {'is' if len(names) == 1 else 'are'} not set",
                "; ".join(hint for _, hint in missing),
            )
        assert bey_key is not None and url is not None and key is not None and secret is not None
        settings = (
            ("--api-url or BEY_API_URL", lambda: self._bey_client(bey_key)),
            ("--livekit-url or LIVEKIT_URL", lambda: self._url(url)),
            ("--avatar-id or BEY_AVATAR_ID", self._avatar_id),
        )
        for where, check in settings:
            try:
                check()
            except BeyConfigError as e:
                raise StepFailed(str(e), f"fix {where}") from None
        self.api_key, self.api_secret = key, secret
        record = self._runner.record
        record["avatar_id"] = self.avatar_id
        record["livekit_url"] = self.url
        return "BEY_API_KEY, LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET are set"

    def _bey_client(self, api_key: str) -> None:
        self.client = BeyClient(api_key, base_url=given(self._options.api_url), session=self.http)

    def _url(self, url: str) -> None:
        self.url = livekit_url_setting(url, default=None)

    def _avatar_id(self) -> None:
        self.avatar_id = avatar_id_setting(given(self._options.avatar_id))


def _refused(error: api.TwirpError) -> bool:
    return error.status in (401, 403) or error.code in ("unauthenticated", "permission_denied")


class LiveKitCheckRoom:
    """The room of one LiveKit run: created through the server API, its tokens, deleted.

    Parameters:
        options: What the check runs with.
        keys: The run's keys (the server, its API key and secret, once checked).
        runner: The run's steps.
    """

    def __init__(self, options: LiveKitCheckOptions, keys: LiveKitKeys, runner: StepRunner) -> None:
        self.name = ""
        """The room's name, once it is being created."""
        self._options = options
        self._keys = keys
        self._runner = runner
        self._server: api.LiveKitAPI | None = None
        self._to_delete: str | None = None  # a room this check creates, to delete
        self._task: asyncio.Task[Any] | None = None

    def __repr__(self) -> str:
        return f"LiveKitCheckRoom(name={self.name!r})"

    def server(self) -> api.LiveKitAPI:
        """LiveKit's server API, for the room (the avatar's removal has its own).

        Returns:
            The API, made on first use with the checked URL, key and secret.
        """
        if self._server is None:
            keys = self._keys
            self._server = api.LiveKitAPI(
                server_api_url(keys.url), keys.api_key, keys.api_secret, session=keys.http
            )
        return self._server

    async def _create(self, name: str) -> api.Room:
        request = api.CreateRoomRequest(
            name=name,
            empty_timeout=math.ceil(self._options.timeout_s + EMPTY_GRACE_S),
            max_participants=MAX_PARTICIPANTS,
        )
        with quiet_jwt():  # the request is signed with the secret
            return await self.server().room.create_room(request)

    async def open(self) -> str:
        """The ``room`` step: create a short-lived room.

        Returns:
            What happened.

        Raises:
            StepFailed: If LiveKit refused the key or secret, or could not be reached.
        """
        record = self._runner.record
        name = f"{ROOM_PREFIX}-{token_bytes.token_hex(4)}"
        self.name = name
        # Named before it is asked for, and not cancelled with the check (shielded):
        # a room whose creation was under way when Ctrl-C came is still deleted.
        self._to_delete = name
        started = time.monotonic()
        self._task = asyncio.ensure_future(asyncio.wait_for(self._create(name), REQUEST_TIMEOUT_S))
        try:
            await asyncio.shield(self._task)
        except api.TwirpError as e:
            self._to_delete = None  # nothing to delete
            if _refused(e):
                record["livekit_key_valid"] = False
                raise StepFailed(
                    f"LiveKit refused the API key or its secret (HTTP {e.status}, {e.code})",
                    _KEY_HINT,
                ) from None
            raise StepFailed(
                f"LiveKit could not create a room (HTTP {e.status}, {e.code}: {e.message})",
                "check LIVEKIT_URL, then try again",
            ) from None
        except (aiohttp.ClientError, OSError, TimeoutError, asyncio.TimeoutError) as e:
            self._to_delete = None
            raise StepFailed(
                f"could not reach the LiveKit server at {self._keys.url}: {e or type(e).__name__}",
                "check LIVEKIT_URL (or --livekit-url) and your network",
            ) from None
        created_s = time.monotonic() - started
        record["room_created_s"] = round(created_s, 3)
        record["room_created"] = True
        record["room_name"] = name
        record["livekit_key_valid"] = True
        return f"created {name} ({created_s:.2f} s; for at most {MAX_PARTICIPANTS} participants)"

    def bot_token(self) -> str:
        """The bot's token: a standard participant of this room, publishing and subscribing.

        Returns:
            The token (also one of the run's secrets), as long-lived as the run.
        """
        keys = self._keys
        grants = api.VideoGrants(
            room_join=True,
            room=self.name,
            can_publish=True,
            can_subscribe=True,
            can_publish_data=True,
        )
        token = (
            api.AccessToken(keys.api_key, keys.api_secret)
            .with_identity(BOT_IDENTITY)
            .with_name("pipecat-bey check")
            .with_kind("standard")
            .with_ttl(timedelta(seconds=lifetime_s(self._options)))
            .with_grants(grants)
        )
        with quiet_jwt():
            jwt = token.to_jwt()
        self._runner.secrets.add(jwt)
        return jwt

    async def delete(self) -> None:
        """Clean up: delete the room the check created (said and recorded), if it did."""
        if self._to_delete is None:
            return
        record, name = self._runner.record, self._to_delete
        empty_s = math.ceil(self._options.timeout_s + EMPTY_GRACE_S)
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
                f"LiveKit did not say in time whether it created room {name}",
                f"delete it in the LiveKit dashboard if it is there; LiveKit closes it by "
                f"itself if no one joins it within {empty_s} s",
            )
            return
        if task is not None and (task.cancelled() or task.exception()):
            return  # it was never created
        try:
            with quiet_jwt():
                await asyncio.wait_for(
                    self.server().room.delete_room(api.DeleteRoomRequest(room=name)),
                    CLEANUP_TIMEOUT_S,
                )
        except api.TwirpError as e:
            if e.code == "not_found":  # it closed by itself already
                record["room_deleted"] = True
                self._runner.step("room_deleted", started, True, f"{name} was closed already")
                return
            self._failed_to_delete(started, name, f"HTTP {e.status}, {e.code}: {e.message}")
            return
        except (aiohttp.ClientError, OSError, TimeoutError, asyncio.TimeoutError) as e:
            self._failed_to_delete(started, name, str(e) or "timed out")
            return
        record["room_deleted"] = True
        self._runner.step("room_deleted", started, True, f"deleted {name}")

    def _failed_to_delete(self, started: float, name: str, why: str) -> None:
        self._runner.record["room_deleted"] = False
        empty_s = math.ceil(self._options.timeout_s + EMPTY_GRACE_S)
        self._runner.step(
            "room_deleted",
            started,
            False,
            f"could not delete room {name}: {why}",
            "delete it in the LiveKit dashboard; LiveKit closes it by itself once everyone "
            f"has left (or if no one joined within {empty_s} s)",
        )
