"""What a user experiences of a relayed avatar: the video's frame rate and its lip sync.

In the relay placement the avatar speaks and shows its face in a backstage
room; a bot receives both and publishes them again, as its own microphone and
camera, in the user's room. These pure functions take what the simulation
recorded and say how it looked and sounded to the user:

- :func:`video_fps`: the rate at which the user received frames, and how many
  came out of order, twice, or not at all.
- :func:`lip_sync`: for each frame showing the avatar's mouth while it spoke,
  how much later (or earlier) the user saw it than heard the sound it shows.

Typical use, after a session::

    frames = [f for f in user.received_video if f.publisher_id == bot_id]
    heard = [r for r in user.received if r.publisher_id == bot_id and r.track == "microphone"]
    result = lip_sync(frames, avatar.mic_pieces, heard)
    rate = video_fps(frames)

How much of the avatar's speech the user heard, and how alike it was to what
the avatar said, need nothing new: ``SimulatedParticipant.heard_speech_s`` and
``pipecat_bey.testing.audio.best_alignment``.
"""

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipecat_bey.testing.audio import resample, speech_segments
from pipecat_bey.testing.daily_sim import ReceivedAudio, ReceivedVideo, SpokenAudio

# The common rate the avatar's speech and what the user heard are compared at.
COMPARE_RATE = 16000

# A piece heard this soon after the piece ahead of it on its track ended plays right after it.
PLAYOUT_SLACK_S = 0.002


@dataclass(frozen=True)
class VideoRate:
    """How frames arrived.

    Parameters:
        fps: Frames received per second, over the span from the first arrival to
            the last (0 with fewer than two frames).
        frames: Frames received.
        span_s: Seconds from the first arrival to the last.
        out_of_order: Frames whose number was not above every number received
            before it (duplicates included).
        skipped: Numbers missing between consecutive frames that moved forward
            (frames the user never saw).
    """

    fps: float
    frames: int
    span_s: float
    out_of_order: int
    skipped: int


def video_fps(frames: Sequence[ReceivedVideo]) -> VideoRate:
    """The frame rate a participant received, and how orderly the frames came.

    Args:
        frames: Frames of one track, in order of arrival.

    Returns:
        The rate and the counts.
    """
    if not frames:
        return VideoRate(0.0, 0, 0.0, 0, 0)
    span = frames[-1].at - frames[0].at
    fps = (len(frames) - 1) / span if len(frames) > 1 and span > 0 else 0.0
    out_of_order = skipped = 0
    highest = frames[0].stamp.frame
    for frame in frames[1:]:
        number = frame.stamp.frame
        if number <= highest:
            out_of_order += 1
            continue
        skipped += number - highest - 1
        highest = number
    return VideoRate(fps, len(frames), span, out_of_order, skipped)


@dataclass(frozen=True)
class BlockLag:
    """How late the user heard one block of an utterance of the avatar.

    Parameters:
        start_position: Where it starts on the avatar's microphone track, in samples.
        end_position: Where it ends (exclusive).
        lag_s: Seconds from the avatar playing it to the user hearing it (None:
            not found in what the user heard, or too unlike it).
        correlation: Normalized correlation of the two at that lag (-1 to 1).
    """

    start_position: int
    end_position: int
    lag_s: float | None
    correlation: float


@dataclass(frozen=True)
class UtteranceLag:
    """How late the user heard one utterance of the avatar.

    Parameters:
        start_position: Where it starts on the avatar's microphone track, in samples.
        end_position: Where it ends (exclusive).
        lag_s: The median lag of its blocks found (None: none was found).
        drift_s: How much the lag of its blocks found varied (latest minus
            earliest block: positive if the relay fell behind as it spoke).
        blocks: Its blocks, in order.
    """

    start_position: int
    end_position: int
    lag_s: float | None
    drift_s: float
    blocks: tuple[BlockLag, ...]


@dataclass(frozen=True)
class LipSync:
    """How far the video a user saw was from the audio it heard.

    Parameters:
        skews_ms: Per frame measured, in order of arrival: when the user saw it
            minus when the user heard the sound it shows, in milliseconds
            (positive: the video is late).
        p50_abs_ms: Median of ``|skew|`` (None: no frame measured).
        p95_abs_ms: 95th percentile of ``|skew|`` (None: no frame measured).
        median_ms: Median of the signed skew (None: no frame measured).
        frames_measured: Frames measured.
        utterances: Each utterance of the avatar and how late the user heard it.
    """

    skews_ms: tuple[float, ...]
    p50_abs_ms: float | None
    p95_abs_ms: float | None
    median_ms: float | None
    frames_measured: int
    utterances: tuple[UtteranceLag, ...]


