"""Participant layer: the simulated user, a person in the room.

It speaks into its microphone and hears the others, as a browser on Daily
Prebuilt does, or as a custom client that plays every audio track.
"""

from pipecat_bey.testing.daily_sim.participant import ParticipantHost, SimulatedParticipant
from pipecat_bey.testing.daily_sim.room import Room


class SimulatedUser(SimulatedParticipant):
    """A person in the room: speaks into its microphone and hears the others.

    Like a browser on Daily Prebuilt, it plays participants' microphones and not
    their custom audio tracks, unless ``plays_custom_tracks``: then it is a custom
    client that subscribes to and plays every audio track it receives, and a test
    can measure whether it heard a bot's raw speech, e.g.
    ``user.heard_speech_s(bot_id, track=custom_audio("bey-custom-track"))``.

    Attributes:
        plays_custom_tracks: Whether it subscribes to custom audio tracks too.
    """

    def __init__(
        self,
        world: ParticipantHost,
        room: Room,
        user_name: str,
        *,
        token: str | None = None,
        sample_rate: int = 16000,
        plays_custom_tracks: bool = False,
    ) -> None:
        """Create the user (not yet in the room).

        Args:
            world: The simulation it runs in.
            room: The room it joins.
            user_name: Its name (a token's name wins).
            token: Its meeting token, if any.
            sample_rate: Rate of its microphone.
            plays_custom_tracks: Subscribe to and record custom audio tracks too.
        """
        super().__init__(world, room, user_name, token=token, sample_rate=sample_rate)
        self.plays_custom_tracks = plays_custom_tracks
        if not plays_custom_tracks:
            self.update_profiles({"base": {"customAudio": "unsubscribed"}})
