"""Daily glue: rooms, meeting tokens, telling the avatar apart, ejecting it.

The avatar joins the bot's Daily room as a participant of its own, with a meeting
token the bot mints for it. The token is scoped to the room, names the avatar
(``user_name``, ``user_id``) so the bot can recognise it, and expires with
``eject_at_token_exp`` so an avatar nobody ejects still leaves (and stops billing)
when the token runs out.

Without a Daily room of the bot's own (the relay placement), the bot creates a
short-lived private room for the avatar, mints itself an owner's token for it
and deletes it at the end; those calls are here too.
"""

import asyncio
import base64
import binascii
import json
import re
import time
import uuid
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from loguru import logger
from pipecat.transports.daily.utils import (
    DailyMeetingTokenParams,
    DailyMeetingTokenProperties,
    DailyRESTHelper,
    DailyRoomParams,
    DailyRoomProperties,
)

from pipecat_bey._secrets import redact
from pipecat_bey._urls import check_api_base_url, daily_room_name
from pipecat_bey.config import DEFAULT_DAILY_API_URL
from pipecat_bey.errors import BeyConfigError, DailyAPIError

__all__ = ["DEFAULT_DAILY_API_URL", "AvatarIdentity", "DailyRoomAPI", "token_identity"]


@dataclass(frozen=True)
class AvatarIdentity:
    """How the avatar shows up in the room.

    Parameters:
        user_id: The ``user_id`` its meeting token carries (Daily's ``info.userId``).
        user_name: The ``user_name`` its meeting token carries (``info.userName``).
    """

    user_id: str | None
    user_name: str | None

    @classmethod
    def new(cls, user_name: str) -> "AvatarIdentity":
        """A fresh identity for an avatar whose token the bot mints.

        Args:
            user_name: The name the avatar shows in the room.

        Returns:
            The identity, with a ``user_id`` no other participant carries.
        """
        return cls(user_id=f"bey-avatar-{uuid.uuid4().hex[:12]}", user_name=user_name)

    def matches(self, participant: Mapping[str, Any]) -> bool:
        """Tell whether a Daily participant is this avatar.

        The ``user_id`` decides when the token has one, since names are not unique;
        otherwise the name does.

        Args:
            participant: A participant as Daily reports it (``{"id", "info": {...}}``).

        Returns:
            True if the participant joined with the avatar's token.
        """
        info = participant.get("info") or {}
        if self.user_id:
            return info.get("userId") == self.user_id
        return bool(self.user_name) and info.get("userName") == self.user_name


def token_identity(token: str) -> AvatarIdentity:
    """Read the avatar's identity from a Daily meeting token without verifying it.

    Daily meeting tokens are JWTs whose payload names the user (``u``) and user
    id (``ud``). Only those two claims are read; nothing else of the token is kept.

    Args:
        token: A Daily meeting token.

    Returns:
        The identity it carries (either field may be None).

    Raises:
        BeyConfigError: If the token is not a JWT or names neither a user nor a user id.
    """
    parts = token.split(".")
    claims: Any = None
    if len(parts) == 3:
        payload = parts[1] + "=" * (-len(parts[1]) % 4)
        try:
            claims = json.loads(base64.urlsafe_b64decode(payload))
        except (binascii.Error, ValueError):
            claims = None
    if not isinstance(claims, dict):
        raise BeyConfigError(
            "avatar_token is not a Daily meeting token (a JWT); mint one with "
            "POST /meeting-tokens or leave avatar_token unset and set DAILY_API_KEY"
        )
    user_id, user_name = claims.get("ud"), claims.get("u")
    if not user_id and not user_name:
        raise BeyConfigError(
            "avatar_token names no user_id or user_name, so the avatar could not be told "
            "apart from the user; mint it with the user_id property set"
        )
    return AvatarIdentity(
        user_id=str(user_id) if user_id else None, user_name=str(user_name) if user_name else None
    )


def _status_in(error: Exception) -> int | None:
    """The HTTP status pipecat's ``DailyRESTHelper`` quotes in its bare exceptions."""
    match = re.search(r"status: (\d{3})", str(error))
    return int(match.group(1)) if match else None


