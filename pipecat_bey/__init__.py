"""Beyond Presence video avatars for Pipecat voice bots on Daily.

``BeyVideoService`` goes between the bot's TTS and ``transport.output()``;
``BeyClient`` is the API client it uses; the errors say what went wrong.
Offline stand-ins for the Beyond Presence API and Daily are in
``pipecat_bey.testing``.
"""

from pipecat_bey.client import BeyClient
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
    DailyAPIError,
)
from pipecat_bey.models import (
    CreateLivekitSessionRequest,
    CreatePipecatSessionRequest,
    HTTPValidationError,
    LivekitSessionResponse,
    PipecatSessionResponse,
    SessionResponse,
    ValidationError,
)
from pipecat_bey.video import (
    BEY_AUDIO_TRACK,
    DEFAULT_AVATAR_ID,
    BeyParams,
    BeyVideoService,
)

__version__ = "0.1.0"

__all__ = [
    "BEY_AUDIO_TRACK",
    "DEFAULT_AVATAR_ID",
    "BeyAPIError",
    "BeyAuthError",
    "BeyClient",
    "BeyConfigError",
    "BeyConnectionError",
    "BeyError",
    "BeyParams",
    "BeyRateLimitError",
    "BeyResponseError",
    "BeyServerError",
    "BeyValidationError",
    "BeyVideoService",
    "CreateLivekitSessionRequest",
    "CreatePipecatSessionRequest",
    "DailyAPIError",
    "HTTPValidationError",
    "LivekitSessionResponse",
    "PipecatSessionResponse",
    "SessionResponse",
    "ValidationError",
]
