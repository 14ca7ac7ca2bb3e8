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

The modules form layers, each importing only the ones below it:

- ``world``: ``DailySimulation``, which holds everything and binds the stand-ins;
- ``call_client``, ``participants``, ``rest``: what joins rooms or serves them;
- ``room``: rooms, their members and subscriptions;
- ``media``, ``tokens``: sources, tracks and devices; meeting tokens.
"""

from pipecat_bey.testing.daily_sim.media import AudioData
from pipecat_bey.testing.daily_sim.participants import (
    AvatarBehaviour,
    ReceivedAudio,
    ReceivedMessage,
    SimulatedAvatar,
    SimulatedParticipant,
    SimulatedUser,
)
from pipecat_bey.testing.daily_sim.room import JoinError, Room
from pipecat_bey.testing.daily_sim.world import DailySimulation

__all__ = [
    "AudioData",
    "AvatarBehaviour",
    "DailySimulation",
    "JoinError",
    "ReceivedAudio",
    "ReceivedMessage",
    "Room",
    "SimulatedAvatar",
    "SimulatedParticipant",
    "SimulatedUser",
]
