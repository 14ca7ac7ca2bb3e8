"""``pipecat-bey check``: the steps, the hints, the clean-up, the recording.

Most runs go in process against the local stand-ins of conftest (a fast world),
so the test can look into the simulated Daily afterwards: which rooms are left,
whether the avatar is still in one. The command line runs in subprocesses (it
configures logging for the whole process), once in the default realistic world.
"""

import asyncio
import json
import os
import re
import signal
import subprocess
import time
import warnings
from pathlib import Path

import pytest
from conftest import BEY_KEY, DAILY_KEY, SECRETS
from sigint import interrupt_once, python, python_watching_stand_ins, signal_as_it_goes, stand_ins

import pipecat_bey.cli.check.avatar as check_module
from pipecat_bey.cli.check import (
    CLEANUP_TIMEOUT_S,
    MEASUREMENTS,
    STEPS,
    CheckOptions,
    run_check,
    run_offline_check,
)
from pipecat_bey.cli.check.recording import (
    load_recording,
    load_world,
    load_world_option,
    world_settings_from_recording,
)
from pipecat_bey.testing.daily_sim import REALISTIC, AvatarBehaviour, DailySimulation

# A fast, kind world: the avatar joins, shows its face and listens within a fraction of a second.
FAST_WORLD = {"join_delay_s": 0.2, "subscribe_delay_s": 0.1}

STEP_KEYS = {"name", "ok", "seconds", "hint"}

# The throwaway keys of an offline run in a subprocess are not known to the test; their
# shapes are. Daily meeting tokens are JWTs.
SECRET_SHAPES = re.compile(r"bey-offline-|daily-offline-|eyJ[\w-]+\.[\w-]+\.[\w-]+")


def options(bey, daily, **overrides):
    """Check options pointed at conftest's stand-ins, with their keys."""
    values = {
        "api_key": BEY_KEY,
        "daily_api_key": DAILY_KEY,
        "api_url": bey.url,
        "daily_api_url": daily.rest_url,
        "timeout_s": 5.0,
    }
    return CheckOptions(**(values | overrides))


async def checked(opts, lines):
    return await run_check(opts, progress=lines.append)


def step(recording, name):
    return next(s for s in recording["steps"] if s["name"] == name)


def assert_no_secret(*texts):
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


def cli(*arguments):
    """The command in a Python child that takes Ctrl-C as KeyboardInterrupt."""
    code = "import sys; from pipecat_bey.cli import main; sys.exit(main(sys.argv[1:]))"
    return [*python(code), *arguments]


def child_env(**extra):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **extra}
    for name in ("BEY_API_URL", "DAILY_API_URL", "BEY_AVATAR_ID"):
        env.pop(name, None)
    return env


# Every step passes.


