"""World layer, its top: the simulation, holding the rooms and pointing DailyTransport at them.

``DailySimulation`` is the one part that sees the whole: it gives each
layer below what that layer needs (rooms a ``RoomHost``, participants a
``ParticipantHost``, call clients a ``CallHost``, the REST endpoints a
``RestHost``) and, while active, installs in ``pipecat.transports.daily.transport``
stand-ins bound to itself. It is made of the other world modules' parts:
``stand_ins`` (what it installs), ``domain`` (its rooms and meeting tokens),
``runtime`` (its loop, tasks, callback thread and waiting), ``bey_sessions``
(the avatars Beyond Presence sessions send) and ``world_settings`` (its
constructors' settings, its network's).

Its timings default to a fast, kind world for tests. ``REALISTIC`` (of
``realistic``) is a named set of values nearer a real call
(``DailySimulation.realistic()``), and
:meth:`DailySimulation.from_settings` builds a world from any such mapping,
recorded timings for instance.
"""

import asyncio
from collections.abc import Callable, Coroutine, Mapping
from types import TracebackType
from typing import Any

from pipecat_bey.testing.bey_emulator import BeyEmulator
from pipecat_bey.testing.daily_sim.avatar import AvatarBehaviour, SimulatedAvatar
from pipecat_bey.testing.daily_sim.bey_sessions import BeySessions
from pipecat_bey.testing.daily_sim.devices import Devices
from pipecat_bey.testing.daily_sim.domain import Domain
from pipecat_bey.testing.daily_sim.network import Network
from pipecat_bey.testing.daily_sim.rest import DailyRESTServer
from pipecat_bey.testing.daily_sim.room import Room
from pipecat_bey.testing.daily_sim.runtime import Runtime
from pipecat_bey.testing.daily_sim.stand_ins import StandIns
from pipecat_bey.testing.daily_sim.tokens import TokenClaims
from pipecat_bey.testing.daily_sim.world_settings import (
    NetworkSetting,
    arguments_from_settings,
    realistic_settings,
)


