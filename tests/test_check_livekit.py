"""``pipecat-bey check --livekit``: its settings, its usage, its secrets, and a real run offline.

The fast tests run the check in process (or the command in a subprocess) against a
stand-in of LiveKit's server API, an aiohttp server that speaks Twirp: it creates and
deletes rooms, or refuses the key, and answers the bot's WebSocket with 404, so the
bot never joins. It keeps every request it got, to show that the API secret signs
them and is never sent, and every token it was shown, to show that none is printed,
logged or recorded.

The slow ones (``-m slow``, marked ``livekit``) run ``pipecat-bey check --livekit
--offline`` as a user types it: it runs itself again in a network namespace of its
own, against a real ``livekit-server``, the local Beyond Presence API and LiveKit's own
avatar code. They skip like tests/test_livekit_demo.py when the machine cannot.
"""

import argparse
import asyncio
import json
import os
import re
import signal
import sys
from pathlib import Path

import pytest
from aiohttp import web
from conftest import SECRETS
from livekit_probes import PROBE_TIMEOUT_S, livekit, require
from sigint import signal_as_it_goes

from pipecat_bey.cli import _namespace as namespace
from pipecat_bey.cli.app import main
from pipecat_bey.cli.check import INTERRUPT_LIMIT_MS, PHRASE_S, SPOKEN_BEFORE_INTERRUPT_S
from pipecat_bey.cli.check import livekit as livekit_cli
from pipecat_bey.cli.parser import build_parser

AGENTS = ("livekit.agents", "livekit-agents==1.8.9")

# A distinctive secret: any trace of it (or of a token) in an output is a leak.
LIVEKIT_KEY = "APIcheckLiveKitKey"
LIVEKIT_SECRET = "lk-check-secret-7f3c9d1e5b2a48c6a0e4f9b7d3c1e2f4a5b6c7d8"
BEY = "bey-check-livekit-key-4b1f7e"
SECRETS.update({LIVEKIT_SECRET, BEY})  # conftest fails the run if one shows up in any log

JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]+")
OFFLINE_SECRETS = re.compile(r"bey-offline-|eyJ[\w-]+\.[\w-]+\.[\w-]+")
LINE = re.compile(r"^\[ *\d+\.\d\ds\] (ok  |FAIL|STOP) ([a-z ]+): ", re.M)

LIVEKIT_STEPS = [
    "keys",
    "room",
    "bot_joined",
    "session_created",
    "avatar_joined",
    "avatar_video",
    "avatar_spoke",
    "interrupt",
    "removed",
    "room_deleted",
]
LIVEKIT_LABELS = [
    "keys",
    "room",
    "bot joined",
    "session created",
    "avatar joined",
    "avatar camera",
    "avatar spoke",
    "interrupt",
    "avatar removed",
    "room deleted",
]


