"""The avatar's session: its token, the Beyond Presence session, its place in the room, its end.

``start_avatar_session`` is the one start path (mint the avatar's meeting token,
then ask for the session); the service, the ``pipecat-bey session create``
command and the benchmarks all go through it. ``AvatarSession`` keeps what a
bot knows about its avatar while it runs: the session, which participant is
the avatar, and how to eject it at the end. Timers and pipeline frames are the
service's business, not this module's.
"""

import asyncio
from collections.abc import Mapping
from typing import Any

import aiohttp
from loguru import logger

from pipecat_bey._urls import daily_room_name
from pipecat_bey.client import BeyClient
from pipecat_bey.config import avatar_id_setting, daily_api_url_setting, setting
from pipecat_bey.daily.rest import AvatarIdentity, DailyRoomAPI, token_identity
from pipecat_bey.errors import BeyConfigError, DailyAPIError
from pipecat_bey.models import CreatePipecatSessionRequest, PipecatSessionResponse
from pipecat_bey.rooms import Arrival


async def start_avatar_session(
    client: BeyClient,
    *,
    avatar_id: str,
    room_url: str,
    identity: AvatarIdentity,
    daily: DailyRoomAPI | None = None,
    avatar_token: str | None = None,
    token_ttl_s: float = 3600.0,
) -> PipecatSessionResponse:
    """Start a Beyond Presence avatar in a Daily room.

    Mints the avatar's meeting token (scoped to the room, named by ``identity``,
    expiring after ``token_ttl_s`` with ``eject_at_token_exp``) unless one is
    given, then asks the API for a ``transport: "pipecat"`` session.

    Args:
        client: The Beyond Presence API client.
        avatar_id: The avatar to start.
        room_url: The Daily room it joins.
        identity: The user id and name its token carries.
        daily: Daily's REST API, to mint the token; needed unless ``avatar_token``.
        avatar_token: A meeting token of the caller's for the avatar.
        token_ttl_s: Lifetime of a minted token, in seconds.

    Returns:
        The session the API started.

    Raises:
        BeyConfigError: If there is neither a token nor a Daily API to mint one.
        DailyAPIError: If Daily refused the token.
        BeyError: If the API refused or failed (see ``BeyClient.create_session``).
    """
    token = avatar_token
    if token is None:
        if daily is None:
            raise BeyConfigError(
                "the avatar needs a Daily meeting token: set DAILY_API_KEY so one can be "
                "minted, or pass the avatar's token"
            )
        token = await daily.mint_avatar_token(room_url, identity, token_ttl_s)
    request = CreatePipecatSessionRequest(avatar_id=avatar_id, url=room_url, token=token)
    response = await client.create_session(request)
    assert isinstance(response, PipecatSessionResponse)  # the client checks the transport
    return response


