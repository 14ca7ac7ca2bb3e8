"""The pipecat-bey command: help, clear one-line errors, sessions by hand."""

import asyncio
import json
import re
import secrets
import signal
import subprocess
import sys
import textwrap
import time
from importlib.metadata import version
from pathlib import Path

import aiohttp
import pytest
from conftest import BEY_KEY, DAILY_KEY
from sigint import python, signal_as_it_goes

import pipecat_bey
from pipecat_bey.cli.app import main
from pipecat_bey.cli.parser import build_parser

BANNER = "ᓚᘏᗢ"  # marks pipecat's import-time banner line


@pytest.mark.parametrize(
    "args", [[], ["demo"], ["check"], ["emulator"], ["session"], ["session", "create"]]
)
def test_every_command_has_help(args, capsys):
    with pytest.raises(SystemExit) as caught:
        main([*args, "--help"])
    assert caught.value.code == 0
    assert "usage: pipecat-bey" in capsys.readouterr().out


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["session", "create", "--room-url", "https://x.daily.co/r"])
    assert caught.value.code == 2
    assert "--avatar-id" in capsys.readouterr().err


def test_emulator_needs_a_key(clean_env, capsys):
    assert main(["emulator"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--api-key" in err


async def test_session_create_starts_an_avatar_and_masks_secrets(bey, daily, clean_env, capsys):
    room = daily.create_room("by-hand")
    args = [
        "session",
        "create",
        "--avatar-id",
        "b9be11b8-89fb-4227-8f86-4a881393cbdb",
        "--room-url",
        room.url,
        "--api-key",
        BEY_KEY,
        "--api-url",
        bey.url,
        "--daily-api-key",
        DAILY_KEY,
        "--daily-api-url",
        daily.rest_url,
    ]
    code = await asyncio.to_thread(main, args)
    out = capsys.readouterr().out
    assert code == 0
    printed = json.loads(out)
    assert printed["request"]["token"] == "***"
    assert printed["session"]["id"] == bey.sessions[0].id
    token = bey.requests[0]["token"]
    assert daily.verify_token(token).room_name == "by-hand"
    for secret in (BEY_KEY, DAILY_KEY, token):
        assert secret not in out


async def test_session_create_reports_an_api_error_in_one_line(bey, clean_env, capsys):
    args = [
        "session",
        "create",
        "--avatar-id",
        "a",
        "--room-url",
        "https://x.daily.co/r",
        "--token",
        "a-secret-token",
        "--api-key",
        "wrong-key",
        "--api-url",
        bey.url,
    ]
    code = await asyncio.to_thread(main, args)
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.count("\n") == 0
    assert err.startswith("pipecat-bey: error:") and "BEY_API_KEY" in err
    assert "wrong-key" not in err and "a-secret-token" not in err


def test_demo_rejects_a_missing_input_in_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pipecat_bey.cli", "demo", "--input", str(tmp_path / "nope.wav")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("pipecat-bey: error:")


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--transport", "livekit", "--relay"], "--relay is not there yet with --transport"),
        (["--loss", "3"], "add --transport livekit, or leave --loss out"),
    ],
)
def test_demo_options_that_mean_nothing_together_are_refused_before_anything_runs(args, named):
    pytest.importorskip("livekit.agents")
    result = subprocess.run(
        [sys.executable, "-m", "pipecat_bey.cli", "demo", "--no-barge-in", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("pipecat-bey: error:") and named in error, result.stderr


# Numbers on the command line: finite and within bounds, or a usage error naming the value.

SESSION = ["session", "create", "--avatar-id", "a", "--room-url", "https://x.daily.co/r"]


@pytest.mark.parametrize(
    ("args", "option", "value"),
    [
        (["demo", "--avatar-join-delay", "-1"], "--avatar-join-delay", "-1"),
        (["demo", "--avatar-join-delay", "nan"], "--avatar-join-delay", "nan"),
        (["demo", "--avatar-join-delay=-inf"], "--avatar-join-delay", "-inf"),
        (["demo", "--avatar-join-delay", "61"], "--avatar-join-delay", "61"),
        (["demo", "--api-latency", "-2"], "--api-latency", "-2"),
        (["demo", "--api-latency", "nan"], "--api-latency", "nan"),
        (["demo", "--api-latency", "inf"], "--api-latency", "inf"),
        (["demo", "--api-latency", "soon"], "--api-latency", "soon"),
        (["demo", "--subscribe-delay", "-1"], "--subscribe-delay", "-1"),
        (["demo", "--network-delay", "nan"], "--network-delay", "nan"),
        (["demo", "--jitter", "inf"], "--jitter", "inf"),
        ([*SESSION, "--token-ttl", "nan"], "--token-ttl", "nan"),
        ([*SESSION, "--token-ttl", "inf"], "--token-ttl", "inf"),
        ([*SESSION, "--token-ttl", "0"], "--token-ttl", "0"),
        ([*SESSION, "--token-ttl", "-60"], "--token-ttl", "-60"),
        ([*SESSION, "--token-ttl", "59.9"], "--token-ttl", "59.9"),
        (["emulator", "--port", "-1"], "--port", "-1"),
        (["emulator", "--port", "65536"], "--port", "65536"),
        (["emulator", "--port", "80.5"], "--port", "80.5"),
    ],
)
def test_nonsense_numbers_are_usage_errors_naming_the_value(args, option, value, capsys):
    # The parser alone: before the check, some of these ran the demo for a minute.
    with pytest.raises(SystemExit) as caught:
        build_parser().parse_args(args)
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: pipecat-bey")
    assert f"argument {option}: " in err and repr(value) in err


def test_numbers_at_their_bounds_are_accepted():
    parser = build_parser()
    demo = parser.parse_args(["demo", "--avatar-join-delay", "0", "--api-latency", "60"])
    assert (demo.avatar_join_delay, demo.api_latency) == (0.0, 60.0)
    assert parser.parse_args([*SESSION, "--token-ttl", "60"]).token_ttl == 60.0
    for port in ("0", "65535"):
        parsed = parser.parse_args(["emulator", "--port", port]).port
        assert parsed == int(port) and isinstance(parsed, int)


def test_the_token_ttl_help_gives_the_minimum(capsys):
    with pytest.raises(SystemExit):
        main([*SESSION, "--help"])
    assert "At least 60" in " ".join(capsys.readouterr().out.split())


# Environment variables set but empty (KEY= in a .env file) count as not set.


@pytest.fixture
def serve_calls(monkeypatch):
    """Stand in for serving, so no test blocks: record the keys it would accept."""
    calls = []

    async def serve(*, port, api_keys, host="127.0.0.1"):
        calls.append(api_keys)

    monkeypatch.setattr("pipecat_bey.testing.bey_emulator.serve_emulator", serve)
    return calls


@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_bey_api_key_is_no_key_for_the_emulator(value, clean_env, serve_calls, capsys):
    clean_env.setenv("BEY_API_KEY", value)
    assert main(["emulator"]) == 1
    assert main(["emulator", "--api-key", ""]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all("--api-key K or set BEY_API_KEY" in line for line in err)
    assert serve_calls == []


def test_an_empty_api_key_argument_falls_back_to_bey_api_key(clean_env, monkeypatch):
    served = []
    monkeypatch.setattr("pipecat_bey.cli.app._run_emulator", lambda port, keys: served.append(keys))
    clean_env.setenv("BEY_API_KEY", "from-the-environment")
    main(["emulator", "--api-key", "", "--port", "0"])
    assert served == [{"from-the-environment"}]


# The command's own output comes first; pipecat's import-time banner is not part of it.


def test_version_names_both_packages(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["--version"])
    assert caught.value.code == 0
    expected = f"pipecat-bey {version('pipecat-bey')} (pipecat-ai {version('pipecat-ai')})"
    assert capsys.readouterr().out.strip() == expected


# Runs the CLI with pipecat_bey's __init__ left out, so that only what the CLI imports
# itself is loaded: the parse path must not import pipecat.
WITHOUT_PACKAGE_INIT = """
import sys, types
package = types.ModuleType("pipecat_bey")
package.__path__ = [sys.argv[1]]
sys.modules["pipecat_bey"] = package
from pipecat_bey.cli import app as cli
"""


def run_isolated(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-c",
            WITHOUT_PACKAGE_INIT + textwrap.dedent(code),
            str(Path(pipecat_bey.__file__).parent),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_parsing_help_and_version_import_no_pipecat():
    result = run_isolated(
        """
        for argv in (["--help"], ["--version"], ["demo", "--help"], ["emulator", "--port", "x"]):
            try:
                cli.main(argv)
            except SystemExit:
                pass
        print("imported pipecat:", "pipecat" in sys.modules)
        """
    )
    assert result.stdout.startswith("usage: pipecat-bey"), result.stderr
    assert result.stdout.strip().endswith("imported pipecat: False")
    assert "argument --port" in result.stderr and BANNER not in result.stderr


def test_commands_import_pipecat_without_its_banner():
    result = run_isolated(
        """
        import importlib
        cli._import_pipecat_quietly()
        import pipecat
        print("imported quietly")
        # Muted only for the import: a later message from pipecat, here the banner
        # of a second import, still shows.
        importlib.reload(pipecat)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "imported quietly\n"
    assert result.stderr.count(BANNER) == 2  # one line, from the reload only


def test_help_is_the_first_thing_printed():
    result = subprocess.run(
        [sys.executable, "-m", "pipecat_bey.cli", "--help"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0
    assert result.stdout.startswith("usage: pipecat-bey")


# The emulator command: one start line, one line per request, a clean stop on Ctrl-C.


async def test_emulator_logs_each_request_and_stops_on_ctrl_c(clean_env):
    # Python only turns SIGINT into KeyboardInterrupt if its parent left SIGINT alone;
    # set it explicitly, as a terminal would have it, whatever runs the tests.
    code = (
        "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "from pipecat_bey.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    proc = await asyncio.create_subprocess_exec(
        *[sys.executable, "-c", code, "emulator", "--port", "0", "--api-key", BEY_KEY],
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    errors = asyncio.create_task(proc.stderr.read())

    async def next_line(timeout: float = 60) -> str:
        return (await asyncio.wait_for(proc.stdout.readline(), timeout)).decode()

    try:
        start = await next_line(timeout=120)
        assert "Ctrl-C stops it" in start
        url = re.search(r"http://127\.0\.0\.1:\d+", start).group(0)

        token = f"meeting-token-{secrets.token_hex(8)}"
        body = {
            "transport": "pipecat",
            "avatar_id": "a",
            "url": "https://x.daily.co/r",
            "token": token,
        }
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{url}/v1/sessions", json=body, headers={"x-api-key": BEY_KEY}
            ) as response:
                assert response.status == 201
        logged = await next_line()
        assert re.fullmatch(r"POST /v1/sessions 201 \d+\.\d ms\n", logged), logged
        assert BEY_KEY not in logged and token not in logged

        proc.send_signal(signal.SIGINT)
        interrupted = time.monotonic()
        assert await next_line() == "Beyond Presence API emulator stopped\n"
        assert await asyncio.wait_for(proc.wait(), 60) == 130
        assert time.monotonic() - interrupted < 5
        assert await next_line() == ""  # nothing more: the start line came once
        # Nothing on stderr: no traceback, no second start line from the library's log.
        # (pipecat's banner comes from the package's own import; see the --help test.)
        err = (await asyncio.wait_for(errors, 60)).decode()
        assert [line for line in err.splitlines() if BANNER not in line] == []
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        errors.cancel()


def test_demo_relay_writes_what_the_user_heard_by_default():
    from pipecat_bey.cli.demo import options_from_args

    parser = build_parser()
    relayed = options_from_args(parser.parse_args(["demo", "--relay"]))
    assert relayed.relay and relayed.out_path == Path("user_heard.wav")
    in_room = options_from_args(parser.parse_args(["demo"]))
    assert not in_room.relay and in_room.out_path == Path("avatar_input.wav")
    chosen = options_from_args(parser.parse_args(["demo", "--relay", "--out", "x.wav"]))
    assert chosen.out_path == Path("x.wav")


def test_the_top_level_help_says_any_pipecat_transport(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "on any Pipecat transport" in text and "relayed" in text
    assert "bots on Daily." not in text


# session create: what cannot work is refused before anything is sent.


def session_args(bey, **overrides):
    values = {
        "--avatar-id": "b9be11b8-89fb-4227-8f86-4a881393cbdb",
        "--room-url": "https://x.daily.co/r",
        "--token": "a-secret-token",
        "--api-key": BEY_KEY,
        "--api-url": bey.url,
    } | overrides
    args = ["session", "create"]
    for option, value in values.items():
        if value is not None:
            args += [option, value]
    return args


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"--room-url": "https://example.com/room"}, ["--room-url", "not a Daily room URL"]),
        ({"--room-url": "https://x.daily.co/a/b"}, ["--room-url", "not a Daily room URL"]),
        ({"--room-url": "https://x.daily.co:99999/r"}, ["--room-url", "port '99999'"]),
        ({"--api-url": "https://api.bey.dev:99999"}, ["--api-url", "port '99999'"]),
        ({"--api-url": "https://300.1.1.1"}, ["--api-url", "not an IPv4 address"]),
        ({"--api-url": "https://127.0.0.1:0"}, ["--api-url", "port is 0"]),
        ({"--api-url": "https://[::1"}, ["--api-url", "cannot be parsed"]),
        ({"--avatar-id": "  "}, ["--avatar-id is empty"]),
        ({"--token": ""}, ["--token is empty"]),
        ({"--token": None}, ["--token", "--daily-api-key", "DAILY_API_KEY"]),
        (
            {"--token": None, "--daily-api-key": DAILY_KEY, "--daily-api-url": "https://a..b/v1"},
            ["--daily-api-url", "not a host name"],
        ),
    ],
)
async def test_session_create_refuses_what_cannot_work_before_sending_anything(
    bey, clean_env, capsys, overrides, words
):
    code = await asyncio.to_thread(main, session_args(bey, **overrides))
    captured = capsys.readouterr()
    assert code == 1 and captured.out == ""
    (line,) = captured.err.strip().splitlines()
    assert line.startswith("pipecat-bey: error: "), line
    for word in words:
        assert word in line, line
    assert "may have started" not in line and "after the request was sent" not in line
    assert bey.requests == [], "nothing was sent"
    assert BEY_KEY not in line and DAILY_KEY not in line and "a-secret-token" not in line


# Signals: the emulator and session create end cleanly on SIGTERM as on Ctrl-C.


def test_the_emulator_stops_cleanly_on_sigterm(tmp_path):
    code = "import sys; from pipecat_bey.cli import main; sys.exit(main(sys.argv[1:]))"
    command = [*python(code), "emulator", "--port", "0", "--api-key", BEY_KEY]
    plan = [("Ctrl-C stops it", signal.SIGTERM)]
    status, elapsed, output = signal_as_it_goes(command, plan, tmp_path, timeout=60)
    assert status == 143, output
    assert elapsed < 5
    assert output.strip().splitlines()[-1] == "Beyond Presence API emulator stopped"
    assert "Traceback" not in output and BEY_KEY not in output


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_session_create_interrupted_mid_request_says_the_avatar_may_have_started(
    bey, clean_env, signum
):
    from pipecat_bey.testing.bey_emulator import Fault

    bey.script(Fault.hang(60))  # the answer never comes in time: the request is under way
    code = (
        "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "from pipecat_bey.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        *session_args(bey),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        # Sent once the API has the request (it records it on arrival).
        deadline = time.monotonic() + 120
        while not bey.requests:
            assert proc.returncode is None and time.monotonic() < deadline, "no request came"
            await asyncio.sleep(0.05)
        proc.send_signal(signum)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 128 + signum, err
    text = err.decode()
    assert "Traceback" not in text and out == b""
    (line,) = [line for line in text.splitlines() if line.startswith("pipecat-bey:")]
    how = "interrupted" if signum == signal.SIGINT else "terminated (SIGTERM)"
    assert line.startswith(f"pipecat-bey: session create {how}; ") and "may have started" in line
    assert BEY_KEY not in text and "a-secret-token" not in text
