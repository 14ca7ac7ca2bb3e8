"""Real network impairment for a private network namespace: delay, jitter and loss.

``netem_unavailable`` says whether the kernel's ``tc ... netem`` qdisc works here; where it
does not (some kernels are built without it), ``UserspaceLink`` does the same to real
packets: it puts a peer (the LiveKit server) in a namespace of its own and forwards every
IP packet between the two through a pair of TUN devices, delayed, jittered and dropped as
told. ``LiveKitWorld.netem`` uses whichever works.

Only ever inside a private namespace (see ``pipecat_bey.testing.netns``): it never touches
the machine's own interfaces.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from pipecat_bey.testing.netns import VETH_NAMES, NamespaceError

__all__ = [
    "LINK_SERVER_ADDRESS",
    "LINK_SERVER_PORTS",
    "NetemUnavailable",
    "UserspaceLink",
    "namespace_is_private",
    "netem_unavailable",
    "tc",
]


class NetemUnavailable(RuntimeError):
    """``tc ... netem`` cannot impair this namespace's traffic (no tc, or no netem)."""


def namespace_is_private() -> bool:
    """Whether this process's network namespace is not the machine's (nor process 1's)."""
    try:
        return os.readlink("/proc/self/ns/net") != os.readlink("/proc/1/ns/net")
    except OSError:
        # Process 1's namespace may be unreadable from inside: judge by the interfaces.
        names = {name for _, name in socket.if_nameindex()}
        return names <= {"lo", *VETH_NAMES}


