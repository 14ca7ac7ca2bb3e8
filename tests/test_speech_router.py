"""The speech router's decisions, on frames alone: no pipeline, no clock."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from pipecat.frames.frames import (
    OutputAudioRawFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
)
from speech import noise, utterance

from pipecat_bey.speech_router import NoticeKind, Route, SpeechRouter, is_speech

TRACK = "bey-custom-track"


def router(**kwargs):
    kwargs = {"track": TRACK, "max_held_s": 30.0, "out_channels": 1, "fallback": True} | kwargs
    return SpeechRouter(**kwargs)


def feed(r, frames):
    out = []
    for frame in frames:
        out += r.speech(frame).frames
    return out


def audio(frames):
    return b"".join(f.audio for f in frames if isinstance(f, OutputAudioRawFrame))


def test_speech_is_held_until_the_avatar_listens_then_delivered_in_order_on_its_track():
    r = router()
    parts = [noise(2400, seed=s) for s in range(3)]
    assert feed(r, [f for p in parts for f in utterance(p, [480])]) == []
    assert r.route is Route.HOLDING and abs(r.held_s - 0.3) < 1e-9
    released = r.avatar_ready().frames
    assert audio(released) == b"".join(parts)
    assert all(f.transport_destination == TRACK for f in released)
    assert isinstance(released[0], TTSStartedFrame)
    # From now on speech goes straight to the track.
    now = feed(r, utterance(noise(480, seed=9), [480]))
    assert len(now) == 4 and all(f.transport_destination == TRACK for f in now)


def test_without_an_avatar_the_bot_speaks_in_its_own_voice_held_speech_first():
    r = router()
    held = noise(4800, seed=1)
    feed(r, utterance(held, [960]))
    routing = r.avatar_lost()
    assert audio(routing.frames) == held
    assert all(f.transport_destination is None for f in routing.frames)
    assert r.microphone_on
    assert [n.kind for n in routing.notices] == [NoticeKind.HELD_SPEECH_RELEASED]
    assert "bot's own voice" in routing.notices[0].message


def test_a_lost_avatars_unsent_speech_goes_to_the_bots_own_voice_before_the_held():
    # The avatar took speech (it listened), then left while the room still had some of it
    # queued: that comes back, in the bot's own voice, ahead of speech held since.
    r = router()
    r.avatar_ready()
    sent = feed(r, utterance(noise(960, seed=1), [480]))
    assert all(f.transport_destination == TRACK for f in sent)
    unsent = [OutputAudioRawFrame(noise(1600, seed=2), 16000, 1)]
    unsent[0].transport_destination = TRACK
    routing = r.avatar_lost(unsent)
    assert routing.frames == unsent and unsent[0].transport_destination is None
    assert [n.kind for n in routing.notices] == [NoticeKind.UNSENT_SPEECH_RECLAIMED]
    assert "0.10 s of speech not yet sent" in routing.notices[0].message
    assert r.route is Route.BOT_VOICE and r.microphone_on


def test_without_fallback_a_lost_avatars_unsent_speech_is_dropped_and_said():
    r = router(fallback=False)
    r.avatar_ready()
    routing = r.avatar_lost([OutputAudioRawFrame(noise(1600), 16000, 1)])
    assert routing.frames == []
    assert "goes to nobody (no fallback)" in routing.notices[0].message


def test_without_fallback_speech_is_dropped_and_said_once():
    r = router(fallback=False)
    r.avatar_lost()
    notices = []
    for _ in range(5):
        routing = r.speech(TTSAudioRawFrame(noise(480), 24000, 1))
        assert routing.frames == []
        notices += routing.notices
    assert [n.kind for n in notices] == [NoticeKind.SPEECH_MUTED]
    assert "fallback_to_bot_voice" in notices[0].message
    assert not r.microphone_on


def test_a_sample_split_across_frames_is_put_back_together():
    pcm = noise(2000, seed=3)
    r = router()
    r.avatar_ready()
    out = feed(r, utterance(pcm, [1, 3, 5, 7]))
    assert audio(out) == pcm
    assert all(len(f.audio) % 2 == 0 for f in out if isinstance(f, OutputAudioRawFrame))


def test_stereo_is_mixed_down_for_a_mono_output():
    left = np.frombuffer(noise(4800, seed=4), np.int16)
    stereo = np.stack([left, left], axis=1).astype(np.int16).tobytes()
    r = router()
    r.avatar_ready()
    out = feed(r, utterance(stereo, [1920], channels=2))
    assert audio(out) == left.tobytes()
    assert all(f.num_channels == 1 for f in out if isinstance(f, OutputAudioRawFrame))


def test_stereo_stays_stereo_for_a_stereo_output():
    stereo = noise(4800, seed=5, channels=2)
    r = router(out_channels=2)
    r.avatar_ready()
    assert audio(feed(r, utterance(stereo, [1920], channels=2))) == stereo


def test_an_empty_frame_sends_nothing():
    r = router()
    r.avatar_ready()
    assert r.speech(TTSAudioRawFrame(b"", 24000, 1)).frames == []
    assert r.speech(TTSAudioRawFrame(b"\x01", 24000, 1)).frames == []  # half a sample waits


def test_an_interruption_drops_held_speech_and_half_samples():
    r = router()
    feed(r, [TTSStartedFrame(), TTSAudioRawFrame(noise(2400, seed=6) + b"\x07", 24000, 1)])
    interruption = r.interrupt()
    assert interruption.destination is None and abs(interruption.dropped_held_s - 0.1) < 1e-9
    after = noise(480, seed=7)
    feed(r, utterance(after, [960]))
    assert audio(r.avatar_ready().frames) == after


def test_an_interruption_while_the_avatar_speaks_clears_its_track():
    r = router()
    r.avatar_ready()
    assert r.interrupt().destination == TRACK
    r.avatar_lost()
    assert r.interrupt().destination is None


def test_after_a_barge_in_the_avatars_voice_is_stale_until_new_speech_went_to_it():
    r = router()
    r.avatar_ready()
    feed(r, utterance(noise(2400, seed=1), [480]))
    assert not r.avatar_voice_is_stale
    r.interrupt()
    # What the avatar says now is the speech it was told to stop: a relay drops it.
    assert r.avatar_voice_is_stale
    feed(r, [TTSStartedFrame()])  # no audio yet: still the old speech
    assert r.avatar_voice_is_stale
    feed(r, utterance(noise(480, seed=2), [480])[1:])
    assert not r.avatar_voice_is_stale


def test_a_barge_in_without_the_avatar_makes_no_voice_stale():
    r = router()
    r.interrupt()  # still holding: the avatar said nothing yet
    assert not r.avatar_voice_is_stale
    r.avatar_lost()
    r.interrupt()  # the bot's own voice
    assert not r.avatar_voice_is_stale


def test_held_speech_beyond_the_limit_drops_the_oldest_and_says_so_once():
    r = router(max_held_s=1.0)
    frames = utterance(noise(24000 * 300, seed=8), [480])  # five minutes, 20 ms frames
    notices = []
    for frame in frames:
        notices += r.speech(frame).notices
    assert [n.kind for n in notices] == [NoticeKind.HELD_SPEECH_OVERFLOW]
    assert "max_held_audio_s" in notices[0].message
    assert abs(r.held_s - 1.0) < 0.021 and abs(r.dropped_s - 299.0) < 0.021
    released = r.avatar_ready()
    assert "299.01 s older was dropped" in released.notices[0].message
    # The newest second is what arrives, ending with the utterance's end.
    assert isinstance(released.frames[-1], TTSStoppedFrame)
    # A new episode says so again.
    r2 = router(max_held_s=0.05)
    for episode in range(2):
        notices = []
        for frame in utterance(noise(2400, seed=episode), [480]):
            notices += r2.speech(frame).notices
        assert [n.kind for n in notices] == [NoticeKind.HELD_SPEECH_OVERFLOW]
        r2.interrupt()


def test_the_microphone_stays_on_until_the_bots_own_voice_has_played_out():
    r = router()
    assert not r.microphone_on  # holding: the avatar will speak
    r.avatar_lost()
    r.microphone_speaking(True)
    assert r.microphone_on
    r.avatar_ready()  # the avatar is back while the bot still speaks in its own voice
    assert r.microphone_on
    r.microphone_speaking(False)
    assert not r.microphone_on


def test_only_untagged_speech_frames_are_speech():
    tagged = TTSAudioRawFrame(b"\x00\x00", 24000, 1)
    tagged.transport_destination = "elsewhere"
    assert is_speech(TTSStartedFrame()) and is_speech(TTSStoppedFrame())
    assert is_speech(OutputAudioRawFrame(b"\x00\x00", 24000, 1))
    assert not is_speech(tagged)


@settings(max_examples=200, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=4000), min_size=1, max_size=4),
    ready_after=st.integers(min_value=0, max_value=40),
    interrupt_after=st.integers(min_value=0, max_value=40),
    channels=st.sampled_from([1, 2]),
)
def test_what_goes_out_is_what_was_said_minus_what_the_interruption_dropped(
    sizes, ready_after, interrupt_after, channels
):
    """For any frame sizes, readiness and interruption points: exact, in order, nothing stale."""
    before, after = noise(4800, seed=1, channels=channels), noise(2400, seed=2, channels=channels)
    r = router()
    out_before = []
    for i, frame in enumerate(utterance(before, sizes, channels=channels)):
        if i == ready_after:
            out_before += r.avatar_ready().frames
        if i == interrupt_after:
            r.interrupt()  # the user barges in: the TTS stops this utterance
            break
        out_before += r.speech(frame).frames
    if r.route is Route.HOLDING:
        out_before += r.avatar_ready().frames
    out_after = feed(r, utterance(after, sizes, channels=channels))

    def mono(pcm):
        samples = np.frombuffer(pcm, np.int16).reshape(-1, channels)
        return samples.mean(axis=1).astype(np.int16).tobytes()

    # What came of the first utterance is an exact beginning of it, whole samples only.
    assert mono(before).startswith(audio(out_before))
    # The second utterance arrives whole, after it, on the avatar's track.
    assert audio(out_after) == mono(after)
    assert all(f.transport_destination == TRACK for f in out_before + out_after)


def test_a_late_avatar_takes_over_once_the_bots_own_voice_has_played_out():
    r = router()
    r.avatar_lost()  # the avatar did not come in time: the bot speaks for itself
    first = feed(r, utterance(noise(2400, seed=1), [480]))
    assert first and all(f.transport_destination is None for f in first)
    r.microphone_speaking(True)  # ...and is still heard
    ready = r.avatar_ready()  # the late avatar listens now
    assert ready.frames == [] and [n.kind for n in ready.notices] == [NoticeKind.AVATAR_WAITS]
    # One voice: more speech is the bot's own, and no face of the avatar beside it.
    more = feed(r, utterance(noise(2400, seed=2), [480]))
    assert more and all(f.transport_destination is None for f in more)
    assert not r.passes_avatar_media(False) and r.microphone_on
    r.microphone_speaking(False)  # the bot's voice has played out: the avatar takes over
    assert r.route is Route.AVATAR and r.passes_avatar_media(False) and not r.microphone_on
    after = feed(r, utterance(noise(2400, seed=3), [480]))
    assert after and all(f.transport_destination == TRACK for f in after)


def test_an_avatar_lost_while_waiting_does_not_take_over():
    r = router()
    r.avatar_lost()
    r.microphone_speaking(True)
    r.avatar_ready()
    r.avatar_lost()  # it left again before the bot's voice ended
    assert r.microphone_speaking(False).frames == []
    assert r.route is Route.BOT_VOICE
