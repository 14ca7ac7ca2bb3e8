"""BeyClient against the local Bey API and against an independent misbehaving server."""

import asyncio
import json
import socket
import time

import pytest
from aiohttp import web
from conftest import BEY_KEY
from loguru import logger

from pipecat_bey import BeyClient, BeyConfigError, PipecatSessionResponse
from pipecat_bey.errors import (
    BeyAPIError,
    BeyAuthError,
    BeyConnectionError,
    BeyRateLimitError,
    BeyResponseError,
    BeyServerError,
    BeyValidationError,
)
from pipecat_bey.models import (
    CreateLivekitSessionRequest,
    CreatePipecatSessionRequest,
    LivekitSessionResponse,
)
from pipecat_bey.testing import Fault

ROOM = "https://example.daily.co/room"
TOKEN = "daily-meeting-token-that-must-stay-secret"


def request(**overrides):
    fields = {"avatar_id": "b9be11b8-89fb-4227-8f86-4a881393cbdb", "url": ROOM, "token": TOKEN}
    return CreatePipecatSessionRequest(**(fields | overrides))


def client_for(url, **kwargs):
    kwargs.setdefault("backoff_base", 0.01)
    return BeyClient(BEY_KEY, base_url=url, **kwargs)


async def test_creates_a_pipecat_session_and_sends_the_token(bey):
    async with client_for(bey.url) as client:
        session = await client.create_session(request())
    assert isinstance(session, PipecatSessionResponse)
    assert session.avatar_id == "b9be11b8-89fb-4227-8f86-4a881393cbdb" and session.url == ROOM
    assert bey.requests == [
        {"transport": "pipecat", "avatar_id": session.avatar_id, "url": ROOM, "token": TOKEN}
    ]
    assert bey.sessions == [session]


async def test_creates_a_livekit_session(bey):
    async with client_for(bey.url) as client:
        session = await client.create_session(
            CreateLivekitSessionRequest(avatar_id="a", url="wss://x.livekit.cloud", token=TOKEN)
        )
    assert isinstance(session, LivekitSessionResponse)


async def test_retries_503_twice_then_succeeds_on_the_third_attempt(bey):
    bey.script(Fault.status(503), Fault.status(503))
    async with client_for(bey.url) as client:
        session = await client.create_session(request())
    assert len(bey.requests) == 3
    assert bey.sessions == [session]


@pytest.mark.parametrize("status", [502, 504])
async def test_retries_gateway_errors(bey, status):
    bey.script(Fault.status(status))
    async with client_for(bey.url) as client:
        await client.create_session(request())
    assert len(bey.requests) == 2


async def test_a_500_is_tried_once(bey):
    bey.script(Fault.status(500))
    async with client_for(bey.url) as client:
        with pytest.raises(BeyServerError) as caught:
            await client.create_session(request())
    assert caught.value.status == 500
    assert len(bey.requests) == 1


async def test_a_dropped_answer_is_not_retried_so_no_second_avatar_starts(bey):
    bey.script(Fault.drop(session_created=True))
    async with client_for(bey.url) as client:
        with pytest.raises(BeyConnectionError, match="not retried"):
            await client.create_session(request())
    assert len(bey.requests) == 1
    assert len(bey.sessions) == 1


async def test_a_timeout_after_sending_is_not_retried(bey):
    bey.script(Fault.hang(3.0))
    async with client_for(bey.url, timeout=0.3) as client:
        with pytest.raises(BeyConnectionError, match="did not answer"):
            await client.create_session(request())
    assert len(bey.requests) == 1


async def test_retry_after_is_honoured(bey):
    bey.script(Fault.status(429, retry_after=0.3))
    started = time.monotonic()
    async with client_for(bey.url) as client:
        await client.create_session(request())
    assert time.monotonic() - started >= 0.3
    assert len(bey.requests) == 2


async def test_rate_limited_until_the_retries_are_spent(bey):
    bey.script(*[Fault.status(429, retry_after=0)] * 3)
    async with client_for(bey.url, max_retries=2) as client:
        with pytest.raises(BeyRateLimitError) as caught:
            await client.create_session(request())
    assert caught.value.status == 429 and caught.value.retry_after == 0
    assert len(bey.requests) == 3 and not bey.sessions


async def test_unknown_key_is_an_auth_error(bey):
    async with BeyClient("not-a-key", base_url=bey.url) as client:
        with pytest.raises(BeyAuthError) as caught:
            await client.create_session(request())
    assert caught.value.status == 403
    assert "BEY_API_KEY" in str(caught.value)


async def test_connection_refused_is_retried_then_reported():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    warnings = []
    sink = logger.add(lambda m: warnings.append(m), level="WARNING")
    try:
        async with client_for(f"http://127.0.0.1:{port}", max_retries=2) as client:
            with pytest.raises(BeyConnectionError, match="cannot connect"):
                await client.create_session(request())
    finally:
        logger.remove(sink)
    assert sum("retry" in str(w) for w in warnings) == 2


@pytest.mark.parametrize(
    "fault, error",
    [
        (Fault.malformed(), "not JSON"),
        (Fault.empty(), "not JSON"),
        (Fault.huge(), "over 65536 bytes"),
    ],
)
async def test_a_success_without_a_session_is_a_response_error(bey, fault, error):
    bey.script(fault)
    async with client_for(bey.url) as client:
        with pytest.raises(BeyResponseError, match=error):
            await client.create_session(request())
    assert len(bey.requests) == 1


