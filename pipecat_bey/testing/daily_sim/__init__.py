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

The modules form layers, each importing only the ones below it; a module's
docstring names the group it belongs to (the world, call-client, REST, participant,
room or media layer, or the bottom one):

- ``world``: ``DailySimulation``, which holds everything and is made of the parts
  below it;
- ``stand_ins``, ``domain``, ``runtime``, ``bey_sessions``, ``world_settings``:
  the world's parts (what it installs in ``DailyTransport``'s module; its rooms and
  meeting tokens; its loop, tasks, callback thread and waiting; the avatars Beyond
  Presence sessions send; its settings, ``realistic()`` and ``from_settings``);
- ``call_client``, ``daily``, ``rest``, ``avatar``, ``user``: what joins rooms or
  serves them (daily-python's ``CallClient`` and ``Daily``; Daily's REST endpoints;
  the Beyond Presence avatar and its behaviour; the user);
- ``call_joining``, ``call_publishing``, ``call_rendering``, ``call_participants``,
  ``participant``: the call client's parts (joining and leaving; publishing its
  inputs and custom tracks; its renderers; the others, app messages and permission
  updates) and what the scripted participants share (joining, speaking, listening,
  what they received);
- ``room``, ``records``, ``call_events``: a room, who is in it and what it lets
  through; what a participant records of what it received; what a call client
  tells its application (events, completions);
- ``delivery``: what carries media and app messages between a room's members;
- ``member``: someone in a room, who it is, what it publishes, what it is told;
- ``reception``: what a member receives and is shown of the others;
- ``subscriptions``: a member's subscriptions, and when each takes effect;
- ``tracks``, ``devices``: how tracks are named and what feeds them; what
  daily-python keeps process-wide (tracks by id, virtual devices);
- ``audio``, ``video``: audio sources and resampling; video sources, frames on
  their way and as received;
- ``picture``, ``threads``, ``changes``, ``network``, ``permissions``, ``tokens``,
  ``realistic``: the pixels of a frame and its stamp; calls from other threads onto
  the loop; waiting for something to happen; delays between participants;
  participant permissions; meeting tokens; the timings of a real call.
"""

from pipecat_bey.testing.daily_sim.audio import AudioData
from pipecat_bey.testing.daily_sim.avatar import BEY_TRACK, AvatarBehaviour, SimulatedAvatar
from pipecat_bey.testing.daily_sim.participant import SimulatedParticipant
from pipecat_bey.testing.daily_sim.picture import VideoStamp, read_video_stamp, synthetic_frame
from pipecat_bey.testing.daily_sim.realistic import REALISTIC
from pipecat_bey.testing.daily_sim.records import (
    ReceivedAudio,
    ReceivedMessage,
    ReceivedVideo,
    SpokenAudio,
)
from pipecat_bey.testing.daily_sim.room import JoinError, Room
from pipecat_bey.testing.daily_sim.tracks import CAMERA, MICROPHONE, custom_audio
from pipecat_bey.testing.daily_sim.user import SimulatedUser
from pipecat_bey.testing.daily_sim.video import VideoFrame
from pipecat_bey.testing.daily_sim.world import DailySimulation
from pipecat_bey.testing.daily_sim.world_settings import WORLD_SETTINGS

__all__ = [
    "BEY_TRACK",
    "CAMERA",
    "MICROPHONE",
    "REALISTIC",
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
