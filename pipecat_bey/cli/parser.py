"""The ``pipecat-bey`` command line: its commands, their options, and usage errors.

Parsing imports no part of Pipecat, so ``--help`` and ``--version`` stay quick; numbers are
checked as they are parsed (finite, within bounds), and combinations that make no sense are
usage errors (:func:`check_usage`).
"""

import argparse
import math
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TypeVar

__all__ = ["MIN_TOKEN_TTL_S", "build_parser", "check_usage"]

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


def _version_text() -> str:
    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "(not installed)"

    return f"pipecat-bey {installed('pipecat-bey')} (pipecat-ai {installed('pipecat-ai')})"


def build_parser() -> argparse.ArgumentParser:
    """The ``pipecat-bey`` parser: ``demo``, ``emulator``, ``session create``, ``check``.

    Returns:
        The parser.
    """
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


def check_usage(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
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
