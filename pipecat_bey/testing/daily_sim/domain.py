"""World layer: a Daily domain, its rooms by name and URL and the meeting tokens it signs.

Room URLs are ``https://<domain>.daily.co/<room>``, the domain being its host's
(``RoomHost.domain``); a :class:`Domain` creates and deletes the rooms and finds
the room a URL names, and mints and checks meeting tokens with a secret of its
own, so a token minted by one simulation is refused by another.
"""

import itertools
import secrets
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from pipecat_bey.testing.daily_sim import tokens
from pipecat_bey.testing.daily_sim.permissions import parse as parse_permissions
from pipecat_bey.testing.daily_sim.room import Room, RoomHost


class Domain:
    """The rooms of one Daily domain, and its meeting tokens.

    Attributes:
        rooms: The rooms, by name.
    """

    def __init__(self, host: RoomHost) -> None:
        """Create the domain, with no rooms.

        Args:
            host: What holds its rooms (the simulation), and names the domain.
        """
        self.rooms: dict[str, Room] = {}
        self._host = host
        self._room_names = itertools.count(1)
        self._secret = secrets.token_bytes(32)

    def create_room(
        self, name: str | None = None, *, private: bool = False, owner_only_broadcast: bool = False
    ) -> Room:
        """Create a room.

        Args:
            name: Its name (default: a fresh one).
            private: Whether joining needs a meeting token.
            owner_only_broadcast: Whether only owners may send media by default.

        Returns:
            The room.

        Raises:
            ValueError: If a room of that name exists.
        """
        name = name or f"room-{next(self._room_names)}"
        if name in self.rooms:
            raise ValueError(f"a room named {name!r} exists already")
        room = Room(self._host, name, private=private, owner_only_broadcast=owner_only_broadcast)
        self.rooms[name] = room
        return room

    def delete_room(self, name: str) -> None:
        """Delete a room, removing whoever is in it.

        Args:
            name: The room.
        """
        room = self.rooms.pop(name)
        for member in room.participants():
            room.remove(member, "leftCall", removed_reason="room-deleted")
        room.close()

    def room_for_url(self, url: str) -> Room | None:
        """The room a URL names, if it is one of this domain's.

        Args:
            url: A room URL.

        Returns:
            The room, or None.
        """
        parts = urlsplit(url)
        if parts.hostname != f"{self._host.domain}.daily.co":
            return None
        return self.rooms.get(parts.path.strip("/"))

    def mint_token(
        self,
        room: Room | str | None = None,
        *,
        user_name: str | None = None,
        user_id: str | None = None,
        is_owner: bool = False,
        exp: float | None = None,
        ttl_s: float | None = None,
        eject_at_token_exp: bool = False,
        eject_after_elapsed: float | None = None,
        permissions: Mapping[str, Any] | None = None,
    ) -> str:
        """Mint a meeting token, as ``POST /meeting-tokens`` does.

        Args:
            room: The room it is for (None: any room of the domain).
            user_name: The bearer's name.
            user_id: The bearer's user id.
            is_owner: Whether the bearer owns the meeting.
            exp: Expiry, Unix time.
            ttl_s: Expiry as seconds from now (instead of ``exp``).
            eject_at_token_exp: Whether the bearer is ejected at expiry.
            eject_after_elapsed: Seconds in the call after which the bearer is ejected.
            permissions: Daily ``permissions`` (``canSend``, ``canReceive``, ``canAdmin``).

        Returns:
            The token.

        Raises:
            ValueError: If the permissions are not of Daily's shape.
        """
        if permissions is not None:
            parse_permissions(permissions)  # a token carries only what Daily would accept
            permissions = dict(permissions)
        if ttl_s is not None:
            exp = time.time() + ttl_s
        return self.mint(
            {
                "room_name": room.name if isinstance(room, Room) else room,
                "user_name": user_name,
                "user_id": user_id,
                "is_owner": is_owner,
                "exp": exp,
                "eject_at_token_exp": eject_at_token_exp,
                "eject_after_elapsed": eject_after_elapsed,
                "permissions": permissions,
            }
        )

    def mint(self, properties: dict[str, Any]) -> str:
        """Mint a token from Daily's property names.

        Args:
            properties: ``room_name``, ``user_id``, ``exp``...

        Returns:
            The token.
        """
        return tokens.mint(properties, self._secret)

    def verify(self, token: str) -> tokens.TokenClaims:
        """Check a token was minted by this domain.

        Args:
            token: The token.

        Returns:
            Its claims.
        """
        return tokens.verify(token, self._secret)
