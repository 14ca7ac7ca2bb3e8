"""A local Beyond Presence API: ``POST /v1/sessions`` as the API contract describes it.

It answers like the real service (FastAPI behind it): 201 with a fresh session,
422 with FastAPI's ``detail`` list for a body it cannot accept, 401/403 for a
missing or unknown ``x-api-key``. Faults can be scripted, for tests and for
trying a bot against a misbehaving API: latency, error statuses with
``Retry-After``, dropped connections, bodies that are not a session.

When it accepts a ``pipecat`` session it tells its listeners, so a simulated
Daily room can send the avatar in (see ``DailySimulation.attach_bey``).

Example::

    async with BeyEmulator(api_keys={"local-key"}) as bey:
        bey.script(Fault.status(503), Fault.status(429, retry_after=1))
        client = BeyClient("local-key", base_url=bey.url)
"""

import asyncio
import inspect
import json
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from types import TracebackType
from typing import Any, Literal

import pydantic
from aiohttp import web
from loguru import logger

from pipecat_bey._secrets import MASK
from pipecat_bey.models import (
    CreateLivekitSessionRequest,
    CreatePipecatSessionRequest,
    LivekitSessionResponse,
    PipecatSessionResponse,
)

SessionListener = Callable[
    [
        CreatePipecatSessionRequest | CreateLivekitSessionRequest,
        PipecatSessionResponse | LivekitSessionResponse,
    ],
    Awaitable[None] | None,
]
"""Called with the request and the session for every session the emulator starts."""

RequestLog = Callable[[str], None]
"""Called with one line per request: method, path, status and milliseconds taken."""

FaultKind = Literal[
    "status", "drop", "malformed", "empty", "wrong_content_type", "html", "huge", "hang"
]


@dataclass(frozen=True)
class Fault:
    """One scripted misbehaviour, used for one request.

    Build them with the class methods. ``session_created`` says whether the
    server started the session before misbehaving (a dropped answer, a
    timeout after the request arrived): that is the case a client must never
    retry, since the avatar is already on its way.
    """

    kind: FaultKind
    code: int = 201
    retry_after: str | None = None
    seconds: float = 0.0
    session_created: bool = False

    @classmethod
    def status(cls, status: int, *, retry_after: float | str | None = None) -> "Fault":
        """Answer with an error status (and FastAPI's ``{"detail": ...}`` body).

        Args:
            status: The HTTP status.
            retry_after: A ``Retry-After`` header value (seconds or an HTTP date).

        Returns:
            The fault.
        """
        return cls(
            "status", code=status, retry_after=None if retry_after is None else str(retry_after)
        )

    @classmethod
    def drop(cls, *, session_created: bool = False) -> "Fault":
        """Close the connection without answering.

        Args:
            session_created: Whether the session was started before the drop.

        Returns:
            The fault.
        """
        return cls("drop", session_created=session_created)

    @classmethod
    def malformed(cls) -> "Fault":
        """Answer 201 with a body that is not JSON (the session is started)."""
        return cls("malformed", session_created=True)

    @classmethod
    def empty(cls) -> "Fault":
        """Answer 201 with an empty body (the session is started)."""
        return cls("empty", session_created=True)

    @classmethod
    def wrong_content_type(cls) -> "Fault":
        """Answer 201 with the session as ``text/plain`` (the session is started)."""
        return cls("wrong_content_type", session_created=True)

    @classmethod
    def html(cls, status: int = 502) -> "Fault":
        """Answer with a proxy's HTML error page.

        Args:
            status: The HTTP status of the page.

        Returns:
            The fault.
        """
        return cls("html", code=status)

    @classmethod
    def huge(cls) -> "Fault":
        """Answer 201 with a multi-megabyte JSON body (the session is started)."""
        return cls("huge", session_created=True)

    @classmethod
    def hang(cls, seconds: float, *, session_created: bool = True) -> "Fault":
        """Take this long before answering normally (past a client's timeout, say).

        Args:
            seconds: How long to wait before answering.
            session_created: Whether the session is started even if the client
                gives up first (the real server would have started it).

        Returns:
            The fault.
        """
        return cls("hang", seconds=seconds, session_created=session_created)


