"""Top layer: the simulation, holding the rooms and pointing DailyTransport at them.

``DailySimulation`` is the one part that sees the whole: it gives each
layer below what that layer needs (rooms a ``RoomHost``, participants a
``ParticipantHost``, the REST endpoints a ``RestHost``) and, while active,
installs in ``pipecat.transports.daily.transport`` stand-ins bound to itself.
"""

import asyncio
import itertools
import queue
import secrets
import threading
import time
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import pipecat.transports.daily.transport as transport_module
from loguru import logger

from pipecat_bey.models import CreatePipecatSessionRequest
from pipecat_bey.testing.bey_emulator import BeyEmulator
from pipecat_bey.testing.daily_sim import media, tokens
from pipecat_bey.testing.daily_sim.call_client import CallClient, Daily
from pipecat_bey.testing.daily_sim.participants import AvatarBehaviour, SimulatedAvatar
from pipecat_bey.testing.daily_sim.rest import DailyRESTServer
from pipecat_bey.testing.daily_sim.room import Changes, Room

# What DailyTransport imported from daily-python, and what stands in for it.
_PATCHED_NAMES = (
    "CallClient",
    "Daily",
    "CustomAudioSource",
    "CustomAudioTrack",
    "CustomVideoSource",
    "CustomVideoTrack",
    "VirtualSpeakerDevice",
)

# Predicates given to ``wait_for`` may watch things outside the simulation (a bot's
# events, errors) that never notify it, so they are also re-checked this often.
_RECHECK_S = 0.25


