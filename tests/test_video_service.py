"""BeyVideoService with real audio: what only the output transport playing speech can show.

The decisions (routing, life cycle, configuration) are tested without a clock
in test_speech_router.py, test_avatar_lifecycle.py and test_config.py; these
few runs play speech in real time through the real DailyTransport.
"""

import pytest
from avatar_bot import DATA, avatar_bot, microphone, until
from pipecat.frames.frames import MetricsFrame, TTSSpeakFrame
from pipecat.metrics.metrics import TTFBMetricsData

from pipecat_bey.testing.audio import (
    best_alignment,
    read_wav,
    resample,
    speech_duration_s,
    to_mono,
)


def speech_of(path, rate):
    pcm, source, channels = read_wav(path)
    return resample(to_mono(pcm, channels), source, rate)


async def say_and_wait(bot, seconds_of_speech):
    await bot.run.queue_frames(TTSSpeakFrame("anything"))
    await until(
        bot,
        lambda: (
            bot.world.avatar is not None
            and bot.world.avatar.speech_received_s() >= seconds_of_speech
        ),
        20,
    )


async def test_the_avatar_speaks_for_the_bot_and_the_bot_stays_quiet():
    metrics = []
    async with avatar_bot(clip=DATA / "utterance_a.wav") as bot:
        bot.service.add_event_handler(
            "on_after_push_frame",
            lambda s, f: metrics.extend(f.data) if isinstance(f, MetricsFrame) else None,
        )
        await say_and_wait(bot, 2.0)
        avatar = bot.world.avatar
        bot_id = bot.transport.participants()["local"]["id"]
        # The user hears the avatar, and never the bot's own microphone.
        await until(bot, lambda: bot.user.heard_speech_s(avatar.id) > 1.0)
        assert not [r for r in bot.user.received if r.publisher_id == bot_id]
        assert microphone(bot) == "off"
    # TTFB: from the TTS starting to the first audio played on the avatar's track.
    ttfb = [
        m for m in metrics if isinstance(m, TTFBMetricsData) and m.processor == bot.service.name
    ]
    assert any(0 < m.value < 2 for m in ttfb)


@pytest.mark.parametrize(
    "tts_rate",
    [
        8000,
        pytest.param(16000, marks=pytest.mark.slow),
        22050,
        pytest.param(24000, marks=pytest.mark.slow),
        pytest.param(44100, marks=pytest.mark.slow),
        48000,
    ],
)
async def test_every_tts_rate_reaches_the_avatar_intact(tts_rate):
    clip = DATA / "barge_in.wav"
    async with avatar_bot(clip=clip, tts_rate=tts_rate, out_rate=24000) as bot:
        await say_and_wait(bot, 0.1)
        avatar = bot.world.avatar
        # The clip has played out on the track, from its first sound to its last.
        said_s = speech_duration_s(speech_of(clip, 24000), 24000)
        await until(
            bot,
            lambda: (
                speech_duration_s(avatar.received_audio(), avatar.received_sample_rate)
                >= said_s - 0.05
            ),
            10,
        )
        rate = avatar.received_sample_rate
        # What the TTS produced at its rate, brought to the track's rate.
        said = resample(speech_of(clip, tts_rate), tts_rate, rate)
        _, correlation = best_alignment(said, avatar.received_audio())
    assert correlation >= 0.9


@pytest.mark.parametrize("out_rate", [16000, 48000])
async def test_any_transport_output_rate(out_rate):
    async with avatar_bot(clip=DATA / "barge_in.wav", out_rate=out_rate) as bot:
        await say_and_wait(bot, 0.3)
        assert bot.world.avatar.received_sample_rate == out_rate
