"""Beyond Presence video avatars for Pipecat voice bots on Daily.

``BeyVideoService`` goes between the bot's TTS and ``transport.output()``,
tuned with ``BeyParams``; every error it raises or reports is a ``BeyError``
(configuration errors a ``BeyConfigError``). ``start_avatar_session`` starts an
avatar in a room without a pipeline, through ``BeyClient``. The rest stays
importable from its module (``pipecat_bey.errors``, ``pipecat_bey.models``...);
offline stand-ins for the Beyond Presence API and Daily are in
``pipecat_bey.testing``.
"""

import importlib
from typing import Any

from pipecat_bey.avatar_session import start_avatar_session
from pipecat_bey.client import BeyClient
from pipecat_bey.config import DEFAULT_AVATAR_ID, BeyParams
from pipecat_bey.errors import BeyConfigError, BeyError
from pipecat_bey.models import PipecatSessionResponse
from pipecat_bey.video import BeyVideoService

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_AVATAR_ID",
    "BeyClient",
    "BeyConfigError",
    "BeyError",
    "BeyParams",
    "BeyVideoService",
    "PipecatSessionResponse",
    "start_avatar_session",
]

# Names this package exported before its public surface was narrowed: they still
# import from here, and live in these modules.
_MOVED = {
    "BEY_AUDIO_TRACK": "pipecat_bey.config",
    "BeyAPIError": "pipecat_bey.errors",
    "BeyAuthError": "pipecat_bey.errors",
    "BeyConnectionError": "pipecat_bey.errors",
    "BeyRateLimitError": "pipecat_bey.errors",
    "BeyResponseError": "pipecat_bey.errors",
    "BeyServerError": "pipecat_bey.errors",
    "BeyValidationError": "pipecat_bey.errors",
    "DailyAPIError": "pipecat_bey.errors",
    "CreateLivekitSessionRequest": "pipecat_bey.models",
    "CreatePipecatSessionRequest": "pipecat_bey.models",
    "HTTPValidationError": "pipecat_bey.models",
    "LivekitSessionResponse": "pipecat_bey.models",
    "SessionResponse": "pipecat_bey.models",
    "ValidationError": "pipecat_bey.models",
}


def __getattr__(name: str) -> Any:
    module = _MOVED.get(name)
    if module is None:
        raise AttributeError(f"module 'pipecat_bey' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