def child_env(**extra):
    """The test's environment without the settings the check reads, then ``extra``."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for name in ("BEY_API_URL", "BEY_AVATAR_ID", "BEY_API_KEY"):
        env.pop(name, None)
    for name in ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"):
        env.pop(name, None)
    return {**env, **extra}


def step(recording, name):
    return next(s for s in recording["steps"] if s["name"] == name)


class FakeLiveKit:
    """LiveKit's server API as far as the check's room goes, and a WebSocket that says 404.

    Attributes:
        requests: Every request: its path, query, headers and body.
        tokens: Every token it was shown (server API bearers, the bot's ``access_token``).
        created, deleted: The rooms it created, and deleted.
    """

    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse
        self.requests: list[dict] = []
        self.tokens: set[str] = set()
        self.created: list[str] = []
        self.deleted: list[str] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> "FakeLiveKit":
        app = web.Application()
        app.router.add_post("/twirp/livekit.RoomService/{method}", self._twirp)
        app.router.add_route("*", "/{tail:.*}", self._anything_else)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def _keep(self, request: web.Request) -> bytes:
        body = await request.read()
        self.requests.append(
            {
                "path": request.path,
                "query": request.query_string,
                "headers": dict(request.headers),
                "body": body,
            }
        )
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
        for token in (bearer, request.query.get("access_token", "")):
            if token:
                self.tokens.add(token)
        return body

    async def _twirp(self, request: web.Request) -> web.Response:
        from livekit import api

        body = await self._keep(request)
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
        # The request is signed with the secret (a token that checks out with it).
        api.TokenVerifier(LIVEKIT_KEY, LIVEKIT_SECRET).verify(bearer)
        if self.refuse:
            return web.json_response(
                {"code": "unauthenticated", "msg": "invalid API key"}, status=401
            )
        method = request.match_info["method"]
        if method == "CreateRoom":
            create = api.CreateRoomRequest.FromString(body)
            self.created.append(create.name)
            room = api.Room(name=create.name, sid="RM_check", max_participants=3)
            return web.Response(body=room.SerializeToString(), content_type="application/protobuf")
        if method == "DeleteRoom":
            self.deleted.append(api.DeleteRoomRequest.FromString(body).room)
            reply = api.DeleteRoomResponse().SerializeToString()
            return web.Response(body=reply, content_type="application/protobuf")
        return web.json_response({"code": "not_found", "msg": method}, status=404)

    async def _anything_else(self, request: web.Request) -> web.Response:
        await self._keep(request)
        return web.Response(status=404, text="404: Not Found")

    def secret_was_sent(self) -> bool:
        secret = LIVEKIT_SECRET.encode()
        return any(
            secret in r["body"]
            or LIVEKIT_SECRET in r["query"]
            or LIVEKIT_SECRET in str(r["headers"])
            for r in self.requests
        )


def assert_nothing_secret(fake: FakeLiveKit, *texts: str) -> None:
    for text in texts:
        assert LIVEKIT_SECRET not in text and BEY not in text
        assert not JWT.search(text), JWT.search(text)
        for token in fake.tokens:
            assert token not in text


# The settings: each missing one named with its fix, before anything runs.


@pytest.mark.parametrize(
    "given, missing",
    [
        ({}, ["BEY_API_KEY", "LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"]),
        (
            {"BEY_API_KEY": BEY, "LIVEKIT_URL": "wss://x.livekit.cloud", "LIVEKIT_API_KEY": "k"},
            ["LIVEKIT_API_SECRET"],
        ),
        (
            {"BEY_API_KEY": BEY, "LIVEKIT_API_SECRET": LIVEKIT_SECRET},
            ["LIVEKIT_URL", "LIVEKIT_API_KEY"],
        ),
    ],
)
async def test_missing_settings_are_named_with_the_fix_before_anything_runs(
    clean_env, given, missing
):
    from pipecat_bey.cli.check.livekit_room import LiveKitCheckOptions
    from pipecat_bey.cli.check.livekit_run import run_livekit_check

    for name, value in given.items():
        clean_env.setenv(name, value)
    clean_env.setenv("LIVEKIT_API_KEY", given.get("LIVEKIT_API_KEY", "  "))  # blank is unset
    lines: list[str] = []
    recording = await run_livekit_check(LiveKitCheckOptions(timeout_s=2), progress=lines.append)

    (keys,) = recording["steps"]  # nothing else was tried, nothing to clean up
    assert not keys["ok"] and recording["ok"] is False
    options = {
        "BEY_API_KEY": "--api-key",
        "LIVEKIT_URL": "--livekit-url",
        "LIVEKIT_API_KEY": "--livekit-api-key",
        "LIVEKIT_API_SECRET": "--livekit-api-secret",
    }
    for name, option in options.items():
        assert (name in missing) == (name in keys["detail"]), keys
        assert (name in missing) == (f"set {name}" in keys["hint"]), keys
        assert (name in missing) == (option in keys["hint"]), keys
    assert keys["detail"].endswith("is not set" if len(missing) == 1 else "are not set")
    assert recording["transport"] == "livekit" and recording["room_created"] is False
    assert "daily_key_valid" not in recording and "ejected" not in recording
    assert recording["removed"] is None and recording["room_deleted"] is None
    assert_nothing_secret(FakeLiveKit(), *lines, json.dumps(recording))


@pytest.mark.parametrize(
    "url, words",
    [("http://livekit.example.com", "unencrypted"), ("livekit.example.com", "ws(s)://")],
)
async def test_an_unacceptable_livekit_url_fails_the_keys_step(clean_env, url, words):
    from pipecat_bey.cli.check.livekit_room import LiveKitCheckOptions
    from pipecat_bey.cli.check.livekit_run import run_livekit_check

    options = LiveKitCheckOptions(
        api_key=BEY,
        livekit_url=url,
        livekit_api_key=LIVEKIT_KEY,
        livekit_api_secret=LIVEKIT_SECRET,
    )
    recording = await run_livekit_check(options, progress=lambda line: None)
    (keys,) = recording["steps"]
    assert not keys["ok"] and words in keys["detail"] and "--livekit-url" in keys["hint"]


# Usage errors, before anything runs.


@pytest.mark.parametrize(
    "args, words",
    [
        (["--livekit", "--room-url", "https://x.daily.co/r"], "--room-url is the Daily check's"),
        (["--livekit", "--daily-api-key", "d"], "--daily-api-key is the Daily check's"),
        (["--livekit", "--daily-api-url", "https://d"], "--daily-api-url is the Daily check's"),
        (["--livekit", "--offline", "--world", "{}"], "--world is the Daily check's"),
        (["--livekit-url", "wss://x.livekit.cloud"], "--livekit-url needs --livekit"),
        (["--livekit-api-secret", LIVEKIT_SECRET], "--livekit-api-secret needs --livekit"),
        (
            ["--livekit", "--offline", "--livekit-api-secret", LIVEKIT_SECRET],
            "--livekit --offline runs its own LiveKit server; drop --livekit-api-secret",
        ),
        (["--livekit", "--offline", "--api-url", "https://a"], "drop --api-url"),
    ],
)
def test_usage_errors_exit_2_and_never_quote_the_secret(capsys, args, words):
    with pytest.raises(SystemExit) as caught:
        main(["check", *args])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert words in err, err
    assert LIVEKIT_SECRET not in err


def test_the_livekit_options_are_in_the_help(capsys):
    with pytest.raises(SystemExit):
        main(["check", "--help"])
    out = capsys.readouterr().out
    for option in ("--livekit", "--livekit-url", "--livekit-api-key", "--livekit-api-secret"):
        assert option in out


def test_a_missing_package_or_server_is_named_with_the_fix(monkeypatch, tmp_path):
    monkeypatch.setattr(namespace, "_installed", lambda module: module != "livekit.agents")
    assert livekit_cli.livekit_requirement(offline=False) is None
    assert livekit_cli.livekit_requirement(offline=True) == (
        '--livekit --offline needs livekit.agents: pip install "pipecat-bey[livekit-offline]"'
    )
    monkeypatch.setattr(namespace, "_installed", lambda module: module != "livekit.api")
    assert 'pip install "pipecat-bey[livekit]"' in livekit_cli.livekit_requirement(False)

    monkeypatch.undo()
    monkeypatch.setenv("LIVEKIT_SERVER_BIN", str(tmp_path / "no-such-server"))
    args = build_parser().parse_args(["check", "--livekit", "--offline"])
    with pytest.raises(ValueError, match=r"runs a real LiveKit server: .*build-livekit-server\.sh"):
        livekit_cli.run_livekit_check_cli(args)


def test_an_unwritable_record_is_refused_before_anything_runs(tmp_path):
    args = argparse.Namespace(record=tmp_path / "no-such-dir" / "r.json", offline=False)
    with pytest.raises(ValueError, match="does not exist"):
        livekit_cli.run_livekit_check_cli(args)


def test_the_check_on_livekit_imports_nothing_of_the_offline_world():
    import subprocess

    code = (
        "import sys; import pipecat_bey.cli.check.livekit_run, pipecat_bey.cli.check.livekit; "
        "print(sorted(m for m in sys.modules if m.startswith('pipecat_bey.testing')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# The secret signs, and is never sent, shown or recorded; nor is any token.


async def test_a_refused_key_is_named_and_the_secret_never_sent_nor_shown(clean_env, tmp_path):
    from pipecat_bey.cli.check.livekit_room import LiveKitCheckOptions
    from pipecat_bey.cli.check.livekit_run import run_livekit_check

    record = tmp_path / "r.json"
    async with FakeLiveKit(refuse=True) as fake:
        options = LiveKitCheckOptions(
            api_key=BEY,
            livekit_url=fake.url,
            livekit_api_key=LIVEKIT_KEY,
            livekit_api_secret=LIVEKIT_SECRET,
            timeout_s=2,
            record=record,
        )
        lines: list[str] = []
        recording = await run_livekit_check(options, progress=lines.append)

    assert [s["name"] for s in recording["steps"]] == ["keys", "room"], "nothing to clean up"
    room = step(recording, "room")
    assert not room["ok"] and "401" in room["detail"]
    assert "LIVEKIT_API_KEY" in room["hint"] and "LIVEKIT_API_SECRET" in room["hint"]
    assert recording["livekit_key_valid"] is False and recording["room_created"] is False
    assert fake.created == [] and len(fake.requests) == 1
    assert fake.tokens and not fake.secret_was_sent()
    assert any(line.split("] ")[1].startswith("FAIL room: ") for line in lines)
    assert_nothing_secret(fake, *lines, json.dumps(recording), record.read_text())


async def test_a_bot_that_cannot_join_still_deletes_the_room_and_shows_no_secret(tmp_path):
    """The command, as typed: the secret from the environment, the bot refused (404)."""
    record = tmp_path / "r.json"
    async with FakeLiveKit() as fake:
        command = [sys.executable, "-m", "pipecat_bey.cli", "check", "--livekit"]
        command += ["--livekit-url", fake.url, "--timeout", "2", "--record", str(record)]
        env = child_env(
            BEY_API_KEY=BEY, LIVEKIT_API_KEY=LIVEKIT_KEY, LIVEKIT_API_SECRET=LIVEKIT_SECRET
        )
        child = await asyncio.create_subprocess_exec(
            *command,
            cwd=tmp_path,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(child.communicate(), 60)
    stdout, stderr = out.decode(), err.decode()
    printed = stdout + stderr

    assert child.returncode == 1, printed
    assert "Traceback" not in stderr
    assert [m[0] for m in LINE.findall(stdout)] == ["ok  ", "ok  ", "FAIL", "ok  "], stdout
    assert [m[1] for m in LINE.findall(stdout)] == ["keys", "room", "bot joined", "room deleted"]
    recording = json.loads(record.read_text())
    assert fake.created == [recording["room_name"]] == fake.deleted
    assert recording["room_deleted"] is True and recording["removed"] is None
    assert (
        recording["bot_joined_s"] is None
        and "not in the room" in step(recording, "bot_joined")["detail"]
    )
    assert any(r["path"].startswith("/rtc") for r in fake.requests), "the bot tried to join"
    assert not fake.secret_was_sent()
    assert len(fake.tokens) >= 3  # create, the bot's, delete
    assert_nothing_secret(fake, stdout, stderr, record.read_text())


# The real thing, offline: a real livekit-server, LiveKit's own avatar code.


def offline_command(record: Path) -> list[str]:
    command = [sys.executable, "-m", "pipecat_bey.cli", "check", "--livekit", "--offline"]
    return [*command, "--record", str(record)]


def assert_offline_secrets_kept(*texts: str) -> None:
    for text in texts:
        assert not OFFLINE_SECRETS.search(text), OFFLINE_SECRETS.search(text)
        assert "env-secret-never-used" not in text and "bey-env-key-never-used" not in text


@livekit
@pytest.mark.slow
def test_the_offline_livekit_check_passes_every_step_and_leaves_nothing(tmp_path):
    require(AGENTS)
    import subprocess

    record = tmp_path / "r.json"
    done = subprocess.run(
        offline_command(record),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=PROBE_TIMEOUT_S * 2,
        env=child_env(
            BEY_API_KEY="bey-env-key-never-used", LIVEKIT_API_SECRET="env-secret-never-used"
        ),
    )
    printed = done.stdout + done.stderr
    assert done.returncode == 0, printed[-4000:]
    assert "Traceback" not in done.stderr and "ᓚᘏᗢ" not in done.stdout
    assert [m[1] for m in LINE.findall(done.stdout)] == LIVEKIT_LABELS, done.stdout
    assert all(m[0] == "ok  " for m in LINE.findall(done.stdout)), done.stdout
    assert "check passed" in done.stdout
    # The world's side: the avatar left because the check removed it through the server API.
    assert "offline: the local avatar left: PARTICIPANT_REMOVED" in done.stdout, done.stdout

    text = record.read_text()
    recording = json.loads(text)
    assert [s["name"] for s in recording["steps"]] == LIVEKIT_STEPS
    assert all(s["ok"] and s["hint"] is None for s in recording["steps"])
    assert recording["ok"] is True and recording["interrupted"] is False
    assert recording["transport"] == "livekit" and recording["offline"] is True
    assert recording["bey_key_valid"] and recording["livekit_key_valid"]
    assert recording["avatar_token_valid"] is True and recording["session_id"]
    for key in ("room_created_s", "bot_joined_s", "session_created_s", "avatar_joined_s"):
        assert recording[key] is not None and recording[key] >= 0, key
    assert recording["avatar_video_s"] is not None
    # It spoke: heard at the bot, and reported playing.
    assert 0 < recording["first_avatar_speech_ms"] < 5000
    assert recording["playback_started_ms"] is not None
    assert recording["spoken_before_interrupt_s"] >= SPOKEN_BEFORE_INTERRUPT_S
    # The interrupt was measured, and cut the phrase short.
    assert 0 <= recording["interrupt_silence_ms"] <= INTERRUPT_LIMIT_MS
    assert recording["playback_finished"]["interrupted"] is True
    assert recording["playback_finished"]["position_s"] < PHRASE_S - 0.5
    assert recording["removed"] is True and recording["room_deleted"] is True
    assert "daily_key_valid" not in recording and "ejected" not in recording
    assert "secret" not in text  # the development server's secret is masked too
    assert_offline_secrets_kept(done.stdout, done.stderr, text)


@livekit
@pytest.mark.slow
def test_ctrl_c_twice_once_the_avatar_joined_still_removes_it_and_deletes_the_room(tmp_path):
    require(AGENTS)
    record = tmp_path / "r.json"
    status, _, output = signal_as_it_goes(
        offline_command(record),
        [("ok   avatar joined", signal.SIGINT), ("cleaning up", signal.SIGINT)],
        cwd=tmp_path,
        env=child_env(),
        timeout=PROBE_TIMEOUT_S,
    )
    assert status == 130, output[-4000:]
    assert "pipecat-bey: check interrupted" in output
    assert re.search(r"ok   avatar removed: removed bey-avatar-agent", output), output
    assert re.search(r"ok   room deleted: deleted pipecat-bey-check-", output), output
    assert "offline: the local avatar left: PARTICIPANT_REMOVED" in output, output
    recording = json.loads(record.read_text())
    assert recording["interrupted"] is True and recording["ok"] is False
    assert recording["removed"] is True and recording["room_deleted"] is True
    assert [s["name"] for s in recording["steps"]][-2:] == ["removed", "room_deleted"]
    assert_offline_secrets_kept(output, record.read_text())
