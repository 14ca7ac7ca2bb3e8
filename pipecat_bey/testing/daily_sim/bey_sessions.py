"""World layer: Beyond Presence sessions, each sending an avatar into the room it names.

A simulation attached to a :class:`~pipecat_bey.testing.bey_emulator.BeyEmulator`
hears of each session the emulator starts; for a Pipecat session naming one of
its rooms, :class:`BeySessions` sends a :class:`SimulatedAvatar` (two, if the
behaviour says so) into that room with the session's meeting token.
"""

from collections.abc import Callable
from typing import Any, Protocol

from loguru import logger

from pipecat_bey.models import CreatePipecatSessionRequest
from pipecat_bey.testing.bey_emulator import BeyEmulator
from pipecat_bey.testing.daily_sim.avatar import AvatarBehaviour, SimulatedAvatar
from pipecat_bey.testing.daily_sim.participant import ParticipantHost
from pipecat_bey.testing.daily_sim.room import Room


class AvatarHost(ParticipantHost, Protocol):
    """What sending avatars needs of the simulation: its rooms, and running them."""

    def room_for_url(self, url: str) -> Room | None:
        """The room a URL names, if any.

        Args:
            url: A room URL.

        Returns:
            The room, or None.
        """
        ...


class BeySessions:
    """The emulators a simulation listens to, and the avatars their sessions sent.

    Attributes:
        avatars: Every avatar sent into a room, in order of creation.
    """

    def __init__(self, host: AvatarHost) -> None:
        """Listen to no emulator yet.

        Args:
            host: The simulation whose rooms the avatars join and that runs them.
        """
        self.avatars: list[SimulatedAvatar] = []
        self._host = host
        self._listeners: list[tuple[BeyEmulator, Callable[..., Any]]] = []

    def attach(self, emulator: BeyEmulator, behaviour: AvatarBehaviour) -> None:
        """Send an avatar into a room whenever the emulator starts a session for it.

        Args:
            emulator: The local Beyond Presence API.
            behaviour: How the avatars behave.
        """

        def on_session(request: Any, session: Any) -> None:
            if not isinstance(request, CreatePipecatSessionRequest):
                return
            room = self._host.room_for_url(request.url)
            if room is None:
                logger.warning(f"Bey session {session.id} names no simulated room; no avatar")
                return
            token = request.token.get_secret_value()
            for copy in range(2 if behaviour.second_avatar else 1):
                avatar = SimulatedAvatar(self._host, room, token, behaviour, session_id=session.id)
                self.avatars.append(avatar)
                self._host.spawn(
                    avatar.run(extra_delay_s=copy * 0.2), f"avatar-{session.id}-{copy}"
                )

        emulator.add_session_listener(on_session)
        self._listeners.append((emulator, on_session))

    def detach_all(self) -> None:
        """Stop listening to every emulator (the avatars already sent stay)."""
        for emulator, listener in self._listeners:
            emulator.remove_session_listener(listener)
        self._listeners.clear()