class DailySimulation:
    """An offline Daily: rooms, REST endpoints, and the real DailyTransport running in them.

    While active (``async with``), pipecat's ``DailyTransport`` uses the
    simulation's ``CallClient`` instead of daily-python's; nothing else of the
    transport changes. On exit the real classes are restored. One simulation
    can be active at a time.

    Attributes:
        domain: The Daily domain of room URLs.
        subscribe_latency_s: How long a subscription takes to start delivering media.
        join_latency_s: How long a ``CallClient.join`` takes to complete.
        rest_latency_s: How long each REST request takes to be answered.
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
    ) -> None:
        """Create the simulation (active once entered).

        Args:
            api_key: The key the REST stand-in accepts as ``Bearer``.
            domain: The Daily domain of room URLs (``https://<domain>.daily.co/<room>``).
            subscribe_latency_s: Time for a new subscription to start delivering media.
            join_latency_s: Time a ``CallClient.join`` takes to complete.
            rest_latency_s: Time each REST request takes to be answered.
        """
        self.domain = domain
        self.subscribe_latency_s = subscribe_latency_s
        self.join_latency_s = join_latency_s
        self.rest_latency_s = rest_latency_s
        self.rooms: dict[str, Room] = {}
        self.avatars: list[SimulatedAvatar] = []
        self.devices = media.Devices()
        self.stand_ins: dict[str, type] = {
            "CallClient": CallClient.bound_to(self),
            "Daily": Daily.bound_to(self.devices),
            "CustomAudioSource": media.CustomAudioSource,
            "CustomAudioTrack": media.CustomAudioTrack.bound_to(self.devices),
            "CustomVideoSource": media.CustomVideoSource,
            "CustomVideoTrack": media.CustomVideoTrack,
            "VirtualSpeakerDevice": media.VirtualSpeakerDevice,
        }
        self._room_names = itertools.count(1)
        self._secret = secrets.token_bytes(32)
        self._rest = DailyRESTServer(self, api_key)
        self._saved: dict[str, Any] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._callbacks: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...]] | None] = (
            queue.SimpleQueue()
        )
        self._callback_thread: threading.Thread | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._bey_listeners: list[tuple[BeyEmulator, Callable[..., Any]]] = []
        self._changes = Changes(recheck_s=_RECHECK_S)

    def __repr__(self) -> str:
        return f"DailySimulation(domain={self.domain!r}, rooms={list(self.rooms)})"

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The asyncio loop the simulation runs on."""
        if self._loop is None:
            raise RuntimeError("the simulation is not started")
        return self._loop

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
        # DailyTransport's module has one set of names, so one simulation at a time.
        installed = transport_module.CallClient
        if isinstance(installed, type) and issubclass(installed, CallClient):
            raise RuntimeError("another DailySimulation is already active")
        self._loop = asyncio.get_running_loop()
        await self._rest.start()
        self._callback_thread = threading.Thread(
            target=self._run_callbacks, name="daily-sim-callbacks", daemon=True
        )
        self._callback_thread.start()
        for name in _PATCHED_NAMES:
            self._saved[name] = getattr(transport_module, name)
            setattr(transport_module, name, self.stand_ins[name])

    async def stop(self) -> None:
        """Restore daily-python, stop the avatars and the REST stand-in."""
        for emulator, listener in self._bey_listeners:
            emulator.remove_session_listener(listener)
        self._bey_listeners.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for room in self.rooms.values():
            room.close()
        for name, value in self._saved.items():
            setattr(transport_module, name, value)
        self._saved.clear()
        await self._rest.stop()
        self._callbacks.put(None)
        if self._callback_thread is not None:
            await asyncio.to_thread(self._callback_thread.join, 5)

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

    # The callback thread: daily-python calls handlers from threads of its own.
    def dispatch(self, callback: Callable[..., Any], *args: Any) -> None:
        """Call ``callback(*args)`` from the simulation's callback thread, in order.

        Args:
            callback: The callable.
            *args: Its arguments.
        """
        self._callbacks.put((callback, args))

    def _run_callbacks(self) -> None:
        while True:
            item = self._callbacks.get()
            if item is None:
                return
            callback, args = item
            try:
                callback(*args)
            except Exception as e:  # a failing handler must not stop the others
                logger.error(f"simulated Daily callback {callback!r} failed: {e!r}")

    def notify(self) -> None:
        """Wake whoever waits in :meth:`wait_for` (something happened in a room)."""
        self._changes.notify()

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
        return await self._changes.wait_for(predicate, timeout)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> "asyncio.Task[Any]":
        """Run a coroutine of the simulation's; it is cancelled when the simulation stops.

        Args:
            coro: The coroutine.
            name: Task name.

        Returns:
            The task.
        """
        task = self.loop.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # Rooms and tokens.
    def create_room(self, name: str | None = None, *, private: bool = False) -> Room:
        """Create a room.

        Args:
            name: Its name (default: a fresh one).
            private: Whether joining needs a meeting token.

        Returns:
            The room.
        """
        name = name or f"room-{next(self._room_names)}"
        if name in self.rooms:
            raise ValueError(f"a room named {name!r} exists already")
        room = Room(self, name, private=private)
        self.rooms[name] = room
        return room

    def delete_room(self, name: str) -> None:
        """Delete a room, removing whoever is in it.

        Args:
            name: The room.
        """
        room = self.rooms.pop(name)
        for member in room.participants():
            room.remove(member, "leftCall", removed_reason="room-deleted")
        room.close()

    def room_for_url(self, url: str) -> Room | None:
        """The room a URL names, if it is one of this simulation's.

        Args:
            url: A room URL.

        Returns:
            The room, or None.
        """
        parts = urlsplit(url)
        if parts.hostname != f"{self.domain}.daily.co":
            return None
        return self.rooms.get(parts.path.strip("/"))

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

        Returns:
            The token.
        """
        if ttl_s is not None:
            exp = time.time() + ttl_s
        return self.mint_token_properties(
            {
                "room_name": room.name if isinstance(room, Room) else room,
                "user_name": user_name,
                "user_id": user_id,
                "is_owner": is_owner,
                "exp": exp,
                "eject_at_token_exp": eject_at_token_exp,
                "eject_after_elapsed": eject_after_elapsed,
            }
        )

    def mint_token_properties(self, properties: dict[str, Any]) -> str:
        """Mint a token from Daily's property names.

        Args:
            properties: ``room_name``, ``user_id``, ``exp``...

        Returns:
            The token.
        """
        return tokens.mint(properties, self._secret)

    def verify_token(self, token: str) -> tokens.TokenClaims:
        """Check a token was minted by this simulation.

        Args:
            token: The token.

        Returns:
            Its claims.
        """
        return tokens.verify(token, self._secret)

    # The avatar.
    def attach_bey(self, emulator: BeyEmulator, behaviour: AvatarBehaviour | None = None) -> None:
        """Send an avatar into a room whenever the emulator starts a session for it.

        Args:
            emulator: The local Beyond Presence API.
            behaviour: How the avatars behave (join delay, failures).
        """
        behaviour = behaviour or AvatarBehaviour()

        def on_session(request: Any, session: Any) -> None:
            if not isinstance(request, CreatePipecatSessionRequest):
                return
            room = self.room_for_url(request.url)
            if room is None:
                logger.warning(f"Bey session {session.id} names no simulated room; no avatar")
                return
            token = request.token.get_secret_value()
            for copy in range(2 if behaviour.second_avatar else 1):
                avatar = SimulatedAvatar(self, room, token, behaviour, session_id=session.id)
                self.avatars.append(avatar)
                self.spawn(avatar.run(extra_delay_s=copy * 0.2), f"avatar-{session.id}-{copy}")

        emulator.add_session_listener(on_session)
        self._bey_listeners.append((emulator, on_session))