class AvatarSession:
    """What the bot knows of its avatar: the session, its participant, its end.

    Attributes:
        session: The session, once the API accepted it.
        participant_id: The avatar's Daily participant id while it is in the room.
    """

    def __init__(
        self,
        *,
        client: BeyClient,
        room_url: str | None,
        avatar_id: str | None = None,
        avatar_token: str | None = None,
        daily_api_key: str | None = None,
        daily_api_url: str | None = None,
        user_name: str = "Avatar",
        token_ttl_s: float = 3600.0,
    ) -> None:
        """Check the avatar's settings now; nothing is requested until :meth:`start`.

        Args:
            client: The Beyond Presence API client.
            room_url: The Daily room the avatar joins, or None if it is only
                known later (a room created at start); set ``room_url`` before
                :meth:`start`.
            avatar_id: The avatar. Defaults to ``BEY_AVATAR_ID``, then the stock one.
            avatar_token: A meeting token of the caller's for the avatar, or None
                to mint one with the Daily API key.
            daily_api_key: Daily API key (mint the token, eject the avatar).
                Defaults to ``DAILY_API_KEY``.
            daily_api_url: Daily REST base URL. Defaults to ``DAILY_API_URL``,
                then Daily's.
            user_name: The name a minted token gives the avatar.
            token_ttl_s: Lifetime of a minted token.

        Raises:
            BeyConfigError: If a setting is missing or invalid.
        """
        if room_url is not None:
            daily_room_name(room_url)  # fail now on a URL the avatar could not join
        self.client = client
        self.room_url = room_url
        self.avatar_id = avatar_id_setting(avatar_id)
        self._daily_api_key = setting(
            daily_api_key, argument="daily_api_key", variable="DAILY_API_KEY"
        )
        self._daily_api_url = daily_api_url_setting(daily_api_url)
        self._avatar_token = setting(avatar_token, argument="avatar_token")
        if self._avatar_token is None and self._daily_api_key is None:
            raise BeyConfigError(
                "the avatar needs a Daily meeting token: set DAILY_API_KEY (or pass "
                "daily_api_key=...) so one can be minted, or pass avatar_token=..."
            )
        self.identity = (
            token_identity(self._avatar_token)
            if self._avatar_token
            else AvatarIdentity.new(user_name)
        )
        if self._daily_api_key is None:
            logger.warning(
                "no DAILY_API_KEY, so the avatar cannot be ejected at the end; "
                "it leaves when its token expires"
            )
        self._token_ttl_s = token_ttl_s
        self.daily: DailyRoomAPI | None = None
        self.session: PipecatSessionResponse | None = None
        self.participant_id: str | None = None
        self._requested = False
        self._own_http: aiohttp.ClientSession | None = None

    def use_session(self, http: aiohttp.ClientSession | None) -> None:
        """Talk to the Beyond Presence and Daily APIs through this HTTP session.

        Args:
            http: The session, which the caller owns and closes; None opens one
                that :meth:`close` closes.
        """
        if http is None:
            http = self._own_http = aiohttp.ClientSession()
        self.client.use_session(http)
        if self._daily_api_key:
            self.daily = DailyRoomAPI(
                api_key=self._daily_api_key, session=http, api_url=self._daily_api_url
            )

    @property
    def has_daily_api_key(self) -> bool:
        """Whether a Daily API key is set (to mint tokens, create rooms, eject)."""
        return self._daily_api_key is not None

    def __repr__(self) -> str:
        return f"AvatarSession(avatar_id={self.avatar_id!r}, room_url={self.room_url!r})"

    async def close(self) -> None:
        """Close the connections this record opened (a caller's session stays open)."""
        await self.client.close()
        if self._own_http is not None:
            await self._own_http.close()
            self._own_http = None

    async def start(self) -> PipecatSessionResponse:
        """Mint the token if needed and start the session.

        Returns:
            The session.

        Raises:
            BeyError: If the avatar could not be started (``DailyAPIError`` included).
        """
        if self.room_url is None:
            raise BeyConfigError("the avatar's room is not known yet: set room_url first")
        # From here on an avatar may be on its way, so the end must eject it.
        self._requested = True
        self.session = await start_avatar_session(
            self.client,
            avatar_id=self.avatar_id,
            room_url=self.room_url,
            identity=self.identity,
            daily=self.daily,
            avatar_token=self._avatar_token,
            token_ttl_s=self._token_ttl_s,
        )
        return self.session

    def is_avatar(self, participant: Mapping[str, Any]) -> bool:
        """Tell whether a Daily participant joined with the avatar's token.

        Args:
            participant: A participant as Daily reports it.

        Returns:
            True if it is the avatar.
        """
        return self.identity.matches(participant)

    def arrived(self, participant: Mapping[str, Any]) -> Arrival:
        """Note a participant joining the room.

        Args:
            participant: The participant.

        Returns:
            Whether it is the avatar, a second avatar, or someone else.
        """
        if not self.is_avatar(participant):
            return Arrival.OTHER
        participant_id = str(participant["id"])
        if self.participant_id is not None and self.participant_id != participant_id:
            return Arrival.DUPLICATE
        self.participant_id = participant_id
        return Arrival.AVATAR

    def departed(self, participant: Mapping[str, Any]) -> bool:
        """Note a participant leaving the room.

        Args:
            participant: The participant.

        Returns:
            True if it was the avatar.
        """
        if self.participant_id is None or str(participant.get("id")) != self.participant_id:
            return False
        self.participant_id = None
        return True

    async def eject_participant(self, participant_id: str) -> None:
        """Eject one participant (a second avatar), reporting a failure as a warning.

        Args:
            participant_id: The participant.
        """
        if self.daily is None or self.room_url is None:
            return
        try:
            await self.daily.eject(self.room_url, participant_ids=[participant_id])
        except DailyAPIError as e:
            logger.warning(f"could not eject the second avatar: {e}")

    async def eject(self, timeout_s: float) -> int | None:
        """Eject the avatar so it stops rendering (and billing); safe to call again.

        Args:
            timeout_s: How long the eject request may take.

        Returns:
            How many participants Daily ejected, or None if nothing was asked.
        """
        if not self._requested or self.daily is None or self.room_url is None:
            return None
        self._requested = False
        ids = [self.participant_id] if self.participant_id else None
        user_ids = [self.identity.user_id] if self.identity.user_id else None
        if not ids and not user_ids:
            return None
        try:
            ejected = await asyncio.wait_for(
                self.daily.eject(self.room_url, user_ids=user_ids, participant_ids=ids),
                timeout=timeout_s,
            )
        except (DailyAPIError, TimeoutError, asyncio.TimeoutError) as e:
            logger.warning(
                f"could not eject the avatar ({e or 'timed out'}); it leaves when its token expires"
            )
            return None
        logger.info(f"ejected the avatar ({len(ejected)} participant(s))")
        return len(ejected)
