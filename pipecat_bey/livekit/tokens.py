"""LiveKit access tokens: the avatar's, minted as LiveKit's avatar plugins mint it, and the bot's.

The avatar joins the bot's room as an agent of its own (``bey-avatar-agent``)
that publishes its camera and voice on behalf of the bot
(``lk.publish_on_behalf``), so that clients which show "the agent" show the
avatar. Its token is scoped to that one room and expires: the expiry bounds
what a forgotten avatar costs if removing it at the end fails.

The bot's token says who the bot is and which room it joins; reading it (and
checking its signature with the API secret) lets a wrong key or secret fail
when the service is built, not when the avatar tries to join.
"""

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from livekit import api

from pipecat_bey.errors import BeyConfigError

AVATAR_IDENTITY = "bey-avatar-agent"
"""The avatar's identity in the room: LiveKit's Beyond Presence plugin's (one avatar per room)."""

PUBLISH_ON_BEHALF = "lk.publish_on_behalf"
"""The token attribute naming the participant the avatar publishes for."""


@dataclass(frozen=True)
class BotIdentity:
    """Who the bot is in its LiveKit room, as its token says.

    Parameters:
        identity: The bot's participant identity.
        room: The room its token lets it join.
    """

    identity: str
    room: str


@contextmanager
def quiet_jwt() -> Iterator[None]:
    """PyJWT warns on every short HMAC key (a development server's ``secret``)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The HMAC key is .* bytes long")
        yield


def mint_avatar_token(
    api_key: str,
    api_secret: str,
    *,
    room: str,
    bot_identity: str,
    ttl_s: float,
    identity: str = AVATAR_IDENTITY,
    name: str | None = None,
) -> str:
    """The avatar's access token: an agent publishing on the bot's behalf, in one room.

    Args:
        api_key: The LiveKit API key.
        api_secret: Its secret.
        room: The bot's room.
        bot_identity: The bot's identity.
        ttl_s: The token's lifetime, in seconds.
        identity: The avatar's identity.
        name: The name the avatar shows, if any.

    Returns:
        A signed JWT.
    """
    token = (
        api.AccessToken(api_key, api_secret)
        .with_identity(identity)
        .with_kind("agent")
        .with_ttl(timedelta(seconds=ttl_s))
        .with_grants(api.VideoGrants(room_join=True, room=room))
        .with_attributes({PUBLISH_ON_BEHALF: bot_identity})
    )
    if name:
        token = token.with_name(name)
    with quiet_jwt():
        return token.to_jwt()


def read_bot_token(token: str, api_key: str, api_secret: str) -> BotIdentity:
    """Who the bot is, from its token, checked against the API key and secret.

    Args:
        token: The bot's access token (the one its ``LiveKitTransport`` joins with).
        api_key: The LiveKit API key the avatar's token is minted with.
        api_secret: Its secret.

    Returns:
        The bot's identity and room.

    Raises:
        BeyConfigError: If the token is not one of this key's, has expired, or names
            no identity or room (the message never quotes the token).
    """
    try:
        with quiet_jwt():
            claims = api.TokenVerifier(api_key, api_secret).verify(token)
    except Exception as e:  # say only the error's kind: never quote the token
        raise BeyConfigError(
            f"the bot's LiveKit token does not check out with LIVEKIT_API_KEY and "
            f"LIVEKIT_API_SECRET ({type(e).__name__}); mint the bot's token with the same key "
            "and secret the avatar service is given, and mint it shortly before the bot runs"
        ) from None
    room = claims.video.room if claims.video else None
    if not claims.identity or not room:
        raise BeyConfigError(
            "the bot's LiveKit token names no identity or no room; mint it with "
            "with_identity(...) and VideoGrants(room_join=True, room=...)"
        )
    return BotIdentity(identity=claims.identity, room=room)
