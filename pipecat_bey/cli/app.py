"""The ``pipecat-bey`` command: the offline demo, the live check, the local Bey API, sessions.

Parsing, ``--help`` and ``--version`` import no part of Pipecat; each command
imports what it needs once the command line is known to be good.
"""

import argparse
import json
import sys
from collections.abc import Sequence

import aiohttp

from pipecat_bey._secrets import redact
from pipecat_bey.cli._io import Stopped, exit_status, run_to_the_end, stop_signals
from pipecat_bey.cli.parser import build_parser, check_usage
from pipecat_bey.config import env


def _how(stopped: KeyboardInterrupt) -> str:
    return stopped.how if isinstance(stopped, Stopped) else "interrupted"


def _checked_url(value: str | None, option: str, variable: str, default: str, what: str) -> str:
    """An API base URL from its option, else its variable, else the default, checked now."""
    from pipecat_bey._urls import check_api_base_url
    from pipecat_bey.config import setting

    url = setting(value, argument=option, variable=variable)
    where = option if value is not None else variable
    return check_api_base_url(url or default, what=f"{what} ({where})", env=where)


def _check_session_options(args: argparse.Namespace) -> None:
    """Refuse ``session create`` options that cannot work, before anything is sent.

    Raises:
        BeyConfigError: Naming the option to fix: an empty avatar id or token, a
            room URL that is not a Daily room's, an API URL that cannot be
            requested, or no way to get the avatar a token.
    """
    from pipecat_bey._urls import daily_room_name
    from pipecat_bey.client import DEFAULT_API_URL
    from pipecat_bey.config import DEFAULT_DAILY_API_URL, setting
    from pipecat_bey.errors import BeyConfigError

    setting(args.avatar_id, argument="--avatar-id")
    setting(args.token, argument="--token")
    try:
        daily_room_name(args.room_url)
    except BeyConfigError as e:
        raise BeyConfigError(f"--room-url {e}") from None
    _checked_url(args.api_url, "--api-url", "BEY_API_URL", DEFAULT_API_URL, "Beyond Presence API")
    if args.token is None:
        daily_key = setting(
            args.daily_api_key, argument="--daily-api-key", variable="DAILY_API_KEY"
        )
        if daily_key is None:
            raise BeyConfigError(
                "the avatar needs a Daily meeting token: pass --token, or --daily-api-key "
                "(or set DAILY_API_KEY) to mint one"
            )
        _checked_url(
            args.daily_api_url,
            "--daily-api-url",
            "DAILY_API_URL",
            DEFAULT_DAILY_API_URL,
            "Daily API",
        )


async def _create_session(args: argparse.Namespace) -> dict:
    from pipecat_bey.client import BeyClient
    from pipecat_bey.config import daily_api_url_setting, setting
    from pipecat_bey.daily.avatar_session import start_avatar_session
    from pipecat_bey.daily.rest import AvatarIdentity, DailyRoomAPI
    from pipecat_bey.models import CreatePipecatSessionRequest

    avatar_id = args.avatar_id.strip()
    token = args.token.strip() if args.token is not None else None
    async with aiohttp.ClientSession() as http:
        client = BeyClient(args.api_key, base_url=args.api_url, session=http)
        daily_key = setting(
            args.daily_api_key, argument="--daily-api-key", variable="DAILY_API_KEY"
        )
        daily = None
        if token is None and daily_key is not None:
            daily = DailyRoomAPI(
                api_key=daily_key, session=http, api_url=daily_api_url_setting(args.daily_api_url)
            )
        session = await start_avatar_session(
            client,
            avatar_id=avatar_id,
            room_url=args.room_url,
            identity=AvatarIdentity.new("Avatar"),
            daily=daily,
            avatar_token=token,
            token_ttl_s=args.token_ttl,
        )
    shown = CreatePipecatSessionRequest(avatar_id=avatar_id, url=args.room_url, token="-")
    return {"request": shown.masked(), "session": session.model_dump(mode="json")}


