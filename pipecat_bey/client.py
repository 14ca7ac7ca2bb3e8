"""Async client of the Beyond Presence API: ``POST /v1/sessions``."""

import asyncio
import email.utils
import json
import math
import random
import time
from types import TracebackType

import aiohttp
import pydantic
from loguru import logger

from pipecat_bey._secrets import redact
from pipecat_bey._urls import check_api_base_url
from pipecat_bey.config import setting
from pipecat_bey.errors import (
    BeyAPIError,
    BeyAuthError,
    BeyConfigError,
    BeyConnectionError,
    BeyError,
    BeyRateLimitError,
    BeyResponseError,
    BeyServerError,
    BeyValidationError,
)
from pipecat_bey.models import (
    SESSION_RESPONSE_ADAPTER,
    CreateLivekitSessionRequest,
    CreatePipecatSessionRequest,
    HTTPValidationError,
    LivekitSessionResponse,
    PipecatSessionResponse,
)

DEFAULT_API_URL = "https://api.bey.dev"

# Statuses after which the server surely started no session, so a retry cannot
# start a second avatar: rate limiting and the gateway errors of a proxy in front.
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})

MAX_BODY_BYTES = 64 * 1024
QUOTE_CHARS = 200


class BeyClient:
    """Starts Beyond Presence speech-to-video sessions.

    Retries are careful because the API has no idempotency key: a retried POST
    that the server did process starts a second avatar, billed and visible in
    the room. So a request is only retried where the server surely started
    nothing: the connection failed before the request was sent, or the answer
    was 429, 502, 503 or 504. A 500, or a timeout or dropped connection after
    the body was sent, is never retried: the session may exist.

    Example::

        async with BeyClient() as client:  # BEY_API_KEY from the environment
            session = await client.create_session(
                CreatePipecatSessionRequest(avatar_id=..., url=room_url, token=token)
            )
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 30.0,
        max_retries: int = 3,
        backoff_base: float = 0.5,
        max_backoff: float = 30.0,
    ) -> None:
        """Create the client; no connection is opened until the first request.

        Args:
            api_key: Beyond Presence API key. Defaults to ``BEY_API_KEY``.
            base_url: API base URL. Defaults to ``BEY_API_URL``, then
                ``https://api.bey.dev``. Plain ``http://`` is accepted for
                loopback only.
            session: HTTP session to use; the caller owns and closes it. If
                None, the client opens its own and closes it in :meth:`close`.
            timeout: Seconds one attempt may take, connection included.
            max_retries: Retries after the first attempt, for the failures
                where retrying is safe.
            backoff_base: First backoff in seconds; it doubles each retry, with
                jitter, unless the server sends ``Retry-After``.
            max_backoff: The longest wait between attempts, ``Retry-After`` included.

        Raises:
            BeyConfigError: If the key is missing or the URL is unacceptable.
        """
        api_key = setting(api_key, argument="api_key", variable="BEY_API_KEY")
        if api_key is None:
            raise BeyConfigError(
                "no Beyond Presence API key: set BEY_API_KEY or pass api_key=... "
                "(keys are at https://app.bey.chat)"
            )
        if not (isinstance(max_retries, int) and max_retries >= 0):
            raise BeyConfigError(f"max_retries must be a whole number >= 0, got {max_retries!r}")
        for name, value in (
            ("timeout", timeout),
            ("backoff_base", backoff_base),
            ("max_backoff", max_backoff),
        ):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise BeyConfigError(f"{name} must be a finite number of seconds, got {value!r}")
        if timeout <= 0:
            raise BeyConfigError(f"timeout must be > 0, got {timeout!r}")
        base_url = setting(base_url, argument="base_url", variable="BEY_API_URL")
        self._base_url = check_api_base_url(
            base_url or DEFAULT_API_URL, what="Beyond Presence API URL", env="BEY_API_URL"
        )
        self._api_key = api_key
        self._session = session
        self._own_session: aiohttp.ClientSession | None = None
        self._timeout = timeout
        self._max_retries = max_retries
        self._backoff_base = backoff_base
        self._max_backoff = max_backoff

    def __repr__(self) -> str:
        return f"BeyClient(base_url={self._base_url!r})"

    @property
    def base_url(self) -> str:
        """The API base URL in use."""
        return self._base_url

    def use_session(self, session: aiohttp.ClientSession) -> None:
        """Use this HTTP session from now on (the caller owns it).

        Args:
            session: The session.
        """
        self._session = session

    async def __aenter__(self) -> "BeyClient":
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session if the client opened it; a caller's is left open."""
        if self._own_session:
            await self._own_session.close()
            self._own_session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is not None:
            return self._session
        if self._own_session is None:
            self._own_session = aiohttp.ClientSession()
        return self._own_session

    async def create_session(
        self, request: CreatePipecatSessionRequest | CreateLivekitSessionRequest
    ) -> PipecatSessionResponse | LivekitSessionResponse:
        """Start a speech-to-video session.

        Args:
            request: The session to start.

        Returns:
            The session the API started.

        Raises:
            BeyAuthError: The key was refused (401, 403).
            BeyValidationError: The body was rejected (422).
            BeyRateLimitError: Still rate limited (429) after the retries.
            BeyServerError: The server failed (5xx).
            BeyConnectionError: The API could not be reached or timed out.
            BeyResponseError: A success status without a valid session body.
            BeyAPIError: Any other error status.
        """
        secret = request.token.get_secret_value()
        attempt = 0
        while True:
            try:
                return await self._attempt(request, secret)
            except _Retryable as retry:
                if attempt >= self._max_retries:
                    raise retry.error from None
                attempt += 1
                wait = retry.retry_after
                if wait is None:
                    wait = self._backoff_base * 2 ** (attempt - 1) * (0.5 + random.random())
                wait = min(max(wait, 0.0), self._max_backoff)
                logger.warning(
                    f"Beyond Presence API: {retry.error}; retry {attempt}/{self._max_retries} "
                    f"in {wait:.2f} s"
                )
                await asyncio.sleep(wait)

    async def _attempt(
        self, request: CreatePipecatSessionRequest | CreateLivekitSessionRequest, secret: str
    ) -> PipecatSessionResponse | LivekitSessionResponse:
        url = f"{self._base_url}/v1/sessions"
        headers = {"x-api-key": self._api_key}
        try:
            async with self._http().post(
                url,
                json=request.to_wire(),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self._timeout),
            ) as response:
                body = await _read_capped(response, MAX_BODY_BYTES + 1)
                status = response.status
                content_type = response.content_type
                retry_after = _parse_retry_after(response.headers.get("Retry-After"))
        except aiohttp.ClientConnectorError as e:
            # Nothing was sent: safe to try again.
            raise _Retryable(
                BeyConnectionError(
                    f"cannot connect to the Beyond Presence API at {self._base_url}: {e.os_error}"
                )
            ) from e
        except (TimeoutError, asyncio.TimeoutError) as e:
            raise BeyConnectionError(
                f"the Beyond Presence API did not answer within {self._timeout:g} s; not retried, "
                "since the session may have started"
            ) from e
        except aiohttp.ClientError as e:
            raise BeyConnectionError(
                f"the connection to the Beyond Presence API broke after the request was sent "
                f"({type(e).__name__}); not retried, since the session may have started"
            ) from e
        text = body[:MAX_BODY_BYTES].decode("utf-8", "replace")
        if 200 <= status < 300:
            try:
                return self._parse_session(request, text, status, content_type, len(body))
            except BeyError as e:
                raise _redacted(e, self._api_key, secret) from None
        raise_or_retry = _redacted(_status_error(status, text, retry_after), self._api_key, secret)
        if status in RETRYABLE_STATUSES:
            raise _Retryable(raise_or_retry, retry_after)
        raise raise_or_retry

    def _parse_session(
        self,
        request: CreatePipecatSessionRequest | CreateLivekitSessionRequest,
        text: str,
        status: int,
        content_type: str,
        size: int,
    ) -> PipecatSessionResponse | LivekitSessionResponse:
        if size > MAX_BODY_BYTES:
            raise BeyResponseError(
                f"the API answered {status} with a body over {MAX_BODY_BYTES} bytes, not a session",
                status=status,
            )
        try:
            data = json.loads(text)
        except ValueError:
            raise BeyResponseError(
                f"the API answered {status} with {content_type or 'no content type'} that is "
                f"not JSON: {_quote(text)}",
                status=status,
            ) from None
        if isinstance(data, dict) and "transport" not in data:
            data = {**data, "transport": request.transport}
        try:
            session = SESSION_RESPONSE_ADAPTER.validate_python(data)
        except pydantic.ValidationError as e:
            problems = "; ".join(
                f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors()
            )
            raise BeyResponseError(
                f"the API answered {status} with a body that is not a session ({problems})",
                status=status,
            ) from None
        if session.transport != request.transport:
            raise BeyResponseError(
                f"asked for a {request.transport} session, the API answered with a "
                f"{session.transport} one",
                status=status,
            )
        return session


