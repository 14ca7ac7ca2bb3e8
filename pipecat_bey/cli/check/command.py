"""``pipecat-bey check`` on the command line: options, logging, exit status, Ctrl-C."""

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pipecat_bey.cli._io import check_distinct, check_writable
from pipecat_bey.cli.check.console import log_to_stderr, run_to_exit_status
from pipecat_bey.cli.check.offline import run_offline_check
from pipecat_bey.cli.check.options import CheckOptions
from pipecat_bey.cli.check.run import run_check
from pipecat_bey.config import env


def run_check_cli(args: Any) -> int:
    """Run ``pipecat-bey check`` with a parsed command line.

    With ``livekit`` set, it runs the LiveKit check instead
    (:func:`~pipecat_bey.cli.check.livekit.run_livekit_check_cli`).

    Args:
        args: The command line (``api_key``, ``daily_api_key``, ``api_url``,
            ``daily_api_url``, ``avatar_id``, ``room_url``, ``timeout``,
            ``record``, ``offline``, ``world``; ``livekit`` and its settings).

    Returns:
        0 when every step passed, 1 otherwise, 130 when interrupted (Ctrl-C), 143
        when terminated (SIGTERM); either way after the clean-up, which a second
        signal does not cut short.

    Raises:
        ValueError: If ``--record`` or ``--world`` is unusable (or, with ``--livekit``,
            the machine lacks what it needs); nothing has run.
    """
    if getattr(args, "livekit", False):
        from pipecat_bey.cli.check.livekit import run_livekit_check_cli  # LiveKit's packages

        return run_livekit_check_cli(args)
    if args.record is not None:
        check_writable(args.record, "--record")
    world = None
    world_file: Path | None = None
    if args.world is not None:
        from pipecat_bey.cli.check.recording import load_world_option  # offline only

        world, world_file = load_world_option(args.world)
    check_distinct({"--record": args.record}, {"--world": world_file})
    options = CheckOptions(
        api_key=args.api_key,
        daily_api_key=args.daily_api_key,
        api_url=args.api_url,
        daily_api_url=args.daily_api_url,
        avatar_id=args.avatar_id,
        room_url=args.room_url,
        timeout_s=args.timeout,
        record=args.record,
    )
    secrets: set[str] = {s for s in _secrets_of(args) if s}
    log_to_stderr(secrets)
    if args.offline:
        run = run_offline_check(options, world=world, secrets=secrets)
    else:
        run = run_check(options, secrets=secrets)
    return run_to_exit_status(run, offline=args.offline, removal="ejecting the avatar")


def _secrets_of(args: Any) -> Iterable[str | None]:
    yield getattr(args, "api_key", None)
    yield getattr(args, "daily_api_key", None)
    yield env("BEY_API_KEY")
    yield env("DAILY_API_KEY")
