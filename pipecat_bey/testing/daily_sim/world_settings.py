"""World layer: a simulation's settings, read from a mapping or taken from ``REALISTIC``.

:data:`WORLD_SETTINGS` names the timings of the world itself; the other keys of
a settings mapping (``REALISTIC``, recorded timings) are the avatar's
:class:`~pipecat_bey.testing.daily_sim.avatar.AvatarBehaviour`. These functions
turn such a mapping into the arguments of ``DailySimulation``, for its
``from_settings`` and ``realistic``; a :class:`NetworkSetting` is one of its
network's settings, read and changed as the simulation's own.
"""

from collections.abc import Mapping
from typing import Any, Generic, Protocol, TypeVar, overload

from pipecat_bey.testing.daily_sim.avatar import AvatarBehaviour
from pipecat_bey.testing.daily_sim.network import Network
from pipecat_bey.testing.daily_sim.realistic import REALISTIC

# The world's timing settings: what ``from_settings`` reads (seconds, all of them;
# ``receive_buffer_s`` may also be None, its default).
WORLD_SETTINGS = (
    "subscribe_latency_s",
    "join_latency_s",
    "rest_latency_s",
    "network_delay_s",
    "jitter_s",
    "receive_buffer_s",
    "app_message_delay_s",
)


def arguments_from_settings(settings: Mapping[str, Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The simulation's constructor arguments for a settings mapping.

    Keys of :data:`WORLD_SETTINGS` set the world; keys naming
    :class:`AvatarBehaviour` fields set ``default_behaviour``; other keys are
    ignored with a warning.

    Args:
        settings: ``{setting name: value}``, seconds for the timings.
        kwargs: Other constructor arguments (``api_key``...); they win over
            ``settings``.

    Returns:
        The arguments.
    """
    world = {
        k: None if v is None and k == "receive_buffer_s" else float(v)
        for k, v in settings.items()
        if k in WORLD_SETTINGS
    }
    kwargs = dict(kwargs)
    if "default_behaviour" not in kwargs:
        kwargs["default_behaviour"] = AvatarBehaviour.from_settings(
            {k: v for k, v in settings.items() if k not in WORLD_SETTINGS},
            known_elsewhere=WORLD_SETTINGS,
        )
    return {**world, **kwargs}


def realistic_settings(overrides: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """:data:`REALISTIC` with some settings changed, and the other constructor arguments.

    Args:
        overrides: Settings to change (``network_delay_s=0.2``,
            ``subscribe_delay_s=2.0``) or other constructor arguments.

    Returns:
        The settings, and the arguments that are not settings.
    """
    avatar_fields = set(AvatarBehaviour.__dataclass_fields__)
    known = set(WORLD_SETTINGS) | avatar_fields
    settings = {**REALISTIC, **{k: v for k, v in overrides.items() if k in known}}
    kwargs = {k: v for k, v in overrides.items() if k not in known}
    return settings, kwargs


T = TypeVar("T")


class Networked(Protocol):
    """Something with a network (the simulation)."""

    @property
    def network(self) -> Network:
        """What carries media and app messages."""
        ...


class NetworkSetting(Generic[T]):
    """A setting of the network, read and changed as an attribute of what holds it.

    ``network_delay_s = NetworkSetting[float]("delay_s", "One-way delay...")`` in a
    class makes ``obj.network_delay_s`` read and set ``obj.network.delay_s``, so the
    setting may be changed while the simulation runs.
    """

    def __init__(self, name: str, doc: str) -> None:
        """Name the network's attribute.

        Args:
            name: The attribute of :class:`Network`.
            doc: What the setting is.
        """
        self.name = name
        self.__doc__ = doc

    @overload
    def __get__(self, holder: None, owner: type | None = None) -> "NetworkSetting[T]": ...

    @overload
    def __get__(self, holder: Networked, owner: type | None = None) -> T: ...

    def __get__(
        self, holder: Networked | None, owner: type | None = None
    ) -> "T | NetworkSetting[T]":
        if holder is None:
            return self
        return getattr(holder.network, self.name)

    def __set__(self, holder: Networked, value: T) -> None:
        setattr(holder.network, self.name, value)