class _Retryable(Exception):
    """An attempt failed in a way that surely started no session."""

    def __init__(self, error: BeyError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


def _redacted(error: BeyError, *secrets: str) -> BeyError:
    """Mask secrets a server echoed back in the text an error quotes."""
    error.message = redact(error.message, *secrets)
    error.args = (error.message,)
    return error


async def _read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """Read at most ``limit`` bytes of a body, so a huge answer cannot exhaust memory."""
    body = bytearray()
    while len(body) < limit:
        chunk = await response.content.read(limit - len(body))
        if not chunk:
            break
        body.extend(chunk)
    return bytes(body)


def _quote(text: str) -> str:
    text = " ".join(text.split())
    return repr(text[:QUOTE_CHARS] + ("..." if len(text) > QUOTE_CHARS else ""))


def _server_message(text: str) -> str:
    """FastAPI puts the message in ``detail``; anything else is quoted briefly."""
    try:
        data = json.loads(text)
    except ValueError:
        return _quote(text) if text.strip() else "(empty body)"
    if isinstance(data, dict) and isinstance(data.get("detail"), str):
        return data["detail"]
    return _quote(text)


def _status_error(status: int, text: str, retry_after: float | None) -> BeyError:
    message = _server_message(text)
    if status in (401, 403):
        return BeyAuthError(
            f"the Beyond Presence API refused the key: {message}; check BEY_API_KEY",
            status=status,
        )
    if status == 422:
        try:
            detail = HTTPValidationError.model_validate_json(text).detail
        except pydantic.ValidationError:
            detail = []
        summary = "; ".join(f"{'.'.join(map(str, d.loc))}: {d.msg}" for d in detail) or message
        return BeyValidationError(
            f"the Beyond Presence API rejected the request: {summary}", status=status, detail=detail
        )
    if status == 429:
        return BeyRateLimitError(
            f"the Beyond Presence API is rate limiting: {message}",
            status=status,
            retry_after=retry_after,
        )
    if status >= 500:
        return BeyServerError(f"the Beyond Presence API failed: {message}", status=status)
    return BeyAPIError(f"the Beyond Presence API answered with an error: {message}", status=status)


def _parse_retry_after(value: str | None) -> float | None:
    """Read ``Retry-After`` as seconds or as an HTTP date."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)
