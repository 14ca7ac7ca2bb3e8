"""The relay's private Daily room over REST: given or created, the bot's token, deleted at the end.

A room the caller gives is used as it is. Otherwise one is created that
expires by itself (``lifetime_s``), and deleted at the end, even when the end
comes while Daily is still creating it. Without a token the bot gets an
owner's, minted with the Daily API key.
"""

import asyncio
from collections.abc import Callable

from loguru import logger

from pipecat_bey._urls import daily_room_name
from pipecat_bey.daily.rest import DailyRoomAPI
from pipecat_bey.errors import BeyConfigError, DailyAPIError


class PrivateRoom:
    """The avatar's private room, as Daily's REST API makes and ends it."""

    def __init__(
        self,
        *,
        url: str | None,
        token: str | None,
        can_create: bool,
        rest: Callable[[], DailyRoomAPI | None],
        lifetime_s: float,
        bot_name: str,
    ) -> None:
        """Check the room's settings; nothing is requested until :meth:`open`.

        Args:
            url: A Daily room of the caller's, or None to create one.
            token: The bot's meeting token for ``url``, or None to mint an owner's
                (when there is a Daily API key; else the bot joins without one).
            can_create: Whether there is a Daily API key to create a room with.
            rest: Daily's REST API once there is an HTTP session, or None without a key.
            lifetime_s: Lifetime of a created room and of a minted token.
            bot_name: The bot's name in the room (its token's).

        Raises:
            BeyConfigError: If ``url`` is not a Daily room URL, or there is neither a
                room nor a key to create one with.
        """
        if url is not None:
            daily_room_name(url)
        elif not can_create:
            raise BeyConfigError(
                "the relay placement creates a private Daily room for the avatar: set "
                "DAILY_API_KEY (or pass daily_api_key=...), or pass relay_room_url=..."
            )
        self.url = url
        self.token = token
        self.lifetime_s = lifetime_s
        self._rest = rest
        self._bot_name = bot_name
        self._daily: DailyRoomAPI | None = None
        self._created = False
        self._creating: asyncio.Future[str] | None = None

    async def open(self) -> str:
        """Create the room if needed and mint the bot's token if needed.

        Returns:
            The room's URL.

        Raises:
            DailyAPIError: If Daily refused.
        """
        self._daily = self._rest()  # there once the service has its HTTP session
        if self.url is None:
            # Refused at construction without a key; with one, there is the API.
            assert self._daily is not None
            # Shielded: a room whose creation is under way when the pipeline ends is
            # still deleted once Daily answers (see delete()).
            self._creating = asyncio.ensure_future(
                self._daily.create_private_room(
                    DailyRoomAPI.new_room_name("pipecat-bey-relay"), lifetime_s=self.lifetime_s
                )
            )
            self.url = await asyncio.shield(self._creating)
            self._created = True
            logger.info(f"created the avatar's private room {self.url}")
        if self.token is None and self._daily is not None:
            self.token = await self._daily.mint_owner_token(
                self.url, user_name=self._bot_name, ttl_s=self.lifetime_s
            )
        return self.url

    async def delete(self, timeout_s: float) -> None:
        """Delete the room if it was created here (or is being created); safe to repeat.

        Args:
            timeout_s: How long waiting for a creation under way, and deleting, may take.
        """
        creating = self._creating
        if creating is not None and not creating.done():
            await asyncio.wait({creating}, timeout=timeout_s)
            if creating.done() and not creating.cancelled() and not creating.exception():
                self.url, self._created = creating.result(), True
        if not self._created or self._daily is None or self.url is None:
            return
        self._created = False
        try:
            await asyncio.wait_for(self._daily.delete_room(self.url), timeout_s)
        except (DailyAPIError, TimeoutError, asyncio.TimeoutError) as e:
            logger.warning(
                f"could not delete the avatar's private room ({e or 'timed out'}); "
                f"Daily closes it within {self.lifetime_s / 60:.0f} min"
            )
            return
        logger.info("deleted the avatar's private room")
