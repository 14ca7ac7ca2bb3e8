"""Where the avatar goes, decided once, from the bot's transport and the caller's choice.

A bot in a room the avatar can join (a ``DailyTransport``) gets the avatar in
that room; any other transport (or a caller who asks) gets it backstage, with
its media relayed through the bot's output. This is the one place that asks.
"""

from typing import Literal

from pipecat.transports.base_transport import BaseTransport

from pipecat_bey.client import BeyClient
from pipecat_bey.config import BeyParams
from pipecat_bey.daily.provider import DailyProvider
from pipecat_bey.errors import BeyConfigError
from pipecat_bey.placements.base import Placement
from pipecat_bey.placements.relay import RelayPlacement
from pipecat_bey.placements.room import RoomPlacement
from pipecat_bey.rooms import Avatar

PlacementName = Literal["room", "relay"]


def placement_name(transport: BaseTransport | None, placement: str | None) -> PlacementName:
    """Where the avatar goes: the bot's own room, or backstage with its media relayed.

    Args:
        transport: The bot's transport, or None.
        placement: "room", "relay", or None to decide from ``transport``.

    Returns:
        "room" or "relay".

    Raises:
        TypeError: If ``transport`` is not a pipecat transport.
        BeyConfigError: If ``placement`` is unknown, or "room" without a room.
    """
    if transport is not None and not isinstance(transport, BaseTransport):
        raise TypeError(
            f"transport must be the bot's pipecat transport, got {type(transport).__name__}"
        )
    if placement not in (None, "room", "relay"):
        raise BeyConfigError(f"placement must be 'room' or 'relay', got {placement!r}")
    in_room = DailyProvider.is_room(transport)
    if placement == "room" and not in_room:
        raise BeyConfigError(
            "placement='room' puts the avatar in the bot's Daily room, so it needs the bot's "
            f"DailyTransport (got {type(transport).__name__}); pass transport=your "
            "DailyTransport, or use placement='relay' for any other transport"
        )
    if placement is None:
        return "room" if in_room else "relay"
    return placement  # type: ignore[return-value]


def place_avatar(
    transport: BaseTransport | None,
    placement: str | None,
    *,
    client: BeyClient,
    params: BeyParams,
    avatar_id: str | None = None,
    avatar_token: str | None = None,
    daily_api_key: str | None = None,
    daily_api_url: str | None = None,
    relay_room_url: str | None = None,
    relay_room_token: str | None = None,
) -> tuple[Placement, Avatar]:
    """Build the avatar's placement and session; every setting is checked now.

    Args:
        transport: The bot's transport.
        placement: "room", "relay", or None to decide from ``transport``.
        client: The Beyond Presence API client.
        params: The service's tuning.
        avatar_id: The avatar.
        avatar_token: A meeting token of the caller's for the avatar.
        daily_api_key: Daily API key.
        daily_api_url: Daily REST base URL.
        relay_room_url: Relay only: a room of the caller's for the avatar.
        relay_room_token: Relay only: the bot's token for ``relay_room_url``.

    Returns:
        The placement and the avatar's session.

    Raises:
        TypeError: If ``transport`` is not a pipecat transport.
        BeyConfigError: If a setting is missing or invalid.
    """
    name = placement_name(transport, placement)
    daily = DailyProvider(
        client=client,
        params=params,
        avatar_id=avatar_id,
        avatar_token=avatar_token,
        api_key=daily_api_key,
        api_url=daily_api_url,
    )
    if name == "relay":
        avatar, backstage = daily.backstage(room_url=relay_room_url, token=relay_room_token)
        return RelayPlacement(backstage), avatar
    if relay_room_url or relay_room_token:
        raise BeyConfigError(
            "relay_room_url and relay_room_token are for placement='relay'; "
            "leave them out, or pass placement='relay'"
        )
    avatar, room = daily.bot_room(transport)  # type: ignore[arg-type]
    return RoomPlacement(room), avatar