def tc(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``tc`` with `args`, capturing what it says."""
    return subprocess.run(["tc", *args], capture_output=True, text=True, timeout=10)


def netem_unavailable() -> str | None:
    """Why ``LiveKitWorld.netem`` cannot work in this (private) namespace, or None if it can.

    It tries a netem qdisc on ``lo`` and removes it again; outside a private namespace it
    touches nothing and says so.
    """
    if shutil.which("tc") is None:
        return "`tc` (iproute2) is not installed"
    if not namespace_is_private():
        return "not in a private network namespace (netem would impair the machine's loopback)"
    probe = tc("qdisc", "add", "dev", "lo", "root", "handle", "7ee7:", "netem", "delay", "0ms")
    if probe.returncode != 0:
        return (
            f"the kernel has no netem qdisc: `tc qdisc add ... netem` said {probe.stderr.strip()!r}"
        )
    tc("qdisc", "del", "dev", "lo", "root")
    return None


# The userspace link: where the kernel has no netem.

LINK_SERVER_ADDRESS = "10.204.1.1"
"""The server's address behind the userspace link (in a namespace of its own)."""

LINK_DEVICES = ("lkw0", "lkw1")
"""The link's two TUN devices: the world's end, and the server's."""

LINK_SERVER_PORTS = {
    "port": 7880,
    "rtc_tcp_port": 7881,
    "rtc_udp_port": 7882,
    "turn_udp_port": 3478,
}
"""The server's ports in its own namespace (all free there)."""


def _link_main() -> None:  # pragma: no cover - runs in its own process
    """Forward IP packets between two TUN devices, delayed, jittered and lost as told.

    Self-contained (it runs as ``python -c`` with only the standard library): the devices
    are ``sys.argv[1:3]``; each line on stdin is JSON ``{"delay_ms", "jitter_ms",
    "loss_pct"}``, answered with a line of counters. It prints ``ready`` once the devices
    exist, and ends when stdin closes. Like netem, every packet is delayed by ``delay_ms``
    plus a uniform variation within ``+-jitter_ms`` (so packets may reorder) and dropped
    with ``loss_pct`` percent chance, once per crossing, each way.
    """
    import fcntl
    import heapq
    import json
    import os
    import random
    import select
    import struct
    import sys
    import time

    def open_tun(name: str) -> int:
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
        # TUNSETIFF, IFF_TUN | IFF_NO_PI: raw IP packets.
        fcntl.ioctl(fd, 0x400454CA, struct.pack("16sH", name.encode(), 0x0001 | 0x1000))
        return fd

    ends = [open_tun(name) for name in sys.argv[1:3]]
    peer = {ends[0]: ends[1], ends[1]: ends[0]}
    delay = jitter = loss = 0.0
    counts = {"forwarded": 0, "dropped": 0}
    queue: list = []
    sequence = 0
    pending = b""
    print("ready", flush=True)
    while True:
        timeout = max(0.0, queue[0][0] - time.monotonic()) if queue else None
        readable, _, _ = select.select([0, *ends], [], [], timeout)
        now = time.monotonic()
        for fd in readable:
            if fd == 0:
                chunk = os.read(0, 4096)
                if not chunk:
                    return
                pending += chunk
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    told = json.loads(line)
                    delay, jitter = told["delay_ms"] / 1000, told["jitter_ms"] / 1000
                    loss = told["loss_pct"] / 100
                    print(json.dumps(counts), flush=True)
                continue
            for _ in range(256):
                try:
                    packet = os.read(fd, 65536)
                except BlockingIOError:
                    break
                if loss and random.random() < loss:
                    counts["dropped"] += 1
                    continue
                due = now + max(0.0, delay + random.uniform(-jitter, jitter))
                heapq.heappush(queue, (due, sequence, peer[fd], packet))
                sequence += 1
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            _, _, out, packet = heapq.heappop(queue)
            try:
                os.write(out, packet)
                counts["forwarded"] += 1
            except OSError:
                counts["dropped"] += 1  # that end is not up (yet)


def _killed_with_us() -> list[str]:
    """``setpriv --pdeathsig KILL --`` where installed: a helper dies should we die first."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []


def _ip(*args: str, namespace: str | None = None) -> None:
    command = ["ip", *args]
    if namespace is not None:
        command = ["nsenter", f"--net={namespace}", "--", *command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=10)
    if result.returncode != 0:
        raise NamespaceError(f"`{' '.join(command)}` failed: {result.stderr.strip()}")


class UserspaceLink:
    """The server in a network namespace of its own, reached through an impairing link.

    A holder process (``unshare -n -- sleep``) keeps the server's namespace; a helper
    process (``_link_main``) forwards every packet between the world's namespace and that
    one through two TUN devices, delaying and dropping them as ``impair`` says.
    """

    def __init__(self, world_address: str, server_address: str = LINK_SERVER_ADDRESS) -> None:
        self.world_address = world_address
        self.server_address = server_address
        self._holder: asyncio.subprocess.Process | None = None
        self._router: asyncio.subprocess.Process | None = None
        self._workdir = Path(tempfile.mkdtemp(prefix="livekit-link-"))

    @property
    def namespace(self) -> str:
        """The server's namespace, as a path for ``nsenter --net=``."""
        assert self._holder is not None
        return f"/proc/{self._holder.pid}/ns/net"

    async def start(self) -> None:
        """Make the server's namespace and the link, and wait until they are up."""
        for tool in ("unshare", "nsenter", "ip"):
            if shutil.which(tool) is None:
                raise NamespaceError(f"the userspace link needs `{tool}` (util-linux, iproute2)")
        self._holder = await asyncio.create_subprocess_exec(
            *_killed_with_us(), "unshare", "-n", "--", "sleep", "infinity",
            stdin=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        await self._wait_for_own_namespace()
        source = textwrap.dedent(inspect.getsource(_link_main)) + "\n_link_main()\n"
        self._router = await asyncio.create_subprocess_exec(
            *_killed_with_us(), sys.executable, "-c", source, *LINK_DEVICES,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert self._router.stdout is not None
        ready = await asyncio.wait_for(self._router.stdout.readline(), 10)
        if ready.strip() != b"ready":
            raise NamespaceError(
                "the userspace link's helper did not start (is /dev/net/tun there?)"
            )
        near, far = LINK_DEVICES
        await asyncio.to_thread(self._configure, near, far)

    async def _wait_for_own_namespace(self) -> None:
        assert self._holder is not None
        ours = os.readlink("/proc/self/ns/net")
        for _ in range(200):
            with contextlib.suppress(OSError):
                if os.readlink(self.namespace) != ours:
                    return
            await asyncio.sleep(0.01)
        raise NamespaceError("the server's network namespace was not made")

    def _configure(self, near: str, far: str) -> None:
        assert self._holder is not None
        world_net = self.world_address.rsplit(".", 1)[0] + ".0/24"
        server_net = self.server_address.rsplit(".", 1)[0] + ".0/24"
        _ip("link", "set", far, "netns", str(self._holder.pid))
        _ip("link", "set", near, "up")
        _ip("route", "add", server_net, "dev", near)
        there = self.namespace
        _ip("link", "set", "lo", "up", namespace=there)
        _ip("addr", "add", f"{self.server_address}/24", "dev", far, namespace=there)
        _ip("link", "set", far, "up", namespace=there)
        _ip("route", "add", world_net, "dev", far, namespace=there)

    def server_binary(self, binary: Path) -> Path:
        """A wrapper that runs `binary` in the server's namespace (same process, by exec)."""
        wrapper = self._workdir / "livekit-server-in-namespace"
        wrapper.write_text(f'#!/bin/sh\nexec nsenter --net={self.namespace} -- "{binary}" "$@"\n')
        wrapper.chmod(0o755)
        return wrapper

    async def impair(self, delay_ms: float, jitter_ms: float, loss_pct: float) -> dict:
        """Set the link's impairment; returns its counters so far."""
        assert self._router is not None and self._router.stdin and self._router.stdout
        told = {"delay_ms": delay_ms, "jitter_ms": jitter_ms, "loss_pct": loss_pct}
        self._router.stdin.write(json.dumps(told).encode() + b"\n")
        await self._router.stdin.drain()
        return json.loads(await asyncio.wait_for(self._router.stdout.readline(), 10))

    async def stop(self) -> None:
        """End the helper and the holder (the devices and the namespace go with them)."""
        for process in (self._router, self._holder):
            if process is None or process.returncode is not None:
                continue
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(process.wait(), 5)
        shutil.rmtree(self._workdir, ignore_errors=True)
