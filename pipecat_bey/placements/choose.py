"""Where the avatar goes, decided once, from the bot's transport and the caller's choice.

A bot in a room the avatar can join (a ``DailyTransport`` or a
``LiveKitTransport``) gets the avatar in that room; any other transport (or a
caller who asks) gets it backstage, with its media relayed through the bot's
output. This is the one place that asks. LiveKit is an extra
(``pipecat-bey[livekit]``): its provider is imported only for a LiveKit bot.
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


def _is_livekit(transport: BaseTransport | None) -> bool:
    """Whether a transport is pipecat's ``LiveKitTransport`` (without importing livekit)."""
    return any(
        cls.__name__ == "LiveKitTransport"
        and cls.__module__.startswith("pipecat.transports.livekit")
        for cls in type(transport).__mro__
    )


def _in_room(transport: BaseTransport | None) -> bool:
    return DailyProvider.is_room(transport) or _is_livekit(transport)


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
    in_room = _in_room(transport)
    if placement == "room" and not in_room:
        raise BeyConfigError(
            "placement='room' puts the avatar in the bot's room, so it needs the bot's "
            f"DailyTransport or LiveKitTransport (got {type(transport).__name__}); pass "
            "transport=your transport, or use placement='relay' for any other transport"
        )
    if placement == "relay" and _is_livekit(transport):
        raise BeyConfigError(
            "placement='relay' with a LiveKitTransport is not supported yet; leave placement "
            "out (the avatar joins the bot's LiveKit room)"
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
    livekit_url: str | None = None,
    livekit_api_key: str | None = None,
    livekit_api_secret: str | None = None,
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
        livekit_url: LiveKit only: the server the avatar joins.
        livekit_api_key: LiveKit only: the API key its token is minted with.
        livekit_api_secret: LiveKit only: that key's secret.

    Returns:
        The placement and the avatar's session.

    Raises:
        TypeError: If ``transport`` is not a pipecat transport.
        BeyConfigError: If a setting is missing or invalid.
    """
    name = placement_name(transport, placement)
    if (relay_room_url or relay_room_token) and name == "room":
        raise BeyConfigError(
            "relay_room_url and relay_room_token are for placement='relay'; "
            "leave them out, or pass placement='relay'"
        )
    if _is_livekit(transport):
        from pipecat_bey.livekit.provider import LiveKitProvider

        livekit = LiveKitProvider(
            client=client,
            params=params,
            avatar_id=avatar_id,
            url=livekit_url,
            api_key=livekit_api_key,
            api_secret=livekit_api_secret,
        )
        avatar, room = livekit.bot_room(transport)  # type: ignore[arg-type]
        return RoomPlacement(room), avatar
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
    avatar, room = daily.bot_room(transport)  # type: ignore[arg-type]
    return RoomPlacement(room), avatar
