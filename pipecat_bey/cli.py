"""The ``pipecat-bey`` command: the offline demo, the local Bey API, and sessions by hand."""

import argparse
import asyncio
import json
import os
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path

import aiohttp

from pipecat_bey._secrets import redact


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pipecat-bey",
        description="Beyond Presence video avatars for Pipecat bots on Daily.",
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
        default=Path("avatar_input.wav"),
        help="where to write exactly what the avatar received (default: avatar_input.wav)",
    )
    demo.add_argument(
        "--avatar-join-delay",
        type=float,
        default=1.0,
        metavar="S",
        help="seconds the avatar takes to join after the session starts (default: 1)",
    )
    demo.add_argument(
        "--api-latency",
        type=float,
        default=0.3,
        metavar="S",
        help="seconds the local Bey API takes to answer (default: 0.3)",
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
        description="Serve the local Beyond Presence API on 127.0.0.1 until interrupted.",
    )
    emulator.add_argument("--port", type=int, default=8765, help="port (default: 8765)")
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
        type=float,
        default=3600.0,
        metavar="S",
        help="lifetime of a minted token; Daily ejects the avatar when it ends (default: 3600)",
    )
    return parser


async def _create_session(args: argparse.Namespace) -> dict:
    from pipecat_bey.client import BeyClient
    from pipecat_bey.daily_room import DEFAULT_DAILY_API_URL, AvatarIdentity, DailyRoomAPI
    from pipecat_bey.models import CreatePipecatSessionRequest

    async with aiohttp.ClientSession() as http:
        client = BeyClient(args.api_key, base_url=args.api_url, session=http)
        token = args.token
        if token is None:
            daily_key = args.daily_api_key or os.getenv("DAILY_API_KEY")
            if not daily_key:
                raise ValueError(
                    "the avatar needs a meeting token: pass --token, or --daily-api-key "
                    "(or set DAILY_API_KEY) to mint one"
                )
            daily = DailyRoomAPI(
                api_key=daily_key,
                session=http,
                api_url=args.daily_api_url or os.getenv("DAILY_API_URL") or DEFAULT_DAILY_API_URL,
            )
            identity = AvatarIdentity(
                user_id=f"bey-avatar-{uuid.uuid4().hex[:12]}", user_name="Avatar"
            )
            token = await daily.mint_avatar_token(args.room_url, identity, args.token_ttl)
        request = CreatePipecatSessionRequest(
            avatar_id=args.avatar_id, url=args.room_url, token=token
        )
        response = await client.create_session(request)
        return {"request": request.masked(), "session": response.model_dump(mode="json")}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``pipecat-bey`` command.

    Args:
        argv: Arguments without the program name (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 on success, 1 on a reported error, 2 on bad usage.
    """
    args = _build_parser().parse_args(argv)
    secrets = [getattr(args, name, None) for name in ("api_key", "token", "daily_api_key")]
    secrets += [os.getenv("BEY_API_KEY"), os.getenv("DAILY_API_KEY")]
    try:
        if args.command == "demo":
            from pipecat_bey.demo import run_demo_cli

            return run_demo_cli(args)
        if args.command == "emulator":
            from pipecat_bey.testing.bey_emulator import serve_emulator

            keys = args.api_keys or (
                [os.environ["BEY_API_KEY"]] if os.getenv("BEY_API_KEY") else []
            )
            if not keys:
                raise ValueError(
                    "the emulator needs a key to accept: pass --api-key K or set BEY_API_KEY"
                )
            secrets += keys
            asyncio.run(serve_emulator(port=args.port, api_keys=set(keys)))
            return 0
        result = asyncio.run(_create_session(args))
        print(json.dumps(result, indent=2))
        return 0
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # one clear line, never a traceback, never a secret
        print(f"pipecat-bey: error: {redact(str(e), *secrets)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