class DailyRoomAPI:
    """The Daily REST calls the avatar needs: rooms, tokens, ejection.

    Rooms and tokens go through pipecat's ``DailyRESTHelper``; ejection, which the
    helper does not cover, is ``POST /rooms/{name}/eject``. Every failure is a
    ``DailyAPIError`` (with the HTTP status when Daily answered), the key redacted.
    """

    def __init__(
        self,
        *,
        api_key: str,
        session: aiohttp.ClientSession,
        api_url: str = DEFAULT_DAILY_API_URL,
        timeout_s: float = 10.0,
    ) -> None:
        """Create the client.

        Args:
            api_key: Daily API key.
            session: HTTP session to use; the caller owns and closes it.
            api_url: Base URL of Daily's REST API.
            timeout_s: Timeout of one request, in seconds.
        """
        self._api_key = api_key
        self._api_url = check_api_base_url(api_url, what="Daily API URL", env="DAILY_API_URL")
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._helper = DailyRESTHelper(
            daily_api_key=api_key, daily_api_url=self._api_url, aiohttp_session=session
        )

    def __repr__(self) -> str:
        return f"DailyRoomAPI(api_url={self._api_url!r})"

    async def _helper_call(self, what: str, call: Awaitable[Any]) -> Any:
        """Run one of the helper's calls, turning its errors into ``DailyAPIError``."""
        try:
            return await call
        except (aiohttp.ClientError, TimeoutError, asyncio.TimeoutError) as e:
            raise DailyAPIError(f"could not reach Daily to {what}: {e or 'timed out'}") from e
        except Exception as e:  # DailyRESTHelper raises bare Exception on HTTP errors
            message = redact(str(e), self._api_key)
            raise DailyAPIError(f"Daily refused to {what}: {message}", status=_status_in(e)) from e

    @staticmethod
    def new_room_name(prefix: str) -> str:
        """A fresh room name: the prefix and a random suffix.

        Args:
            prefix: Start of the name.

        Returns:
            The name.
        """
        return f"{prefix}-{uuid.uuid4().hex[:12]}"

    async def create_private_room(self, name: str, *, lifetime_s: float) -> str:
        """Create a private room that expires (ejecting everyone) after a lifetime.

        Args:
            name: The room's name (see :meth:`new_room_name`): known before Daily
                answers, so a room whose creation was under way can still be deleted.
            lifetime_s: Seconds until Daily closes the room by itself, should
                nobody delete it.

        Returns:
            The room's URL.

        Raises:
            DailyAPIError: If Daily refuses or cannot be reached.
        """
        params = DailyRoomParams(
            name=name,
            privacy="private",
            properties=DailyRoomProperties(exp=time.time() + lifetime_s, eject_at_room_exp=True),
        )
        room = await self._helper_call("create a room", self._helper.create_room(params))
        return str(room.url)

    async def delete_room(self, room: str) -> None:
        """Delete a room (everyone in it leaves); a room already gone is not an error.

        Args:
            room: The room's URL or name.

        Raises:
            DailyAPIError: If Daily refuses or cannot be reached.
        """
        name = daily_room_name(room) if "://" in room else room
        await self._helper_call(f"delete room {name}", self._helper.delete_room_by_name(name))

    async def mint_owner_token(self, room_url: str, *, user_name: str, ttl_s: float) -> str:
        """Mint a meeting owner's token for the bot itself, scoped to one room.

        Args:
            room_url: The room.
            user_name: The name the bot shows in the room.
            ttl_s: Seconds until the token expires (and Daily ejects the bot).

        Returns:
            The meeting token.

        Raises:
            DailyAPIError: If Daily refuses or cannot be reached.
        """
        params = DailyMeetingTokenParams(
            properties=DailyMeetingTokenProperties(user_name=user_name)
        )
        return await self._helper_call(
            "mint the bot's meeting token",
            self._helper.get_token(
                room_url, expiry_time=ttl_s, eject_at_token_exp=True, owner=True, params=params
            ),
        )

    async def mint_avatar_token(self, room_url: str, identity: AvatarIdentity, ttl_s: float) -> str:
        """Mint a meeting token for the avatar, scoped to one room.

        Args:
            room_url: The room the avatar joins.
            identity: The user id and name the avatar will carry.
            ttl_s: Seconds until the token expires and Daily ejects the avatar.

        Returns:
            The meeting token.

        Raises:
            DailyAPIError: If Daily refuses or cannot be reached.
        """
        params = DailyMeetingTokenParams(
            properties=DailyMeetingTokenProperties(
                user_id=identity.user_id,
                user_name=identity.user_name,
                # What the avatar publishes: its camera and its voice. A token's
                # permissions come before the room's, so this holds in a room with
                # owner_only_broadcast too, without making the avatar an owner.
                permissions={"canSend": ["video", "audio"]},
            )
        )
        return await self._helper_call(
            "mint the avatar's meeting token",
            self._helper.get_token(
                room_url,
                expiry_time=ttl_s,
                eject_at_token_exp=True,
                owner=False,
                params=params,
            ),
        )

    async def eject(
        self,
        room_url: str,
        *,
        user_ids: list[str] | None = None,
        participant_ids: list[str] | None = None,
    ) -> list[str]:
        """Eject participants from a room.

        Args:
            room_url: The room.
            user_ids: Eject every participant whose token carries one of these user ids.
            participant_ids: Eject these participants (session ids).

        Returns:
            The participant ids Daily ejected.

        Raises:
            DailyAPIError: If Daily refuses or cannot be reached.
        """
        body: dict[str, Any] = {}
        if user_ids:
            body["user_ids"] = user_ids
        if participant_ids:
            body["ids"] = participant_ids
        url = f"{self._api_url}/rooms/{daily_room_name(room_url)}/eject"
        headers = {"Authorization": f"Bearer {self._api_key}"}
        try:
            async with self._session.post(
                url, json=body, headers=headers, timeout=self._timeout
            ) as response:
                text = await response.text()
                if response.status != 200:
                    raise DailyAPIError(
                        f"Daily refused to eject the avatar ({response.status}): "
                        f"{redact(text[:200], self._api_key)}",
                        status=response.status,
                    )
        except (aiohttp.ClientError, TimeoutError, asyncio.TimeoutError) as e:
            raise DailyAPIError(f"could not reach Daily to eject the avatar: {e}") from e
        try:
            ejected = json.loads(text).get("ejectedIds", [])
        except (ValueError, AttributeError):
            ejected = []
        logger.debug(f"Ejected {len(ejected)} participant(s) from {daily_room_name(room_url)}")
        return [str(i) for i in ejected]
