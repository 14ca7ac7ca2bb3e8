"""``pipecat-bey demo --transport livekit``: a real pipeline, real LiveKit server, LiveKit's avatar.

Each run is the command as a user types it (it runs itself again in a network namespace of
its own), judged on its report and on what the avatar received (``--out``):

- without a barge-in: the avatar receives the speech whole, first words included (its
  speech correlates >= 0.9 with what the bot said, and lasts as long within 0.15 s); the
  user hears one voice (the avatar's; the bot's own ``pipecat-audio`` silent), the avatar
  is removed through the server API at the end, exit 0;
- with the barge-in: the avatar is cleared, and speaks at most 0.1 s of stale speech after
  the barge-in reached the bot, plus what the clear itself takes to reach it over the link
  (nothing queued ahead of it);
- across a grid of real delay, jitter and loss on the link (``LiveKitWorld.netem``): first
  words, the stale bound, one voice, removal;
- when the avatar does not come (the API refuses the session, or the avatar comes after the
  service gave up): the bot speaks in its own voice, and a late avatar is removed;
- when the avatar leaves by itself while it speaks: the rest in the bot's own voice;
- when the avatar never calls ``lk.playback_started`` (optional in LiveKit's protocol): the
  pipeline still gets its TTFB and the avatar's speaking frames.

Opt-in (``-m slow``), run by ``.ci/run``; they skip like tests/test_livekit_server.py.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from livekit_probes import PROBE_TIMEOUT_S, livekit, require, run_probe

from pipecat_bey.cli.demo.runner import default_speech
from pipecat_bey.cli.demo.summary_text import STALE_SPEECH_BOUND_S
from pipecat_bey.testing.audio import best_alignment, read_wav, resample, speech_duration_s

AGENTS = ("livekit.agents", "livekit-agents==1.8.9")
ROOT = Path(__file__).resolve().parent.parent

pytestmark = [livekit, pytest.mark.slow]


def run_demo(tmp_path: Path, *args: str) -> tuple[int, dict, str]:
    """Run the command; its exit status, its report and what it printed."""
    require(AGENTS)
    report, out = tmp_path / "r.json", tmp_path / "out.wav"
    command = [sys.executable, "-m", "pipecat_bey.cli", "demo", "--transport", "livekit"]
    command += ["--report", str(report), "--out", str(out), *args]
    done = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S * 2
    )
    printed = done.stdout + done.stderr
    assert report.exists(), f"no report (exit {done.returncode}):\n{printed[-3000:]}"
    return done.returncode, json.loads(report.read_text()), printed


def said_and_received(report: dict) -> tuple[bytes, bytes, int]:
    """The bot's speech and what the avatar received, at the avatar's rate."""
    pcm, rate, _ = read_wav(default_speech())
    received, received_rate, _ = read_wav(Path(report["out"]))
    return resample(pcm, rate, received_rate), received, received_rate


def one_voice_problems(report: dict) -> list[str]:
    problems = []
    if report["user_heard_bot_s"] != 0 or report["user_heard_both_s"] > 0.05:
        problems.append(
            f"the user heard the bot's own voice {report['user_heard_bot_s']} s, both at once "
            f"{report['user_heard_both_s']} s"
        )
    if not report["user_heard_avatar_s"]:
        problems.append("the user did not hear the avatar")
    if report["avatar_removed"] is not True:
        problems.append(f"the avatar was not removed: {report['avatar_removed']}")
    return problems


def test_the_avatar_receives_the_speech_whole_and_the_user_hears_one_voice(tmp_path):
    status, report, printed = run_demo(tmp_path, "--no-barge-in", "--input", str(default_speech()))
    assert status == 0, printed[-3000:]
    said, received, rate = said_and_received(report)
    _, correlation = best_alignment(said, received)
    assert correlation >= 0.9, report
    duration = speech_duration_s(received, rate)
    assert abs(duration - speech_duration_s(said, rate)) <= 0.15, report
    assert report["session_errors"] == [] and report["fallback"] is False
    assert report["placement"] == "room" and report["transport"] == "livekit"
    assert report["session_request"]["token"] == "***"
    assert report["playback_finished"] == [
        {"playback_position": pytest.approx(len(said) / 2 / rate, abs=0.1), "interrupted": False}
    ]
    assert not one_voice_problems(report), one_voice_problems(report)
    assert "What the avatar received" in printed


RETRANSMISSION_S = 1.0
"""A lost packet of the clear is sent again after SCTP's retransmission timeout: at least
RTO.Min, 1 s (RFC 4960, 15); the clear travels on the reliable data channel."""


def stale_bound_s(report: dict) -> float:
    """The stale speech allowed: the README's bound, the clear's own way to the avatar, and
    on a lossy link one retransmission of it."""
    one_way = (report["network_delay_s"] or 0) + (report["jitter_s"] or 0)
    resent = RETRANSMISSION_S if report["loss_pct"] else 0.0
    return STALE_SPEECH_BOUND_S + one_way + resent


def barge_in_problems(report: dict) -> list[str]:
    problems = []
    if not report["interrupted"]:
        problems.append(f"the avatar was not cleared: {report['barge_in_skipped']}")
    elif report["avatar_spoke_after_interrupt_s"] > stale_bound_s(report):
        problems.append(
            f"the avatar spoke {report['avatar_spoke_after_interrupt_s']} s after the barge-in "
            f"(bound {stale_bound_s(report):.2f} s)"
        )
    finished = report["playback_finished"]
    if not finished or finished[0]["interrupted"] is not True:
        problems.append(f"lk.playback_finished: {finished}")
    return problems


def first_words_problems(report: dict) -> list[str]:
    """The speech the avatar received before the barge-in is the bot's, from its first word."""
    said, received, rate = said_and_received(report)
    head = received[: len(received) // 2 * 2]
    offset, correlation = best_alignment(head, said)
    # The received speech sits at the start of what was said (first words not lost).
    if correlation < 0.9 or offset > 0.05 * rate:
        return [f"what the avatar received is at {offset / rate:.2f} s, correlation {correlation}"]
    return []


def test_a_barge_in_clears_the_avatar_within_the_stale_speech_bound(tmp_path):
    status, report, printed = run_demo(tmp_path)
    assert status == 0, printed[-3000:]
    problems = barge_in_problems(report) + first_words_problems(report)
    problems += one_voice_problems(report)
    assert not problems, (problems, report)
    assert report["avatar_received_speech_s"] < report["input_speech_s"] - 1  # cut short


# One-way delay bot to avatar, its jitter, loss per hop (%): the Daily grid's delays and
# jitter, and loss on top (how the stale speech grows with it: benchmarks/).
GRID = [(0.08, 0.03, 0.0), (0.15, 0.03, 0.0), (0.15, 0.03, 2.0)]


@pytest.mark.parametrize("delay_s, jitter_s, loss_pct", GRID)
def test_first_words_stale_speech_and_one_voice_hold_on_an_impaired_link(
    tmp_path, delay_s, jitter_s, loss_pct
):
    args = ["--network-delay", str(delay_s), "--jitter", str(jitter_s), "--loss", str(loss_pct)]
    status, report, printed = run_demo(tmp_path, *args)
    assert status == 0, printed[-3000:]
    assert report["network"] in ("netem on lo", "userspace link")
    problems = barge_in_problems(report) + first_words_problems(report)
    problems += one_voice_problems(report)
    assert not problems, (problems, report)


@pytest.mark.parametrize("case", ["refused", "late"])
def test_without_the_avatar_the_bot_speaks_in_its_own_voice(tmp_path, case):
    require(AGENTS)
    result = run_probe("demo_probe.py", tmp_path, "--case", case, label=f"demo_{case}")
    assert not result["errors"], result["errors"]
    report = result["report"]
    assert report["fallback"] is True and report["session_errors"], report
    # The whole clip in the bot's own voice (its pauses are not voice).
    assert report["user_heard_bot_s"] >= 0.6 * report["input_speech_s"], report
    assert report["user_heard_both_s"] <= 0.05, report
    if case == "late":
        assert report["late_avatar_ejected"] is True, report
    else:
        assert report["avatar_removed"] is None and report["session_response"] is None, report


def test_an_avatar_lost_mid_speech_hands_the_rest_to_the_bots_own_voice(tmp_path):
    require(AGENTS)
    result = run_probe("demo_probe.py", tmp_path, "--case", "lost", label="demo_lost")
    assert not result["errors"], result["errors"]
    report = result["report"]
    assert report["session_errors"] and report["fallback"] is True, report
    # The user heard the avatar, then the bot: the clip's speech, once, one voice at a time.
    assert report["user_heard_avatar_s"] > 0.5 and report["user_heard_bot_s"] > 0.5, report
    assert report["user_heard_both_s"] <= 0.05, report
    assert report["avatar_removed"] is False, report  # it left by itself


def test_an_avatar_that_never_says_it_started_still_gives_the_pipeline_its_events(tmp_path):
    # lk.playback_started is optional: the pipeline still gets TTFB and the avatar's speaking
    # frames (both ways), and the user one voice.
    require(AGENTS)
    result = run_probe("demo_probe.py", tmp_path, "--case", "no-start-call", label="demo_no_start")
    assert not result["errors"], result["errors"]
    report = result["report"]
    assert report["fallback"] is False and not report["session_errors"], report
    assert report["avatar_received_speech_s"] >= report["input_speech_s"] - 0.15, report
    assert not one_voice_problems(report), one_voice_problems(report)
    assert len(result["ttfb_s"]) == 1 and 0 < result["ttfb_s"][0] < 5, result["ttfb_s"]
    started = [f for f in result["speaking"] if f.startswith("BotStartedSpeakingFrame")]
    stopped = [f for f in result["speaking"] if f.startswith("BotStoppedSpeakingFrame")]
    assert len(started) == 2 and len(stopped) == 2, result["speaking"]  # downstream, upstream