def _import_pipecat_quietly() -> None:
    """Import Pipecat with its start-up banner muted, so a command's own output comes first.

    Pipecat logs the banner with loguru when it is first imported. ``logger.disable``
    is loguru's documented switch for muting one library; it is lifted right after,
    so Pipecat's warnings and errors during the command still show.
    """
    if "pipecat" in sys.modules:
        return
    from loguru import logger

    logger.disable("pipecat")
    try:
        import pipecat  # noqa: F401
    finally:
        logger.enable("pipecat")


def _run_emulator(port: int, api_keys: set[str]) -> int:
    """Serve the local Bey API until Ctrl-C or SIGTERM; the status is then 130 or 143."""
    from loguru import logger

    from pipecat_bey.testing.bey_emulator import serve_emulator

    # The command prints its own lines (start, requests, stop); the library's debug
    # log would repeat them, so only warnings and errors are logged.
    logger.remove()
    logger.add(sys.stderr, level="WARNING", format="{level}: {message}")
    try:
        run_to_the_end(
            serve_emulator(port=port, api_keys=api_keys),
            again="pipecat-bey: the emulator is stopping",
        )
    except KeyboardInterrupt as e:
        return exit_status(e)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``pipecat-bey`` command.

    Environment variables that are set but empty (``KEY=`` in a .env file) count
    as not set.

    Args:
        argv: Arguments without the program name (default: ``sys.argv[1:]``).

    Ctrl-C and SIGTERM are the command's while it runs: the first one ends the
    run, which still cleans up (the check ejects its avatar and deletes its room,
    the demo ejects its avatar), and later ones cannot cut that short; see
    :mod:`pipecat_bey.cli._io`. Once one came, the process ignores further ones
    until it has exited.

    Returns:
        The exit status: 0 on success, 1 on a reported error, 130 when interrupted
        (Ctrl-C), 143 when terminated (SIGTERM). ``--help``, ``--version`` and bad
        usage exit through argparse's ``SystemExit`` (0, 0 and 2).
    """
    with stop_signals():
        try:
            return _run(argv)
        except KeyboardInterrupt as e:  # a signal before a run, or an untaken Ctrl-C
            return exit_status(e)


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_usage(parser, args)
    options = ("api_key", "token", "daily_api_key", "livekit_api_secret")
    secrets = [getattr(args, name, None) for name in options]
    secrets += [env("BEY_API_KEY"), env("DAILY_API_KEY"), env("LIVEKIT_API_SECRET")]
    try:
        _import_pipecat_quietly()
        if args.command == "demo":
            from pipecat_bey.cli.demo.command import run_demo_cli

            return run_demo_cli(args)
        if args.command == "emulator":
            keys = {key.strip() for key in args.api_keys or () if key.strip()}
            env_key = env("BEY_API_KEY")
            if not keys and env_key:
                keys = {env_key}
            if not keys:
                raise ValueError(
                    "the emulator needs a key to accept: pass --api-key K or set BEY_API_KEY"
                )
            secrets += keys
            return _run_emulator(args.port, keys)
        if args.command == "check":
            from pipecat_bey.cli.check import run_check_cli

            return run_check_cli(args)
        _check_session_options(args)
        try:
            result = run_to_the_end(_create_session(args))
        except KeyboardInterrupt as e:
            print(
                f"pipecat-bey: session create {_how(e)}; if the request had reached the "
                "Beyond Presence API, the avatar may have started: it leaves the room when "
                "its token expires, or eject it in the Daily dashboard",
                file=sys.stderr,
            )
            return exit_status(e)
        print(json.dumps(result, indent=2))
        return 0
    except KeyboardInterrupt as e:
        return exit_status(e)
    except Exception as e:  # one clear line, never a traceback, never a secret
        print(f"pipecat-bey: error: {redact(str(e), *secrets)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
