"""World layer: daily-python's names in ``DailyTransport``'s module, and what stands in for them.

``DailyTransport`` imported ``CallClient``, ``Daily`` and the custom tracks and
devices from daily-python into its module; a simulation's :class:`StandIns`
replaces them there by classes bound to it while it is active, and puts the
real ones back after. The module has one set of names, so one simulation can
be active at a time.
"""

from typing import Any

import pipecat.transports.daily.transport as transport_module

from pipecat_bey.testing.daily_sim.audio import CustomAudioSource
from pipecat_bey.testing.daily_sim.call_client import CallClient, CallHost
from pipecat_bey.testing.daily_sim.daily import Daily
from pipecat_bey.testing.daily_sim.devices import (
    CustomAudioTrack,
    CustomVideoTrack,
    VirtualSpeakerDevice,
)
from pipecat_bey.testing.daily_sim.video import CustomVideoSource

# What DailyTransport imported from daily-python, and what stands in for it.
PATCHED_NAMES = (
    "CallClient",
    "Daily",
    "CustomAudioSource",
    "CustomAudioTrack",
    "CustomVideoSource",
    "CustomVideoTrack",
    "VirtualSpeakerDevice",
)


class StandIns:
    """The stand-ins of one simulation, and their installing in ``DailyTransport``'s module.

    Attributes:
        classes: daily-python's names, each bound to the simulation.
    """

    def __init__(self, host: CallHost) -> None:
        """Bind the stand-ins to a simulation (not installed yet).

        Args:
            host: The simulation the call clients join the rooms of, and whose
                devices ``Daily`` and the custom audio tracks use.
        """
        self.classes: dict[str, type] = {
            "CallClient": CallClient.bound_to(host),
            "Daily": Daily.bound_to(host.devices),
            "CustomAudioSource": CustomAudioSource,
            "CustomAudioTrack": CustomAudioTrack.bound_to(host.devices),
            "CustomVideoSource": CustomVideoSource,
            "CustomVideoTrack": CustomVideoTrack,
            "VirtualSpeakerDevice": VirtualSpeakerDevice,
        }
        self._saved: dict[str, Any] = {}

    @staticmethod
    def check_none_installed() -> None:
        """Refuse to go on if some simulation's stand-ins are installed.

        Raises:
            RuntimeError: If another simulation is active.
        """
        installed = transport_module.CallClient
        if isinstance(installed, type) and issubclass(installed, CallClient):
            raise RuntimeError("another DailySimulation is already active")

    def install(self) -> None:
        """Put the stand-ins in ``DailyTransport``'s module, keeping what was there."""
        for name in PATCHED_NAMES:
            self._saved[name] = getattr(transport_module, name)
            setattr(transport_module, name, self.classes[name])

    def restore(self) -> None:
        """Put back what the stand-ins replaced (nothing if they were not installed)."""
        for name, value in self._saved.items():
            setattr(transport_module, name, value)
        self._saved.clear()
