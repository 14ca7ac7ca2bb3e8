"""A private network for tests that run real WebRTC peers: a network namespace of their own.

WebRTC stacks skip loopback addresses when they gather ICE candidates (libwebrtc inside the
``livekit`` SDK, aioice inside aiortc), so peers on ``127.0.0.1`` never connect. A test that
runs real peers therefore starts them in a network namespace it makes itself
(``unshare -n``, which needs root): ``lo`` up, plus a veth pair whose one end holds a test
address, and no route anywhere else. Nothing in it can reach the machine's own interfaces,
and every peer in it sees the others on the test address.

The usual shape::

    reason = namespace_unavailable()          # in the test: skip (or fail) when not None
    command = unshared([sys.executable, "script.py"])
    # ... and in script.py, first of all:
    address = setup_namespace_network()       # "10.204.0.1"

``kill_namespace(pid)`` ends everything left in the namespace of a run that overran.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Sequence
from pathlib import Path

TEST_ADDRESS = "10.204.0.1"
"""The address the veth end inside the namespace gets by default."""

PREFIX_LENGTH = 24
VETH_NAMES = ("v0", "v1")
"""The veth pair's two ends; the first holds the address."""


class NamespaceError(RuntimeError):
    """The namespace's interfaces could not be set up."""


def in_fresh_network_namespace() -> bool:
    """Whether this process runs in a network namespace that has no interface but ``lo``.

    That is what ``unshare -n`` gives; the machine's own namespace has more, so the answer
    there is False (and callers refuse rather than touch real interfaces). The namespace
    of process 1 is not compared: from inside a new namespace it may not be readable.
    """
    try:
        names = [name for _, name in socket.if_nameindex()]
    except OSError:
        return False
    return names == ["lo"]


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    if result.returncode != 0:
        raise NamespaceError(f"`ip {' '.join(args)}` failed: {result.stderr.strip()}")


def setup_namespace_network(
    address: str = TEST_ADDRESS,
    *,
    prefix_length: int = PREFIX_LENGTH,
    names: tuple[str, str] = VETH_NAMES,
) -> str:
    """Bring up ``lo`` and a veth pair with `address` in this process's own namespace.

    Call it once, first thing, in a process started with ``unshare -n``. No default route
    is added, so only the namespace's own addresses are reachable.

    Args:
        address: The IPv4 address for the first veth end.
        prefix_length: Its prefix length.
        names: The names of the veth pair's two ends.

    Returns:
        The address, for the peers to bind and advertise.

    Raises:
        NamespaceError: When this process's namespace has interfaces besides ``lo`` (it may
            be the machine's own, or was set up already), or an ``ip`` command fails.
    """
    if not in_fresh_network_namespace():
        raise NamespaceError(
            "refusing to change interfaces outside a fresh network namespace (one with only "
            "`lo`): run this under `unshare -n`, and only once"
        )
    if shutil.which("ip") is None:
        raise NamespaceError("`ip` (iproute2) is not installed")
    first, second = names
    _ip("link", "set", "lo", "up")
    _ip("link", "add", first, "type", "veth", "peer", "name", second)
    _ip("addr", "add", f"{address}/{prefix_length}", "dev", first)
    _ip("link", "set", first, "up")
    _ip("link", "set", second, "up")
    return address


def namespace_unavailable() -> str | None:
    """Why this machine cannot make a network namespace with a veth pair, or None if it can.

    Makes a throwaway namespace (``unshare -n``) and adds a veth pair in it; the namespace
    and the pair vanish when that command exits.
    """
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "unshare or ip (util-linux, iproute2) not found"
    try:
        probe = subprocess.run(
            unshared(["ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1"]),
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"cannot make a network namespace: {error}"
    if probe.returncode != 0:
        return (
            f"cannot make a network namespace with a veth pair (needs root): {probe.stderr.strip()}"
        )
    return None


def unshared(command: Sequence[str]) -> list[str]:
    """`command`, to be run in a new network namespace of its own."""
    return ["unshare", "-n", "--", *command]


def kill_namespace(pid: int) -> None:
    """SIGKILL every process in the network namespace of process `pid`.

    Does nothing when `pid` is gone or still shares this process's namespace (it has not
    unshared yet, or never will): then nothing else in there is known to be the caller's.
    """
    try:
        namespace = os.readlink(f"/proc/{pid}/ns/net")
        if namespace == os.readlink("/proc/self/ns/net"):
            return
    except OSError:
        return
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "ns" / "net") == namespace:
                    os.kill(int(entry.name), signal.SIGKILL)
            except OSError:
                pass