class BeyEmulator:
    """A local Beyond Presence API on 127.0.0.1.

    Attributes:
        latency: Seconds added before every answer.
        requests: The JSON bodies received (tokens included), for test assertions.
        sessions: The sessions started.
    """

    def __init__(
        self,
        api_keys: Iterable[str] = ("bey-local-key",),
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        request_log: RequestLog | None = None,
    ) -> None:
        """Create the emulator (it serves once started).

        Args:
            api_keys: The ``x-api-key`` values it accepts.
            host: Address to bind; loopback by default.
            port: Port to bind; 0 picks a free one.
            latency: Seconds added before every answer.
            request_log: Called with one line per request once it is answered, e.g.
                ``POST /v1/sessions 201 3.1 ms``. The line holds no header and no body,
                so never an API key or a meeting token.
        """
        self._api_keys = frozenset(api_keys)
        self._host = host
        self._port = port
        self.latency = latency
        self.requests: list[dict[str, Any]] = []
        self.sessions: list[PipecatSessionResponse | LivekitSessionResponse] = []
        self._faults: deque[Fault] = deque()
        self._listeners: list[SessionListener] = []
        self._listener_tasks: set[asyncio.Task] = set()
        self._request_log = request_log
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    def __repr__(self) -> str:
        return f"BeyEmulator(url={self._url!r}, sessions={len(self.sessions)})"

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:PORT``."""
        if self._url is None:
            raise RuntimeError("the emulator is not started; use `async with BeyEmulator()`")
        return self._url

    def script(self, *faults: Fault) -> None:
        """Queue faults; each following request consumes one, in order.

        Args:
            *faults: The faults to serve.
        """
        self._faults.extend(faults)

    def add_session_listener(self, listener: SessionListener) -> None:
        """Call ``listener(request, session)`` for every session started.

        Coroutine listeners run as tasks, so they never delay the answer.

        Args:
            listener: The callback.
        """
        self._listeners.append(listener)

    def remove_session_listener(self, listener: SessionListener) -> None:
        """Stop calling a listener.

        Args:
            listener: The callback to remove.
        """
        self._listeners.remove(listener)

    async def start(self) -> None:
        """Start serving."""
        middlewares = [self._log_request] if self._request_log is not None else []
        app = web.Application(client_max_size=1024 * 1024, middlewares=middlewares)
        app.router.add_post("/v1/sessions", self._create_session)
        # A client that gives up cancels its request, as behind a real server;
        # stopping does not wait long for requests still being answered.
        self._runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        port = self._runner.addresses[0][1]
        self._url = f"http://{self._host}:{port}"
        logger.debug(f"Beyond Presence API emulator serving at {self._url}")

    async def stop(self) -> None:
        """Stop serving and cancel listener tasks still running."""
        for task in list(self._listener_tasks):
            task.cancel()
        await asyncio.gather(*self._listener_tasks, return_exceptions=True)
        if self._runner:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> "BeyEmulator":
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @web.middleware
    async def _log_request(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        started = time.perf_counter()
        status: int | str = 500  # what aiohttp answers when a handler raises
        try:
            response = await handler(request)
            status = response.status
            if request.transport is None or request.transport.is_closing():
                status = "dropped"  # a scripted drop: the client gets no answer
            return response
        except web.HTTPException as e:  # 404, 405...
            status = e.status
            raise
        except asyncio.CancelledError:
            status = "cancelled"  # the client went away before the answer
            raise
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            # The raw path without the query: nothing a client sends there is echoed.
            line = f"{request.method} {request.rel_url.raw_path} {status} {elapsed_ms:.1f} ms"
            if self._request_log is not None:
                self._request_log(line)

    async def _create_session(self, request: web.Request) -> web.StreamResponse:
        if self.latency:
            await asyncio.sleep(self.latency)
        key = request.headers.get("x-api-key")
        if not key:
            return web.json_response({"detail": "Not authenticated"}, status=401)
        if key not in self._api_keys:
            return web.json_response({"detail": "Invalid API key"}, status=403)

        raw = await request.read()
        fault = self._faults.popleft() if self._faults else None
        try:
            body = json.loads(raw) if raw else None
        except ValueError as e:
            pos = getattr(e, "pos", 0)
            return _validation_error(
                [
                    {
                        "type": "json_invalid",
                        "loc": ["body", pos],
                        "msg": "JSON decode error",
                        "input": {},
                        "ctx": {"error": getattr(e, "msg", str(e))},
                    }
                ]
            )
        if isinstance(body, dict):
            self.requests.append(body)
        parsed = _parse_request(body)
        if isinstance(parsed, list):
            return _validation_error(parsed)

        if fault is not None and not fault.session_created:
            if fault.kind != "hang":
                return await self._serve_fault(request, fault, None)
            # Slow before it starts anything: the session starts once it answers.
            await asyncio.sleep(fault.seconds)
            fault = None
        session = self._start_session(parsed)
        if fault is not None:
            return await self._serve_fault(request, fault, session)
        return web.json_response(session.model_dump(mode="json"), status=201)

    def _start_session(
        self, request: CreatePipecatSessionRequest | CreateLivekitSessionRequest
    ) -> PipecatSessionResponse | LivekitSessionResponse:
        fields = {
            "id": str(uuid.uuid4()),
            "avatar_id": request.avatar_id,
            "url": request.url,
            "started_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }
        session: PipecatSessionResponse | LivekitSessionResponse
        if isinstance(request, CreatePipecatSessionRequest):
            session = PipecatSessionResponse(**fields)
        else:
            session = LivekitSessionResponse(**fields)
        self.sessions.append(session)
        for listener in list(self._listeners):
            result = listener(request, session)
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                self._listener_tasks.add(task)
                task.add_done_callback(self._listener_done)
        return session

    def _listener_done(self, task: asyncio.Task) -> None:
        self._listener_tasks.discard(task)
        if not task.cancelled() and task.exception():
            logger.error(f"Bey emulator session listener failed: {task.exception()!r}")

    async def _serve_fault(
        self,
        request: web.Request,
        fault: Fault,
        session: PipecatSessionResponse | LivekitSessionResponse | None,
    ) -> web.StreamResponse:
        if fault.kind == "status":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else None
            return web.json_response(
                {"detail": _REASONS.get(fault.code, "Error")}, status=fault.code, headers=headers
            )
        if fault.kind == "html":
            page = (
                f"<html><head><title>{fault.code} Bad Gateway</title></head><body>"
                f"<center><h1>{fault.code} Bad Gateway</h1></center><hr><center>nginx</center>"
                "</body></html>"
            )
            return web.Response(text=page, status=fault.code, content_type="text/html")
        if fault.kind == "drop":
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=500)  # never reaches the client
        if fault.kind == "hang":
            await asyncio.sleep(fault.seconds)
        assert session is not None
        payload = json.dumps(session.model_dump(mode="json"))
        if fault.kind == "malformed":
            return web.Response(
                text=payload[: len(payload) // 2], status=201, content_type="application/json"
            )
        if fault.kind == "empty":
            return web.Response(status=201)
        if fault.kind == "wrong_content_type":
            return web.Response(text=payload, status=201, content_type="text/plain")
        if fault.kind == "huge":
            filler = "x" * (4 * 1024 * 1024)
            return web.Response(
                text=payload[:-1] + f', "filler": "{filler}"}}',
                status=201,
                content_type="application/json",
            )
        return web.Response(text=payload, status=201, content_type="application/json")


_REASONS = {
    400: "Bad Request",
    404: "Not Found",
    408: "Request Timeout",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}

_REQUEST_MODELS: dict[
    str, type[CreatePipecatSessionRequest] | type[CreateLivekitSessionRequest]
] = {
    "livekit": CreateLivekitSessionRequest,
    "pipecat": CreatePipecatSessionRequest,
}


def _parse_request(
    body: Any,
) -> CreatePipecatSessionRequest | CreateLivekitSessionRequest | list[dict[str, Any]]:
    """Validate a body as FastAPI would; return the request or FastAPI's error list."""
    if not isinstance(body, dict):
        return [
            {
                "type": "model_attributes_type",
                "loc": ["body"],
                "msg": "Input should be a valid dictionary or object to extract fields from",
                "input": _masked(body),
            }
        ]
    transport = body.get("transport", "livekit")  # the contract's first schema is the default
    model = _REQUEST_MODELS.get(transport) if isinstance(transport, str) else None
    if model is None:
        return [
            {
                "type": "literal_error",
                "loc": ["body", "transport"],
                "msg": "Input should be 'livekit' or 'pipecat'",
                "input": transport,
                "ctx": {"expected": "'livekit' or 'pipecat'"},
            }
        ]
    try:
        # FastAPI ignores fields a schema does not name.
        return model.model_validate({k: v for k, v in body.items() if k in model.model_fields})
    except pydantic.ValidationError as e:
        detail = []
        for err in e.errors(include_url=False):
            entry: dict[str, Any] = {
                "type": err["type"],
                "loc": ["body", *err["loc"]],
                "msg": err["msg"],
                "input": _masked(
                    body if err["type"] == "missing" else body.get(str(err["loc"][0]))
                ),
            }
            if err["loc"] and err["loc"][0] == "token":
                entry["input"] = MASK if err["type"] != "missing" else _masked(body)
            detail.append(entry)
        return detail


