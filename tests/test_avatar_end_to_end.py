"""BeyVideoService end to end: real DailyTransport, simulated room, local Bey API.

Speech here is the test clips in tests/data, never the demo's.
"""

import asyncio
from pathlib import Path

import pytest
from recorder import FrameRecorder

from pipecat_bey.demo import DemoOptions, run_demo
from pipecat_bey.testing import AvatarBehaviour, Fault
from pipecat_bey.testing.audio import (
    best_alignment,
    read_wav,
    resample,
    speech_duration_s,
    to_mono,
)

DATA = Path(__file__).parent / "data"


def reference(path, rate):
    pcm, source_rate, channels = read_wav(path)
    return resample(to_mono(pcm, channels), source_rate, rate)


async def run(tmp_path, **options):
    options.setdefault("out", tmp_path / "avatar.wav")
    recorder = FrameRecorder()
    report = await run_demo(DemoOptions(observers=[recorder], **options), progress=lambda _: None)
    return report, recorder


async def test_late_avatar_slow_api_receives_all_the_speech(tmp_path):
    speech = DATA / "utterance_b.wav"
    report, _ = await run(
        tmp_path, speech=speech, avatar_join_delay_s=3.0, api_latency_s=2.0, barge_in=False
    )
    received, rate, _ = read_wav(tmp_path / "avatar.wav")
    said = reference(speech, rate)
    assert abs(speech_duration_s(received, rate) - speech_duration_s(said, rate)) <= 0.15
    offset, correlation = best_alignment(said, received)
    assert correlation >= 0.9
    # The first second is there too: it matches on its own.
    first_second = said[: rate * 2]
    assert (
        best_alignment(first_second, received[offset * 2 : offset * 2 + len(first_second)])[1]
        >= 0.9
    )
    assert report["start_frame_passthrough_ms"] < 50
    assert report["avatar_joined_s"] >= 3.0 + 2.0 - 0.5
    assert report["avatar_left_room"] is True


async def test_barge_in_interrupts_the_avatar_at_once(tmp_path):
    report, recorder = await run(tmp_path, speech=DATA / "utterance_b.wav", barge_in=True)
    assert recorder.of(__import__("pipecat.frames.frames", fromlist=["x"]).InterruptionFrame)
    assert report["interrupt_latency_ms"] is not None and report["interrupt_latency_ms"] < 100
    assert report["audio_after_interrupt_s"] == 0
    assert report["avatar_received_speech_s"] < report["input_s"] - 1.0


async def test_the_avatar_is_never_heard_as_the_user(tmp_path):
    report, recorder = await run(tmp_path, speech=DATA / "utterance_a.wav", barge_in=False)
    assert report["user_heard_avatar_s"] > 1.0, "the avatar spoke in the room"
    assert not recorder.of(
        __import__("pipecat.frames.frames", fromlist=["x"]).UserStartedSpeakingFrame
    )
    assert not recorder.of(__import__("pipecat.frames.frames", fromlist=["x"]).InterruptionFrame)
    avatar_id = report["session_response"]["id"]
    assert len(recorder.audio_from) == 1, "only the user's microphone reaches the bot"
    assert avatar_id not in recorder.audio_from


@pytest.mark.parametrize(
    "fault",
    [
        Fault.status(500),
        Fault.status(401),
        Fault.html(502),
        Fault.drop(),
        Fault.malformed(),
        Fault.hang(60.0, session_created=False),
    ],
    ids=["500", "401", "html-502", "drop", "malformed", "hang"],
)
async def test_when_the_api_fails_the_user_still_hears_the_bot(tmp_path, fault):
    from pipecat_bey.video import BeyParams

    faults = [fault] * (4 if fault.kind == "html" else 1)
    report, recorder = await asyncio.wait_for(
        run(
            tmp_path,
            speech=DATA / "utterance_a.wav",
            barge_in=False,
            faults=faults,
            bey_params=BeyParams(avatar_join_timeout_s=5.0),
        ),
        90,
    )
    assert report["session_errors"], "the failure was reported"
    # The bot's own voice, or an avatar the API started despite the bad answer.
    assert report["user_heard_bot_s"] + report["user_heard_avatar_s"] >= 2.5
    from pipecat.frames.frames import ErrorFrame

    assert all(not e.fatal for e in recorder.of(ErrorFrame))


async def test_avatar_that_never_joins_falls_back_to_the_bots_voice(tmp_path):
    from pipecat_bey.video import BeyParams

    report, _ = await run(
        tmp_path,
        speech=DATA / "utterance_a.wav",
        barge_in=False,
        behaviour=AvatarBehaviour(never_join=True),
        bey_params=BeyParams(avatar_join_timeout_s=1.5),
    )
    assert "did not join" in report["session_errors"][0]
    assert report["user_heard_bot_s"] >= 2.0
