"""Room layer: what one member receives of the others, and what it is shown of them.

Media of another member's track reaches a member only while that track is
published, the publisher's ``canSend`` lets it send that medium, the member's
own ``canReceive`` lets it receive it, and its subscription to it is on and has
taken effect (:class:`~pipecat_bey.testing.daily_sim.subscriptions.Subscriptions`).

What a member sees of another's tracks is Daily's track state, from its own
point of view: ``"off"`` (with ``offReasons``: ``"user"``, ``"sendPermission"``,
``"receivePermission"``), ``"receivable"`` (published, not subscribed),
``"loading"`` (subscribed, not yet delivering) or ``"playable"``. A
:class:`Reception` keeps what its member was last shown of each other member,
so the member can be told (``on_participant_updated``) whenever that changes.
"""

import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any, Protocol, TypeVar

from pipecat_bey.testing.daily_sim import permissions
from pipecat_bey.testing.daily_sim.permissions import Permissions
from pipecat_bey.testing.daily_sim.subscriptions import Subscriptions
from pipecat_bey.testing.daily_sim.tokens import TokenClaims
from pipecat_bey.testing.daily_sim.tracks import CAMERA, MICROPHONE, Source, custom_tracks

# A member, of whatever class, as given to ``Reception.changed`` and handed back.
_P = TypeVar("_P", bound="Peer")

# What a member was shown of another's tracks: (track key, state, off reasons) each.
_Signature = tuple[tuple[str, str, tuple[str, ...]], ...]


class Peer(Protocol):
    """A member as the others see it: who it is, what it may do, what it publishes."""

    @property
    def id(self) -> str:
        """Participant id."""
        ...

    @property
    def user_name(self) -> str:
        """Display name."""
        ...

    @property
    def claims(self) -> TokenClaims:
        """What its meeting token says."""
        ...

    @property
    def permissions(self) -> Permissions:
        """What it may send, receive and administer."""
        ...

    @property
    def joined_at(self) -> float | None:
        """Unix time it last joined, if it has."""
        ...

    @property
    def publishing(self) -> Mapping[str, Source | None]:
        """The source of each track it publishes, by track key (None: stopped)."""
        ...


def may_send(publisher: Peer, track: str) -> bool:
    """Whether a member's ``canSend`` lets it send a track.

    Args:
        publisher: The member.
        track: The track key.

    Returns:
        True if allowed.
    """
    return publisher.permissions.may_send(permissions.track_medium(track)[0])


