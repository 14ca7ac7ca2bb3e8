"""Room layer: someone in a room, a bot's call client or a simulated participant.

A :class:`Member` is who it is (id, name, token claims, permissions), the
tracks it publishes, and the hooks through which it is told what happens in its
room; what it receives and is shown of the others is its
:class:`~pipecat_bey.testing.daily_sim.reception.Reception`. It knows its room
only as a :class:`Venue`, what a member needs of the room it is in (the room
layer's ``Room`` is one; its ``Delivery`` is the :class:`Carrier` of the
member's media), and the simulation only as the room's :class:`MemberHost`.
"""

import asyncio
import functools
import uuid
from collections.abc import Mapping
from typing import Any, Protocol

from pipecat_bey.testing.daily_sim.audio import CustomAudioSource
from pipecat_bey.testing.daily_sim.network import Network
from pipecat_bey.testing.daily_sim.permissions import Permissions
from pipecat_bey.testing.daily_sim.reception import Reception, may_send
from pipecat_bey.testing.daily_sim.tokens import TokenClaims
from pipecat_bey.testing.daily_sim.tracks import VIDEO_SOURCES, Source
from pipecat_bey.testing.daily_sim.video import SentVideo, VideoSource


class MemberHost(Protocol):
    """What a member needs of the simulation its room is in."""

    @property
    def subscribe_latency_s(self) -> float:
        """Time for a new subscription to start delivering media."""
        ...

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop timers run on."""
        ...

    @property
    def network(self) -> Network:
        """What carries media and app messages between members."""
        ...


class Carrier(Protocol):
    """What carries a member's media to the others in its room."""

    def send_audio(
        self,
        publisher: "Member",
        track: str,
        source: CustomAudioSource,
        pcm: bytes,
        start: float,
        position: int,
    ) -> None:
        """Carry a publisher's audio to the members that receive its track.

        Args:
            publisher: Who sends it.
            track: The track key.
            source: The publisher's source.
            pcm: The audio.
            start: Monotonic time it starts to play.
            position: Its position in the track, in samples.
        """
        ...

    def send_video(
        self, publisher: "Member", track: str, source: VideoSource, frame: SentVideo
    ) -> None:
        """Carry a publisher's video frame to the members that receive and render its track.

        Args:
            publisher: Who sends it.
            track: The track key.
            source: The publisher's camera or custom video source.
            frame: The frame.
        """
        ...


class Venue(Protocol):
    """What a member needs of the room it is in, and may ask of it."""

    @property
    def host(self) -> MemberHost:
        """The simulation that holds the room."""
        ...

    @property
    def members(self) -> Mapping[str, "Member"]:
        """Who is in it, by participant id."""
        ...

    @property
    def delivery(self) -> Carrier:
        """What carries media between its members."""
        ...

    def send_app_message(self, sender: "Member", message: Any, to: str | None) -> str | None:
        """Send an app message to one member or everyone else.

        Args:
            sender: Who sends it.
            message: The message.
            to: A participant id, or None for everyone.

        Returns:
            An error, or None.
        """
        ...

    def update_permissions(self, caller: "Member", updates: dict[str, Any]) -> str | None:
        """Change members' permissions, as ``updateParticipant`` does.

        Args:
            caller: Who asks.
            updates: ``{participant_id: permissions}`` in Daily's JSON shape.

        Returns:
            An error, or None.
        """
        ...

    def remove(self, member: "Member", reason: str, *, removed_reason: str | None = None) -> None:
        """Take a member out.

        Args:
            member: Who leaves.
            reason: The reason the others are given.
            removed_reason: Why it was removed, if it did not leave by itself.
        """
        ...


