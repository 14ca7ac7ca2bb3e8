"""Room layer: what reaches whom in one room, through the simulation's network.

A member's media goes to each other member that receives its track (a video
track: that also renders it), through the network and the receiver's jitter
buffer, in order on each track: audio as it starts to play, video as it was
captured. App messages go to whom they are for, on the network's own path for
them, apart from media. What arrives after its receiver left the room is
dropped.
"""

from typing import Any

from pipecat_bey.testing.daily_sim.audio import CustomAudioSource
from pipecat_bey.testing.daily_sim.member import Member, Venue
from pipecat_bey.testing.daily_sim.video import SentVideo, VideoSource


class Delivery:
    """What carries media and app messages between the members of one room."""

    def __init__(self, room: Venue) -> None:
        """Carry things between a room's members.

        Args:
            room: The room.
        """
        self._room = room

    def send_audio(
        self,
        publisher: Member,
        track: str,
        source: CustomAudioSource,
        pcm: bytes,
        start: float,
        position: int,
    ) -> None:
        """Carry a publisher's audio to the members that receive its track.

        It leaves as it starts to play (``start``) and reaches each receiver
        through the network and its jitter buffer, in order on its track.

        Args:
            publisher: Who sends it.
            track: The track key.
            source: The publisher's source.
            pcm: The audio.
            start: Monotonic time it starts to play.
            position: Its position in the track, in samples.
        """
        network = self._room.host.network
        for other in list(self._room.members.values()):
            if other is not publisher and other.receives(publisher.id, track, start):
                network.send_media(
                    (other.id, publisher.id, track),
                    start,
                    self._hand_audio,
                    other,
                    publisher,
                    track,
                    source,
                    pcm,
                    start,
                    position,
                )

    def send_video(
        self, publisher: Member, track: str, source: VideoSource, frame: SentVideo
    ) -> None:
        """Carry a publisher's video frame to the members that receive and render its track.

        It leaves when captured and reaches each receiver through the network, in
        order on its track, like audio.

        Args:
            publisher: Who sends it.
            track: The track key.
            source: The publisher's camera or custom video source.
            frame: The frame.
        """
        network = self._room.host.network
        for other in list(self._room.members.values()):
            if (
                other is not publisher
                and other.wants_video(publisher.id, track)
                and other.receives(publisher.id, track, frame.captured_at)
            ):
                network.send_media(
                    (other.id, publisher.id, track),
                    frame.captured_at,
                    self._hand_video,
                    other,
                    publisher,
                    track,
                    source,
                    frame,
                )

    def send_app_message(self, sender: Member, message: Any, to: str | None) -> None:
        """Carry an app message to one member or everyone else, apart from media.

        Args:
            sender: Who sends it.
            message: The message.
            to: A participant id, or None for everyone.
        """
        network = self._room.host.network
        for member in list(self._room.members.values()):
            if member is not sender and (to is None or member.id == to):
                network.send_message(
                    (sender.id, member.id), self._hand_message, member, message, sender
                )

    def _hand_audio(
        self,
        receiver: Member,
        publisher: Member,
        track: str,
        source: CustomAudioSource,
        pcm: bytes,
        start: float,
        position: int,
    ) -> None:
        if receiver.room is self._room:
            receiver.on_audio(publisher, track, source, pcm, start, position)

    def _hand_video(
        self,
        receiver: Member,
        publisher: Member,
        track: str,
        source: VideoSource,
        frame: SentVideo,
    ) -> None:
        if receiver.room is self._room:
            receiver.on_video(publisher, track, source, frame)

    def _hand_message(self, receiver: Member, message: Any, sender: Member) -> None:
        if receiver.room is self._room:
            receiver.on_app_message(message, sender)