async def test_a_proxy_html_page_is_retried_then_reported(bey):
    bey.script(*[Fault.html(502)] * 4)
    async with client_for(bey.url) as client:
        with pytest.raises(BeyServerError, match="502 Bad Gateway") as caught:
            await client.create_session(request())
    assert caught.value.status == 502 and len(bey.requests) == 4


@pytest.fixture
async def odd_server():
    """An independent server, not our emulator, answering from a script."""
    answers: list[web.Response] = []
    seen: list[dict] = []

    async def handler(req: web.Request) -> web.Response:
        seen.append(await req.json())
        return answers.pop(0)

    app = web.Application()
    app.router.add_post("/v1/sessions", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}", answers, seen
    await runner.cleanup()


def session_body(**overrides):
    return {
        "id": "s-1",
        "transport": "pipecat",
        "avatar_id": "a",
        "url": ROOM,
        "started_at": "2026-01-01T00:00:00Z",
    } | overrides


async def test_faults_from_another_server(odd_server):
    url, answers, seen = odd_server
    answers += [
        web.json_response({"detail": "busy"}, status=503, headers={"Retry-After": "0"}),
        web.Response(text="<html>502</html>", status=502, content_type="text/html"),
        web.json_response(session_body(extra="ignored"), status=201),
    ]
    async with client_for(url) as client:
        session = await client.create_session(request())
    assert session.id == "s-1" and len(seen) == 3


async def test_422_detail_is_parsed(odd_server):
    url, answers, _ = odd_server
    detail = [{"loc": ["body", "avatar_id"], "msg": "Field required", "type": "missing"}]
    answers.append(web.json_response({"detail": detail}, status=422))
    async with client_for(url) as client:
        with pytest.raises(BeyValidationError, match="avatar_id: Field required") as caught:
            await client.create_session(request())
    assert caught.value.detail[0].loc == ["body", "avatar_id"]


async def test_401_and_other_4xx(odd_server):
    url, answers, _ = odd_server
    answers += [
        web.json_response({"detail": "Not authenticated"}, status=401),
        web.json_response({"detail": "Not found"}, status=404),
    ]
    async with client_for(url) as client:
        with pytest.raises(BeyAuthError):
            await client.create_session(request())
        with pytest.raises(BeyAPIError) as caught:
            await client.create_session(request())
    assert caught.value.status == 404


@pytest.mark.parametrize(
    "body",
    [
        session_body(transport="livekit"),
        {"id": "s-1", "transport": "pipecat"},
        session_body(started_at=5),
        [session_body()],
    ],
)
async def test_a_body_of_the_wrong_shape_is_a_response_error(odd_server, body):
    url, answers, _ = odd_server
    answers.append(web.json_response(body, status=201))
    async with client_for(url) as client:
        with pytest.raises(BeyResponseError):
            await client.create_session(request())


async def test_error_texts_never_quote_secrets_echoed_by_a_server(odd_server):
    url, answers, seen = odd_server
    answers.append(web.Response(text=f"crash while handling {TOKEN} with {BEY_KEY}", status=500))
    async with client_for(url) as client:
        with pytest.raises(BeyServerError) as caught:
            await client.create_session(request())
    assert seen[0]["token"] == TOKEN
    assert TOKEN not in str(caught.value) and BEY_KEY not in str(caught.value)
    assert "***" in str(caught.value)


def test_reprs_never_show_secrets():
    client = client_for("https://api.bey.dev")
    req = request()
    for text in (
        repr(client),
        str(client),
        repr(req),
        str(req),
        req.model_dump_json(),
        str(req.masked()),
    ):
        assert TOKEN not in text and BEY_KEY not in text
    assert req.to_wire()["token"] == TOKEN


def test_missing_key_names_the_variable(clean_env):
    with pytest.raises(BeyConfigError, match="BEY_API_KEY"):
        BeyClient()


def test_key_and_url_come_from_the_environment(clean_env):
    clean_env.setenv("BEY_API_KEY", BEY_KEY)
    clean_env.setenv("BEY_API_URL", "http://127.0.0.1:9/")
    assert BeyClient().base_url == "http://127.0.0.1:9"


@pytest.mark.parametrize("url", ["http://api.bey.dev", "ftp://127.0.0.1", "not a url"])
def test_unsafe_or_bad_urls_are_refused(url, clean_env):
    with pytest.raises(BeyConfigError, match="BEY_API_URL"):
        BeyClient(BEY_KEY, base_url=url)


async def test_closes_only_its_own_session(bey):
    import aiohttp

    async with aiohttp.ClientSession() as http:
        async with BeyClient(BEY_KEY, base_url=bey.url, session=http) as client:
            await client.create_session(request())
        assert not http.closed
    client = client_for(bey.url)
    await client.create_session(request())
    own = client._own_session
    await client.close()
    assert own is not None and own.closed


async def test_concurrent_sessions_are_independent(bey):
    async with client_for(bey.url) as client:
        sessions = await asyncio.gather(*(client.create_session(request()) for _ in range(5)))
    assert len({s.id for s in sessions}) == 5
    assert json.dumps([s.model_dump() for s in sessions]).count(TOKEN) == 0
