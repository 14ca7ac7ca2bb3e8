"""The models follow the seed: names, required fields, constants, write-only token."""

import pydantic
import pytest

from pipecat_bey import PipecatSessionResponse
from pipecat_bey.models import (
    SESSION_RESPONSE_ADAPTER,
    CreateLivekitSessionRequest,
    CreatePipecatSessionRequest,
    HTTPValidationError,
    LivekitSessionResponse,
)

# The examples the seed gives for each field.
SEED_RESPONSE = {
    "id": "01234567-89ab-cdef-0123-456789abcdef",
    "avatar_id": "01234567-89ab-cdef-0123-456789abcdef",
    "url": "wss://<your-domain>.pipecat.cloud",
    "started_at": "2022-01-01T00:00:00Z",
}


@pytest.mark.parametrize(
    "transport, model", [("pipecat", PipecatSessionResponse), ("livekit", LivekitSessionResponse)]
)
def test_seed_response_examples_round_trip(transport, model):
    parsed = SESSION_RESPONSE_ADAPTER.validate_python(SEED_RESPONSE | {"transport": transport})
    assert isinstance(parsed, model)
    assert parsed.model_dump(mode="json") == SEED_RESPONSE | {"transport": transport}


def test_request_examples_round_trip_with_the_token_only_on_the_wire():
    body = {
        "transport": "pipecat",
        "avatar_id": "01234567-89ab-cdef-0123-456789abcdef",
        "url": "wss://<your-domain>.pipecat.cloud",
        "token": "<your-pipecat-token>",
    }
    request = CreatePipecatSessionRequest.model_validate(body)
    assert request.to_wire() == body
    assert request.masked()["token"] == "***"
    assert "<your-pipecat-token>" not in repr(request) + str(request) + request.model_dump_json()


def test_transport_defaults_and_is_constant():
    assert CreatePipecatSessionRequest(avatar_id="a", url="u", token="t").transport == "pipecat"
    assert CreateLivekitSessionRequest(avatar_id="a", url="u", token="t").transport == "livekit"
    with pytest.raises(pydantic.ValidationError):
        CreatePipecatSessionRequest(transport="livekit", avatar_id="a", url="u", token="t")


@pytest.mark.parametrize("missing", ["avatar_id", "url", "token"])
def test_request_fields_are_required(missing):
    fields = {"avatar_id": "a", "url": "u", "token": "secret-value"}
    del fields[missing]
    with pytest.raises(pydantic.ValidationError) as caught:
        CreatePipecatSessionRequest(**fields)
    assert "secret-value" not in str(caught.value)


@pytest.mark.parametrize("missing", ["id", "avatar_id", "url", "started_at"])
def test_response_fields_are_required(missing):
    body = SEED_RESPONSE | {"transport": "pipecat"}
    del body[missing]
    with pytest.raises(pydantic.ValidationError):
        SESSION_RESPONSE_ADAPTER.validate_python(body)


def test_validation_error_shape():
    parsed = HTTPValidationError.model_validate(
        {"detail": [{"loc": ["body", 0], "msg": "JSON decode error", "type": "json_invalid"}]}
    )
    assert parsed.detail[0].loc == ["body", 0]
