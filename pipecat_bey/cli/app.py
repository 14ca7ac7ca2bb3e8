"""The ``pipecat-bey`` command: the offline demo, the live check, the local Bey API, sessions.

Parsing, ``--help`` and ``--version`` import no part of Pipecat; each command
imports what it needs once the command line is known to be good.
"""

import argparse
import json
import math
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TypeVar

import aiohttp

from pipecat_bey._secrets import redact
from pipecat_bey.cli._io import Stopped, exit_status, run_to_the_end, stop_signals
from pipecat_bey.config import env

_N = TypeVar("_N", int, float)

MIN_TOKEN_TTL_S = 60.0
"""The shortest token lifetime accepted, the same bound as ``BeyParams.avatar_token_ttl_s``."""


def _number(
    kind: Callable[[str], _N],
    what: str,
    *,
    minimum: _N | None = None,
    maximum: _N | None = None,
) -> Callable[[str], _N]:
    """Make an argparse type for a finite number within bounds.

    Args:
        kind: ``int`` or ``float``.
        what: What the number is, for the error ("seconds", "a port").
        minimum: The smallest value accepted, if any.
        maximum: The largest value accepted, if any.

    Returns:
        A function that parses the text or raises ``ArgumentTypeError`` naming it.
    """
    expected = what
    if minimum is not None and maximum is not None:
        expected += f" from {minimum:g} to {maximum:g}"
    elif minimum is not None:
        expected += f", {minimum:g} or more"
    elif maximum is not None:
        expected += f", {maximum:g} or less"

    def parse(text: str) -> _N:
        refused = argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        try:
            value = kind(text)
        except ValueError:
            raise refused from None
        # nan passes no comparison, so bounds alone would let it through: check it first.
        if not math.isfinite(value):
            raise refused
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise refused
        return value

    return parse


def _how(stopped: KeyboardInterrupt) -> str:
    return stopped.how if isinstance(stopped, Stopped) else "interrupted"


