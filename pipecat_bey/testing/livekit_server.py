"""A real LiveKit server for offline tests: the pinned ``livekit-server``, run locally.

``LiveKitServer`` starts the server in development mode (API key ``devkey``, secret
``secret``) on one address, typically the test address of a private network namespace
(see ``pipecat_bey.testing.netns``): it binds there, advertises only that address as its
ICE candidate, never looks up an external IP, and names no STUN server beyond its own (its
embedded TURN server, which answers STUN on the same address). Every port is chosen free
unless given. It waits until the server answers, and stops it (and reaps it) on exit,
whatever happened (and, where util-linux's ``setpriv`` is installed, the server is killed
should the process that started it die first); what the server logged is kept for failure
messages::

    async with LiveKitServer("10.204.0.1") as server:
        token = server.token("bot", room="demo")
        await room.connect(server.url, token)

The binary is found by ``find_livekit_server()``: ``$LIVEKIT_SERVER_BIN``, then
``livekit-server`` on ``PATH``, then where ``scripts/build-livekit-server.sh`` builds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import tempfile
import time
import warnings
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from livekit.protocol.rtc import JoinResponse

LIVEKIT_SERVER_VERSION = "v1.13.5"
"""The server version the tests run, as ``scripts/build-livekit-server.sh`` pins it."""

BUILD_COMMAND = "scripts/build-livekit-server.sh"
"""What builds the server (from the repository's root)."""

DEV_API_KEY = "devkey"
DEV_API_SECRET = "secret"
"""The credentials ``livekit-server --dev`` accepts."""


class LiveKitServerNotFound(FileNotFoundError):
    """No ``livekit-server`` binary could be found."""


class LiveKitServerError(RuntimeError):
    """The server did not start, or exited while it should have been running."""


def cache_dir() -> Path:
    """Where the build script keeps what it builds: ``$LIVEKIT_SERVER_CACHE`` or its default."""
    configured = os.environ.get("LIVEKIT_SERVER_CACHE")
    if configured:
        return Path(configured)
    return Path.home() / ".cache" / "pipecat-bey"


def built_binary_path() -> Path:
    """Where ``scripts/build-livekit-server.sh`` installs the pinned server."""
    return cache_dir() / f"livekit-server-{LIVEKIT_SERVER_VERSION}" / "livekit-server"


def find_livekit_server() -> Path:
    """The ``livekit-server`` binary to run.

    Looks at ``$LIVEKIT_SERVER_BIN``, then ``livekit-server`` on ``PATH``, then the build
    script's cache (``built_binary_path()``).

    Returns:
        The path of an executable file.

    Raises:
        LiveKitServerNotFound: When there is none; the message says how to build it.
    """
    configured = os.environ.get("LIVEKIT_SERVER_BIN")
    if configured:
        path = Path(configured)
        if path.is_file() and os.access(path, os.X_OK):
            return path
        raise LiveKitServerNotFound(
            f"LIVEKIT_SERVER_BIN is {configured!r}, which is not an executable file "
            f"(`{BUILD_COMMAND}` builds one and prints its path)"
        )
    on_path = shutil.which("livekit-server")
    if on_path:
        return Path(on_path)
    built = built_binary_path()
    if built.is_file() and os.access(built, os.X_OK):
        return built
    raise LiveKitServerNotFound(
        f"no livekit-server binary (LIVEKIT_SERVER_BIN unset, none on PATH, none at {built}): "
        f"build it with `{BUILD_COMMAND}` (needs Go; takes minutes the first time)"
    )


def free_port(host: str, kind: int = socket.SOCK_STREAM) -> int:
    """A port on `host` that is free now, for TCP (`kind` ``SOCK_STREAM``) or UDP (``SOCK_DGRAM``).

    Another process may take it before it is used; inside a test's own network namespace
    nothing else does.
    """
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


class LiveKitServer:
    """A ``livekit-server --dev`` process on one address, as an async context manager.

    Args:
        host: The IPv4 address to bind and to advertise to clients (``node_ip``): a
            non-loopback address, as WebRTC peers skip loopback ones.
        port: The HTTP/WebSocket port; free one if None.
        rtc_tcp_port: The port for ICE over TCP; free one if None.
        rtc_udp_port: The single UDP port all ICE traffic shares; free one if None.
        turn_udp_port: The embedded TURN server's UDP port (also the clients' STUN server);
            free one if None.
        binary: The server to run; ``find_livekit_server()`` if None.
        log_path: Where to write the server's output; a temporary file (kept in memory
            once the server stops) if None.
        log_level: The server's log level (``debug``, ``info``, ``warn``, ``error``).
        startup_timeout_s: How long the server may take to answer.
        stop_timeout_s: How long each stop step (a graceful, then a forced shutdown) may
            take before the server is killed.
    """

    def __init__(
        self,
        host: str,
        *,
        port: int | None = None,
        rtc_tcp_port: int | None = None,
        rtc_udp_port: int | None = None,
        turn_udp_port: int | None = None,
        binary: str | os.PathLike[str] | None = None,
        log_path: str | os.PathLike[str] | None = None,
        log_level: str = "info",
        startup_timeout_s: float = 30.0,
        stop_timeout_s: float = 3.0,
    ) -> None:
        self._host = host
        self._ports = {
            "port": port,
            "rtc_tcp_port": rtc_tcp_port,
            "rtc_udp_port": rtc_udp_port,
            "turn_udp_port": turn_udp_port,
        }
        self._binary = Path(binary) if binary is not None else None
        self._log_path = Path(log_path) if log_path is not None else None
        self._log_level = log_level
        self._startup_timeout_s = startup_timeout_s
        self._stop_timeout_s = stop_timeout_s
        self._process: asyncio.subprocess.Process | None = None
        self._workdir: Path | None = None
        self._log_file: Path | None = None
        self._kept_log = ""

    # What clients need.

    @property
    def host(self) -> str:
        """The address the server binds and advertises."""
        return self._host

    @property
    def port(self) -> int:
        """The HTTP/WebSocket port (chosen once the server starts)."""
        return self._port("port")

    @property
    def rtc_tcp_port(self) -> int:
        """The ICE-over-TCP port."""
        return self._port("rtc_tcp_port")

    @property
    def rtc_udp_port(self) -> int:
        """The ICE UDP port."""
        return self._port("rtc_udp_port")

    @property
    def turn_udp_port(self) -> int:
        """The embedded TURN/STUN server's UDP port."""
        return self._port("turn_udp_port")

    @property
    def url(self) -> str:
        """The URL clients connect to: ``ws://host:port``."""
        return f"ws://{self._host}:{self.port}"

    @property
    def http_url(self) -> str:
        """The same server for its HTTP APIs (``livekit.api.LiveKitAPI``): ``http://host:port``."""
        return f"http://{self._host}:{self.port}"

    @property
    def api_key(self) -> str:
        """The API key of development mode."""
        return DEV_API_KEY

    @property
    def api_secret(self) -> str:
        """The API secret of development mode."""
        return DEV_API_SECRET

    @property
    def returncode(self) -> int | None:
        """The server's exit code once it has exited, else None."""
        return self._process.returncode if self._process is not None else None

    def _port(self, name: str) -> int:
        value = self._ports[name]
        if value is None:
            raise RuntimeError(f"{name} is chosen when the server starts")
        return value

    def token(
        self,
        identity: str,
        room: str,
        *,
        name: str | None = None,
        kind: str | None = None,
        attributes: dict[str, str] | None = None,
    ) -> str:
        """An access token that joins `room` as `identity` (``livekit-api`` must be installed).

        Args:
            identity: The participant's identity.
            room: The room to join (created on first join).
            name: The participant's display name.
            kind: The participant's kind, e.g. ``"agent"``.
            attributes: The participant's attributes, e.g. ``{"lk.publish_on_behalf": "bot"}``.
        """
        from livekit import api

        token = api.AccessToken(self.api_key, self.api_secret).with_identity(identity)
        token = token.with_grants(api.VideoGrants(room_join=True, room=room))
        if name is not None:
            token = token.with_name(name)
        if kind is not None:
            token = token.with_kind(kind)
        if attributes:
            token = token.with_attributes(attributes)
        with warnings.catch_warnings():
            # Development mode's secret is short by design; PyJWT warns of that on every token.
            warnings.filterwarnings("ignore", message="The HMAC key is .* bytes long")
            return token.to_jwt()

    async def join_response(self, token: str, *, timeout_s: float = 10.0) -> JoinResponse:
        """The join response the server sends a client joining with `token`.

        Opens the signalling WebSocket as a client would, reads the first message and
        leaves. Shows what the server tells clients, e.g. its ``ice_servers``.

        Raises:
            LiveKitServerError: When the server answers anything but a join response.
        """
        import aiohttp
        from livekit.protocol import rtc as signal_proto

        query = {"access_token": token, "protocol": "16", "sdk": "python", "auto_subscribe": "0"}
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as session,
            session.ws_connect(f"{self.url}/rtc", params=query) as ws,
        ):
            message = await ws.receive(timeout=timeout_s)
            if message.type != aiohttp.WSMsgType.BINARY:
                raise LiveKitServerError(f"expected a join response, got {message.type!r}")
            response = signal_proto.SignalResponse.FromString(message.data)
            if response.WhichOneof("message") != "join":
                raise LiveKitServerError(
                    f"expected a join response, got {response.WhichOneof('message')!r}"
                )
            with contextlib.suppress(Exception):
                leave = signal_proto.SignalRequest(leave=signal_proto.LeaveRequest())
                await ws.send_bytes(leave.SerializeToString())
            return response.join

    # The server's output.

    def log_text(self, last_chars: int | None = None) -> str:
        """What the server printed so far (or, after it stopped, in all), or its last chars."""
        text = self._kept_log
        if self._log_file is not None and self._log_file.exists():
            text = self._log_file.read_text(errors="replace")
        return text if last_chars is None else text[-last_chars:]

    @property
    def log_path(self) -> Path | None:
        """The file the server's output goes to, while it exists."""
        return self._log_file

    # Starting and stopping.

    def _config(self) -> dict:
        return {
            "port": self.port,
            "bind_addresses": [self._host],
            "rtc": {
                "tcp_port": self.rtc_tcp_port,
                "udp_port": str(self.rtc_udp_port),
                "use_external_ip": False,
                "enable_loopback_candidate": False,
            },
            # Clients are told of this STUN/TURN server only, on the same address: without
            # one configured the server names public STUN servers in every join response.
            "turn": {
                "enabled": True,
                "udp_port": self.turn_udp_port,
                "bind_addresses": [self._host],
                "allow_restricted_peer_cidrs": [f"{self._host}/32"],
            },
            "logging": {"level": self._log_level},
        }

    async def start(self) -> None:
        """Start the server and wait until it answers (``async with`` does this).

        Raises:
            LiveKitServerNotFound: When no binary is found.
            LiveKitServerError: When it exits or does not answer in time; with its log.
        """
        if self._process is not None:
            raise RuntimeError("the server is already started")
        binary = self._binary or find_livekit_server()
        try:
            for name, value in self._ports.items():
                if value is None:
                    kind = socket.SOCK_DGRAM if name.endswith("udp_port") else socket.SOCK_STREAM
                    self._ports[name] = free_port(self._host, kind)
        except OSError as error:
            raise LiveKitServerError(
                f"cannot bind {self._host} ({error}): the server needs an address of this "
                "network namespace (see pipecat_bey.testing.netns.setup_namespace_network)"
            ) from error
        self._workdir = Path(tempfile.mkdtemp(prefix="livekit-server-"))
        try:
            config_path = self._workdir / "config.yaml"  # JSON is YAML
            config_path.write_text(json.dumps(self._config(), indent=2))
            command = [str(binary), "--dev", "--config", str(config_path)]
            command += ["--bind", self._host, "--node-ip", self._host]
            setpriv = shutil.which("setpriv")
            if setpriv:
                # Killed with this process, should it die before stopping the server.
                command = [setpriv, "--pdeathsig", "KILL", "--", *command]
            with self._open_log() as log:
                self._process = await asyncio.create_subprocess_exec(
                    *command,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=log,
                    stderr=asyncio.subprocess.STDOUT,
                    start_new_session=True,
                )
            await self._wait_until_answering()
        except BaseException:
            await self.stop()
            raise

    def _open_log(self) -> BinaryIO:
        self._log_file = self._log_path or self._workdir / "server.log"
        self._log_file.parent.mkdir(parents=True, exist_ok=True)
        return open(self._log_file, "wb")

    async def _wait_until_answering(self) -> None:
        """Poll ``GET /`` until it answers 200, while the process lives; bounded."""
        import aiohttp

        assert self._process is not None
        deadline = time.monotonic() + self._startup_timeout_s
        exited = asyncio.ensure_future(self._process.wait())
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
                while True:
                    if exited.done():
                        raise LiveKitServerError(
                            f"livekit-server exited with code {self._process.returncode} "
                            f"before answering; its log:\n{self.log_text(4000)}"
                        )
                    try:
                        async with session.get(self.http_url + "/") as response:
                            if response.status == 200:
                                return
                    except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                        pass
                    if time.monotonic() > deadline:
                        raise LiveKitServerError(
                            f"livekit-server did not answer at {self.http_url} within "
                            f"{self._startup_timeout_s:.0f} s; its log:\n{self.log_text(4000)}"
                        )
                    await asyncio.wait({exited}, timeout=0.05)
        finally:
            exited.cancel()

    async def stop(self) -> None:
        """Stop the server and reap it: a graceful stop, a forced one, then SIGKILL.

        The server's first SIGTERM drains it (it waits for participants to leave); the
        second makes it stop at once. Each step waits at most ``stop_timeout_s``. Safe to
        call more than once, and when it never started.
        """
        process = self._process
        if process is not None and process.returncode is None:
            for _ in range(2):
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(process.wait(), self._stop_timeout_s)
                    break
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        if self._workdir is not None:
            self._kept_log = self.log_text()
            if self._log_path is None:
                self._log_file = None
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    async def __aenter__(self) -> LiveKitServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()
