"""An offline Daily: the real ``DailyTransport`` in simulated rooms.

Pipecat's ``DailyTransport`` talks to Daily through daily-python's ``CallClient``.
Inside ``async with DailySimulation()``, it gets this package's ``CallClient``
instead, which joins simulated rooms where scripted participants (a user, the
Beyond Presence avatar) come, speak, listen and go. Daily's REST endpoints
(meeting tokens, rooms, eject) are served on loopback at ``rest_url``. Nothing
leaves the machine.

Example::

    async with BeyEmulator(api_keys={"bey-key"}) as bey, DailySimulation(
        api_key="daily-key"
    ) as daily:
        room = daily.create_room("demo")
        daily.attach_bey(bey, AvatarBehaviour(join_delay_s=1.0))
        user = SimulatedUser(daily, room, "Alice")
        transport = DailyTransport(room.url, None, "Bot", DailyParams(...))
        # ... build and run the pipeline; await user.join(); await user.speak_wav(...)

The defaults make a fast, kind world for tests; a harsher one nearer a real
call is one argument away::

    DailySimulation.realistic()  # network delay and jitter, late avatar, ...
    DailySimulation(network_delay_s=0.1, jitter_s=0.03, app_message_delay_s=0.02)
    AvatarBehaviour(subscribe_delay_s=1.0)  # the avatar listens a second after joining

The avatar publishes a camera whose frames carry a stamp (:func:`read_video_stamp`);
meeting tokens, rooms and ``CallClient.update_remote_participants`` take Daily's
participant permissions.

The modules form layers, each importing only the ones below it:

- ``world``: ``DailySimulation``, which holds everything and binds the stand-ins;
- ``call_client``, ``participants``, ``rest``: what joins rooms or serves them;
- ``room``: rooms, their members, subscriptions and what each sees of the others;
- ``media``, ``network``, ``permissions``, ``tokens``: sources, tracks, video frames and
  devices; delays between participants; participant permissions; meeting tokens.
"""

from pipecat_bey.testing.daily_sim.media import (
    AudioData,
    VideoFrame,
    VideoStamp,
    read_video_stamp,
    synthetic_frame,
)
from pipecat_bey.testing.daily_sim.participants import (
    BEY_TRACK,
    REALISTIC_AVATAR,
    AvatarBehaviour,
    ReceivedAudio,
    ReceivedMessage,
    ReceivedVideo,
    SimulatedAvatar,
    SimulatedParticipant,
    SimulatedUser,
    SpokenAudio,
)
from pipecat_bey.testing.daily_sim.room import CAMERA, MICROPHONE, JoinError, Room, custom_audio
from pipecat_bey.testing.daily_sim.world import (
    REALISTIC,
    REALISTIC_WORLD,
    WORLD_SETTINGS,
    DailySimulation,
)

__all__ = [
    "BEY_TRACK",
    "CAMERA",
    "MICROPHONE",
    "REALISTIC",
    "REALISTIC_AVATAR",
    "REALISTIC_WORLD",
    "WORLD_SETTINGS",
    "AudioData",
    "AvatarBehaviour",
    "DailySimulation",
    "JoinError",
    "ReceivedAudio",
    "ReceivedMessage",
    "ReceivedVideo",
    "Room",
    "SimulatedAvatar",
    "SimulatedParticipant",
    "SimulatedUser",
    "SpokenAudio",
    "VideoFrame",
    "VideoStamp",
    "custom_audio",
    "read_video_stamp",
    "synthetic_frame",
]