class Member:
    """Someone in a room: a bot's call client or a simulated participant.

    Attributes:
        id: Participant id (Daily's session id).
        user_name: Display name.
        claims: What its meeting token says (empty without one).
        permissions: What it may send, receive and administer (set when it joins).
        room: The room it is in, if any.
        joined_at: Unix time it last joined, if it has.
        publishing: The source of each track it publishes, by track key (None: stopped).
        reception: What it receives and is shown of the others, its subscriptions
            included.
    """

    def __init__(self, user_name: str) -> None:
        """Create the member (not yet in a room).

        Args:
            user_name: Display name.
        """
        self.id = str(uuid.uuid4())
        self.user_name = user_name
        self.claims = TokenClaims()
        self.permissions = Permissions()
        self.room: Venue | None = None
        self.joined_at: float | None = None
        self.publishing: dict[str, Source | None] = {}
        self.reception = Reception(self)

    def info(self, *, local: bool = False, viewer: "Member | None" = None) -> dict[str, Any]:
        """This member as a Daily participant dict.

        Args:
            local: Whether it is shown to itself (``"local"``).
            viewer: Who looks: track states are as that member sees them (None:
                as this member sees its own tracks).

        Returns:
            The participant.
        """
        seer = viewer if viewer is not None else self
        return seer.reception.participant(self, local=local)

    # Permissions and subscriptions.
    def may_send(self, track: str) -> bool:
        """Whether this member's ``canSend`` lets it send a track.

        Args:
            track: The track key.

        Returns:
            True if allowed.
        """
        return may_send(self, track)

    def may_receive(self, publisher: "Member", track: str) -> bool:
        """Whether this member's ``canReceive`` lets it receive a publisher's track.

        Args:
            publisher: The publisher.
            track: The track key.

        Returns:
            True if allowed.
        """
        return self.reception.may_receive(publisher, track)

    def subscription(self, publisher_id: str, track: str) -> str:
        """This member's subscription state to another's track.

        Args:
            publisher_id: The publisher.
            track: The track key.

        Returns:
            ``"subscribed"``, ``"staged"`` or ``"unsubscribed"``.
        """
        return self.reception.subscriptions.state(publisher_id, track)

    def receives(self, publisher_id: str, track: str, at: float) -> bool:
        """Whether media of that track reaches this member at that time.

        Args:
            publisher_id: The publisher.
            track: The track key.
            at: Monotonic time.

        Returns:
            True if subscribed, permitted, and the subscription has taken effect.
        """
        return self.reception.receives(publisher_id, track, at)

    def update_subscriptions(
        self,
        participant_settings: dict[str, Any] | None = None,
        profile_settings: dict[str, Any] | None = None,
    ) -> None:
        """Apply Daily ``update_subscriptions`` settings.

        Args:
            participant_settings: ``{participant_id: {"media": ..., "profile": ...}}``.
            profile_settings: ``{profile: media settings}``.
        """
        self.reception.subscriptions.update(participant_settings, profile_settings)
        self.refresh_subscriptions()

    def update_profiles(self, profiles: dict[str, Any]) -> None:
        """Apply Daily ``update_subscription_profiles`` settings.

        Args:
            profiles: ``{profile name: media settings}``.
        """
        self.reception.subscriptions.update_profiles(profiles)
        self.refresh_subscriptions()

    def refresh_subscriptions(self, *, report: bool = True) -> None:
        """Note when each subscription to a published track took effect.

        Args:
            report: Whether to tell this member of the track states that changed.
        """
        room = self.room
        if room is None:
            return
        latency = room.host.subscribe_latency_s
        others = [m for m in room.members.values() if m is not self]
        if self.reception.refresh(others, latency) and latency > 0:
            # "loading" turns "playable" by itself: tell the member when it does
            # (a moment after, so the state has surely changed by then).
            room.host.loop.call_later(latency + 0.002, self._subscriptions_settled)
        if report:
            self.report_changes()

    def _subscriptions_settled(self) -> None:
        if self.room is not None:
            self.report_changes()

    def report_changes(self, publisher: "Member | None" = None, *, force: bool = False) -> None:
        """Call :meth:`on_participant_updated` for each member whose tracks look different.

        Args:
            publisher: Only this member (None: everyone this member knows of).
            force: Report even if nothing looks different (its info changed otherwise).
        """
        if self.room is None:
            return
        if publisher is not None:
            others = [publisher]
        else:
            others = [m for m in self.room.members.values() if m is not self]
        for other in self.reception.changed(others, force=force):
            self.on_participant_updated(other)

    # Publishing.
    def set_publishing(self, track: str, source: Source | None) -> None:
        """Publish a source as a track (None stops publishing it).

        Args:
            track: The track key.
            source: An audio source, a camera or a custom video source, or None.
        """
        previous = self.publishing.get(track)
        self.publishing[track] = source
        if isinstance(previous, VIDEO_SOURCES) and previous is not source:
            previous.sink = None
        if self.room is not None:
            for other in self.room.members.values():
                if other is not self:
                    other.refresh_subscriptions(report=False)
                    other.report_changes(self)
        # Sinks last: a camera sends its first frame as soon as it has one.
        if isinstance(source, VIDEO_SOURCES):
            source.sink = functools.partial(self.publish_video, track)
        elif source is not None:
            source.sink = functools.partial(self.publish_audio, track)

    def publish_audio(
        self, track: str, source: CustomAudioSource, pcm: bytes, start: float, position: int
    ) -> None:
        """Send audio written to one of this member's sources to whoever receives it.

        Audio leaves as it starts to play (``start``) and reaches each receiver
        through the network and its jitter buffer, in order on its track.

        Args:
            track: The track key the source is published as.
            source: The source.
            pcm: The audio.
            start: Monotonic time it starts to play.
            position: Its position in the track, in samples.
        """
        if self.room is not None and self.publishing.get(track) is source and self.may_send(track):
            self.room.delivery.send_audio(self, track, source, pcm, start, position)

    def publish_video(self, track: str, source: VideoSource, frame: SentVideo) -> None:
        """Send a video frame to whoever receives the track and renders it.

        It leaves when captured and reaches each receiver through the network, in
        order on its track, like audio.

        Args:
            track: The track key.
            source: The camera or custom video source.
            frame: The frame.
        """
        if self.room is not None and self.publishing.get(track) is source and self.may_send(track):
            self.room.delivery.send_video(self, track, source, frame)

    def detach(self) -> None:
        """Drop what this member had in the room it left; a rejoin starts afresh.

        It sees no one any more, its subscriptions take effect again with the
        latency, and what it published left with it.
        """
        self.room = None
        self.reception.clear()
        for source in self.publishing.values():
            if source is not None:
                source.sink = None
        self.publishing.clear()

    # Hooks for subclasses.
    def wants_video(self, publisher_id: str, track: str) -> bool:
        """Whether this member renders a publisher's video track (no one else is sent it).

        Args:
            publisher_id: The publisher.
            track: The track key.

        Returns:
            False here: subclasses with renderers say True.
        """
        return False

    def on_audio(
        self,
        publisher: "Member",
        track: str,
        source: CustomAudioSource,
        pcm: bytes,
        start: float,
        position: int,
    ) -> None:
        """Audio from a track this member receives, as its jitter buffer plays it out.

        Args:
            publisher: Who sent it.
            track: The track key.
            source: The publisher's source (sample rate, channels, silence).
            pcm: The audio.
            start: Monotonic time it started to play at the sender.
            position: Its position in the track, in samples.
        """

    def on_video(
        self, publisher: "Member", track: str, source: VideoSource, frame: SentVideo
    ) -> None:
        """A video frame of a track this member renders, as its jitter buffer plays it out.

        Args:
            publisher: Who sent it.
            track: The track key.
            source: The publisher's camera or custom video source.
            frame: The frame (size, stamp, capture time, and the pixels if written).
        """

    def on_participant_joined(self, member: "Member") -> None:
        """Someone joined the room.

        Args:
            member: Who.
        """

    def on_participant_left(self, member: "Member", reason: str) -> None:
        """Someone left the room.

        Args:
            member: Who.
            reason: Daily's reason.
        """

    def on_participant_updated(self, member: "Member") -> None:
        """Someone's state, or what this member sees of it, changed.

        Args:
            member: Who.
        """

    def on_app_message(self, message: Any, sender: "Member") -> None:
        """An app message arrived.

        Args:
            message: The message.
            sender: Who sent it.
        """

    def on_removed(self, reason: str) -> None:
        """This member was removed from the room (ejected, token expired).

        Args:
            reason: Why.
        """
