"""Commands that run a real LiveKit server offline: in a network namespace of their own.

WebRTC peers need an address that is not loopback, and the tests and demos must never
use the machine's own interfaces: so such a command (``pipecat-bey demo --transport
livekit``, ``pipecat-bey check --livekit --offline``) runs itself again under ``unshare
-n``, in a fresh namespace with only ``lo``, where ``LiveKitWorld`` brings up its own
network. ``exec`` keeps the same process: Ctrl-C, SIGTERM and the exit status are as if
it had never left.
"""

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence

__all__ = [
    "LIVEKIT_OFFLINE",
    "NAMESPACED",
    "enter_offline_livekit",
    "missing_livekit_package",
    "namespaced_command",
    "run_again_in_a_namespace",
]

LIVEKIT_OFFLINE = ("livekit.rtc", "livekit.api", "livekit.agents")
"""What the offline LiveKit world imports (``pipecat-bey[livekit-offline]``)."""


NAMESPACED = "PIPECAT_BEY_NAMESPACED"
"""Set in the environment of a command run again in a network namespace of its own."""


def namespaced_command(argv: list[str]) -> list[str]:
    """The command that runs ``pipecat-bey`` with `argv` in a new network namespace.

    As root, ``unshare -n``; otherwise ``unshare -r -n``, which needs unprivileged user
    namespaces (most Linux distributions allow them).

    Args:
        argv: The command's arguments (without the program).

    Returns:
        The command line.
    """
    unshare = ["unshare", "-n"] if os.geteuid() == 0 else ["unshare", "-r", "-n"]
    return [*unshare, "--", sys.executable, "-m", "pipecat_bey.cli", *argv]


def run_again_in_a_namespace(what: str) -> None:
    """Replace this process with the same command in a new network namespace (never returns).

    The same process goes on (``exec``), so Ctrl-C, SIGTERM and the exit status are as if
    it had never left. A namespace that cannot be made is said first, with the fix.

    Args:
        what: The option that needs it, for the errors (``"--transport livekit"``).

    Raises:
        ValueError: When ``unshare`` or ``ip`` is missing, the namespace cannot be made, or
            this is the command run again already and still not in a fresh namespace.
    """
    if os.environ.get(NAMESPACED) == "1":
        raise ValueError(
            f"{what}: `unshare` gave no fresh network namespace (one with only `lo`); run "
            "the command as root"
        )
    command = namespaced_command(sys.argv[1:])
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        raise ValueError(
            f"{what} runs in a private network namespace, made with `unshare` "
            "and `ip` (util-linux, iproute2): install them"
        )
    probe = subprocess.run(
        [*command[: command.index("--") + 1], "ip", "link", "add", "v0", "type", "veth",
         "peer", "name", "v1"],
        capture_output=True,
        text=True,
        timeout=10,
    )  # fmt: skip
    if probe.returncode != 0:
        raise ValueError(
            f"{what} runs a real LiveKit server in a private network namespace, "
            f"which this machine would not make ({probe.stderr.strip()}): run it as root, or "
            "allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1)"
        )
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe(command[0], command, {**os.environ, NAMESPACED: "1"})


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module.split(".")[0]) is not None and (
            importlib.util.find_spec(module) is not None
        )
    except ModuleNotFoundError:
        return False


def missing_livekit_package(what: str, modules: Sequence[str], extra: str) -> str | None:
    """The first of `modules` that is not installed, with what installs it; None if none.

    Args:
        what: The option that needs them, for the message (``"--transport livekit"``).
        modules: The modules, dotted.
        extra: The extra of pipecat-bey that brings them.

    Returns:
        The message, or None.
    """
    for module in modules:
        if not _installed(module):
            return f'{what} needs {module}: pip install "pipecat-bey[{extra}]"'
    return None


def enter_offline_livekit(what: str) -> None:
    """Check what the offline LiveKit world needs, then be in a fresh network namespace.

    Its packages, the ``livekit-server`` binary, and the namespace: this process when it is
    in one, else the same command again there (:func:`run_again_in_a_namespace`, which does
    not return).

    Args:
        what: The option that needs it, for the errors.

    Raises:
        ValueError: Naming what is missing and how to get it.
    """
    missing = missing_livekit_package(what, LIVEKIT_OFFLINE, "livekit-offline")
    if missing:
        raise ValueError(missing)
    from pipecat_bey.testing.livekit_server import LiveKitServerNotFound, find_livekit_server
    from pipecat_bey.testing.netns import in_fresh_network_namespace

    try:
        find_livekit_server()
    except LiveKitServerNotFound as error:
        raise ValueError(f"{what} runs a real LiveKit server: {error}") from None
    if not in_fresh_network_namespace():
        run_again_in_a_namespace(what)
