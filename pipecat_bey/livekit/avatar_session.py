"""The avatar's session in a LiveKit room: its token, the Beyond Presence session, its removal.

``LiveKitAvatarSession`` is the LiveKit twin of the Daily ``AvatarSession``: it
mints the avatar's token (an agent of its own, ``bey-avatar-agent``,
publishing on the bot's behalf, expiring after ``avatar_token_ttl_s``), asks
the API for a ``transport: "livekit"`` session, tells the avatar apart from the
other participants and removes it through the server API at the end
(``RoomService.RemoveParticipant``), the token's expiry being the backstop.

The API secret signs tokens and server API calls; it is never sent, logged or
shown, nor is any token.
"""

import asyncio
import ipaddress
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from livekit import api
from loguru import logger

from pipecat_bey.client import BeyClient
from pipecat_bey.config import avatar_id_setting, setting
from pipecat_bey.errors import BeyConfigError
from pipecat_bey.livekit.tokens import (
    AVATAR_IDENTITY,
    BotIdentity,
    mint_avatar_token,
    quiet_jwt,
)
from pipecat_bey.models import CreateLivekitSessionRequest, LivekitSessionResponse
from pipecat_bey.rooms import Arrival, Participant


def _private_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private


def livekit_url_setting(value: Any, *, default: str | None) -> str:
    """The LiveKit server's URL: the argument, ``LIVEKIT_URL``, else the bot's transport's.

    Cleartext (``ws://``, ``http://``) is accepted for loopback and private
    addresses only: tokens would cross the internet unencrypted.

    Args:
        value: What the caller passed.
        default: The URL the bot's transport connects to.

    Returns:
        The URL, without a trailing slash.

    Raises:
        BeyConfigError: If no URL is known or it is not acceptable.
    """
    url = setting(value, argument="livekit_url", variable="LIVEKIT_URL") or default
    if not url:
        raise BeyConfigError(
            "the LiveKit server's URL is not known: set LIVEKIT_URL (or pass livekit_url=...)"
        )
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss", "http", "https") or not parts.hostname:
        raise BeyConfigError(
            "the LiveKit URL is not a ws(s):// or http(s):// URL with a host; "
            "set LIVEKIT_URL to your server's, like wss://<project>.livekit.cloud"
        )
    if parts.scheme in ("ws", "http") and not _private_host(parts.hostname):
        raise BeyConfigError(
            f"the LiveKit URL uses {parts.scheme}:// to {parts.hostname}, which would send "
            "tokens unencrypted; use wss:// (or https://) for a server that is not local"
        )
    return url.rstrip("/")


def server_api_url(url: str) -> str:
    """The HTTP(S) base of a LiveKit server's API, from its ``ws(s)://`` URL.

    Args:
        url: The server's URL.

    Returns:
        The same host with ``http`` or ``https``.
    """
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return parts._replace(scheme=scheme).geturl()


