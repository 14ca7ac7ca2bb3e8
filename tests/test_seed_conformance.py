"""Client request bodies and local Bey API answers, checked against the seed's own schemas."""

from pathlib import Path

import aiohttp
import jsonschema
import pytest
import yaml
from conftest import BEY_KEY

from pipecat_bey import BeyClient
from pipecat_bey.models import CreatePipecatSessionRequest
from pipecat_bey.testing import Fault

SEED_DIR = Path(__file__).resolve().parents[2] / "shared" / "seed"


def load_seed():
    seeds = sorted(SEED_DIR.glob("*.txt")) if SEED_DIR.is_dir() else []
    if not seeds:
        pytest.skip(f"the API contract is not beside the repository ({SEED_DIR})")
    text = seeds[0].read_text()
    spec = text.split("````yaml", 1)[1].split("\n", 1)[1].split("````", 1)[0]
    return yaml.safe_load(spec)


@pytest.fixture(scope="module")
def schemas():
    spec = load_seed()
    components = spec["components"]["schemas"]

    def validator(name):
        schema = {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}
        return jsonschema.Draft202012Validator(schema)

    return {name: validator(name) for name in components}


async def test_the_client_request_body_matches_the_schema(bey, schemas):
    async with BeyClient(BEY_KEY, base_url=bey.url) as client:
        await client.create_session(
            CreatePipecatSessionRequest(avatar_id="a", url="https://x.daily.co/r", token="t")
        )
    schemas["CreatePipecatSessionRequest"].validate(bey.requests[0])
    schemas["CreateSessionRequest"].validate(bey.requests[0])


async def test_a_201_matches_the_session_response_schema(bey, schemas):
    async with aiohttp.ClientSession() as http:
        body = {
            "transport": "pipecat",
            "avatar_id": "a",
            "url": "https://x.daily.co/r",
            "token": "t",
        }
        async with http.post(
            f"{bey.url}/v1/sessions", json=body, headers={"x-api-key": BEY_KEY}
        ) as r:
            assert r.status == 201
            answer = await r.json()
    schemas["SessionResponse"].validate(answer)
    schemas["PipecatSessionResponse"].validate(answer)
    assert "token" not in answer


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b'{"transport": "pipecat", "url": "u", "token": "t"}',
        b'{"transport": "pipecat", "avatar_id": 5, "url": "u", "token": "t"}',
        b'{"transport": "zoom", "avatar_id": "a", "url": "u", "token": "t"}',
        b"[]",
    ],
)
async def test_a_422_matches_the_validation_error_schema(bey, schemas, body):
    async with aiohttp.ClientSession() as http:
        headers = {"x-api-key": BEY_KEY, "content-type": "application/json"}
        async with http.post(f"{bey.url}/v1/sessions", data=body, headers=headers) as r:
            assert r.status == 422
            answer = await r.json()
    schemas["HTTPValidationError"].validate(answer)
    assert answer["detail"], "a 422 names what is wrong"
    assert not bey.sessions


async def test_scripted_error_statuses_start_no_session(bey):
    bey.script(Fault.status(503), Fault.html(502), Fault.drop())
    async with aiohttp.ClientSession() as http:
        for _ in range(2):
            async with http.post(
                f"{bey.url}/v1/sessions",
                json={"transport": "pipecat", "avatar_id": "a", "url": "u", "token": "t"},
                headers={"x-api-key": BEY_KEY},
            ) as r:
                assert r.status in (502, 503)
    assert not bey.sessions
