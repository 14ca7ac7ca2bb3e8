"""``pipecat-bey check --livekit`` on the command line: its needs, its logs, its exit status.

The LiveKit check needs ``pipecat-bey[livekit]``; with ``--offline``,
``pipecat-bey[livekit-offline]``, the ``livekit-server`` binary and a fresh network
namespace: outside one, the command runs itself again under ``unshare -n``
(:mod:`pipecat_bey.cli._namespace`), as ``pipecat-bey demo --transport livekit``
does. Nothing of LiveKit is imported before its packages are known to be there.
"""

import logging
from collections.abc import Iterable
from typing import Any

from pipecat_bey.cli._io import check_writable
from pipecat_bey.cli._namespace import (
    LIVEKIT_OFFLINE,
    enter_offline_livekit,
    missing_livekit_package,
)
from pipecat_bey.cli.check.console import log_to_stderr, run_to_exit_status
from pipecat_bey.config import env

__all__ = ["livekit_requirement", "run_livekit_check_cli"]

ONLINE_PACKAGES = ("livekit.rtc", "livekit.api")


def livekit_requirement(offline: bool) -> str | None:
    """What the LiveKit check lacks on this machine, with what to install; None if nothing.

    Args:
        offline: Whether the offline check (the local server, LiveKit's avatar code).

    Returns:
        The missing package and the fix, or None.
    """
    if offline:
        return missing_livekit_package("--livekit --offline", LIVEKIT_OFFLINE, "livekit-offline")
    return missing_livekit_package("--livekit", ONLINE_PACKAGES, "livekit")


def run_livekit_check_cli(args: Any) -> int:
    """Run ``pipecat-bey check --livekit`` (``--offline`` too) with a parsed command line.

    Args:
        args: The command line (``api_key``, ``api_url``, ``avatar_id``, ``livekit_url``,
            ``livekit_api_key``, ``livekit_api_secret``, ``timeout``, ``record``,
            ``offline``).

    Returns:
        0 when every step passed, 1 otherwise, 130 when interrupted (Ctrl-C), 143
        when terminated (SIGTERM); either way after the clean-up, which a second
        signal does not cut short.

    Raises:
        ValueError: If ``--record`` is unusable, or the machine lacks what the check
            needs (naming what to install or build); nothing has run.
    """
    if args.record is not None:
        check_writable(args.record, "--record")
    missing = livekit_requirement(args.offline)
    if missing:
        raise ValueError(missing)
    if args.offline:
        enter_offline_livekit("--livekit --offline")  # may run again in a namespace
    from pipecat_bey.cli.check.livekit_room import LiveKitCheckOptions
    from pipecat_bey.cli.check.livekit_run import run_livekit_check, run_offline_livekit_check

    options = LiveKitCheckOptions(
        api_key=args.api_key,
        api_url=args.api_url,
        avatar_id=args.avatar_id,
        livekit_url=args.livekit_url,
        livekit_api_key=args.livekit_api_key,
        livekit_api_secret=args.livekit_api_secret,
        timeout_s=args.timeout,
        record=args.record,
    )
    secrets: set[str] = {s for s in _secrets_of(args) if s}
    log_to_stderr(secrets)
    # The LiveKit SDK warns of every data channel closing as a participant leaves, and
    # its server API of each retry; the steps say what failed.
    logging.getLogger("livekit").setLevel(logging.ERROR)
    if args.offline:
        run = run_offline_livekit_check(options, secrets=secrets)
    else:
        run = run_livekit_check(options, secrets=secrets)
    return run_to_exit_status(run, offline=args.offline, removal="removing the avatar")


def _secrets_of(args: Any) -> Iterable[str | None]:
    yield getattr(args, "api_key", None)
    yield getattr(args, "livekit_api_secret", None)
    yield env("BEY_API_KEY")
    yield env("LIVEKIT_API_SECRET")
