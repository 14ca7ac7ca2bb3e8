"""Bottom layer: the timings of a real call, as far as they are known.

The simulation's defaults make a fast, kind world for tests. :data:`REALISTIC`
is one named set of values nearer a real call, for the world (network, joins,
REST) and the avatar together: what ``DailySimulation.realistic()`` and
``AvatarBehaviour.realistic()`` use. No measurement is behind most of them yet:
each is a guess for a decent connection, leaning to the harsher side, unless a
source is given, and a recording of real timings can replace them through
``DailySimulation.from_settings``.
"""

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

REALISTIC: Mapping[str, Any] = MappingProxyType(
    {
        # The world.
        # A guess: one way through Daily's SFU on a decent connection, Opus packets
        # included; the receiver's jitter buffer (``receive_buffer_s``, by default
        # ``jitter_s``) comes on top.
        "network_delay_s": 0.08,
        # A guess: the spread of that delay from one packet to the next.
        "jitter_s": 0.02,
        # A guess: app messages go on a lighter path than media (the reference: they
        # can arrive before audio written just before them).
        "app_message_delay_s": 0.04,
        # A guess: the SFU sets up a consumer in a few round trips.
        "subscribe_latency_s": 0.3,
        # A guess: daily-python's join connects to signalling and then to the SFU.
        "join_latency_s": 1.0,
        # A guess: an HTTPS round trip to api.daily.co.
        "rest_latency_s": 0.15,
        # The avatar.
        # A guess: Beyond Presence starts a render worker and connects it to Daily
        # after the session is created; "a few seconds".
        "join_delay_s": 3.0,
        # A guess: the avatar subscribes to the bot's track about a second after it
        # joins; the reference notes that nothing tells the sender when it has.
        "subscribe_delay_s": 1.0,
        # A guess: the avatar shows its face a little before it listens.
        "camera_lead_s": 0.2,
        # A guess: lip-sync rendering holds the audio for a couple of video frames.
        "playback_delay_s": 0.08,
        # The reference: the earlier integration cut audio in 40 ms chunks, one
        # 25 fps video frame each.
        "video_fps": 25.0,
    }
)
"""Timings nearer a real call, of the world and the avatar, by setting name."""
