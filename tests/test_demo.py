"""``pipecat-bey demo`` and ``examples/offline_bot.py``: the report, the summary, the exits.

Speech is the short clips of tests/data; the command line runs in a subprocess
(it configures logging for the whole process).
"""

import io
import json
import subprocess
import sys
import wave
from pathlib import Path

import pytest
from conftest import BEY_KEY, DAILY_KEY
from loguru import logger
from sigint import interrupt_once, python

from pipecat_bey import BeyParams
from pipecat_bey.cli.demo import DemoOptions, add_log_sink, print_outcome, run_demo, summary
from pipecat_bey.testing.audio import read_wav, speech_duration_s

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"

REPORT_KEYS = {
    "session_request",
    "session_response",
    "session_errors",
    "start_frame_passthrough_ms",
    "avatar_joined_s",
    "input_s",
    "avatar_received_speech_s",
    "first_audio_latency_ms",
    "interrupt_latency_ms",
    "audio_after_interrupt_s",
    "barge_in",
    "user_heard_bot_s",
    "user_heard_raw_tts_s",
    "avatar_spoke_after_interrupt_s",
    "user_heard_avatar_s",
    "out",
    "avatar_left_room",
    "fallback",
    "late_avatar_ejected",
}


async def demo(tmp_path, **options):
    options.setdefault("out", tmp_path / "avatar.wav")
    options.setdefault("avatar_join_delay_s", 0.3)
    options.setdefault("api_latency_s", 0.05)
    lines = []
    report = await run_demo(
        DemoOptions(bey_key=BEY_KEY, daily_key=DAILY_KEY, **options), progress=lines.append
    )
    return report, lines


# The report and the summary.


async def test_a_barge_in_run_is_reported_and_summarised_in_plain_words(tmp_path):
    report, lines = await demo(
        tmp_path, speech=DATA / "utterance_b.wav", barge_in=True, report=tmp_path / "r.json"
    )
    assert json.loads((tmp_path / "r.json").read_text()) == report
    assert REPORT_KEYS <= set(report)
    assert report["session_request"]["token"] == "***"
    assert report["session_errors"] == [] and report["fallback"] is False
    assert report["late_avatar_ejected"] is None
    assert report["interrupted"] is True and report["audio_after_interrupt_s"] == 0
    assert 0 < report["avatar_received_speech_s"] < report["input_speech_s"] - 1.0
    assert report["user_heard_avatar_s"] > 0 and report["user_heard_bot_s"] == 0
    assert report["avatar_left_room"] is True
    pcm, rate, _ = read_wav(report["out"])
    assert speech_duration_s(pcm, rate) == pytest.approx(report["avatar_received_speech_s"])
    assert any("barges in" in line for line in lines)

    text = summary(report)
    assert "StartFrame" not in text and "passthrough" not in text
    assert f"of the {report['input_speech_s']:.2f} s before the user barged in" in text
    assert "the barge-in cut the rest" in text
    assert "No speech from before the interruption reached the avatar after it." in text
    assert "0.0 s of earlier speech" not in text


async def test_the_relayed_avatar_reaches_the_user_as_it_said_it_and_stays_backstage(tmp_path):
    report, _ = await demo(tmp_path, relay=True, speech=DATA / "utterance_b.wav", barge_in=False)
    assert report["placement"] == "relay" and report["session_errors"] == []
    # The user hears the avatar's voice through the bot, as the avatar rendered it...
    assert report["relay_correlation"] >= 0.9
    assert report["user_heard_avatar_s"] == pytest.approx(
        report["avatar_rendered_speech_s"], abs=0.15
    )
    assert report["user_heard_raw_tts_s"] == 0 and report["user_heard_bot_s"] == 0
    # ...sees its face, in step with it (within two frames; the benchmarks measure it)...
    assert report["video_fps"] >= 20 and report["video_out_of_order"] == 0
    assert report["av_skew_ms_p95"] is not None and report["av_skew_ms_p95"] <= 80
    # ...and never meets it: the avatar's room is private, and gone at the end.
    assert report["avatar_in_user_room"] is False and report["backstage_rooms_left"] == []
    pcm, rate, _ = read_wav(report["out"])
    assert speech_duration_s(pcm, rate) > 0.5
    text = summary(report)
    assert "backstage" in text and f"What the user heard: {report['out']}" in text
    assert DemoOptions(relay=True).out_path.name == "user_heard.wav"


async def test_a_complete_delivery_reads_as_complete(tmp_path):
    """In a harsh room too: the avatar listens late, media is delayed and jittered."""
    report, _ = await demo(
        tmp_path,
        speech=DATA / "utterance_a.wav",
        barge_in=False,
        subscribe_delay_s=1.2,
        network_delay_s=0.08,
        jitter_s=0.02,
    )
    assert report["user_heard_raw_tts_s"] == 0, "the user heard the bot twice"
    # Speech against speech, not against the file's length (which has silence at the end).
    assert report["input_speech_s"] < report["input_s"]
    assert abs(report["avatar_received_speech_s"] - report["input_speech_s"]) <= 0.15
    text = summary(report)
    assert ": all of it." in text and "did not reach" not in text
    assert report["interrupted"] is False and "barge" not in text.lower()


async def demo_logged(tmp_path, **options):
    """The demo, with what it logs as it shows it (warnings and errors, one line each)."""
    log = io.StringIO()
    sink = add_log_sink(log)
    try:
        report, lines = await demo(tmp_path, **options)
    finally:
        logger.remove(sink)
    return report, lines, log.getvalue()