def _version_text() -> str:
    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "(not installed)"

    return f"pipecat-bey {installed('pipecat-bey')} (pipecat-ai {installed('pipecat-ai')})"


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pipecat-bey",
        description=(
            "Beyond Presence video avatars for Pipecat bots, on any Pipecat transport: on Daily "
            "the avatar joins the bot's room; on any other (SmallWebRTC, WebSockets, LiveKit...) "
            "it is relayed from a private Daily room through the bot's own output."
        ),
    )
    parser.add_argument(
        "--version",
        action="version",
        version=_version_text(),
        help="print the versions of pipecat-bey and pipecat-ai, and exit",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="run a real bot pipeline with the avatar, offline (local Bey API, simulated room)",
        description=(
            "Run a real Pipecat pipeline (DailyTransport, BeyVideoService) against the local "
            "Beyond Presence API and a simulated Daily room, with a simulated avatar and a "
            "simulated user who barges in once. No accounts, no network."
        ),
    )
    demo.add_argument(
        "--input",
        type=Path,
        help="speech to say, a 16-bit WAV, mono or stereo (default: the packaged clip)",
    )
    demo.add_argument(
        "--out",
        type=Path,
        help=(
            "where to write exactly what the avatar received (default: avatar_input.wav); "
            "with --relay, what the user heard (default: user_heard.wav)"
        ),
    )
    demo.add_argument(
        "--relay",
        action="store_true",
        help=(
            "put the avatar in a private room and relay its face and voice through the "
            "bot's own output, as for a bot on any transport (SmallWebRTC, WebSocket...)"
        ),
    )
    demo.add_argument(
        "--avatar-join-delay",
        type=_number(float, "seconds", minimum=0.0, maximum=60.0),
        default=1.0,
        metavar="S",
        help=(
            "seconds the avatar takes to join after the session starts, 0 to 60; past the "
            "service's 30 s join timeout the bot speaks in its own voice (default: 1)"
        ),
    )
    demo.add_argument(
        "--api-latency",
        type=_number(float, "seconds", minimum=0.0, maximum=60.0),
        default=0.3,
        metavar="S",
        help="seconds the local Bey API takes to answer, 0 to 60 (default: 0.3)",
    )
    demo.add_argument(
        "--subscribe-delay",
        type=_number(float, "seconds", minimum=0.0, maximum=60.0),
        default=0.0,
        metavar="S",
        help="seconds from the avatar joining to it listening to the bot, 0 to 60 (default: 0)",
    )
    demo.add_argument(
        "--network-delay",
        type=_number(float, "seconds", minimum=0.0, maximum=5.0),
        default=0.0,
        metavar="S",
        help=(
            "one-way media delay in the simulated room, 0 to 5; app messages take half of it "
            "on their own path; with --transport livekit, real delay from the bot to the "
            "avatar, half on each hop (default: 0)"
        ),
    )
    demo.add_argument(
        "--jitter",
        type=_number(float, "seconds", minimum=0.0, maximum=5.0),
        default=0.0,
        metavar="S",
        help="up to this much more media delay, at random, 0 to 5 (default: 0)",
    )
    demo.add_argument(
        "--transport",
        choices=("daily", "livekit"),
        default="daily",
        help=(
            "the bot's room: a simulated Daily room, or a room of a real livekit-server run "
            "in a private network namespace (needs pipecat-bey[livekit-offline] and the "
            "server, see the README) (default: daily)"
        ),
    )
    demo.add_argument(
        "--loss",
        type=_number(float, "percent", minimum=0.0, maximum=50.0),
        default=0.0,
        metavar="PCT",
        help="with --transport livekit: packets lost on each hop, 0 to 50 percent (default: 0)",
    )
    demo.add_argument("--report", type=Path, help="write a JSON report of the run to this file")
    demo.add_argument(
        "--no-barge-in",
        action="store_true",
        help="the simulated user listens without interrupting",
    )

    emulator = commands.add_parser(
        "emulator",
        help="serve the local Beyond Presence API until interrupted",
        description=(
            "Serve the local Beyond Presence API on 127.0.0.1 until interrupted (Ctrl-C). "
            "It prints one line per request: method, path, status and time taken."
        ),
    )
    emulator.add_argument(
        "--port",
        type=_number(int, "a port", minimum=0, maximum=65535),
        default=8765,
        help="port, 0 to 65535; 0 picks a free one (default: 8765)",
    )
    emulator.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        metavar="K",
        help="an API key to accept (repeatable; default: $BEY_API_KEY)",
    )

    session = commands.add_parser(
        "session", help="manage Beyond Presence sessions by hand", description="Sessions."
    )
    session_commands = session.add_subparsers(dest="session_command", required=True)
    create = session_commands.add_parser(
        "create",
        help="start an avatar in a Daily room and print the session as JSON",
        description=(
            "Start an avatar in a real Daily room and print the session as JSON, secrets "
            "masked. The API key comes from --api-key or BEY_API_KEY."
        ),
    )
    create.add_argument("--avatar-id", required=True, help="the avatar to start")
    create.add_argument("--room-url", required=True, help="the Daily room URL it joins")
    how = create.add_mutually_exclusive_group()
    how.add_argument("--token", help="a Daily meeting token for the avatar")
    how.add_argument(
        "--daily-api-key",
        help="mint the avatar's token with this Daily API key (default: $DAILY_API_KEY)",
    )
    create.add_argument("--api-key", help="Beyond Presence API key (default: $BEY_API_KEY)")
    create.add_argument("--api-url", help="Beyond Presence API URL (default: $BEY_API_URL)")
    create.add_argument("--daily-api-url", help="Daily REST API URL (default: $DAILY_API_URL)")
    create.add_argument(
        "--token-ttl",
        type=_number(float, "seconds", minimum=MIN_TOKEN_TTL_S),
        default=3600.0,
        metavar="S",
        help=(
            "lifetime of a minted token; Daily ejects the avatar when it ends. At least 60, "
            "the shortest the service itself accepts as avatar_token_ttl_s (default: 3600)"
        ),
    )
    _add_check_parser(commands)
    return parser