class LiveKitAvatarSession:
    """What the bot knows of its avatar in a LiveKit room: the session, its identity, its end.

    Attributes:
        avatar_id: The avatar.
        room_url: The LiveKit server the avatar joins.
        session: The session, once the API accepted it.
        participant_id: The avatar's identity while it is in the room.
        identity: The avatar's identity.
    """

    def __init__(
        self,
        *,
        client: BeyClient,
        url: str,
        api_key: str,
        api_secret: str,
        bot: BotIdentity,
        avatar_id: str | None = None,
        identity: str = AVATAR_IDENTITY,
        name: str | None = None,
        token_ttl_s: float = 3600.0,
    ) -> None:
        """Check the avatar's settings now; nothing is requested until :meth:`start`.

        Args:
            client: The Beyond Presence API client.
            url: The LiveKit server (checked with :func:`livekit_url_setting`).
            api_key: The LiveKit API key.
            api_secret: Its secret.
            bot: Who the bot is and which room it joins.
            avatar_id: The avatar. Defaults to ``BEY_AVATAR_ID``, then the stock one.
            identity: The avatar's identity in the room.
            name: The name the avatar shows.
            token_ttl_s: Lifetime of the avatar's token.
        """
        self.client = client
        self.room_url: str | None = url
        self.avatar_id = avatar_id_setting(avatar_id)
        self.identity = identity
        self.bot = bot
        self._api_key = api_key
        self._api_secret = api_secret
        self._name = name
        self._token_ttl_s = token_ttl_s
        self.session: LivekitSessionResponse | None = None
        self.participant_id: str | None = None
        self._requested = False
        self._http: aiohttp.ClientSession | None = None
        self._own_http: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return (
            f"LiveKitAvatarSession(avatar_id={self.avatar_id!r}, room_url={self.room_url!r}, "
            f"room={self.bot.room!r})"
        )

    def use_session(self, http: aiohttp.ClientSession | None) -> None:
        """Talk to the Beyond Presence and LiveKit server APIs through this HTTP session.

        Args:
            http: The session, which the caller owns and closes; None opens one
                that :meth:`close` closes.
        """
        if http is None:
            http = self._own_http = aiohttp.ClientSession()
        self._http = http
        self.client.use_session(http)

    async def close(self) -> None:
        """Close the connections this record opened (a caller's session stays open)."""
        await self.client.close()
        if self._own_http is not None:
            await self._own_http.close()
            self._own_http = None

    async def start(self) -> LivekitSessionResponse:
        """Mint the avatar's token and start the session.

        Returns:
            The session.

        Raises:
            BeyError: If the avatar could not be started.
        """
        assert self.room_url is not None
        token = mint_avatar_token(
            self._api_key,
            self._api_secret,
            room=self.bot.room,
            bot_identity=self.bot.identity,
            ttl_s=self._token_ttl_s,
            identity=self.identity,
            name=self._name,
        )
        # From here on an avatar may be on its way, so the end must remove it.
        self._requested = True
        request = CreateLivekitSessionRequest(
            avatar_id=self.avatar_id, url=self.room_url, token=token
        )
        response = await self.client.create_session(request)
        assert isinstance(response, LivekitSessionResponse)  # the client checks the transport
        self.session = response
        return response

    def is_avatar(self, participant: Participant) -> bool:
        """Tell whether a participant is the avatar (by its identity).

        Args:
            participant: A participant as the bot's room reports it.

        Returns:
            True if it is the avatar.
        """
        return str(participant.get("id")) == self.identity

    def arrived(self, participant: Participant) -> Arrival:
        """Note a participant joining the room (LiveKit lets one identity in at a time).

        Args:
            participant: The participant.

        Returns:
            Whether it is the avatar or someone else.
        """
        if not self.is_avatar(participant):
            return Arrival.OTHER
        self.participant_id = self.identity
        return Arrival.AVATAR

    def departed(self, participant: Participant) -> bool:
        """Note a participant leaving the room.

        Args:
            participant: The participant.

        Returns:
            True if it was the avatar.
        """
        if self.participant_id is None or not self.is_avatar(participant):
            return False
        self.participant_id = None
        return True

    async def eject_participant(self, participant_id: str) -> None:
        """Remove one participant from the bot's room, reporting a failure as a warning.

        Args:
            participant_id: Its identity.
        """
        try:
            await self._remove(participant_id)
        except Exception as e:
            logger.warning(f"could not remove {participant_id} from the room: {e}")

    async def eject(self, timeout_s: float) -> int | None:
        """Remove the avatar so it stops rendering (and billing); safe to call again.

        Args:
            timeout_s: How long the request may take.

        Returns:
            1 once removed, 0 if it was not in the room, None if nothing was asked.
        """
        if not self._requested:
            return None
        self._requested = False
        try:
            await asyncio.wait_for(self._remove(self.identity), timeout=timeout_s)
        except api.TwirpError as e:
            if e.code == "not_found":
                return 0  # never joined, or already gone
            logger.warning(
                f"could not remove the avatar ({e.code}: {e.message}); "
                "it leaves when its token expires"
            )
            return None
        except (TimeoutError, asyncio.TimeoutError, aiohttp.ClientError) as e:
            reason = str(e) or "timed out"
            logger.warning(
                f"could not remove the avatar ({reason}); it leaves when its token expires"
            )
            return None
        logger.info("removed the avatar from the room")
        return 1

    async def _remove(self, identity: str) -> None:
        server = api.LiveKitAPI(
            server_api_url(self.room_url or ""),
            self._api_key,
            self._api_secret,
            session=self._http,
        )
        try:
            with quiet_jwt():  # the request is signed with the secret
                await server.room.remove_participant(
                    api.RoomParticipantIdentity(room=self.bot.room, identity=identity)
                )
        finally:
            await server.aclose()