def _masked(value: Any) -> Any:
    """FastAPI echoes the input; the token is masked in the echo, never returned."""
    if isinstance(value, dict) and "token" in value:
        return {**value, "token": MASK}
    return value


def _validation_error(detail: list[dict[str, Any]]) -> web.Response:
    return web.json_response({"detail": detail}, status=422)


async def serve_emulator(*, port: int, api_keys: set[str], host: str = "127.0.0.1") -> None:
    """Serve the emulator until cancelled (Ctrl-C on the command line).

    Prints a line when it serves, one per request (see ``request_log``), and one
    when it has stopped.

    Args:
        port: Port to listen on; 0 picks a free one.
        api_keys: Keys to accept.
        host: Address to bind.
    """

    def say(line: str) -> None:
        print(line, flush=True)  # a pipe (tee, a test) sees each line as it happens

    bey = BeyEmulator(api_keys, host=host, port=port, request_log=say)
    try:
        await bey.start()
    except BaseException:
        await bey.stop()  # a port in use, say: release what was set up before raising
        raise
    try:
        say(f"Beyond Presence API emulator at {bey.url} (POST /v1/sessions); Ctrl-C stops it")
        await asyncio.Event().wait()
    finally:
        await bey.stop()
        say("Beyond Presence API emulator stopped")