def test_the_command_passes_offline_and_records_every_timing(tmp_path):
    """The default offline world (realistic timings), through the command line."""
    fake_keys = {"BEY_API_KEY": "bey-env-key-never-used", "DAILY_API_KEY": "daily-env-key-unused"}
    record = tmp_path / "r.json"
    result = subprocess.run(
        cli("check", "--offline", "--record", str(record)),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=child_env(**fake_keys),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and "ᓚᘏᗢ" not in result.stdout
    lines = [line for line in result.stdout.splitlines() if re.match(r"\[ *\d+\.\d\ds\] ", line)]
    labels = ["keys", "room", "bot joined", "session created", "avatar joined", "avatar camera"]
    labels += ["avatar spoke", "interrupt", "avatar ejected", "room deleted"]
    for line, label in zip(lines, labels, strict=False):
        assert re.search(rf"\] ok +{label}: ", line), line
    assert "check passed" in result.stdout

    text = record.read_text()
    recording = json.loads(text)
    assert [s["name"] for s in recording["steps"]] == list(STEPS)
    assert all(STEP_KEYS <= set(s) and s["ok"] and s["hint"] is None for s in recording["steps"])
    assert recording["ok"] is True and recording["interrupted"] is False
    assert recording["offline"] is True and recording["world"] == dict(REALISTIC)
    assert recording["bey_key_valid"] and recording["daily_key_valid"]
    assert recording["avatar_token_valid"] is True
    assert recording["ejected"] is True and recording["room_deleted"] is True
    assert 0 < recording["session_created_s"] < 5
    # The realistic world's avatar joins 3 s after the session, shows its face as it
    # starts listening (1 s, less its camera's 0.2 s lead).
    assert recording["avatar_joined_s"] == pytest.approx(REALISTIC["join_delay_s"], abs=0.5)
    assert recording["avatar_video_s"] == pytest.approx(0.8, abs=0.3)
    # There and back through the network (0.08 s each way) and the avatar's rendering.
    assert 160 < recording["first_avatar_speech_ms"] < 2000
    assert 0 <= recording["interrupt_silence_ms"] < 1000

    # No key or token anywhere: neither the throwaway ones nor the environment's.
    for output in (text, result.stdout, result.stderr):
        assert not SECRET_SHAPES.search(output), output
        assert not any(key in output for key in fake_keys.values())


async def test_a_fast_run_prints_each_step_as_it_happens_and_leaves_nothing(
    bey, daily, clean_env, tmp_path
):
    daily.attach_bey(bey, AvatarBehaviour(join_delay_s=0.2))
    lines = []
    record = tmp_path / "r.json"
    recording = await checked(options(bey, daily, record=record), lines)

    assert recording["ok"], lines
    assert [s["name"] for s in recording["steps"]] == list(STEPS)
    assert json.loads(record.read_text()) == recording
    # One line per step, stamped with the time since the start, in order.
    stamps = [float(re.match(r"\[ *(\d+\.\d+)s\]", line).group(1)) for line in lines]
    assert stamps == sorted(stamps)
    assert sum(" ok " in line for line in lines) == len(STEPS)
    for key in MEASUREMENTS:
        assert isinstance(recording[key], float) and recording[key] >= 0, key
    assert recording["first_avatar_speech_ms"] > 0
    assert recording["avatar_joined_s"] == pytest.approx(0.2, abs=0.15)

    # What the avatar heard is what was sent, and it was told to stop.
    (avatar,) = daily.avatars
    assert avatar.speech_received_s() > check_module.SPOKEN_BEFORE_INTERRUPT_S
    assert len(avatar.interrupts) == 1
    assert not avatar.in_room and avatar.removed_reason
    assert daily.rooms == {}, "the room the check created is deleted"
    assert_no_secret("\n".join(lines), record.read_text())


async def test_the_offline_runner_takes_a_world(tmp_path):
    lines = []
    recording = await run_offline_check(
        CheckOptions(timeout_s=5.0),
        world=FAST_WORLD,
        progress=lines.append,
        bey_key=BEY_KEY,
        daily_key=DAILY_KEY,
    )
    assert recording["ok"], lines
    assert recording["world"] == FAST_WORLD and recording["offline"] is True
    assert recording["avatar_video_s"] == pytest.approx(0.1, abs=0.1)
    assert lines[0].startswith("offline: ")
    assert_no_secret("\n".join(lines), json.dumps(recording))


# Failures name the fix, and the clean-up still happens.


async def test_a_wrong_bey_key_names_the_variable_and_cleans_up(bey, daily, clean_env):
    daily.attach_bey(bey, AvatarBehaviour(join_delay_s=0.2))
    lines = []
    recording = await checked(options(bey, daily, api_key="not-the-key"), lines)

    assert not recording["ok"]
    failed = step(recording, "session_created")
    assert not failed["ok"] and "BEY_API_KEY" in failed["hint"]
    assert "403" in failed["detail"]
    assert recording["bey_key_valid"] is False and recording["session_id"] is None
    assert bey.sessions == [] and daily.avatars == []
    assert recording["ejected"] is True and recording["room_deleted"] is True
    assert daily.rooms == {}
    assert any(line.split("] ")[1].startswith("FAIL session created:") for line in lines)
    assert "Fix: " in next(line for line in lines if "FAIL" in line)
    assert "not-the-key" not in "\n".join(lines) + json.dumps(recording)


async def test_a_wrong_daily_key_names_the_variable(bey, daily, clean_env):
    lines = []
    recording = await checked(options(bey, daily, daily_api_key="not-the-key"), lines)
    failed = step(recording, "room")
    assert not failed["ok"] and "DAILY_API_KEY" in failed["hint"] and "401" in failed["detail"]
    assert recording["daily_key_valid"] is False
    assert [s["name"] for s in recording["steps"]] == ["keys", "room"], "nothing to clean up"
    assert daily.rooms == {} and bey.sessions == []


async def test_missing_keys_are_named_before_anything_runs(bey, daily, clean_env):
    clean_env.setenv("BEY_API_KEY", "")  # empty means unset
    lines = []
    recording = await checked(
        CheckOptions(api_url=bey.url, daily_api_url=daily.rest_url, daily_api_key="  "), lines
    )
    (keys,) = recording["steps"]
    assert not keys["ok"]
    assert "BEY_API_KEY" in keys["detail"] and "DAILY_API_KEY" in keys["detail"]
    assert "--api-key" in keys["hint"] and "--daily-api-key" in keys["hint"]
    assert daily.rooms == {} and bey.sessions == []


async def test_an_avatar_that_never_joins_times_out_and_is_ejected(bey, daily, clean_env):
    daily.attach_bey(bey, AvatarBehaviour(never_join=True))
    lines = []
    started = time.monotonic()
    recording = await checked(options(bey, daily, timeout_s=1.0), lines)
    assert time.monotonic() - started < 10

    failed = step(recording, "avatar_joined")
    assert not failed["ok"] and "within 1 s" in failed["detail"] and "--timeout" in failed["hint"]
    assert recording["avatar_joined_s"] is None and recording["avatar_token_valid"] is None
    assert len(bey.sessions) == 1
    assert step(recording, "ejected")["ok"] and recording["room_deleted"] is True
    assert daily.rooms == {}


async def test_an_avatar_that_never_speaks_is_named_and_ejected(bey, daily, clean_env):
    # Its face shows at once, but it never subscribes to the bot's track.
    daily.attach_bey(
        bey, AvatarBehaviour(join_delay_s=0.1, subscribe_delay_s=600, camera_lead_s=600)
    )
    lines = []
    recording = await checked(options(bey, daily, timeout_s=1.0), lines)

    failed = step(recording, "avatar_spoke")
    assert not failed["ok"] and "did not speak" in failed["detail"]
    assert "bey-custom-track" in failed["hint"]
    assert recording["avatar_video_s"] is not None and recording["first_avatar_speech_ms"] is None
    (avatar,) = daily.avatars
    assert avatar.removed_reason == "ejected" and not avatar.in_room
    assert daily.rooms == {}


async def test_an_avatar_that_speaks_past_the_interrupt_fails_the_step(
    bey, daily, clean_env, monkeypatch
):
    # It holds 1.5 s of speech before it says it, and the message it gets is not
    # "interrupt", so it says all it holds.
    daily.attach_bey(bey, AvatarBehaviour(join_delay_s=0.1, playback_delay_s=1.5))
    monkeypatch.setattr(check_module, "INTERRUPT_MESSAGE", "not-an-interrupt")
    lines = []
    recording = await checked(options(bey, daily), lines)

    failed = step(recording, "interrupt")
    assert not failed["ok"] and "past" in failed["detail"] and failed["hint"]
    assert recording["interrupt_silence_ms"] > check_module.INTERRUPT_LIMIT_MS
    assert recording["first_avatar_speech_ms"] > 1500
    assert recording["ejected"] is True and daily.rooms == {}


async def test_a_room_url_that_does_not_exist_names_the_option(bey, daily, clean_env):
    lines = []
    url = f"https://{daily.domain}.daily.co/no-such-room"
    recording = await checked(options(bey, daily, room_url=url), lines)

    failed = step(recording, "room")
    assert not failed["ok"] and "404" in failed["detail"] and "--room-url" in failed["hint"]
    assert recording["room_created"] is False and recording["room_deleted"] is None
    assert bey.sessions == [] and daily.rooms == {}


async def test_a_room_of_yours_is_used_and_kept_and_the_avatar_ejected(bey, daily, clean_env):
    room = daily.create_room("yours", private=True)
    daily.attach_bey(bey, AvatarBehaviour(join_delay_s=0.1))
    lines = []
    recording = await checked(options(bey, daily, room_url=room.url), lines)

    assert recording["ok"], lines
    assert recording["room_created"] is False and recording["room_deleted"] is None
    assert [s["name"] for s in recording["steps"]][-1] == "ejected"
    assert daily.rooms == {"yours": room}, "a room the check did not create is kept"
    assert [a.in_room for a in daily.avatars] == [False]


# Ctrl-C: the clean-up runs, then the cancellation goes on.


async def test_cancelling_still_ejects_and_deletes_the_room(bey, daily, clean_env, tmp_path):
    daily.attach_bey(bey, AvatarBehaviour(join_delay_s=0.1))
    lines = []
    camera_on = asyncio.Event()

    def progress(line):
        lines.append(line)
        if "avatar camera:" in line:
            camera_on.set()

    record = tmp_path / "r.json"
    task = asyncio.create_task(run_check(options(bey, daily, record=record), progress=progress))
    await asyncio.wait_for(camera_on.wait(), 30)
    (avatar,) = daily.avatars
    assert avatar.in_room
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert not avatar.in_room and avatar.removed_reason == "ejected"
    assert daily.rooms == {}
    recording = json.loads(record.read_text())
    assert recording["interrupted"] is True and recording["ok"] is False
    assert recording["ejected"] is True and recording["room_deleted"] is True
    assert any("interrupted (Ctrl-C): cleaning up" in line for line in lines)
    assert not any("check passed" in line or "check failed" in line for line in lines)


def test_one_ctrl_c_ends_the_command_at_once_and_deletes_the_room(tmp_path):
    world = tmp_path / "world.json"
    world.write_text(json.dumps({**FAST_WORLD, "rest_latency_s": 0.05}))
    record = tmp_path / "r.json"
    status, elapsed, out, err = interrupt_once(
        cli("check", "--offline", "--world", str(world), "--record", str(record)),
        lambda line: re.match(r"\[ *\d+\.\d\ds\] ok +keys: ", line) is not None,
        "stdout",
        tmp_path,
        env=child_env(),
    )
    assert status == 130, out + err
    assert elapsed < 10
    assert "Traceback" not in out + err
    assert err.strip().splitlines()[-1] == "pipecat-bey: check interrupted"
    # The room creation had begun with the first line: it is deleted.
    assert re.search(r"\] ok +room deleted: ", out), out
    recording = json.loads(record.read_text())
    assert recording["interrupted"] is True and recording["room_deleted"] is True
    assert "check passed" not in out


# Signals in every phase: the avatar is ejected and the room deleted, whatever comes when.

# Each REST call of the simulated Daily (the eject, the room's deletion) takes a moment, so
# that a signal sent as the clean-up is seen to start comes while it is under way.
SLOW_REST_WORLD = {**FAST_WORLD, "rest_latency_s": 0.3}

# A signal ends a run within the clean-up's own bounds: each of its actions (eject, the
# bot's leaving, the room's creation if under way, its deletion) is bounded in time.
CLEANUP_BOUND_S = 6 * CLEANUP_TIMEOUT_S


def watched_cli(*arguments):
    """The command in a Python child that takes Ctrl-C, saying what the simulated Daily holds."""
    code = "import sys; from pipecat_bey.cli import main; sys.exit(main(sys.argv[1:]))"
    return [*python_watching_stand_ins(code), *arguments]


def line_of(label):
    """A test of a line: the step ``label`` passed."""
    return lambda line: re.search(rf"\] ok +{label}: ", line) is not None


def signalled_check(tmp_path, plan, world=SLOW_REST_WORLD):
    path = tmp_path / "world.json"
    path.write_text(json.dumps(world))
    record = tmp_path / "r.json"
    status, elapsed, output = signal_as_it_goes(
        watched_cli("check", "--offline", "--world", str(path), "--record", str(record)),
        plan,
        tmp_path,
        env=child_env(),
        timeout=CLEANUP_BOUND_S,
    )
    return status, elapsed, output, json.loads(record.read_text())


def assert_cleaned_up(output, recording):
    """The stand-ins saw the room deleted and the avatar ejected; the check says so too."""
    seen = stand_ins(output)
    assert seen["rooms"] == [], f"the check's room was left: {output[-3000:]}"
    for avatar in seen["avatars"]:
        assert not avatar["in_room"], f"an avatar was left in its room: {output[-3000:]}"
        # One that came in time was ejected; one still on its way found no room to join.
        assert avatar["removed"] in ("ejected", None), output[-3000:]
    assert recording["ok"] is False
    assert recording["room_deleted"] is True, output[-3000:]
    assert recording["ejected"] in (True, None), output[-3000:]  # None: no session asked for
    assert re.search(r"\] ok +room deleted: ", output), output[-3000:]
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output[-3000:]


PHASES = {
    "the bot joining": line_of("room"),
    "the session starting": line_of("bot joined"),
    "the avatar speaking": line_of("avatar spoke"),
    "the clean-up": line_of("interrupt"),
}


# Each case is a whole offline check in a child process: Ctrl-C in the clean-up, where
# signals did harm, runs by default; every other case with -m slow (CI runs them).
SIGNAL_CASES = [
    pytest.param(
        phase,
        signum,
        id=f"{phase}-{signum.name}",
        marks=() if (phase, signum) == ("the clean-up", signal.SIGINT) else pytest.mark.slow,
    )
    for phase in PHASES
    for signum in (signal.SIGINT, signal.SIGTERM)
]


@pytest.mark.parametrize(("phase", "signum"), SIGNAL_CASES)
def test_a_signal_in_any_phase_ejects_deletes_and_exits_cleanly(tmp_path, phase, signum):
    status, elapsed, output, recording = signalled_check(tmp_path, [(PHASES[phase], signum)])
    assert status == 128 + signum, output[-3000:]
    assert elapsed < CLEANUP_BOUND_S
    assert_cleaned_up(output, recording)
    if phase != "the clean-up":  # there, it may come once the recording is written
        name = "Ctrl-C" if signum == signal.SIGINT else "SIGTERM"
        assert f"interrupted ({name})" in output and recording["interrupted"] is True
    how = "interrupted" if signum == signal.SIGINT else "terminated (SIGTERM)"
    assert output.strip().splitlines()[-1] == f"pipecat-bey: check {how}", output[-3000:]
    if phase == "the avatar speaking":
        assert [a["removed"] for a in stand_ins(output)["avatars"]] == ["ejected"]


CLEAN_UP_MOMENTS = {
    # The avatar is being ejected.
    "as the clean-up starts": "cleaning up",
    # The bot is leaving, the room being deleted.
    "once the avatar is ejected": line_of("avatar ejected"),
    # Everything is done; the process is exiting.
    "as the check exits": "pipecat-bey: check interrupted",
}


@pytest.mark.parametrize(
    "moment",
    [
        pytest.param(m, marks=() if m == "once the avatar is ejected" else pytest.mark.slow)
        for m in CLEAN_UP_MOMENTS
    ],
)
def test_a_second_ctrl_c_during_the_clean_up_does_not_cut_it_short(tmp_path, moment):
    plan = [(line_of("avatar spoke"), signal.SIGINT), (CLEAN_UP_MOMENTS[moment], signal.SIGINT)]
    status, elapsed, output, recording = signalled_check(tmp_path, plan)
    assert status == 130, output[-3000:]
    assert elapsed < CLEANUP_BOUND_S
    assert_cleaned_up(output, recording)
    assert [a["removed"] for a in stand_ins(output)["avatars"]] == ["ejected"]
    assert re.search(r"\] ok +avatar ejected: ejected the avatar", output), output[-3000:]
    assert not SECRET_SHAPES.search(output), output


@pytest.mark.slow  # a child process; CI runs it (-m slow)
def test_ctrl_c_pressed_over_and_over_during_the_clean_up_still_finishes_it(tmp_path):
    path = tmp_path / "world.json"
    path.write_text(json.dumps(SLOW_REST_WORLD))
    record = tmp_path / "r.json"
    status, _, output = signal_as_it_goes(
        watched_cli("check", "--offline", "--world", str(path), "--record", str(record)),
        [(line_of("avatar spoke"), signal.SIGINT), ("cleaning up", signal.SIGINT)],
        tmp_path,
        env=child_env(),
        timeout=CLEANUP_BOUND_S,
        again_every=0.05,
    )
    assert status == 130, output[-3000:]
    assert_cleaned_up(output, json.loads(record.read_text()))
    assert [a["removed"] for a in stand_ins(output)["avatars"]] == ["ejected"]


@pytest.mark.slow  # a child process; CI runs it (-m slow)
def test_sigterm_then_ctrl_c_during_the_clean_up_exits_as_terminated(tmp_path):
    plan = [(line_of("avatar spoke"), signal.SIGTERM), ("cleaning up", signal.SIGINT)]
    status, _, output, recording = signalled_check(tmp_path, plan)
    assert status == 143, output[-3000:]
    assert_cleaned_up(output, recording)
    assert "still cleaning up" in output  # the second signal is answered, not obeyed


async def test_cancelling_twice_during_the_clean_up_still_finishes_it(
    bey, daily, clean_env, tmp_path
):
    """In process: a second cancellation while the avatar is being ejected."""
    daily.attach_bey(bey, AvatarBehaviour(join_delay_s=0.1))
    daily.rest_latency_s = 0.3
    lines = []
    camera_on = asyncio.Event()
    cleaning = asyncio.Event()

    def progress(line):
        lines.append(line)
        if "avatar camera:" in line:
            camera_on.set()
        if "cleaning up" in line:
            cleaning.set()

    task = asyncio.create_task(run_check(options(bey, daily), progress=progress))
    await asyncio.wait_for(camera_on.wait(), 30)
    task.cancel()
    await asyncio.wait_for(cleaning.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (avatar,) = daily.avatars
    assert not avatar.in_room and avatar.removed_reason == "ejected"
    assert daily.rooms == {}
    assert any("again: still cleaning up" in line for line in lines), lines


async def test_a_cancellation_during_the_clean_up_of_a_failed_check_still_finishes_it(
    bey, daily, clean_env
):
    """The avatar never joined; Ctrl-C comes as the check cleans up after that failure."""
    daily.attach_bey(bey, AvatarBehaviour(never_join=True))
    daily.rest_latency_s = 0.3
    lines = []
    failed = asyncio.Event()

    def progress(line):
        lines.append(line)
        if "FAIL avatar joined" in line:
            failed.set()

    task = asyncio.create_task(run_check(options(bey, daily, timeout_s=1.0), progress=progress))
    await asyncio.wait_for(failed.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert daily.rooms == {}, lines
    assert any("while cleaning up: finishing the clean-up" in line for line in lines), lines
    assert any(re.search(r"ok +room deleted", line) for line in lines), lines


# The recording as the simulated world's settings.


async def test_a_recording_loads_as_world_settings_and_drives_a_run(tmp_path):
    record = tmp_path / "r.json"
    first = await run_offline_check(
        CheckOptions(timeout_s=5.0, record=record),
        world=FAST_WORLD,
        progress=lambda line: None,
        bey_key=BEY_KEY,
        daily_key=DAILY_KEY,
    )
    settings = load_recording(record)
    assert all(isinstance(value, float) for value in settings.values())
    assert settings["join_delay_s"] == pytest.approx(first["avatar_joined_s"])
    assert settings["subscribe_delay_s"] == pytest.approx(
        first["avatar_video_s"] + REALISTIC["camera_lead_s"]
    )
    assert settings["join_latency_s"] == pytest.approx(first["bot_joined_s"])
    # The network guesses are left as they were.
    for key in ("network_delay_s", "jitter_s", "app_message_delay_s", "subscribe_latency_s"):
        assert settings[key] == REALISTIC[key]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every key is one the simulation knows
        simulation = DailySimulation.from_settings(settings)
    assert simulation.default_behaviour.join_delay_s == pytest.approx(first["avatar_joined_s"])

    # --world takes the recording as it is.
    assert load_world(record) == settings
    second = await run_offline_check(
        CheckOptions(timeout_s=5.0),
        world=load_world(record),
        progress=lambda line: None,
        bey_key=BEY_KEY,
        daily_key=DAILY_KEY,
    )
    assert second["ok"]
    assert second["avatar_joined_s"] == pytest.approx(first["avatar_joined_s"], abs=0.15)


def test_the_playback_delay_is_the_first_speech_less_the_network_both_ways():
    recording = {"steps": [], "first_avatar_speech_ms": 500.0, "avatar_joined_s": None}
    settings = world_settings_from_recording(recording)
    one_way = REALISTIC["network_delay_s"] + REALISTIC["jitter_s"] / 2
    assert settings["playback_delay_s"] == pytest.approx(0.5 - 2 * one_way)
    assert settings["join_delay_s"] == REALISTIC["join_delay_s"], "not measured: the guess stays"
    fast = world_settings_from_recording({"steps": [], "first_avatar_speech_ms": 10.0})
    assert fast["playback_delay_s"] == 0.0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not a JSON file"),
        ("[1, 2]", "not a recording"),
        ('{"steps": [], "avatar_joined_s": "soon"}', "avatar_joined_s is not a number"),
        ('{"steps": [], "avatar_joined_s": -1}', "avatar_joined_s is not a finite number"),
    ],
)
def test_what_is_not_a_recording_is_refused_naming_the_file(tmp_path, content, message):
    path = tmp_path / "r.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as caught:
        load_recording(path)
    assert str(caught.value).startswith(str(path))


def test_a_world_file_names_unknown_settings(tmp_path):
    path = tmp_path / "world.json"
    path.write_text('{"join_delay_s": 1, "join_dealy_s": 2}')
    with pytest.raises(ValueError, match="join_dealy_s"):
        load_world(path)
    path.write_text('{"never_join": true}')
    assert load_world(path) == {"never_join": True}


# The command line.


def test_the_command_refuses_bad_options(tmp_path):
    world = tmp_path / "world.json"
    world.write_text("{}")
    usage = subprocess.run(
        cli("check", "--world", str(world)), capture_output=True, text=True, timeout=60
    )
    assert usage.returncode == 2 and "--world needs --offline" in usage.stderr
    missing = subprocess.run(
        cli("check", "--offline", "--record", str(tmp_path / "nowhere" / "r.json")),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 1 and missing.stdout == ""
    (line,) = missing.stderr.strip().splitlines()
    assert line.startswith("pipecat-bey: error: --record ") and "nowhere" in line


def test_a_failed_check_exits_1_after_cleaning_up(tmp_path):
    world = tmp_path / "world.json"
    world.write_text(json.dumps({"never_join": True}))
    result = subprocess.run(
        cli("check", "--offline", "--world", str(world), "--timeout", "1"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=child_env(),
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert re.search(r"\] FAIL avatar joined: .*Fix: ", result.stdout)
    assert re.search(r"\] ok +avatar ejected: ", result.stdout)
    assert re.search(r"\] ok +room deleted: ", result.stdout)
    assert "check failed at avatar joined" in result.stdout
    assert "Traceback" not in result.stderr


# --world: a file, or the settings themselves as JSON, as the README shows them.


def test_the_world_can_be_given_inline_as_the_readme_shows_it(tmp_path):
    result = subprocess.run(
        cli("check", "--offline", "--world", '{"never_join": true}', "--timeout", "1"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=child_env(),
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert re.search(r"\] FAIL avatar joined: ", result.stdout), result.stdout + result.stderr
    assert re.search(r"\] ok +room deleted: ", result.stdout)


@pytest.mark.parametrize(
    ("world", "words"),
    [
        ("never_join", ["neither a file", "nor a JSON object", "join_delay_s"]),
        ("{never_join: true}", ["taken as inline JSON", "not valid JSON", "quote it"]),
        ('{"join_dealy_s": 2}', ["--world (inline JSON)", "unknown setting", "join_dealy_s"]),
        ("[1, 2]", ["--world (inline JSON)", "expected a JSON object"]),
        ("DIRECTORY", ["is a directory", "--record file"]),
    ],
)
def test_a_world_that_is_neither_a_file_nor_json_says_which_was_meant(tmp_path, world, words):
    if world == "DIRECTORY":
        world = str(tmp_path)
    result = subprocess.run(
        cli("check", "--offline", "--world", world),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=child_env(),
    )
    assert result.returncode == 1 and result.stdout == "", "nothing ran"
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("pipecat-bey: error: --world"), line
    for word in words:
        assert word in line, line


def test_load_world_option_reads_files_and_inline_json(tmp_path):
    path = tmp_path / "world.json"
    path.write_text('{"join_delay_s": 1}')
    assert load_world_option(str(path)) == ({"join_delay_s": 1}, path)
    assert load_world_option('  {"never_join": true} ') == ({"never_join": True}, None)
    inline, source = load_world_option(json.dumps({"steps": [], "avatar_joined_s": 2.5}))
    assert inline["join_delay_s"] == 2.5 and source is None


# Output paths and URLs: refused before anything runs (no room, no session).


def unwritable_paths(tmp_path):
    """Paths no one can write to, root included: a read-only place, below a file, nowhere."""
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    return {
        # Nothing can be created in /proc or /sys, whoever asks.
        "read-only (/proc)": (Path("/proc") / "pipecat-bey-test.json", "cannot be written"),
        "read-only (/sys)": (Path("/sys") / "pipecat-bey-test.json", "cannot be written"),
        "below a file": (a_file / "r.json", "is a file, not a directory"),
        "a missing directory": (tmp_path / "missing" / "r.json", "mkdir -p"),
        "a directory": (tmp_path, "is a directory"),
    }


@pytest.mark.parametrize(
    "case",
    ["read-only (/proc)", "read-only (/sys)", "below a file", "a missing directory", "a directory"],
)
@pytest.mark.parametrize("offline", [True, False], ids=["offline", "with keys"])
def test_an_unwritable_record_is_refused_before_anything_runs(tmp_path, case, offline):
    path, words = unwritable_paths(tmp_path)[case]
    arguments = ["check", "--record", str(path)]
    if offline:
        arguments.append("--offline")
    else:
        # Never reached: were anything sent, it would go to a closed port on this machine.
        arguments += ["--api-key", "bey-key-never-sent", "--daily-api-key", "daily-key-never-sent"]
        arguments += ["--api-url", "http://127.0.0.1:9", "--daily-api-url", "http://127.0.0.1:9"]
    result = subprocess.run(
        cli(*arguments), cwd=tmp_path, capture_output=True, text=True, timeout=60, env=child_env()
    )
    assert result.returncode == 1 and result.stdout == "", "nothing ran: " + result.stdout
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"pipecat-bey: error: --record {path}: "), line
    assert words in line, line
    assert "Traceback" not in result.stderr


def test_the_record_may_not_overwrite_the_world_it_runs_in(tmp_path):
    world = tmp_path / "check.json"
    world.write_text(json.dumps(FAST_WORLD))
    result = subprocess.run(
        cli(
            "check",
            "--offline",
            "--world",
            str(world),
            "--record",
            str(tmp_path / "." / "check.json"),
        ),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=child_env(),
    )
    assert result.returncode == 1 and result.stdout == ""
    assert "same file as --world" in result.stderr and "give --record another path" in result.stderr
    assert json.loads(world.read_text()) == FAST_WORLD


@pytest.mark.parametrize(
    ("option", "url", "words"),
    [
        ("--api-url", "https://api.bey.dev:99999", ["port '99999'", "--api-url or BEY_API_URL"]),
        ("--api-url", "https://300.1.1.1", ["not an IPv4 address", "--api-url"]),
        ("--daily-api-url", "https://127.0.0.1:0/v1", ["port is 0", "--daily-api-url"]),
        ("--daily-api-url", "https://a..b/v1", ["not a host name", "--daily-api-url"]),
    ],
)
def test_a_url_that_cannot_be_requested_fails_the_keys_step(tmp_path, option, url, words):
    """Refused before any request: no room is created, no session asked for."""
    urls = {"--api-url": "http://127.0.0.1:9", "--daily-api-url": "http://127.0.0.1:9"}
    urls[option] = url
    arguments = [
        "check",
        "--api-key",
        "bey-key-never-sent",
        "--daily-api-key",
        "daily-key-never-sent",
    ]
    for name, value in urls.items():
        arguments += [name, value]
    result = subprocess.run(
        cli(*arguments), cwd=tmp_path, capture_output=True, text=True, timeout=60, env=child_env()
    )
    assert result.returncode == 1, result.stdout + result.stderr
    steps = [line for line in result.stdout.splitlines() if re.match(r"\[ *\d+\.\d\ds\] ", line)]
    assert re.search(r"\] FAIL keys: .*cannot be requested", steps[0]), result.stdout
    for word in words:
        assert word in steps[0], steps[0]
    assert "check failed at keys" in result.stdout
    assert not any(re.search(r"\] (ok|FAIL) +room", line) for line in steps), result.stdout
