"""Pydantic models of the Beyond Presence API, under the contract's own schema names.

The contract (OpenAPI 3.1, ``POST /v1/sessions``) marks ``token`` as write-only
and a password: it is held as a ``SecretStr``, so ``repr``, ``str`` and ordinary
dumps show ``**********``; only :meth:`to_wire` gives the real value, for the
request body.
"""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, TypeAdapter

from pipecat_bey._secrets import MASK


class _SessionRequest(BaseModel):
    """Fields shared by both session requests."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    avatar_id: str = Field(description="ID of avatar to use.")
    url: str
    token: SecretStr

    def to_wire(self) -> dict[str, Any]:
        """Return the JSON body to send, with the real token.

        Returns:
            The request body.
        """
        body = self.model_dump(mode="json")
        body["token"] = self.token.get_secret_value()
        return body

    def masked(self) -> dict[str, Any]:
        """Return the body as it may be shown to people: the token masked.

        Returns:
            The request body with ``token`` set to ``***``.
        """
        body = self.model_dump(mode="json")
        body["token"] = MASK
        return body


class CreatePipecatSessionRequest(_SessionRequest):
    """Request body to create a Pipecat speech-to-video session (a Daily room).

    Parameters:
        transport: Always ``"pipecat"``.
        avatar_id: ID of avatar to use.
        url: URL of the Daily room the avatar joins.
        token: The Daily meeting token the avatar joins with (write-only).
    """

    transport: Literal["pipecat"] = "pipecat"


class CreateLivekitSessionRequest(_SessionRequest):
    """Request body to create a LiveKit speech-to-video session.

    Parameters:
        transport: Always ``"livekit"``.
        avatar_id: ID of avatar to use.
        url: URL of the LiveKit server the avatar worker connects to.
        token: The token used to join the LiveKit room (write-only).
    """

    transport: Literal["livekit"] = "livekit"


class _SessionResponse(BaseModel):
    """Fields shared by both session responses; unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(description="Unique identifier of the object in the database.")
    avatar_id: str
    url: str
    started_at: str = Field(description="Start time in ISO 8601 format.")


class PipecatSessionResponse(_SessionResponse):
    """Response body for a Pipecat speech-to-video session."""

    transport: Literal["pipecat"] = "pipecat"


class LivekitSessionResponse(_SessionResponse):
    """Response body for a LiveKit speech-to-video session."""

    transport: Literal["livekit"] = "livekit"


SessionResponse = Annotated[
    LivekitSessionResponse | PipecatSessionResponse, Field(discriminator="transport")
]
"""Either session response, told apart by ``transport``."""

SESSION_RESPONSE_ADAPTER: TypeAdapter[LivekitSessionResponse | PipecatSessionResponse] = (
    TypeAdapter(SessionResponse)
)
"""Parses a response body into the matching session response."""

CreateSessionRequest = CreateLivekitSessionRequest | CreatePipecatSessionRequest
"""Either session request."""


class FieldError(BaseModel):
    """One validation error in a 422 answer (the seed's ``ValidationError``, FastAPI's shape).

    Named apart from ``pydantic.ValidationError``, which it is not.
    """

    model_config = ConfigDict(extra="ignore")

    loc: list[str | int] = Field(title="Location")
    msg: str
    type: str


class HTTPValidationError(BaseModel):
    """The body of a 422 answer."""

    model_config = ConfigDict(extra="ignore")

    detail: list[FieldError] = Field(default_factory=list)