def _add_check_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    check = commands.add_parser(
        "check",
        help="check your keys and a real avatar in a short-lived Daily room, step by step",
        description=(
            "Check your keys and the avatar: create a short-lived private Daily room (or use "
            "--room-url), join it as a bot, start an avatar, wait for it to join and show its "
            "face, send it a short phrase on bey-custom-track, interrupt it, then eject it and "
            "delete the room, whatever happens (Ctrl-C included). One line per step, with what "
            "to do on failure. Exits 0 when every step passed, 1 otherwise, 130 on Ctrl-C. "
            "Keys come from --api-key and --daily-api-key or BEY_API_KEY and DAILY_API_KEY "
            "(empty means unset). With --livekit, the same steps on a LiveKit server of yours "
            "(the avatar removed through the server API)."
        ),
    )
    check.add_argument("--api-key", help="Beyond Presence API key (default: $BEY_API_KEY)")
    check.add_argument("--daily-api-key", help="Daily API key (default: $DAILY_API_KEY)")
    check.add_argument("--api-url", help="Beyond Presence API URL (default: $BEY_API_URL)")
    check.add_argument("--daily-api-url", help="Daily REST API URL (default: $DAILY_API_URL)")
    check.add_argument(
        "--avatar-id", help="the avatar to start (default: $BEY_AVATAR_ID, then the stock one)"
    )
    check.add_argument(
        "--room-url",
        metavar="URL",
        help="use this Daily room of yours instead of creating one (it is not deleted)",
    )
    check.add_argument(
        "--timeout",
        type=_number(float, "seconds", minimum=1.0, maximum=600.0),
        default=30.0,
        metavar="S",
        help=(
            "how long each wait may take (the bot joining, the avatar joining, its camera, its "
            "first speech), 1 to 600 (default: 30)"
        ),
    )
    check.add_argument(
        "--record",
        type=Path,
        metavar="FILE",
        help="write the steps and timings as JSON (no key or token); --world reads it back",
    )
    check.add_argument(
        "--offline",
        action="store_true",
        help=(
            "run the same check against the local Beyond Presence API and a simulated Daily, "
            "with throwaway keys (keys passed with --api-key/--daily-api-key are sent as given)"
        ),
    )
    check.add_argument(
        "--livekit",
        action="store_true",
        help=(
            "check a real LiveKit deployment instead: create a short-lived room through the "
            "server API, join it with LiveKitTransport, start a transport: livekit session, "
            "send the avatar speech on lk.audio_stream, clear it with lk.clear_buffer, then "
            "remove the avatar and delete the room. Needs pipecat-bey[livekit] (with "
            "--offline, pipecat-bey[livekit-offline] and livekit-server); settings from "
            "BEY_API_KEY, LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET"
        ),
    )
    check.add_argument(
        "--livekit-url",
        metavar="URL",
        help="with --livekit: the LiveKit server, wss://... (default: $LIVEKIT_URL)",
    )
    check.add_argument(
        "--livekit-api-key",
        metavar="KEY",
        help="with --livekit: the LiveKit API key (default: $LIVEKIT_API_KEY)",
    )
    check.add_argument(
        "--livekit-api-secret",
        metavar="SECRET",
        help=(
            "with --livekit: the API key's secret (default: $LIVEKIT_API_SECRET; prefer it, as "
            "a command line is visible to other users of the machine); never shown"
        ),
    )
    check.add_argument(
        "--world",
        metavar="FILE|JSON",
        help=(
            "with --offline: the simulated Daily's timings, from a --record file, a file of "
            "simulation settings, or the settings themselves as a JSON object, such as "
            "'{\"never_join\": true}' (default: realistic guesses)"
        ),
    )


def _check_usage(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse option combinations of ``check`` that make no sense, as usage errors."""
    if args.command != "check":
        return
    if args.world is not None and not args.offline:
        parser.error("check: --world needs --offline")
    if args.offline and (args.api_url or args.daily_api_url):
        parser.error("check: --offline talks to the local services; drop --api-url/--daily-api-url")
    livekit_options = {
        "--livekit-url": args.livekit_url,
        "--livekit-api-key": args.livekit_api_key,
        "--livekit-api-secret": args.livekit_api_secret,
    }
    given = [option for option, value in livekit_options.items() if value is not None]
    if not args.livekit:
        if given:
            parser.error(f"check: {given[0]} needs --livekit")
        return
    daily_options = {
        "--daily-api-key": args.daily_api_key,
        "--daily-api-url": args.daily_api_url,
        "--room-url": args.room_url,
        "--world": args.world,
    }
    for option, value in daily_options.items():
        if value is not None:
            parser.error(
                f"check: {option} is the Daily check's; --livekit creates its own LiveKit room "
                f"(LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET): drop {option}"
            )
    if args.offline and given:
        parser.error(
            "check: --livekit --offline runs its own LiveKit server; drop " + "/".join(given)
        )


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
    parser = _build_parser()
    args = parser.parse_args(argv)
    _check_usage(parser, args)
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
