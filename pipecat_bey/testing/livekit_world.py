"""The offline LiveKit world: a real LiveKit server, the Beyond Presence API, its avatar, a user.

``LiveKitWorld`` puts together, inside a private network namespace (see
``pipecat_bey.testing.netns``: WebRTC peers need a non-loopback address, so the world
runs under ``unshare -n``):

- ``server``: the pinned ``livekit-server --dev`` (``LiveKitServer``) on the namespace's
  address;
- ``bey``: the local Beyond Presence API (``BeyEmulator``) on loopback. For every
  LiveKit session it accepts, the world sends a ``LiveKitAvatar`` into the room, with the
  request's ``url`` and ``token``, as Beyond Presence's avatar worker would, after
  ``avatar_join_delay_s``. The avatar leaves when the server makes it (the bot removes
  it with ``RoomService.RemoveParticipant``, or the room ends), and closes itself then;
  one the bot never removes stays until its token expires or the world closes, and is
  then recorded as leaked (a real one costs money while it stays);
- ``user``: a ``LiveKitUser`` in the room, who hears and sees everyone;
- the bot's side: ``bot_token``, ``transport`` (Pipecat's ``LiveKitTransport``),
  ``livekit_settings`` and ``bey_settings`` (what ``BeyVideoService`` takes);
- ``netem``: real network delay, jitter and loss on the namespace's traffic.

Example (inside ``unshare -n``)::

    async with LiveKitWorld() as world:
        transport = world.transport()
        avatar = BeyVideoService(transport=transport, avatar_id="...",
                                 **world.bey_settings(), **world.livekit_settings())
        ...
        await world.user.wait_for(lambda: world.user.heard_s(AVATAR_IDENTITY) > 1, 15)
    assert not world.leaked

It needs ``livekit``, ``livekit-api`` and ``livekit-agents`` (the avatar), and the server
binary (``scripts/build-livekit-server.sh``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import statistics
import time
import warnings
from contextlib import AsyncExitStack
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from loguru import logger

from pipecat_bey.models import CreateLivekitSessionRequest
from pipecat_bey.testing.bey_emulator import BeyEmulator
from pipecat_bey.testing.impairment import (
    LINK_SERVER_PORTS,
    NetemUnavailable,
    UserspaceLink,
    namespace_is_private,
    netem_unavailable,
    tc,
)
from pipecat_bey.testing.livekit_server import LiveKitServer, find_livekit_server
from pipecat_bey.testing.netns import (
    TEST_ADDRESS,
    NamespaceError,
    in_fresh_network_namespace,
    setup_namespace_network,
)

if TYPE_CHECKING:
    from pipecat.transports.livekit.transport import LiveKitTransport

    from pipecat_bey.testing.livekit_avatar import LiveKitAvatar
    from pipecat_bey.testing.livekit_user import LiveKitUser

AVATAR_JOIN_DELAY_S = 1.0
"""How long the avatar takes to join after its session is accepted: a guess (the real
avatar worker's start-up time is not published); set ``avatar_join_delay_s`` to taste."""

DEFAULT_BEY_KEY = "bey-local-key"
"""The Beyond Presence API key the world's emulator accepts by default."""

DEFAULT_ROOM = "bot-room"
"""The room the world's user joins by default."""

__all__ = [
    "AVATAR_JOIN_DELAY_S",
    "DEFAULT_BEY_KEY",
    "DEFAULT_ROOM",
    "LiveKitWorld",
    "NetemUnavailable",
    "netem_unavailable",
]


def _tcp_rtt_ms(host: str, port: int, samples: int) -> float:
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        with socket.create_connection((host, port), timeout=10):
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def _token_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT (unix time), read without verifying it; None if absent."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (IndexError, KeyError, TypeError, ValueError):
        return None


class LiveKitWorld:
    """A LiveKit server, the Beyond Presence API and its avatar, and a user, offline.

    Use it as an async context manager, inside a fresh network namespace (``unshare -n``).

    Args:
        setup_network: Bring up the namespace's network (``setup_namespace_network``)
            on entry; False when the caller did it already (the namespace must still be
            a private one).
        address: The namespace's address, for the server.
        bey_api_keys: The Beyond Presence API keys the emulator accepts (the first is
            ``bey_settings()``'s).
        avatar_join_delay_s: How long each avatar takes to join after its session was
            accepted (``AVATAR_JOIN_DELAY_S``, a guess, by default; 0 joins at once).
        avatar_options: Passed to each ``LiveKitAvatar`` (``width``, ``fps``,
            ``join_timeout_s``...).
        room: The room the user joins on entry (and the default of the bot's helpers).
        user: Whether a user joins ``room`` on entry.
        user_identity: That user's identity.
        log_dir: Where to keep the server's log (a temporary file if None).
        server_options: Passed to ``LiveKitServer`` (``log_level``, ports...).
        impairable: Make sure ``netem`` can work: where the kernel has no netem qdisc,
            the server then runs in a network namespace of its own, at
            ``LINK_SERVER_ADDRESS``, behind a userspace link (TUN devices and a helper
            process) that impairs the traffic between it and everyone else.

    Attributes:
        server: The LiveKit server (once entered).
        bey: The Beyond Presence API emulator (once entered).
        avatars: Every avatar sent in, in order of the sessions that sent them.
        leaked: The avatars still in a room (or on their way) when the world closed.
        users: Every user joined.
    """

    def __init__(
        self,
        *,
        setup_network: bool = True,
        address: str = TEST_ADDRESS,
        bey_api_keys: tuple[str, ...] | list[str] = (DEFAULT_BEY_KEY,),
        avatar_join_delay_s: float = AVATAR_JOIN_DELAY_S,
        avatar_options: dict[str, Any] | None = None,
        room: str = DEFAULT_ROOM,
        user: bool = True,
        user_identity: str = "user",
        log_dir: str | os.PathLike[str] | None = None,
        server_options: dict[str, Any] | None = None,
        impairable: bool = False,
    ) -> None:
        if not bey_api_keys:
            raise ValueError("bey_api_keys must hold at least one key")
        self._setup_network = setup_network
        self.address = address
        self._bey_keys = tuple(bey_api_keys)
        self.avatar_join_delay_s = avatar_join_delay_s
        self._avatar_options = dict(avatar_options or {})
        self.room = room
        self._user_on_entry = user
        self._user_identity = user_identity
        self._log_dir = Path(log_dir) if log_dir is not None else None
        self._server_options = dict(server_options or {})
        self.server: LiveKitServer | None = None
        self.bey: BeyEmulator | None = None
        self.avatars: list[LiveKitAvatar] = []
        self.leaked: list[LiveKitAvatar] = []
        self.users: list[LiveKitUser] = []
        self.sessions: dict[str, LiveKitAvatar] = {}
        """The avatar each Beyond Presence session sent, by session id."""
        self._tasks: set[asyncio.Task] = set()
        self._stack: AsyncExitStack | None = None
        self._netem: dict[str, float] | None = None
        self._impairable = impairable
        self._link: UserspaceLink | None = None

    def __repr__(self) -> str:
        url = (
            self.server.url if self.server is not None and self.server.returncode is None else None
        )
        return (
            f"LiveKitWorld(url={url!r}, room={self.room!r}, avatars={len(self.avatars)}, "
            f"users={len(self.users)}, netem={self._netem})"
        )

    # What the bot needs.

    @property
    def url(self) -> str:
        """The LiveKit server's URL (``ws://address:port``)."""
        return self._server().url

    @property
    def avatar(self) -> LiveKitAvatar | None:
        """The latest avatar sent in, or None."""
        return self.avatars[-1] if self.avatars else None

    @property
    def user(self) -> LiveKitUser | None:
        """The latest user joined, or None."""
        return self.users[-1] if self.users else None

    def livekit_settings(self) -> dict[str, str]:
        """The LiveKit server, for the avatar service.

        Returns:
            ``livekit_url``, ``livekit_api_key`` and ``livekit_api_secret``.
        """
        server = self._server()
        return {
            "livekit_url": server.url,
            "livekit_api_key": server.api_key,
            "livekit_api_secret": server.api_secret,
        }

    def bey_settings(self) -> dict[str, str]:
        """The Beyond Presence API for the avatar service: ``api_key``, ``api_url``."""
        if self.bey is None:
            raise RuntimeError("the world is not entered; use `async with LiveKitWorld()`")
        return {"api_key": self._bey_keys[0], "api_url": self.bey.url}

    def bot_token(self, identity: str = "bot", room: str | None = None) -> str:
        """A token for the bot: it joins `room` (the world's by default), publishes and subscribes.

        It may send data too (byte streams, RPCs).
        """
        from livekit import api

        server = self._server()
        grants = api.VideoGrants(
            room_join=True,
            room=room or self.room,
            can_publish=True,
            can_subscribe=True,
            can_publish_data=True,
        )
        token = api.AccessToken(server.api_key, server.api_secret).with_identity(identity)
        with warnings.catch_warnings():
            # Development mode's secret is short by design; PyJWT warns of that.
            warnings.filterwarnings("ignore", message="The HMAC key is .* bytes long")
            return token.with_grants(grants).to_jwt()

    def transport(
        self, identity: str = "bot", room: str | None = None, **params: Any
    ) -> LiveKitTransport:
        """Pipecat's ``LiveKitTransport`` for the bot, joining `room` as `identity`.

        Args:
            identity: The bot's identity.
            room: Its room (the world's by default).
            **params: ``LiveKitParams`` fields, over audio in and out enabled.
        """
        from pipecat.transports.livekit.transport import LiveKitParams, LiveKitTransport

        room = room or self.room
        settings = {"audio_in_enabled": True, "audio_out_enabled": True, **params}
        return LiveKitTransport(
            url=self.url,
            token=self.bot_token(identity, room),
            room_name=room,
            params=LiveKitParams(**settings),
        )

    def api(self) -> Any:
        """A ``livekit.api.LiveKitAPI`` on the server (close it with ``await api.aclose()``)."""
        from livekit import api

        server = self._server()
        return api.LiveKitAPI(server.http_url, server.api_key, server.api_secret)

    def _server(self) -> LiveKitServer:
        if self.server is None:
            raise RuntimeError("the world is not entered; use `async with LiveKitWorld()`")
        return self.server

    # Users.

    async def join_user(
        self, room: str | None = None, identity: str = "user", *, video: bool = True
    ) -> LiveKitUser:
        """A ``LiveKitUser`` joined to `room` (the world's by default); it leaves on exit.

        Args:
            room: The room.
            identity: Its identity.
            video: Whether it reads video frames.
        """
        from livekit import api

        from pipecat_bey.testing.livekit_user import LiveKitUser

        server = self._server()
        grants = api.VideoGrants(room_join=True, room=room or self.room)
        token = api.AccessToken(server.api_key, server.api_secret).with_identity(identity)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The HMAC key is .* bytes long")
            jwt = token.with_grants(grants).to_jwt()
        user = LiveKitUser(server.url, jwt, video=video)
        self.users.append(user)
        await user.join()
        return user

    # The avatars.

    def _on_session(self, request: Any, session: Any) -> None:
        """The emulator accepted a session: a LiveKit one sends an avatar in."""
        if not isinstance(request, CreateLivekitSessionRequest):
            return
        from pipecat_bey.testing.livekit_avatar import LiveKitAvatar

        token = request.token.get_secret_value()
        avatar = LiveKitAvatar(request.url, token, **self._avatar_options)
        self.avatars.append(avatar)
        self.sessions[session.id] = avatar
        self._spawn(self._run_avatar(avatar, _token_expiry(token)), f"avatar-{session.id}")

    async def _run_avatar(self, avatar: LiveKitAvatar, expires_at: float | None) -> None:
        """Join after the delay; stay until removed, its token expires, or it leaves itself."""
        await asyncio.sleep(self.avatar_join_delay_s)
        try:
            await avatar.start()
        except Exception as error:
            logger.warning(f"the LiveKit avatar could not join its room: {type(error).__name__}")
            return
        staying_s = float("inf") if expires_at is None else max(0.0, expires_at - time.time())
        if avatar.leave_after_s is not None and avatar.leave_after_s < staying_s:
            if not await avatar.wait_left(avatar.leave_after_s):
                await avatar.aclose("left")  # by itself (a crash, its worker ending...)
            return
        if not await avatar.wait_left(staying_s):
            await avatar.aclose("token_expired")

    def _spawn(self, coroutine: Any, name: str) -> None:
        task = asyncio.create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _close_avatars(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for avatar in self.avatars:
            if avatar.left_reason is None:
                self.leaked.append(avatar)
            await avatar.aclose("leaked")
            if avatar._closing is not None:
                await asyncio.gather(avatar._closing, return_exceptions=True)

    # Network impairment.

    @property
    def impairment(self) -> str | None:
        """How ``netem`` impairs: ``"userspace link"``, ``"netem on lo"`` (None: not entered)."""
        if self.server is None:
            return None
        return "userspace link" if self._link is not None else "netem on lo"

    async def netem(
        self, *, delay_ms: float = 0.0, jitter_ms: float = 0.0, loss_pct: float = 0.0
    ) -> None:
        """Impair every packet between the namespace's peers (``tc ... netem`` on ``lo``).

        All peers share the namespace's address, and traffic to a local address goes
        through ``lo`` (the local routing table), not the veth: so ``lo`` is where netem
        acts, on all of it (the Beyond Presence API's too). Each packet is delayed (and
        may be lost) once per hop: a round trip to the server takes ``2 * delay_ms``, and
        media from one participant to another (through the server) ``2 * delay_ms`` one
        way. All zero removes the impairment.

        In a world made ``impairable`` on a kernel without netem, the userspace link does
        the same to the traffic to and from the server (and to nothing else).

        Args:
            delay_ms: Delay per packet.
            jitter_ms: Its variation (netem's: uniform within +-jitter, packets may reorder).
            loss_pct: The share of packets dropped, in percent.

        Raises:
            NetemUnavailable: When tc or the kernel's netem is missing (and the world
                is not ``impairable``).
        """
        if self._link is not None:
            await self._link.impair(delay_ms, jitter_ms, loss_pct)
            self._netem = {"delay_ms": delay_ms, "jitter_ms": jitter_ms, "loss_pct": loss_pct}
            if not (delay_ms or jitter_ms or loss_pct):
                self._netem = None
            return
        if not namespace_is_private():
            raise NamespaceError("refusing to impair a network that is not a private namespace")
        if not (delay_ms or jitter_ms or loss_pct):
            await asyncio.to_thread(tc, "qdisc", "del", "dev", "lo", "root")
            self._netem = None
            return
        reason = await asyncio.to_thread(netem_unavailable)
        if reason:
            raise NetemUnavailable(
                f"{reason}; a world made with impairable=True impairs through a userspace link"
            )
        command = ["qdisc", "replace", "dev", "lo", "root", "netem"]
        command += ["delay", f"{delay_ms}ms", f"{jitter_ms}ms", "loss", f"{loss_pct}%"]
        result = await asyncio.to_thread(tc, *command)
        if result.returncode != 0:
            raise NetemUnavailable(f"`tc {' '.join(command)}` said {result.stderr.strip()!r}")
        self._netem = {"delay_ms": delay_ms, "jitter_ms": jitter_ms, "loss_pct": loss_pct}

    async def rtt_ms(self, samples: int = 5) -> float:
        """The median TCP round trip to the server, in ms: one connection set-up each.

        Measured with blocking sockets in a thread, so that the event loop's own delays
        do not count.
        """
        server = self._server()
        return await asyncio.to_thread(_tcp_rtt_ms, server.host, server.port, samples)

    # Entering and leaving.

    async def __aenter__(self) -> LiveKitWorld:
        stack = AsyncExitStack()
        try:
            await self._enter(stack)
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        return self

    async def _enter(self, stack: AsyncExitStack) -> None:
        if self._setup_network:
            if not in_fresh_network_namespace():
                raise NamespaceError(
                    "LiveKitWorld sets up its network only in a fresh network namespace (one "
                    "with only `lo`): run it under `unshare -n` (see pipecat_bey.testing.netns), "
                    "or pass setup_network=False in a private namespace set up already"
                )
            setup_namespace_network(self.address)
        elif not namespace_is_private():
            raise NamespaceError(
                "LiveKitWorld runs only in a private network namespace: run it under "
                "`unshare -n` (see pipecat_bey.testing.netns)"
            )
        stack.push_async_callback(self._clear_netem)
        host, options = self.address, dict(self._server_options)
        if self._impairable and await asyncio.to_thread(netem_unavailable):
            self._link = UserspaceLink(self.address)
            stack.push_async_callback(self._link.stop)
            await self._link.start()
            host = self._link.server_address
            binary = self._link.server_binary(Path(options.pop("binary", find_livekit_server())))
            options = {**LINK_SERVER_PORTS, **options, "binary": binary}
        log_path = self._log_dir / "livekit-server.log" if self._log_dir else None
        self.server = LiveKitServer(host, log_path=log_path, **options)
        await stack.enter_async_context(self.server)
        self.bey = BeyEmulator(self._bey_keys)
        await stack.enter_async_context(self.bey)
        self.bey.add_session_listener(self._on_session)
        stack.callback(self.bey.remove_session_listener, self._on_session)
        stack.push_async_callback(self._close_avatars)
        stack.push_async_callback(self._close_users)
        if self._user_on_entry:
            await self.join_user(self.room, self._user_identity)

    async def _close_users(self) -> None:
        for user in self.users:
            await user.leave()

    async def _clear_netem(self) -> None:
        if self._netem is not None and self._link is None:
            await asyncio.to_thread(tc, "qdisc", "del", "dev", "lo", "root")
            self._netem = None

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        stack, self._stack = self._stack, None
        if stack is None:
            return
        # Closing goes on to its end even if this task is cancelled meanwhile (again).
        closing = asyncio.ensure_future(stack.aclose())
        cancelled = False
        while not closing.done():
            try:
                await asyncio.shield(closing)
            except asyncio.CancelledError:
                cancelled = True
        closing.result()
        if cancelled:
            raise asyncio.CancelledError
