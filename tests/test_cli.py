"""The pipecat-bey command: help, clear one-line errors, sessions by hand."""

import asyncio
import json
import subprocess
import sys

import pytest
from conftest import BEY_KEY, DAILY_KEY

from pipecat_bey.cli import main


@pytest.mark.parametrize("args", [[], ["demo"], ["emulator"], ["session"], ["session", "create"]])
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