class DailySimulation:
    """An offline Daily: rooms, REST endpoints, and the real DailyTransport running in them.

    While active (``async with``), pipecat's ``DailyTransport`` uses the
    simulation's ``CallClient`` instead of daily-python's; nothing else of the
    transport changes. On exit the real classes are restored. One simulation
    can be active at a time.

    The network between participants delays media by ``network_delay_s`` plus up
    to ``jitter_s``, and the receiver's jitter buffer plays it out
    ``network_delay_s + receive_buffer_s`` after it was sent (on arrival if it
    came later; in order on each track), so audio renderers get a steady stream.
    App messages take ``app_message_delay_s``, on their own path and not
    buffered, so a message can overtake audio sent just before it. Everything a
    participant records is timed by when it was handed over: media as it played
    out of the jitter buffer, messages on arrival.

    The defaults are a fast, kind world for tests, not measurements: no network
    delay, instant joins and REST answers, a 50 ms subscription. For a harsher
    world use :meth:`realistic` (each value's source is given at :data:`REALISTIC`)
    or :meth:`from_settings`.

    Attributes:
        domain: The Daily domain of room URLs.
        subscribe_latency_s: How long a subscription takes to start delivering media.
        join_latency_s: How long a ``CallClient.join`` takes to complete.
        rest_latency_s: How long each REST request takes to be answered.
        network: What carries media and app messages (delays, jitter, seed).
        default_behaviour: How avatars behave when ``attach_bey`` is given no behaviour.
        rooms: The rooms, by name.
        avatars: Every avatar sent into a room, in order of creation.
        devices: What daily-python keeps process-wide (tracks, speakers).
        stand_ins: daily-python's names in ``DailyTransport``'s module, each bound to
            this simulation, as installed while it is active.
    """

    def __init__(
        self,
        *,
        api_key: str = "daily-local-key",
        domain: str = "pipecat-bey-sim",
        subscribe_latency_s: float = 0.05,
        join_latency_s: float = 0.0,
        rest_latency_s: float = 0.0,
        network_delay_s: float = 0.0,
        jitter_s: float = 0.0,
        app_message_delay_s: float = 0.0,
        seed: int | None = 0,
        default_behaviour: AvatarBehaviour | None = None,
        receive_buffer_s: float | None = None,
    ) -> None:
        """Create the simulation (active once entered).

        Args:
            api_key: The key the REST stand-in accepts as ``Bearer``.
            domain: The Daily domain of room URLs (``https://<domain>.daily.co/<room>``).
            subscribe_latency_s: Time for a new subscription to start delivering media.
            join_latency_s: Time a ``CallClient.join`` takes to complete.
            rest_latency_s: Time each REST request takes to be answered.
            network_delay_s: One-way delay of audio and video.
            jitter_s: Extra media delay, uniform in ``[0, jitter_s]`` for each piece.
            app_message_delay_s: One-way delay of app messages.
            seed: Seed of the jitter (None: different each run).
            default_behaviour: How avatars behave when ``attach_bey`` is given none.
            receive_buffer_s: The receivers' jitter buffer, as WebRTC's (NetEQ for
                audio, a video jitter buffer): audio and video play out at the
                time they left the sender plus ``network_delay_s`` plus this, or
                on arrival if later, so renderers and participants get them at a
                steady pace and the jitter it covers shows as latency, not gaps.
                None (the default) is ``jitter_s``, a buffer just covering the
                jitter, as NetEQ's steady state: a guess, not a measurement.
                0 hands media on as it arrives: gaps under jitter, the harsher
                case. App messages are not buffered.
        """
        self.domain = domain
        self.subscribe_latency_s = subscribe_latency_s
        self.join_latency_s = join_latency_s
        self.rest_latency_s = rest_latency_s
        self.network = Network(
            delay_s=network_delay_s,
            jitter_s=jitter_s,
            app_message_delay_s=app_message_delay_s,
            seed=seed,
            receive_buffer_s=receive_buffer_s,
        )
        self.default_behaviour = default_behaviour or AvatarBehaviour()
        self.devices = Devices()
        self._runtime = Runtime()
        self._daily_domain = Domain(self)
        self.rooms: dict[str, Room] = self._daily_domain.rooms
        self._stand_ins = StandIns(self)
        self.stand_ins: dict[str, type] = self._stand_ins.classes
        self._rest = DailyRESTServer(self, api_key)
        self._bey = BeySessions(self)
        self.avatars: list[SimulatedAvatar] = self._bey.avatars

    def __repr__(self) -> str:
        return f"DailySimulation(domain={self.domain!r}, rooms={list(self.rooms)})"

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], **kwargs: Any) -> "DailySimulation":
        """A simulation whose timings come from a mapping (recorded timings, a profile).

        Keys of :data:`WORLD_SETTINGS` set the world; keys naming
        :class:`AvatarBehaviour` fields set ``default_behaviour``; other keys are
        ignored with a warning.

        Args:
            settings: ``{setting name: value}``, seconds for the timings.
            **kwargs: Other arguments of the constructor (``api_key``...); they win
                over ``settings``.

        Returns:
            The simulation (not started).
        """
        return cls(**arguments_from_settings(settings, kwargs))

    @classmethod
    def realistic(cls, **overrides: Any) -> "DailySimulation":
        """A simulation with the timings of :data:`REALISTIC`, world and avatar.

        Args:
            **overrides: Settings to change (``network_delay_s=0.2``,
                ``subscribe_delay_s=2.0``) or other constructor arguments.

        Returns:
            The simulation (not started).
        """
        settings, kwargs = realistic_settings(overrides)
        return cls.from_settings(settings, **kwargs)

    # The network's settings; they may be changed while the simulation runs.
    network_delay_s = NetworkSetting[float]("delay_s", "One-way delay of audio and video.")
    jitter_s = NetworkSetting[float]("jitter_s", "Maximum extra delay of a piece of media.")
    receive_buffer_s = NetworkSetting[float | None](
        "receive_buffer_s",
        "The receivers' jitter buffer past ``network_delay_s`` (None: ``jitter_s``).",
    )
    app_message_delay_s = NetworkSetting[float](
        "app_message_delay_s", "One-way delay of app messages."
    )

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The asyncio loop the simulation runs on."""
        return self._runtime.loop

    @property
    def rest_url(self) -> str:
        """Base URL of the REST stand-in, for ``DailyRESTHelper(daily_api_url=...)``."""
        return self._rest.url

    # Life cycle.
    async def start(self) -> None:
        """Start the REST stand-in and point DailyTransport at the simulation.

        Raises:
            RuntimeError: If another simulation is active.
        """
        self._stand_ins.check_none_installed()
        loop = asyncio.get_running_loop()
        self._runtime.bind(loop)
        self.network.bind(loop)
        await self._rest.start()
        self._runtime.start_callbacks()
        self._stand_ins.install()

    async def stop(self) -> None:
        """Restore daily-python, stop the avatars and the REST stand-in."""
        self._bey.detach_all()
        await self._runtime.cancel_tasks()
        for room in self.rooms.values():
            room.close()
        self.network.close()
        self._stand_ins.restore()
        await self._rest.stop()
        await self._runtime.stop_callbacks()

    async def __aenter__(self) -> "DailySimulation":
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # The callback thread, tasks and waiting.
    def dispatch(self, callback: Callable[..., Any], *args: Any) -> None:
        """Call ``callback(*args)`` from the simulation's callback thread, in order.

        Args:
            callback: The callable.
            *args: Its arguments.
        """
        self._runtime.dispatch(callback, *args)

    def notify(self) -> None:
        """Wake whoever waits in :meth:`wait_for` (something happened in a room)."""
        self._runtime.notify()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        """Wait until ``predicate()`` holds.

        It is re-checked whenever a simulated participant receives something, and
        every quarter of a second for conditions on things outside the simulation.

        Args:
            predicate: The condition.
            timeout: Seconds to wait at most (``float("inf")``: forever).

        Returns:
            True once it holds, False if the time ran out first.
        """
        return await self._runtime.wait_for(predicate, timeout)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> "asyncio.Task[Any]":
        """Run a coroutine of the simulation's; it is cancelled when the simulation stops.

        Args:
            coro: The coroutine.
            name: Task name.

        Returns:
            The task.
        """
        return self._runtime.spawn(coro, name)

    # Rooms and tokens.
    def create_room(
        self, name: str | None = None, *, private: bool = False, owner_only_broadcast: bool = False
    ) -> Room:
        """Create a room.

        Args:
            name: Its name (default: a fresh one).
            private: Whether joining needs a meeting token.
            owner_only_broadcast: Whether only owners may send media (Daily's room
                property): a non-owner sends nothing, custom tracks included, unless
                its token's ``permissions.canSend`` says otherwise.

        Returns:
            The room.
        """
        return self._daily_domain.create_room(
            name, private=private, owner_only_broadcast=owner_only_broadcast
        )

    def delete_room(self, name: str) -> None:
        """Delete a room, removing whoever is in it.

        Args:
            name: The room.
        """
        self._daily_domain.delete_room(name)

    def room_for_url(self, url: str) -> Room | None:
        """The room a URL names, if it is one of this simulation's.

        Args:
            url: A room URL.

        Returns:
            The room, or None.
        """
        return self._daily_domain.room_for_url(url)

    def mint_token(
        self,
        room: Room | str | None = None,
        *,
        user_name: str | None = None,
        user_id: str | None = None,
        is_owner: bool = False,
        exp: float | None = None,
        ttl_s: float | None = None,
        eject_at_token_exp: bool = False,
        eject_after_elapsed: float | None = None,
        permissions: Mapping[str, Any] | None = None,
    ) -> str:
        """Mint a meeting token, as ``POST /meeting-tokens`` does.

        Args:
            room: The room it is for (None: any room of the domain).
            user_name: The bearer's name.
            user_id: The bearer's user id.
            is_owner: Whether the bearer owns the meeting.
            exp: Expiry, Unix time.
            ttl_s: Expiry as seconds from now (instead of ``exp``).
            eject_at_token_exp: Whether the bearer is ejected at expiry.
            eject_after_elapsed: Seconds in the call after which the bearer is ejected.
            permissions: Daily ``permissions`` (``canSend``, ``canReceive``, ``canAdmin``).

        Returns:
            The token.

        Raises:
            ValueError: If the permissions are not of Daily's shape.
        """
        return self._daily_domain.mint_token(
            room,
            user_name=user_name,
            user_id=user_id,
            is_owner=is_owner,
            exp=exp,
            ttl_s=ttl_s,
            eject_at_token_exp=eject_at_token_exp,
            eject_after_elapsed=eject_after_elapsed,
            permissions=permissions,
        )

    def mint_token_properties(self, properties: dict[str, Any]) -> str:
        """Mint a token from Daily's property names.

        Args:
            properties: ``room_name``, ``user_id``, ``exp``...

        Returns:
            The token.
        """
        return self._daily_domain.mint(properties)

    def verify_token(self, token: str) -> TokenClaims:
        """Check a token was minted by this simulation.

        Args:
            token: The token.

        Returns:
            Its claims.
        """
        return self._daily_domain.verify(token)

    # The avatar.
    def attach_bey(self, emulator: BeyEmulator, behaviour: AvatarBehaviour | None = None) -> None:
        """Send an avatar into a room whenever the emulator starts a session for it.

        Args:
            emulator: The local Beyond Presence API.
            behaviour: How the avatars behave (join delay, failures; None: the
                simulation's ``default_behaviour``).
        """
        self._bey.attach(emulator, behaviour or self.default_behaviour)
