"""What a user experiences of a relayed avatar: frame rate and lip-sync skew."""

import asyncio
import time
from dataclasses import replace

import numpy as np
import pytest
from conftest import DAILY_KEY

from pipecat_bey.testing.audio import best_alignment, resample
from pipecat_bey.testing.av_sync import lip_sync, utterance_lags, video_fps
from pipecat_bey.testing.daily_sim import (
    BEY_TRACK,
    MICROPHONE,
    AvatarBehaviour,
    DailySimulation,
    ReceivedAudio,
    ReceivedVideo,
    SimulatedAvatar,
    SimulatedUser,
    SpokenAudio,
    VideoStamp,
)

T0 = 1000.0  # the avatar's track starts playing here (monotonic seconds)
AVATAR_RATE = 24000


def speech(seconds, rate=AVATAR_RATE, seed=0):
    """Noise shaped in syllables, with short dips that are not pauses."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    envelope = 0.6 + 0.4 * np.sin(2 * np.pi * 4 * np.arange(n) / rate)
    # Below ~2 kHz, as speech mostly is.
    noise = np.convolve(rng.standard_normal(n + 11), np.ones(12) / 12, "valid")
    return (noise * 15000 * envelope).astype(np.int16)


def avatar_pieces(utterances):
    """The avatar's microphone: 20 ms pieces of each ``(start_s, audio)``, silence between."""
    pieces = []
    for start_s, audio in utterances:
        for i in range(0, len(audio), AVATAR_RATE // 50):
            position = round(start_s * AVATAR_RATE) + i
            pcm = audio[i : i + AVATAR_RATE // 50].tobytes()
            pieces.append(SpokenAudio(T0 + position / AVATAR_RATE, position, AVATAR_RATE, pcm))
    return pieces


def heard_pieces(utterances, lags, *, rate=16000, network_s=0.04):
    """What the user hears of the bot relaying each utterance ``lag`` seconds late.

    The bot plays it ``lag - network_s`` after the avatar did; the network adds
    ``network_s`` (negative: it arrived before it played, as written ahead of time).
    """
    pieces = []
    for (start_s, audio), lag in zip(utterances, lags, strict=True):
        relayed = np.frombuffer(resample(audio.tobytes(), AVATAR_RATE, rate), np.int16)
        played_from = T0 + start_s + lag - max(network_s, 0)
        for i in range(0, len(relayed), rate // 50):
            played = played_from + i / rate
            position = round((start_s + lag) * rate) + i
            pcm = relayed[i : i + rate // 50].tobytes()
            pieces.append(
                ReceivedAudio(played + network_s, "bot", MICROPHONE, position, rate, pcm, played)
            )
    return pieces


def frames_seen(end_s, late_by):
    """25 fps frames of the avatar, each seen ``late_by(position)`` after it was captured."""
    frames = []
    for number in range(int(end_s * 25)):
        captured = T0 + number / 25
        position = round(number / 25 * AVATAR_RATE)
        at = captured + late_by(position)
        frames.append(ReceivedVideo(at, "bot", "camera", at, VideoStamp(number, position), 64, 48))
    return frames


UTTERANCES = [(0.2, speech(0.8, seed=1)), (1.5, speech(0.6, seed=2))]


@pytest.mark.parametrize("network_s", [0.04, -0.01])
@pytest.mark.parametrize("rate", [16000, 24000])
def test_a_known_skew_is_measured_per_utterance(network_s, rate):
    # The user hears utterance 1 120 ms after the avatar spoke it and sees its frames
    # 30 ms later still; utterance 2 200 ms late, and its frames 15 ms early.
    lags, video_late = [0.12, 0.2], [0.03, -0.015]

    def late_by(position):
        second = position >= 1.0 * AVATAR_RATE
        return lags[second] + video_late[second]

    heard = heard_pieces(UTTERANCES, lags, rate=rate, network_s=network_s)
    result = lip_sync(frames_seen(2.3, late_by), avatar_pieces(UTTERANCES), heard)

    assert [u.lag_s for u in result.utterances] == [pytest.approx(lag, abs=0.001) for lag in lags]
    assert all(b.correlation > 0.95 for u in result.utterances for b in u.blocks)
    # Frames while the avatar spoke: 0.2-1.0 s and 1.5-2.1 s, at 25 fps.
    assert result.frames_measured == pytest.approx(20 + 15, abs=2)
    first = [s for s in result.skews_ms if s > 10]
    second = [s for s in result.skews_ms if s < -5]
    assert len(first) + len(second) == result.frames_measured
    assert first == [pytest.approx(30, abs=2)] * len(first) and len(first) >= 19
    assert second == [pytest.approx(-15, abs=2)] * len(second) and len(second) >= 14
    assert result.p50_abs_ms == pytest.approx(30, abs=2)
    assert result.p95_abs_ms == pytest.approx(30, abs=2)


def test_nothing_is_measured_when_nothing_was_spoken_or_heard():
    frames = frames_seen(1.0, lambda position: 0.1)
    silent = [(0.2, np.zeros(AVATAR_RATE // 2, np.int16))]
    heard = heard_pieces(UTTERANCES, [0.1, 0.1])
    for result in (
        lip_sync(frames, [], heard),
        lip_sync(frames, avatar_pieces(silent), heard_pieces(silent, [0.1])),
        lip_sync(frames, avatar_pieces(UTTERANCES), []),
    ):
        assert (result.frames_measured, result.skews_ms, result.p50_abs_ms) == (0, (), None)
    # Heard, but something else: the utterance is not found.
    other = [(start, speech(len(audio) / AVATAR_RATE, seed=9)) for start, audio in UTTERANCES]
    lags = utterance_lags(avatar_pieces(UTTERANCES), heard_pieces(other, [0.1, 0.1]))
    assert [u.lag_s for u in lags] == [None, None]
    with pytest.raises(ValueError, match="several tracks"):
        lip_sync(frames, avatar_pieces(UTTERANCES), [*heard, replace(heard[0], track="x")])


def test_video_fps_counts_frames_out_of_order_and_missing():
    numbers = [0, 1, 2, 4, 3, 4, 5, 6, 7, 8]
    frames = [
        ReceivedVideo(T0 + i * 0.04, "bot", "camera", T0, VideoStamp(n, 0), 64, 48)
        for i, n in enumerate(numbers)
    ]
    rate = video_fps(frames)
    assert rate.fps == pytest.approx(25) and rate.span_s == pytest.approx(0.36)
    assert (rate.frames, rate.out_of_order, rate.skipped) == (10, 2, 1)
    assert video_fps([]).fps == 0 and video_fps(frames[:1]).frames == 1


async def test_a_relayed_avatar_is_in_sync_for_the_user():
    """The avatar backstage; a relay renders its camera and microphone and republishes them."""
    async with DailySimulation(api_key=DAILY_KEY, network_delay_s=0.05) as daily:
        loop = asyncio.get_running_loop()
        backstage, front = daily.create_room(), daily.create_room()
        relay_in = await join(daily, backstage)
        voice = daily.stand_ins["CustomAudioSource"](AVATAR_RATE, 1)
        relay_in.add_custom_audio_track(BEY_TRACK, daily.stand_ins["CustomAudioTrack"](voice))
        token = daily.mint_token(backstage, user_name="Avatar", is_owner=True)
        behaviour = AvatarBehaviour(join_delay_s=0, video_size=(64, 48))
        avatar = SimulatedAvatar(daily, backstage, token, behaviour)
        daily.spawn(avatar.run(), "avatar")

        relay_out = await join(daily, front)
        # At the avatar's rate: the renderer need not resample.
        mic = daily.stand_ins["CustomAudioSource"](AVATAR_RATE, 1)
        mic_track = daily.stand_ins["CustomAudioTrack"](mic)
        camera = daily.stand_ins["CustomVideoSource"](64, 48, "RGB")
        camera_track = daily.stand_ins["CustomVideoTrack"](camera)
        relay_out.update_inputs(
            {
                "microphone": {"settings": {"customTrack": {"id": mic_track.id}}},
                "camera": {"settings": {"customTrack": {"id": camera_track.id}}},
            }
        )
        relay_out.update_publishing({"microphone": True, "camera": True})
        user = SimulatedUser(daily, front, "User")
        await user.join()
        user.watch_video(relay_out.id)

        assert await daily.wait_for(lambda: avatar.listening and avatar.camera is not None, 5)
        # A relay with a 40 ms jitter buffer: audio after a pause starts behind 40 ms of
        # silence, so it does not run short when the next piece comes a moment late, and
        # video waits as long. Renderers call back from the simulation's thread.
        buffer_s, audio_until = 0.04, [0.0]

        def relay_audio(pcm):
            now = time.monotonic()
            if now >= audio_until[0]:
                mic.write_frames(bytes(2 * round(buffer_s * AVATAR_RATE)))
                audio_until[0] = now + buffer_s
            mic.write_frames(pcm)
            audio_until[0] += len(pcm) / 2 / AVATAR_RATE

        relay_in.set_audio_renderer(
            avatar.id,
            lambda _, audio, __: loop.call_soon_threadsafe(relay_audio, audio.audio_frames),
            sample_rate=AVATAR_RATE,
        )
        relay_in.set_video_renderer(
            avatar.id,
            lambda _, frame, __: loop.call_soon_threadsafe(
                loop.call_later, buffer_s, camera.write_frame, frame.buffer
            ),
            color_format="RGB",
        )
        assert await daily.wait_for(lambda: len(user.received_video) >= 3, 5)
        said = np.concatenate([speech(0.5, seed=3), np.zeros(AVATAR_RATE // 2, np.int16)])
        said = np.concatenate([said, speech(0.4, seed=4)])
        for i in range(0, len(said), AVATAR_RATE // 50):  # as a bot sends it: 20 ms pieces
            voice.write_frames(said[i : i + AVATAR_RATE // 50].tobytes())
        # All of it, to the last block: the last one is measured too.
        assert await daily.wait_for(lambda: user.heard_speech_s(relay_out.id) >= 0.89, 5)

    frames = [f for f in user.received_video if f.publisher_id == relay_out.id]
    heard = [r for r in user.received if r.publisher_id == relay_out.id and r.track == MICROPHONE]
    result = lip_sync(frames, avatar.mic_pieces, heard)
    # This run is in real time: a loaded machine's timers fire late, which delays a frame
    # now and then and, where the user's playout has to wait for a piece, the voice after
    # it. So the bounds are the promise's (within a frame period, the typical frame within
    # half of one: a face a frame late or early is out), not an idle machine's figures;
    # the synthetic tests above check the measure to the millisecond.
    frame_ms = 1000 / behaviour.video_fps
    # Two network hops of 50 ms and the relay's 40 ms, for audio and video alike: the user
    # hears each utterance no sooner (a late timer only adds). How much later is for the
    # face to say (the skews below): the voice's latency alone is a measurement.
    path_s = 2 * 0.05 + buffer_s
    assert len(result.utterances) == 2
    for utterance in result.utterances:
        assert utterance.lag_s is not None and utterance.lag_s > path_s - 0.005
    # What the user heard is what the avatar said: both tracks laid out by position, so
    # when each piece came does not matter.
    said, first = track_audio(avatar.mic_pieces)
    relayed = user.heard_audio(relay_out.id)
    for utterance in result.utterances:
        audio = said[utterance.start_position - first : utterance.end_position - first]
        assert best_alignment(audio.tobytes(), relayed)[1] > 0.9
    # At least half the frames shown while the avatar spoke (0.9 s) are measured: a block
    # the measure cannot align (the user's playout waited inside it) leaves its frames out.
    assert result.frames_measured >= 0.9 * behaviour.video_fps / 2
    assert abs(result.median_ms) < frame_ms / 2 and result.p95_abs_ms < frame_ms
    rate = video_fps(frames)
    assert rate.out_of_order == 0 and {(f.width, f.height) for f in frames} == {(64, 48)}


def track_audio(pieces):
    """A microphone track laid out by position: ``(audio, position of its first sample)``."""
    first = min(p.position for p in pieces)
    end = max(p.position + len(p.pcm) // 2 for p in pieces)
    audio = np.zeros(end - first, np.int16)
    for piece in pieces:
        samples = np.frombuffer(piece.pcm, np.int16)
        audio[piece.position - first : piece.position - first + len(samples)] = samples
    return audio, first


async def join(daily, room):
    """A bare stand-in CallClient, joined."""
    client = daily.stand_ins["CallClient"]()
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    client.join(
        room.url,
        None,
        completion=lambda _, error: loop.call_soon_threadsafe(done.set_result, error),
    )
    assert await done is None
    return client


def test_a_block_heard_only_in_part_is_not_found_at_a_wrong_lag():
    # The user heard the first 0.6 s of a 1.5 s utterance, 40 ms late, then silence: no
    # block may be matched against a sliver at the edge of its search window.
    audio = speech(1.5, seed=3)
    heard_audio = audio.copy()
    heard_audio[int(0.6 * AVATAR_RATE) :] = 0
    utterances = utterance_lags(
        avatar_pieces([(0.2, audio)]), heard_pieces([(0.2, heard_audio)], [0.04])
    )
    lags = [b.lag_s for u in utterances for b in u.blocks if b.lag_s is not None]
    assert lags and all(abs(lag - 0.04) < 0.002 for lag in lags)