class Reception:
    """What one member receives of the others in its room, and what it is shown of them.

    Attributes:
        subscriptions: What the member asked to receive, and since when each
            subscription delivers.
    """

    def __init__(self, owner: Peer) -> None:
        """Create the member's reception (it has seen no one yet).

        Args:
            owner: The member that receives.
        """
        self.subscriptions = Subscriptions()
        self._owner = owner
        # What the member was last shown of each other member it knows of.
        self._reported: dict[str, _Signature] = {}

    # What reaches the member.
    def may_receive(self, publisher: Peer, track: str) -> bool:
        """Whether the member's ``canReceive`` lets it receive a publisher's track.

        Args:
            publisher: The publisher.
            track: The track key.

        Returns:
            True if allowed.
        """
        medium, name = permissions.track_medium(track)
        return self._owner.permissions.can_receive.allows(
            publisher.id, publisher.claims.user_id, medium, name
        )

    def refresh(self, publishers: Iterable[Peer], latency: float) -> bool:
        """Note when each subscription to the publishers' tracks takes effect.

        A subscription is on when the member is subscribed, the publisher may
        send the medium and the member may receive it; one that turns on takes
        effect after ``latency``.

        Args:
            publishers: The other members of the room.
            latency: The room's subscription latency.

        Returns:
            Whether a subscription turned on.
        """
        published = [
            (publisher.id, track, may_send(publisher, track) and self.may_receive(publisher, track))
            for publisher in publishers
            for track, source in publisher.publishing.items()
            if source is not None
        ]
        return self.subscriptions.take_effect(published, time.monotonic(), latency)

    def receives(self, publisher_id: str, track: str, at: float) -> bool:
        """Whether media of a track reaches the member at a time.

        Args:
            publisher_id: The publisher.
            track: The track key.
            at: Monotonic time.

        Returns:
            True if subscribed, permitted, and the subscription has taken effect.
        """
        return self.subscriptions.receives(publisher_id, track, at)

    # What the member is shown.
    def track_view(self, publisher: Peer, track: str) -> dict[str, Any]:
        """A publisher's track as the member sees it, in Daily's shape.

        Args:
            publisher: Whose track (the member itself: its own view of its track).
            track: The track key.

        Returns:
            ``{"state": ..., "subscribed": ..., "offReasons": [...]}`` (``subscribed``
            for remote tracks only, ``offReasons`` when off).
        """
        source = publisher.publishing.get(track)
        if publisher is self._owner:
            if source is None:
                return {"state": "off", "offReasons": ["user"]}
            if not may_send(publisher, track):
                return {"state": "off", "offReasons": ["sendPermission"]}
            return {"state": "playable"}
        subscribed = self.subscriptions.state(publisher.id, track)
        reason = None
        if source is None:
            reason = "user"
        elif not may_send(publisher, track):
            reason = "sendPermission"
        elif not self.may_receive(publisher, track):
            reason = "receivePermission"
        if reason is not None:
            return {"state": "off", "subscribed": subscribed, "offReasons": [reason]}
        if subscribed != "subscribed":
            state = "receivable"
        elif not self.receives(publisher.id, track, time.monotonic()):
            state = "loading"
        else:
            state = "playable"
        return {"state": state, "subscribed": subscribed}

    def participant(self, member: Peer, *, local: bool = False) -> dict[str, Any]:
        """A member as a Daily participant dict, its track states as this member sees them.

        Args:
            member: Who (the member itself: as it sees its own tracks).
            local: Whether it is shown as ``"local"``.

        Returns:
            The participant.
        """
        joined = (
            datetime.fromtimestamp(member.joined_at, timezone.utc).isoformat()
            if member.joined_at is not None
            else None
        )
        media: dict[str, Any] = {
            MICROPHONE: self.track_view(member, MICROPHONE),
            CAMERA: self.track_view(member, CAMERA),
            "customAudio": {
                key.split(":", 1)[1]: self.track_view(member, key)
                for key in custom_tracks(member.publishing, "customAudio")
            },
        }
        custom_videos = {
            key.split(":", 1)[1]: self.track_view(member, key)
            for key in custom_tracks(member.publishing, "customVideo")
        }
        if custom_videos:
            media["customVideo"] = custom_videos
        return {
            "id": member.id,
            "info": {
                "userName": member.user_name,
                "userId": member.claims.user_id,
                "isLocal": local,
                "isOwner": member.claims.is_owner,
                "joinedAt": joined,
                "permissions": member.permissions.to_dict(),
            },
            "media": media,
        }

    # Telling the member of changes in what it sees.
    def introduce(self, member: Peer) -> None:
        """Start following another member's track states (the member was just told of it).

        Args:
            member: The other member.
        """
        self._reported[member.id] = self._signature(member)

    def forget(self, member: Peer) -> None:
        """Stop following a member (it left).

        Args:
            member: The other member.
        """
        self._reported.pop(member.id, None)

    def changed(self, members: Iterable[_P], *, force: bool = False) -> list[_P]:
        """The members whose tracks look different to this member since it was last told.

        Each one returned counts as told: asking again returns it only after a
        further change. Members not introduced yet are left out (joining tells
        all).

        Args:
            members: The members to look at.
            force: Count each introduced member as changed (its info changed otherwise).

        Returns:
            The members to tell this member of.
        """
        changed = []
        for member in members:
            if member.id not in self._reported:
                continue
            signature = self._signature(member)
            if force or signature != self._reported[member.id]:
                self._reported[member.id] = signature
                changed.append(member)
        return changed

    def clear(self) -> None:
        """Forget everything seen and stop every subscription (the member left the room)."""
        self._reported.clear()
        self.subscriptions.stop()

    def _signature(self, member: Peer) -> _Signature:
        custom = [
            *custom_tracks(member.publishing, "customAudio"),
            *custom_tracks(member.publishing, "customVideo"),
        ]
        views = []
        for track in [MICROPHONE, CAMERA, *sorted(custom)]:
            view = self.track_view(member, track)
            views.append((track, view["state"], tuple(view.get("offReasons", ()))))
        return tuple(views)
