"""URL checks shared by the Beyond Presence client and the Daily glue."""

import ipaddress
import re
from urllib.parse import SplitResult, urlsplit

from pipecat_bey.errors import BeyConfigError

# A host name's labels, once in ASCII (IDNA): letters, digits, hyphens (not at either end)
# and, as some resolvers allow, underscores.
_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?", re.IGNORECASE)


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
        BeyConfigError: If the URL is not http(s), has no host, cannot be requested
            (see :func:`requestable_problem`), has a query or a fragment, or is plain
            http to a host that is not loopback.
    """
    try:
        parts = urlsplit(url)
    except ValueError as e:  # "Invalid IPv6 URL", say
        raise BeyConfigError(
            f"{what} {url!r} cannot be parsed as a URL ({e}); "
            f"pass a URL like https://host/ or set {env}"
        ) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BeyConfigError(
            f"{what} {url!r} is not an http(s) URL with a host; "
            f"pass a URL like https://host/ or set {env}"
        )
    problem = requestable_problem(parts)
    if problem is not None:
        raise BeyConfigError(
            f"{what} {url!r} cannot be requested: {problem}; "
            f"pass a URL like https://host/ or https://host:8443/path, or fix {env}"
        )
    if parts.query or parts.fragment:
        raise BeyConfigError(
            f"{what} {url!r} has a {'query (?...)' if parts.query else 'fragment (#...)'}, "
            f"which the API's paths would be appended to; give the base URL alone or fix {env}"
        )
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise BeyConfigError(
            f"{what} {url!r} uses plain http to a remote host, which would send "
            f"secrets unencrypted; use https (plain http is accepted for loopback only) "
            f"or fix {env}"
        )
    return url.rstrip("/")


def requestable_problem(parts: SplitResult) -> str | None:
    """Tell what keeps a URL from being requested at all, before anything is sent.

    An HTTP client refuses such a URL only once asked to send to it, which an
    API call cannot tell from a connection that broke after the request went out.

    Args:
        parts: The URL, split (``urllib.parse.urlsplit``), with a host.

    Returns:
        What is wrong (a port that is not one, a host name that cannot be one,
        characters a URL cannot hold), or None if it can be requested.
    """
    try:
        port = parts.port
    except ValueError:
        port_text = parts.netloc.rpartition(":")[2]
        return f"its port {port_text!r} is not a number from 1 to 65535"
    if port == 0:
        return "its port is 0, which nothing listens on (ports go from 1 to 65535)"
    if any(c == "\\" or c.isspace() or ord(c) < 32 for c in parts.netloc):
        return "its host part holds a backslash, a space or a control character"
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 address, in brackets in the URL
        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            return f"{host!r} is not an IPv6 address"
        return None
    return _host_name_problem(host)


def _host_name_problem(host: str) -> str | None:
    labels = host.rstrip(".").split(".")
    if all(label.isdigit() for label in labels):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return f"{host!r} is not an IPv4 address"
        return None
    try:
        ascii_host = host.rstrip(".").encode("idna").decode("ascii")
    except UnicodeError:
        return f"{host!r} is not a host name (an empty or over-long label)"
    if len(ascii_host) > 253 or not all(_LABEL.fullmatch(x) for x in ascii_host.split(".")):
        return f"{host!r} is not a host name (letters, digits, hyphens and dots)"
    return None


def daily_room_name(room_url: str) -> str:
    """Return the room name of a Daily room URL, checking that it is one.

    Args:
        room_url: A room URL such as ``https://example.daily.co/my-room``.

    Returns:
        The room name (``my-room``).

    Raises:
        BeyConfigError: If the URL is not an https URL of a ``*.daily.co`` domain
            with a room name as its only path segment, or cannot be requested (a
            port that is not one, say).
    """
    refused = BeyConfigError(
        f"{room_url!r} is not a Daily room URL; expected https://<domain>.daily.co/<room> "
        "(pass the room URL your DailyTransport joins, e.g. from DAILY_ROOM_URL)"
    )
    try:
        parts = urlsplit(room_url)
    except ValueError:
        raise refused from None
    host = (parts.hostname or "").lower()
    segments = [s for s in parts.path.split("/") if s]
    if parts.scheme != "https" or not host.endswith(".daily.co") or len(segments) != 1:
        raise refused
    problem = requestable_problem(parts)
    if problem is not None:
        raise BeyConfigError(
            f"{room_url!r} cannot be joined: {problem}; expected https://<domain>.daily.co/<room>"
        )
    return segments[0]