async def test_falling_back_to_the_bots_voice_is_not_a_failure(tmp_path, capsys):
    """The avatar comes after the service's join timeout: the bot speaks itself, exit 0."""
    report, lines, logged = await demo_logged(
        tmp_path,
        speech=DATA / "utterance_a.wav",
        barge_in=False,
        avatar_join_delay_s=1.6,
        bey_params=BeyParams(avatar_join_timeout_s=1.0),
    )
    assert report["fallback"] is True
    assert report["user_heard_bot_s"] >= 2.0
    assert report["late_avatar_ejected"] is True, "the late avatar joined, then was ejected"
    assert print_outcome(report) == 0
    printed = capsys.readouterr()
    assert "The bot spoke in its own voice instead." in printed.out
    assert "The avatar came later, and was ejected at the end." in printed.out
    assert f"The user heard the bot's own voice for {report['user_heard_bot_s']:.2f} s" in (
        printed.out
    )
    assert "error" not in printed.err

    # The failure is said once in all the demo printed: progress, log and summary.
    (error,) = report["session_errors"]
    everything = "\n".join(lines) + logged + printed.out + printed.err
    assert everything.count(error) == 1, everything

    # It is a failure only when the user heard nothing at all.
    silent = {**report, "user_heard_bot_s": 0.0, "user_heard_avatar_s": 0.0, "fallback": False}
    assert print_outcome(silent) == 1
    assert "heard nothing" in capsys.readouterr().err


def test_warnings_take_one_line_each():
    log = io.StringIO()
    sink = add_log_sink(log)
    try:
        logger.warning("first")
        logger.warning("second")
    finally:
        logger.remove(sink)
    assert log.getvalue() == "WARNING: first\nWARNING: second\n"


# Files, checked before anything runs.


def empty_wav(path, frames=b""):
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(frames)
    return path


async def test_a_wav_without_samples_is_refused_before_anything_runs(tmp_path):
    lines = []
    with pytest.raises(ValueError, match=r"empty\.wav: .*no audio samples"):
        await run_demo(
            DemoOptions(speech=empty_wav(tmp_path / "empty.wav"), out=tmp_path / "out.wav"),
            progress=lines.append,
        )
    assert not lines and not (tmp_path / "out.wav").exists()


@pytest.mark.parametrize("case", ["header only", "truncated", "out directory", "report directory"])
def test_the_command_refuses_unusable_files_in_one_line(tmp_path, case):
    arguments = ["demo", "--out", str(tmp_path / "out.wav")]
    if case == "header only":
        arguments += ["--input", str(empty_wav(tmp_path / "speech.wav"))]
    elif case == "truncated":
        speech = tmp_path / "speech.wav"
        speech.write_bytes((DATA / "utterance_a.wav").read_bytes()[:30])
        arguments += ["--input", str(speech)]
    elif case == "out directory":
        arguments[2] = str(tmp_path / "missing" / "out.wav")
    else:
        arguments += ["--report", str(tmp_path / "missing" / "report.json")]
    result = subprocess.run(
        [sys.executable, "-m", "pipecat_bey.cli", *arguments],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stdout == "", "nothing ran"
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0].startswith("pipecat-bey: error: "), result.stderr
    named = {
        "header only": "speech.wav",
        "truncated": "speech.wav",
        "out directory": "missing",
        "report directory": "missing",
    }[case]
    assert named in errors[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out.wav").exists()


# Ctrl-C.


def test_one_ctrl_c_ends_the_demo_at_once_and_cleanly(tmp_path):
    arguments = ["demo", "--input", str(DATA / "utterance_b.wav"), "--out", "out.wav"]
    code = f"import sys; from pipecat_bey.cli import main; sys.exit(main({arguments!r}))"
    status, elapsed, out, err = interrupt_once(python(code), "room", "stdout", tmp_path)
    assert status == 130, err
    assert elapsed < 10
    assert "Traceback" not in out + err
    assert err.count("interrupted") == 1, err
    assert "Summary" not in out


def test_one_ctrl_c_ends_the_offline_bot_at_once_and_cleanly(tmp_path):
    code = (
        "import runpy; "
        f"runpy.run_path({str(ROOT / 'examples' / 'offline_bot.py')!r}, run_name='__main__')"
    )
    status, elapsed, out, err = interrupt_once(python(code), "asks something", "stderr", tmp_path)
    assert status == 130, err
    assert elapsed < 10
    assert "Traceback" not in out + err
    assert "ejected the avatar" in err
    assert err.count("interrupted") == 1, err
    assert "| DEBUG" not in err, "the example logs at INFO"


async def test_speech_beyond_what_is_held_is_dropped_said_once_and_explained(tmp_path):
    """A long answer while the avatar joins: one warning, and the summary says why."""
    report, _, logged = await demo_logged(
        tmp_path,
        speech=DATA / "utterance_b.wav",
        barge_in=False,
        avatar_join_delay_s=1.0,
        bey_params=BeyParams(max_held_audio_s=1.0),
    )
    assert report["held_speech_dropped_s"] > 2.0
    assert logged.count("max_held_audio_s") == 1, logged
    assert "the oldest was dropped" in summary(report)
    assert report["avatar_received_speech_s"] < report["input_speech_s"] - 2.0
