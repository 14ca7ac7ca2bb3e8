"""URL checks shared by the Beyond Presence client and the Daily glue."""

import ipaddress
from urllib.parse import urlsplit

from pipecat_bey.errors import BeyConfigError


def is_loopback_host(host: str) -> bool:
    """Tell whether a host name or address is on this machine's loopback.

    Args:
        host: A host name or IP address, without port or brackets.

    Returns:
        True for ``localhost``, 127.0.0.0/8 and ``::1``.
    """
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_api_base_url(url: str, *, what: str, env: str) -> str:
    """Validate the base URL of an HTTP API, refusing cleartext to remote hosts.

    Plain ``http://`` would send API keys and meeting tokens unencrypted, so it is
    only accepted for loopback, where the local stand-ins run.

    Args:
        url: The base URL to check.
        what: What the URL is for, named in the error (e.g. "Beyond Presence API URL").
        env: The environment variable that sets it, named in the error.

    Returns:
        The URL without a trailing slash.

    Raises:
        BeyConfigError: If the URL is not http(s), has no host, or is plain http to a
            host that is not loopback.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BeyConfigError(
            f"{what} {url!r} is not an http(s) URL with a host; "
            f"pass a URL like https://host/ or set {env}"
        )
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise BeyConfigError(
            f"{what} {url!r} uses plain http to a remote host, which would send "
            f"secrets unencrypted; use https (plain http is accepted for loopback only) "
            f"or fix {env}"
        )
    return url.rstrip("/")


def daily_room_name(room_url: str) -> str:
    """Return the room name of a Daily room URL, checking that it is one.

    Args:
        room_url: A room URL such as ``https://example.daily.co/my-room``.

    Returns:
        The room name (``my-room``).

    Raises:
        BeyConfigError: If the URL is not an https URL of a ``*.daily.co`` domain
            with a room name as its only path segment.
    """
    parts = urlsplit(room_url)
    host = (parts.hostname or "").lower()
    segments = [s for s in parts.path.split("/") if s]
    if parts.scheme != "https" or not host.endswith(".daily.co") or len(segments) != 1:
        raise BeyConfigError(
            f"{room_url!r} is not a Daily room URL; expected https://<domain>.daily.co/<room> "
            "(pass the room URL your DailyTransport joins, e.g. from DAILY_ROOM_URL)"
        )
    return segments[0]