class _Timeline:
    """The avatar's microphone track: what it played, and when each sample played."""

    def __init__(self, pieces: Sequence[SpokenAudio]) -> None:
        pieces = sorted(pieces, key=lambda p: p.position)
        self.rate = pieces[0].sample_rate
        if any(p.sample_rate != self.rate for p in pieces):
            raise ValueError("the avatar's microphone pieces have different sample rates")
        self.first = pieces[0].position
        end = max(p.position + len(p.pcm) // 2 for p in pieces)
        audio = np.zeros(end - self.first, np.int16)
        for piece in pieces:
            at = piece.position - self.first
            samples = np.frombuffer(piece.pcm, np.int16, count=len(piece.pcm) // 2)
            audio[at : at + len(samples)] = samples
        self.audio = audio
        self._positions = [p.position for p in pieces]
        self._starts = [p.start for p in pieces]

    def time_of(self, position: float) -> float:
        """When a position played: from the piece at or before it (silence keeps time)."""
        k = max(bisect.bisect_right(self._positions, position) - 1, 0)
        return self._starts[k] + (position - self._positions[k]) / self.rate


def _heard_timeline(heard: Sequence[ReceivedAudio]) -> tuple[np.ndarray, float, int]:
    """What the user heard laid out in time: ``(audio, time of its first sample, rate)``.

    Each piece plays when it is heard (:attr:`ReceivedAudio.heard_at`), and not
    before the piece ahead of it on the track has played out; a piece that
    continues the one ahead of it on the track and is heard within
    :data:`PLAYOUT_SLACK_S` of its end plays right after it (a receiver's playout
    absorbs that much; it is the loop's timer noise in the simulation).
    """
    if len({(r.publisher_id, r.track) for r in heard}) > 1:
        raise ValueError("the audio heard is of several tracks: pass one track's pieces")
    pieces = sorted(heard, key=lambda r: r.position)
    rate = pieces[0].sample_rate
    if any(p.sample_rate != rate for p in pieces):
        raise ValueError("the audio heard has different sample rates: pass one track's")
    plays: list[float] = []
    ends, next_position = 0.0, None
    for piece in pieces:
        at = max(piece.heard_at, ends)
        if piece.position == next_position and at - ends <= PLAYOUT_SLACK_S:
            at = ends
        plays.append(at)
        ends = at + len(piece.pcm) // 2 / rate
        next_position = piece.position + len(piece.pcm) // 2
    origin = plays[0]
    audio = np.zeros(int(np.ceil((ends - origin) * rate)) + 1, np.int16)
    for piece, at in zip(pieces, plays, strict=True):
        index = round((at - origin) * rate)
        samples = np.frombuffer(piece.pcm, np.int16, count=len(piece.pcm) // 2)
        samples = samples[: len(audio) - index]
        audio[index : index + len(samples)] = samples
    return audio, origin, rate


def utterance_lags(
    avatar_speech: Sequence[SpokenAudio],
    heard: Sequence[ReceivedAudio],
    *,
    min_silence_s: float = 0.3,
    block_s: float = 0.25,
    max_lag_s: float = 1.0,
    max_drift_s: float = 0.1,
    min_correlation: float = 0.5,
    min_lag_s: float = -0.05,
) -> list[UtteranceLag]:
    """How late the user heard each utterance of the avatar, block by block.

    Utterances are the stretches of sound on the avatar's microphone track
    (``speech_segments``) separated by at least ``min_silence_s`` of silence.
    The avatar's track and what the user heard, laid out at the times the user
    heard it, are resampled to :data:`COMPARE_RATE`; each utterance is cut into
    blocks of about ``block_s``, and each block found in what the user heard by
    cross-correlation (``best_alignment``): the first block between
    ``min_lag_s`` and ``max_lag_s`` after the avatar played it, each next one
    within ``max_drift_s`` of the lag of the last block found. Blocks, rather
    than one lag per utterance, because a relay that runs short of audio plays
    silence and falls behind in the middle of an utterance.

    A lag outside ``[min_lag_s, max_lag_s]`` is not found: over a network that
    delays media, give the path's least delay (less a margin) as ``min_lag_s``
    and its most as ``max_lag_s``; the search costs time in proportion to the
    width of that window.

    Args:
        avatar_speech: Pieces the avatar put on its microphone
            (``SimulatedAvatar.mic_pieces``; of one join).
        heard: What the user received of the track that relays it (the bot's
            microphone), pieces of that one track.
        min_silence_s: Silence that separates utterances.
        block_s: Length of the blocks an utterance is aligned in.
        max_lag_s: Latest the user may hear an utterance after the avatar played
            it; keep it below the gap between repeated phrases.
        max_drift_s: How far a block's lag may be from the last one found.
        min_correlation: Below this normalized correlation, a block counts as
            not found.
        min_lag_s: Earliest the user may hear an utterance after the avatar
            played it (negative: a little before, the measure's slack).

    Returns:
        The utterances, in order.

    Raises:
        ValueError: If ``heard`` holds pieces of more than one track, or
            ``min_lag_s`` is not below ``max_lag_s``.
    """
    if min_lag_s >= max_lag_s:
        raise ValueError(f"min_lag_s ({min_lag_s}) must be below max_lag_s ({max_lag_s})")
    if not avatar_speech:
        return []
    avatar = _Timeline(avatar_speech)
    segments = speech_segments(avatar.audio.tobytes(), avatar.rate, min_silence_s=min_silence_s)
    if not segments:
        return []
    reference = np.frombuffer(resample(avatar.audio.tobytes(), avatar.rate, COMPARE_RATE), np.int16)
    if heard:
        audio, origin, rate = _heard_timeline(heard)
        received = np.frombuffer(resample(audio.tobytes(), rate, COMPARE_RATE), np.int16)
        # After what was heard, silence: a block at the very end still fits whole.
        received = np.concatenate([received, np.zeros(round(block_s * COMPARE_RATE), np.int16)])
    else:
        received, origin = np.zeros(0, np.int16), 0.0

    def position(index: int) -> int:
        return avatar.first + round(index * avatar.rate / COMPARE_RATE)

    def find(first: int, last: int, earliest: float, latest: float) -> BlockLag:
        """Find reference[first:last] with a lag between ``earliest`` and ``latest``."""
        # When the block's first sample played on the avatar's track.
        played = avatar.time_of(avatar.first + first * avatar.rate / COMPARE_RATE)
        lo = max(int(np.floor((played + earliest - origin) * COMPARE_RATE)), 0)
        hi = int(np.ceil((played + latest - origin) * COMPARE_RATE)) + last - first
        hi = min(hi, len(received))
        if hi - lo < (last - first) // 2:
            return BlockLag(position(first), position(last), None, 0.0)
        block_audio = reference[first:last].astype(np.float64)
        window = received[lo:hi].astype(np.float64)
        if len(window) < len(block_audio):
            return BlockLag(position(first), position(last), None, 0.0)
        # Only where the block lies whole in the window: at the window's edge a block
        # overlapping it by a few samples can correlate well by chance.
        scores = np.correlate(window, block_audio, "valid")
        energy = np.concatenate(([0.0], np.cumsum(window * window)))
        norms = np.sqrt(np.maximum(energy[len(block_audio) :] - energy[: -len(block_audio)], 0))
        normalized = scores / (np.linalg.norm(block_audio) * norms + 1e-9)
        offset = int(np.argmax(normalized))
        correlation = float(normalized[offset])
        lag = origin + (lo + offset) / COMPARE_RATE - played
        found = earliest - 1e-3 <= lag <= latest + 1e-3 and correlation >= min_correlation
        return BlockLag(position(first), position(last), lag if found else None, correlation)

    block = max(round(block_s * COMPARE_RATE), 1)
    utterances = []
    for start_s, end_s in segments:
        first, last = round(start_s * COMPARE_RATE), round(end_s * COMPARE_RATE)
        count = max((last - first + block // 2) // block, 1)
        edges = [first + (last - first) * i // count for i in range(count + 1)]
        blocks: list[BlockLag] = []
        previous: float | None = None
        for begin, end in itertools.pairwise(edges):
            if previous is None:
                found = find(begin, end, min_lag_s, max_lag_s)
            else:
                found = find(begin, end, previous - max_drift_s, previous + max_drift_s)
            blocks.append(found)
            if found.lag_s is not None:
                previous = found.lag_s
        lags = [b.lag_s for b in blocks if b.lag_s is not None]
        utterances.append(
            UtteranceLag(
                avatar.first + round(start_s * avatar.rate),
                avatar.first + round(end_s * avatar.rate),
                float(np.median(lags)) if lags else None,
                lags[-1] - lags[0] if lags else 0.0,
                tuple(blocks),
            )
        )
    return utterances


def lip_sync(
    frames: Sequence[ReceivedVideo],
    avatar_speech: Sequence[SpokenAudio],
    heard: Sequence[ReceivedAudio],
    *,
    min_silence_s: float = 0.3,
    block_s: float = 0.25,
    max_lag_s: float = 1.0,
    max_drift_s: float = 0.1,
    min_correlation: float = 0.5,
    min_lag_s: float = -0.05,
) -> LipSync:
    """How far the relayed avatar's video was from its audio, as the user saw and heard it.

    Each frame's stamp carries ``P``, the avatar's microphone position playing
    when the frame was captured: the frame shows the mouth for sample ``P``.
    For each frame the user received whose ``P`` falls in an utterance of the
    avatar (sound, not silence) and in a block of it found in what the user
    heard (see :func:`utterance_lags`), with that block's lag ``L``::

        skew = t_seen - t_heard(P)
        t_seen = the frame's arrival at the user (``ReceivedVideo.at``)
        t_heard(P) = t_avatar(P) + L

    where ``t_avatar(P)`` is when sample ``P`` played on the avatar's microphone
    (``start + (P - position) / rate`` of the piece at or before it) and ``L`` is
    how late the user heard that part of the utterance: the avatar's audio
    cross-correlated with what the user heard from the bot, both at 16 kHz, each
    piece the user received placed at the time it played there (as it played at
    the sender plus the delay the network added, never before the piece ahead
    of it had played out; see :data:`PLAYOUT_SLACK_S`).

    **Positive skew: the video is late**, the user sees the mouth after hearing
    the sound. Only the first arrival of each frame number is measured (a
    repeated frame is a frozen picture, counted by :func:`video_fps`).

    Args:
        frames: Frames the user received from the bot's camera, in order of arrival.
        avatar_speech: Pieces the avatar put on its microphone
            (``SimulatedAvatar.mic_pieces``; of one join).
        heard: What the user received of the bot's microphone, that track only.
        min_silence_s: Silence that separates utterances.
        block_s: Length of the blocks an utterance is aligned in.
        max_lag_s: Latest the user may hear an utterance after the avatar played it.
        max_drift_s: How far a block's lag may be from the last one found.
        min_correlation: Below this normalized correlation a block is not found,
            and its frames are not measured.
        min_lag_s: Earliest the user may hear an utterance after the avatar played
            it (see :func:`utterance_lags`).

    Returns:
        The skews and their statistics (no frame measured if the avatar did not
        speak, or the user did not hear it).

    Raises:
        ValueError: If ``heard`` holds pieces of more than one track, or
            ``min_lag_s`` is not below ``max_lag_s``.
    """
    lags = utterance_lags(
        avatar_speech,
        heard,
        min_silence_s=min_silence_s,
        block_s=block_s,
        max_lag_s=max_lag_s,
        max_drift_s=max_drift_s,
        min_correlation=min_correlation,
        min_lag_s=min_lag_s,
    )
    blocks = [b for u in lags for b in u.blocks if b.lag_s is not None]
    skews: list[float] = []
    if blocks:
        avatar = _Timeline(avatar_speech)
        starts = [b.start_position for b in blocks]
        seen: set[int] = set()
        for frame in frames:
            number, position = frame.stamp
            if number in seen:
                continue
            seen.add(number)
            k = bisect.bisect_right(starts, position) - 1
            if k < 0 or position >= blocks[k].end_position:
                continue
            lag = blocks[k].lag_s
            assert lag is not None
            skews.append((frame.at - (avatar.time_of(position) + lag)) * 1000.0)
    if not skews:
        return LipSync((), None, None, None, 0, tuple(lags))
    magnitude = np.abs(skews)
    return LipSync(
        tuple(skews),
        float(np.percentile(magnitude, 50)),
        float(np.percentile(magnitude, 95)),
        float(np.median(skews)),
        len(skews),
        tuple(lags),
    )
