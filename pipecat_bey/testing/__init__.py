"""Offline stand-ins for the services a Pipecat avatar bot talks to.

- ``BeyEmulator``: the Beyond Presence API on loopback, with scriptable ``Fault``s.
- ``DailySimulation``: Daily rooms the real ``DailyTransport`` joins, Daily's
  REST endpoints, and scripted participants (a ``SimulatedUser``, the avatar
  sent in with an ``AvatarBehaviour``); ``REALISTIC`` holds the timings of a
  harsher world, nearer a real call (``DailySimulation.realistic()``).
- ``WavTTSService``: a TTS stand-in that speaks recorded WAV clips.
- ``OfflineWorld``, ``BotRun``, ``standard_pipeline``: all of the above put
  together, to run a bot pipeline against them in a few lines;
  ``relayed_video`` sets an output up to show a relayed avatar.
- ``LiveKitWorld``, ``LiveKitUser``: the same for LiveKit, with a real
  ``livekit-server`` in a private network namespace (loaded on first use: they
  need the ``livekit`` packages; see ``pipecat_bey.testing.livekit_world``).

They need no account and no network, so a bot can be tested end to end offline.
The simulation's other parts (rooms, participants, what each received) are in
``pipecat_bey.testing.daily_sim``.
"""

import importlib
from typing import TYPE_CHECKING, Any

from pipecat_bey.testing.bey_emulator import BeyEmulator, Fault
from pipecat_bey.testing.daily_sim import (
    REALISTIC,
    AvatarBehaviour,
    DailySimulation,
    SimulatedUser,
)
from pipecat_bey.testing.harness import BotRun, OfflineWorld, relayed_video, standard_pipeline
from pipecat_bey.testing.wav_tts import WavTTSService

if TYPE_CHECKING:
    from pipecat_bey.testing.livekit_user import LiveKitUser
    from pipecat_bey.testing.livekit_world import LiveKitWorld

__all__ = [
    "REALISTIC",
    "AvatarBehaviour",
    "BeyEmulator",
    "BotRun",
    "DailySimulation",
    "Fault",
    "LiveKitUser",
    "LiveKitWorld",
    "OfflineWorld",
    "SimulatedUser",
    "WavTTSService",
    "relayed_video",
    "standard_pipeline",
]

# Loaded on first use: they need the livekit packages, which the rest does not.
_LAZY = {
    "LiveKitUser": "pipecat_bey.testing.livekit_user",
    "LiveKitWorld": "pipecat_bey.testing.livekit_world",
}


def __getattr__(name: str) -> Any:
    home = _LAZY.get(name)
    if home is None:
        raise AttributeError(f"module 'pipecat_bey.testing' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
