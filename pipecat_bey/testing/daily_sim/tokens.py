"""Bottom layer: Daily meeting tokens, HS256 JWTs with Daily's claim names.

A token minted by the simulation carries its properties the way Daily's do
(``r`` room, ``u`` user name, ``ud`` user id, ``o`` owner, ``exp``, ``ejt``
eject at expiry, ``eje`` eject after seconds in the call, ``p`` permissions, the
last claim name a guess), signed with the
simulation's own secret, so its rooms can tell a token they issued from a forged
or foreign one.
"""

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

# Daily's token property names and the JWT claims that carry them.
CLAIMS = {
    "room_name": "r",
    "user_name": "u",
    "user_id": "ud",
    "is_owner": "o",
    "exp": "exp",
    "nbf": "nbf",
    "eject_at_token_exp": "ejt",
    "eject_after_elapsed": "eje",
    "permissions": "p",
}


class TokenError(Exception):
    """A meeting token that a room does not accept."""


@dataclass(frozen=True)
class TokenClaims:
    """What a meeting token says about its bearer."""

    room_name: str | None = None
    user_name: str | None = None
    user_id: str | None = None
    is_owner: bool = False
    exp: float | None = None
    nbf: float | None = None
    eject_at_token_exp: bool = False
    eject_after_elapsed: float | None = None
    permissions: dict[str, Any] | None = None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def mint(properties: dict[str, Any], secret: bytes) -> str:
    """Sign a token carrying Daily meeting-token properties.

    Args:
        properties: Daily's property names (``room_name``, ``user_id``, ...).
        secret: The signing secret.

    Returns:
        The token.
    """
    payload = {CLAIMS[k]: v for k, v in properties.items() if k in CLAIMS and v is not None}
    payload.setdefault("iat", int(time.time()))
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    signature = hmac.new(secret, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{_b64(signature)}"


def verify(token: str, secret: bytes) -> TokenClaims:
    """Check a token's signature and read its claims (expiry is the room's business).

    Args:
        token: The token.
        secret: The signing secret.

    Returns:
        Its claims.

    Raises:
        TokenError: If it is not a token this secret signed.
    """
    try:
        header, body, signature = token.split(".")
        expected = hmac.new(secret, f"{header}.{body}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _unb64(signature)):
            raise TokenError("meeting token signature is invalid")
        claims = json.loads(_unb64(body))
    except TokenError:
        raise
    except Exception as e:
        raise TokenError("malformed meeting token") from e
    return TokenClaims(
        room_name=claims.get("r"),
        user_name=claims.get("u"),
        user_id=claims.get("ud"),
        is_owner=bool(claims.get("o", False)),
        exp=claims.get("exp"),
        nbf=claims.get("nbf"),
        eject_at_token_exp=bool(claims.get("ejt", False)),
        eject_after_elapsed=claims.get("eje"),
        permissions=claims.get("p"),
    )
