"""The local Bey API behaves as the contract says, for our client and for anyone's."""

import re

import aiohttp
import pytest
from conftest import BEY_KEY

from pipecat_bey.testing import BeyEmulator, Fault

BODY = {
    "transport": "pipecat",
    "avatar_id": "a",
    "url": "https://x.daily.co/r",
    "token": "secret-t",
}


async def post(bey, body=None, headers=None, data=None):
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{bey.url}/v1/sessions",
            json=body if data is None else None,
            data=data,
            headers={"x-api-key": BEY_KEY} if headers is None else headers,
        ) as r:
            return r.status, await r.json(content_type=None)


async def test_missing_key_is_401_and_unknown_key_is_403(bey):
    assert (await post(bey, BODY, headers={}))[0] == 401
    assert (await post(bey, BODY, headers={"x-api-key": "nope"}))[0] == 403
    assert not bey.sessions


async def test_a_missing_field_is_named_and_the_token_not_echoed(bey):
    status, answer = await post(bey, {k: v for k, v in BODY.items() if k != "avatar_id"})
    assert status == 422
    assert answer["detail"][0]["loc"] == ["body", "avatar_id"]
    assert answer["detail"][0]["type"] == "missing"
    assert "secret-t" not in str(answer)


async def test_an_unknown_transport_is_refused(bey):
    status, answer = await post(bey, BODY | {"transport": "zoom"})
    assert status == 422 and answer["detail"][0]["loc"] == ["body", "transport"]


async def test_a_missing_transport_means_livekit_as_the_contract_defaults(bey):
    status, answer = await post(bey, {k: v for k, v in BODY.items() if k != "transport"})
    assert status == 201 and answer["transport"] == "livekit"


async def test_latency_and_listeners(bey):
    heard = []
    bey.add_session_listener(lambda request, session: heard.append((request, session)))
    status, answer = await post(bey, BODY)
    assert status == 201
    request, session = heard[0]
    assert session.id == answer["id"] and request.token.get_secret_value() == "secret-t"


async def test_repr_shows_no_token(bey):
    await post(bey, BODY)
    assert "secret-t" not in repr(bey)


async def test_url_before_start_is_an_error():
    with pytest.raises(RuntimeError, match="not started"):
        _ = BeyEmulator().url


async def test_request_log_has_one_line_per_request_and_no_secret():
    lines: list[str] = []
    async with BeyEmulator(api_keys={BEY_KEY}, request_log=lines.append) as bey:
        assert (await post(bey, BODY))[0] == 201  # the key in a header, the token in the body
        assert (await post(bey, BODY, headers={}))[0] == 401
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{bey.url}/nope?token=secret-t&key={BEY_KEY}") as r:
                assert r.status == 404
            bey.script(Fault.drop())
            with pytest.raises(aiohttp.ClientError):
                await post(bey, BODY)
    expected = [
        r"POST /v1/sessions 201",
        r"POST /v1/sessions 401",
        r"GET /nope 404",  # the path without its query
        r"POST /v1/sessions dropped",
    ]
    assert len(lines) == len(expected), lines
    for line, start in zip(lines, expected, strict=True):
        assert re.fullmatch(start + r" \d+\.\d ms", line), line
        assert "secret-t" not in line and BEY_KEY not in line
