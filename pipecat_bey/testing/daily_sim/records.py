"""Participant layer, its lowest part: what a simulated participant records.

Every time recorded is when something *arrived*, after the simulated network's
delay: for audio and video, when the receiver's jitter buffer played it out
(see ``DailySimulation``'s ``receive_buffer_s``); for app messages, on arrival.
:func:`assemble` lays received audio out as the track carried it.
"""

from dataclasses import dataclass
from typing import Any

from pipecat_bey.testing.daily_sim.picture import VideoStamp


@dataclass(frozen=True)
class ReceivedAudio:
    """One piece of audio a participant received.

    Parameters:
        at: Monotonic time it was handed over: when the receiver's jitter buffer
            played it out (sent plus the network delay plus the receive buffer),
            or when it arrived if it came later than that.
        publisher_id: Who sent it.
        track: Track key (``"microphone"``, ``"customAudio:<name>"``).
        position: Its position in the sender's track, in samples.
        sample_rate: Its sample rate.
        pcm: 16-bit mono PCM.
        played_at: Monotonic time it started to play at the sender.
    """

    at: float
    publisher_id: str
    track: str
    position: int
    sample_rate: int
    pcm: bytes
    played_at: float

    @property
    def heard_at(self) -> float:
        """When it starts to play at the receiver.

        That is when it plays at the sender plus the delay the network and the
        receive buffer added: audio written ahead of time leaves early but plays
        on time, so without network delay it arrives before it plays.
        """
        return max(self.at, self.played_at)


@dataclass(frozen=True)
class ReceivedVideo:
    """One video frame a participant received (its stamp; no pixels are kept).

    Parameters:
        at: Monotonic time it was handed over: when the receiver's jitter buffer
            rendered it (captured plus the network delay plus the receive
            buffer), or when it arrived if it came later than that.
        publisher_id: Who sent it.
        track: Track key (``"camera"``, ``"customVideo:<name>"``).
        captured_at: Monotonic time it was captured at the sender (a frame a
            client wrote to its video source: when it was written).
        stamp: Its frame number and the sender's audio playout position; of a
            written frame, what its first 16 bytes say (a relay that passes the
            avatar's frames through keeps the avatar's stamp).
        width: Its width in pixels.
        height: Its height in pixels.
    """

    at: float
    publisher_id: str
    track: str
    captured_at: float
    stamp: VideoStamp
    width: int
    height: int


@dataclass(frozen=True)
class SpokenAudio:
    """One piece of audio a participant put on its microphone.

    Parameters:
        start: Monotonic time it starts to play on the microphone track.
        position: Its position in the track, in samples (silence counted).
        sample_rate: Its sample rate.
        pcm: 16-bit mono PCM.
    """

    start: float
    position: int
    sample_rate: int
    pcm: bytes


@dataclass(frozen=True)
class ReceivedMessage:
    """An app message a participant received.

    Parameters:
        at: Monotonic time it arrived.
        sender_id: Who sent it.
        message: The message.
    """

    at: float
    sender_id: str
    message: Any


def assemble(pieces: list[ReceivedAudio], subscribed_at: float | None) -> bytes:
    """Lay received pieces of one track out by track position, with the silence it carried.

    Args:
        pieces: What arrived of the track, in order.
        subscribed_at: When the receiver's subscription started to deliver (None:
            unknown); the silence before the first piece is kept from then on.

    Returns:
        16-bit mono PCM at the pieces' rate.
    """
    if not pieces:
        return b""
    rate = pieces[0].sample_rate
    out = bytearray()
    lead = 0
    if subscribed_at is not None:
        lead = max(round((pieces[0].at - subscribed_at) * rate), 0)
    out.extend(bytes(lead * 2))
    base = pieces[0].position - lead
    for piece in pieces:
        offset = (piece.position - base) * 2
        if offset > len(out):
            out.extend(bytes(offset - len(out)))
        out.extend(piece.pcm)
    return bytes(out)
