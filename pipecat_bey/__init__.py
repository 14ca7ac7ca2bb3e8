"""Beyond Presence video avatars for Pipecat voice bots.

``BeyVideoService`` goes between the bot's TTS and ``transport.output()``, tuned
with ``BeyParams`` (and ``BeyVideoSettings``, as every pipecat service takes
settings); every error it raises or reports is a ``BeyError``, configuration
errors a ``BeyConfigError``. ``start_avatar_session`` starts an avatar in a room
without a pipeline, through ``BeyClient``. Everything else lives in its module
(``pipecat_bey.errors``, ``pipecat_bey.models``...); offline stand-ins for the
Beyond Presence API and Daily are in ``pipecat_bey.testing``.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipecat_bey.client import BeyClient
    from pipecat_bey.config import DEFAULT_AVATAR_ID, BeyParams
    from pipecat_bey.daily.avatar_session import start_avatar_session
    from pipecat_bey.errors import BeyConfigError, BeyError
    from pipecat_bey.models import PipecatSessionResponse
    from pipecat_bey.video import BeyVideoService, BeyVideoSettings

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_AVATAR_ID",
    "BeyClient",
    "BeyConfigError",
    "BeyError",
    "BeyParams",
    "BeyVideoService",
    "BeyVideoSettings",
    "PipecatSessionResponse",
    "start_avatar_session",
]

# Where each name lives. They load on first use, so that `pipecat-bey --help`
# (and anything else that needs none of them) does not import pipecat.
_HOMES = {
    "DEFAULT_AVATAR_ID": "pipecat_bey.config",
    "BeyClient": "pipecat_bey.client",
    "BeyConfigError": "pipecat_bey.errors",
    "BeyError": "pipecat_bey.errors",
    "BeyParams": "pipecat_bey.config",
    "BeyVideoService": "pipecat_bey.video",
    "BeyVideoSettings": "pipecat_bey.video",
    "PipecatSessionResponse": "pipecat_bey.models",
    "start_avatar_session": "pipecat_bey.daily.avatar_session",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'pipecat_bey' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
