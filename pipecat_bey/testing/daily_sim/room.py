"""Room layer: a simulated Daily room, who is in it, what they publish, what reaches whom.

It sits above the media and token layers and knows nothing of the simulation
itself: a ``Room`` is given a :class:`RoomHost` (its domain, subscription
latency, loop and token check), and :class:`Changes` is what waiting for
something to happen in the simulation rests on, for the layers above.

Media follows Daily's subscription model: a participant receives another's
track only while that track is published, the publisher's ``canSend`` lets it
send that medium, the receiver's ``canReceive`` lets it receive it, and its own
subscription to it is ``"subscribed"`` (explicit per-participant settings first,
then the assigned subscription profile, then automatic subscription). A
subscription that turns on takes effect after the simulation's
``subscribe_latency_s``, as an SFU needs time to set up the consumer; media then
reaches the receiver through the simulation's :class:`Network`.

What each participant sees of another's tracks is Daily's track state, from its
own point of view: ``"off"`` (with ``offReasons``: ``"user"``, ``"sendPermission"``,
``"receivePermission"``), ``"receivable"`` (published, not subscribed), ``"loading"``
(subscribed, not yet delivering) or ``"playable"``. A member is told
(``on_participant_updated``) whenever that view of someone changes.
"""

import asyncio
import functools
import math
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any, Protocol

from pipecat_bey.testing.daily_sim import permissions
from pipecat_bey.testing.daily_sim.media import (
    CustomAudioSource,
    CustomVideoSource,
    SentVideo,
    SyntheticCamera,
    VideoSource,
)
from pipecat_bey.testing.daily_sim.network import Network
from pipecat_bey.testing.daily_sim.permissions import Permissions, PermissionsError
from pipecat_bey.testing.daily_sim.tokens import TokenClaims

# Track keys: Daily's media names; custom tracks as "customAudio:<name>", "customVideo:<name>".
MICROPHONE = "microphone"
CAMERA = "camera"

# What a member publishes as a track.
Source = CustomAudioSource | SyntheticCamera | CustomVideoSource
_VIDEO_SOURCES = (SyntheticCamera, CustomVideoSource)

# The error an update of others' permissions gets without the right to make it
# (the wording is a guess; Daily refuses such updates).
NOT_ADMIN = "not-allowed: updating participants needs a meeting owner or canAdmin 'participants'"


def custom_audio(name: str) -> str:
    """Key of a custom audio track.

    Args:
        name: The custom track's name.

    Returns:
        Its key.
    """
    return f"customAudio:{name}"


def custom_video(name: str) -> str:
    """Key of a custom video track.

    Args:
        name: The custom track's name.

    Returns:
        Its key.
    """
    return f"customVideo:{name}"


def _flatten_media(media: Any) -> dict[str, str]:
    """Turn Daily media subscription settings into {track key or pattern: state}."""
    if isinstance(media, str):
        return {"*": media}
    flat: dict[str, str] = {}
    for kind, value in (media or {}).items():
        if kind in ("customAudio", "customVideo") and isinstance(value, dict):
            for name, state in value.items():
                flat[f"{kind}:{name}"] = state
        elif kind in ("customAudio", "customVideo") and isinstance(value, str):
            flat[f"{kind}:*"] = value
        elif isinstance(value, str):
            flat[kind] = value
        elif isinstance(value, dict) and "subscribed" in value:
            flat[kind] = value["subscribed"]
    return flat


def _lookup(flat: dict[str, str], track: str) -> str | None:
    if track in flat:
        return flat[track]
    kind = track.split(":", 1)[0]
    if ":" in track and f"{kind}:*" in flat:
        return flat[f"{kind}:*"]
    return flat.get("*")


class Changes:
    """Something to wait on until a condition holds, woken whenever something happened."""

    def __init__(self, recheck_s: float | None = None) -> None:
        """Create it.

        Args:
            recheck_s: Also re-check conditions this often, for conditions on things that
                do not call :meth:`notify` (None: only when notified).
        """
        self._recheck_s = recheck_s
        self._event = asyncio.Event()

    def notify(self) -> None:
        """Wake the waiters, so they re-check their conditions."""
        self._event.set()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        """Wait until ``predicate()`` holds.

        Args:
            predicate: The condition, re-checked whenever something happened.
            timeout: Seconds to wait at most (``float("inf")``: forever).

        Returns:
            True once it holds, False if the time ran out first.
        """
        deadline = time.monotonic() + timeout
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if self._recheck_s is not None:
                remaining = min(remaining, self._recheck_s)
            # Cleared after the check and before waiting, with no await in between,
            # so a notification cannot slip through unseen.
            self._event.clear()
            try:
                await asyncio.wait_for(
                    self._event.wait(), None if math.isinf(remaining) else remaining
                )
            except asyncio.TimeoutError:
                pass
        return True


class RoomHost(Protocol):
    """What a room needs from the simulation that holds it."""

    @property
    def domain(self) -> str:
        """The Daily domain of room URLs."""
        ...

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

    def verify_token(self, token: str) -> TokenClaims:
        """Check a meeting token and read its claims.

        Args:
            token: The token.

        Returns:
            Its claims.

        Raises:
            TokenError: If the simulation did not mint it.
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
        self.room: Room | None = None
        self.joined_at: float | None = None
        self.publishing: dict[str, Source | None] = {}
        self._participant_settings: dict[str, dict[str, str]] = {}
        self._participant_profiles: dict[str, str] = {}
        self._profiles: dict[str, dict[str, str]] = {}
        self._active_from: dict[tuple[str, str], float | None] = {}
        # What this member was last shown of each other member it knows of.
        self._reported: dict[str, Any] = {}

    # What others see.
    def info(self, *, local: bool = False, viewer: "Member | None" = None) -> dict[str, Any]:
        """This member as a Daily participant dict.

        Args:
            local: Whether it is shown to itself (``"local"``).
            viewer: Who looks: track states are as that member sees them (None:
                as this member sees its own tracks).

        Returns:
            The participant.
        """
        joined = (
            datetime.fromtimestamp(self.joined_at, timezone.utc).isoformat()
            if self.joined_at is not None
            else None
        )
        seer = viewer if viewer is not None else self
        media: dict[str, Any] = {
            MICROPHONE: seer.track_view(self, MICROPHONE),
            CAMERA: seer.track_view(self, CAMERA),
            "customAudio": {
                key.split(":", 1)[1]: seer.track_view(self, key)
                for key, source in self.publishing.items()
                if key.startswith("customAudio:") and source is not None
            },
        }
        custom_videos = {
            key.split(":", 1)[1]: seer.track_view(self, key)
            for key, source in self.publishing.items()
            if key.startswith("customVideo:") and source is not None
        }
        if custom_videos:
            media["customVideo"] = custom_videos
        return {
            "id": self.id,
            "info": {
                "userName": self.user_name,
                "userId": self.claims.user_id,
                "isLocal": local,
                "isOwner": self.claims.is_owner,
                "joinedAt": joined,
                "permissions": self.permissions.to_dict(),
            },
            "media": media,
        }

    def track_view(self, publisher: "Member", track: str) -> dict[str, Any]:
        """A publisher's track as this member sees it, in Daily's shape.

        Args:
            publisher: Whose track (this member itself: its own view of its track).
            track: The track key.

        Returns:
            ``{"state": ..., "subscribed": ..., "offReasons": [...]}`` (``subscribed``
            for remote tracks only, ``offReasons`` when off).
        """
        source = publisher.publishing.get(track)
        if publisher is self:
            if source is None:
                return {"state": "off", "offReasons": ["user"]}
            if not self.may_send(track):
                return {"state": "off", "offReasons": ["sendPermission"]}
            return {"state": "playable"}
        subscribed = self.subscription(publisher.id, track)
        reason = None
        if source is None:
            reason = "user"
        elif not publisher.may_send(track):
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

    # Permissions.
    def may_send(self, track: str) -> bool:
        """Whether this member's ``canSend`` lets it send a track.

        Args:
            track: The track key.

        Returns:
            True if allowed.
        """
        return self.permissions.may_send(permissions.track_medium(track)[0])

    def may_receive(self, publisher: "Member", track: str) -> bool:
        """Whether this member's ``canReceive`` lets it receive a publisher's track.

        Args:
            publisher: The publisher.
            track: The track key.

        Returns:
            True if allowed.
        """
        medium, name = permissions.track_medium(track)
        return self.permissions.can_receive.allows(
            publisher.id, publisher.claims.user_id, medium, name
        )

    # Subscriptions.
    def subscription(self, publisher_id: str, track: str) -> str:
        """This member's subscription state to another's track.

        Args:
            publisher_id: The publisher.
            track: The track key.

        Returns:
            ``"subscribed"``, ``"staged"`` or ``"unsubscribed"``.
        """
        explicit = _lookup(self._participant_settings.get(publisher_id, {}), track)
        if explicit is not None:
            return explicit
        profile = self._participant_profiles.get(publisher_id, "base")
        from_profile = _lookup(self._profiles.get(profile, {}), track)
        if from_profile is not None:
            return from_profile
        return "subscribed"  # Daily subscribes to every track automatically by default

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
        for pid, settings in (participant_settings or {}).items():
            if "media" in settings:
                merged = self._participant_settings.setdefault(pid, {})
                merged.update(_flatten_media(settings["media"]))
            if "profile" in settings:
                self._participant_profiles[pid] = settings["profile"]
        if profile_settings:
            self.update_profiles(profile_settings)
        self.refresh_subscriptions()

    def update_profiles(self, profiles: dict[str, Any]) -> None:
        """Apply Daily ``update_subscription_profiles`` settings.

        Args:
            profiles: ``{profile name: media settings}``.
        """
        for name, media in profiles.items():
            self._profiles.setdefault(name, {}).update(_flatten_media(media))
        self.refresh_subscriptions()

    def refresh_subscriptions(self, *, report: bool = True) -> None:
        """Note when each subscription to a published track took effect.

        A subscription is on when this member is subscribed, the publisher may
        send the medium and this member may receive it; one that turns on takes
        effect after the subscription latency.

        Args:
            report: Whether to tell this member of the track states that changed.
        """
        if self.room is None:
            return
        now = time.monotonic()
        latency = self.room.host.subscribe_latency_s
        seen = set()
        activated = False
        for other in self.room.members.values():
            if other is self:
                continue
            for track, source in other.publishing.items():
                if source is None:
                    continue
                key = (other.id, track)
                seen.add(key)
                on = (
                    self.subscription(other.id, track) == "subscribed"
                    and other.may_send(track)
                    and self.may_receive(other, track)
                )
                if on and self._active_from.get(key) is None:
                    self._active_from[key] = now + latency
                    activated = True
                elif not on:
                    self._active_from[key] = None
        for key in list(self._active_from):
            if key not in seen:
                del self._active_from[key]
        if activated and latency > 0:
            # "loading" turns "playable" by itself: tell the member when it does
            # (a moment after, so the state has surely changed by then).
            self.room.host.loop.call_later(latency + 0.002, self._subscriptions_settled)
        if report:
            self.report_changes()

    def _subscriptions_settled(self) -> None:
        if self.room is not None:
            self.report_changes()

    def receives(self, publisher_id: str, track: str, at: float) -> bool:
        """Whether media of that track reaches this member at that time.

        Args:
            publisher_id: The publisher.
            track: The track key.
            at: Monotonic time.

        Returns:
            True if subscribed, permitted, and the subscription has taken effect.
        """
        active = self._active_from.get((publisher_id, track))
        return active is not None and at >= active

    # Telling this member of changes in what it sees.
    def note_view(self, member: "Member") -> None:
        """Start following another member's track states (it was just introduced).

        Args:
            member: The other member.
        """
        self._reported[member.id] = self._view_signature(member)

    def forget_view(self, member: "Member") -> None:
        """Stop following a member (it left).

        Args:
            member: The other member.
        """
        self._reported.pop(member.id, None)

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
        for other in others:
            if other.id not in self._reported:
                continue  # not introduced yet: joining tells it all
            signature = self._view_signature(other)
            if force or signature != self._reported[other.id]:
                self._reported[other.id] = signature
                self.on_participant_updated(other)

    def _view_signature(self, member: "Member") -> tuple[Any, ...]:
        custom = (
            k
            for k, s in member.publishing.items()
            if k.startswith(("customAudio:", "customVideo:")) and s
        )
        tracks = [MICROPHONE, CAMERA, *sorted(custom)]
        views = []
        for track in tracks:
            view = self.track_view(member, track)
            views.append((track, view["state"], tuple(view.get("offReasons", ()))))
        return tuple(views)

    # Publishing.
    def set_publishing(self, track: str, source: Source | None) -> None:
        """Publish a source as a track (None stops publishing it).

        Args:
            track: The track key.
            source: An audio source, a camera or a custom video source, or None.
        """
        previous = self.publishing.get(track)
        self.publishing[track] = source
        if isinstance(previous, _VIDEO_SOURCES) and previous is not source:
            previous.sink = None
        if self.room is not None:
            for other in self.room.members.values():
                if other is not self:
                    other.refresh_subscriptions(report=False)
                    other.report_changes(self)
        # Sinks last: a camera sends its first frame as soon as it has one.
        if isinstance(source, _VIDEO_SOURCES):
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
        room = self.room
        if room is None or self.publishing.get(track) is not source or not self.may_send(track):
            return
        network = room.host.network
        for other in list(room.members.values()):
            if other is not self and other.receives(self.id, track, start):
                network.send_media(
                    (other.id, self.id, track),
                    start,
                    self._arrive_audio,
                    room,
                    other,
                    track,
                    source,
                    pcm,
                    start,
                    position,
                )

    def _arrive_audio(
        self,
        room: "Room",
        receiver: "Member",
        track: str,
        source: CustomAudioSource,
        pcm: bytes,
        start: float,
        position: int,
    ) -> None:
        if receiver.room is room:
            receiver.on_audio(self, track, source, pcm, start, position)

    def publish_video(self, track: str, source: VideoSource, frame: SentVideo) -> None:
        """Send a video frame to whoever receives the track and renders it.

        It leaves when captured and reaches each receiver through the network, in
        order on its track, like audio.

        Args:
            track: The track key.
            source: The camera or custom video source.
            frame: The frame.
        """
        room = self.room
        if room is None or self.publishing.get(track) is not source or not self.may_send(track):
            return
        network = room.host.network
        for other in list(room.members.values()):
            if (
                other is not self
                and other.wants_video(self.id, track)
                and other.receives(self.id, track, frame.captured_at)
            ):
                network.send_media(
                    (other.id, self.id, track),
                    frame.captured_at,
                    self._arrive_video,
                    room,
                    other,
                    track,
                    source,
                    frame,
                )

    def _arrive_video(
        self,
        room: "Room",
        receiver: "Member",
        track: str,
        source: VideoSource,
        frame: SentVideo,
    ) -> None:
        if receiver.room is room:
            receiver.on_video(self, track, source, frame)

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


class JoinError(Exception):
    """A join the room refuses; the message is what Daily would report."""


class Room:
    """One simulated Daily room.

    Attributes:
        host: The simulation that holds it.
        name: Room name.
        private: Whether joining needs a meeting token.
        owner_only_broadcast: Whether only owners may send media by default.
        members: Who is in it, by participant id.
        banned: User ids ejected with a ban.
        fail_app_messages: Make every app message fail to send (a fault to inject).
    """

    def __init__(
        self,
        host: RoomHost,
        name: str,
        *,
        private: bool = False,
        owner_only_broadcast: bool = False,
    ) -> None:
        """Create the room.

        Args:
            host: The simulation that holds it.
            name: Room name.
            private: Whether joining needs a meeting token.
            owner_only_broadcast: Whether only owners may send media, unless a
                meeting token's ``permissions.canSend`` says otherwise.
        """
        self.host = host
        self.name = name
        self.private = private
        self.owner_only_broadcast = owner_only_broadcast
        self.id = str(uuid.uuid4())
        self.session_id = str(uuid.uuid4())
        self.created_at = datetime.now(timezone.utc).isoformat()
        self.members: dict[str, Member] = {}
        self.banned: set[str] = set()
        self.fail_app_messages = False
        self._timers: list[asyncio.TimerHandle] = []

    @property
    def url(self) -> str:
        """The room URL (Daily-shaped; nothing resolves it)."""
        return f"https://{self.host.domain}.daily.co/{self.name}"

    def info(self) -> dict[str, Any]:
        """The room as Daily's REST API shows it.

        Returns:
            The room object.
        """
        return {
            "id": self.id,
            "name": self.name,
            "api_created": True,
            "privacy": "private" if self.private else "public",
            "url": self.url,
            "created_at": self.created_at,
            "config": {"owner_only_broadcast": True} if self.owner_only_broadcast else {},
        }

    def admit(self, member: Member, token: str | None) -> None:
        """Let a member in, checking its token as Daily does.

        Args:
            member: Who joins.
            token: Its meeting token, if any.

        Raises:
            JoinError: If the room refuses the member.
        """
        if token:
            claims = self.host.verify_token(token)
            if claims.room_name is not None and claims.room_name != self.name:
                raise JoinError("not-allowed: the meeting token is for another room")
            now = time.time()
            if claims.exp is not None and claims.exp <= now:
                raise JoinError("not-allowed: the meeting token has expired")
            if claims.nbf is not None and claims.nbf > now:
                raise JoinError("not-allowed: the meeting token is not valid yet")
            member.claims = claims
            if claims.user_name:
                member.user_name = claims.user_name
        elif self.private:
            raise JoinError("not-allowed: this room is private and needs a meeting token")
        if member.claims.user_id and member.claims.user_id in self.banned:
            raise JoinError("not-allowed: this participant was ejected and banned")
        try:
            member.permissions = permissions.initial(
                member.claims.permissions,
                is_owner=member.claims.is_owner,
                owner_only_broadcast=self.owner_only_broadcast,
            )
        except PermissionsError as e:
            raise JoinError(f"not-allowed: {e}") from e
        member.room = self
        member.joined_at = time.time()
        self.members[member.id] = member
        claims = member.claims
        expiry = claims.exp if claims.eject_at_token_exp and claims.exp else None
        if claims.eject_after_elapsed:
            elapsed_end = time.time() + float(claims.eject_after_elapsed)
            expiry = min(expiry, elapsed_end) if expiry else elapsed_end
        if expiry is not None:
            loop = self.host.loop
            self._timers.append(loop.call_later(max(expiry - time.time(), 0), self._expire, member))
        member.refresh_subscriptions(report=False)
        for other in list(self.members.values()):
            if other is not member:
                other.refresh_subscriptions(report=False)
                other.on_participant_joined(member)
                other.note_view(member)
                # Daily reports those already in the room to the newcomer as joining too.
                member.on_participant_joined(other)
                member.note_view(other)

    def _expire(self, member: Member) -> None:
        if member.id in self.members:
            self.remove(member, "leftCall", removed_reason="token-expired")

    def remove(self, member: Member, reason: str, *, removed_reason: str | None = None) -> None:
        """Take a member out, telling everyone else.

        Args:
            member: Who leaves.
            reason: The reason others are given (Daily's ``leftCall``).
            removed_reason: Why it was removed, if it did not leave by itself.
        """
        if self.members.pop(member.id, None) is None:
            return
        member.room = None
        member._reported.clear()
        member._active_from.clear()  # a rejoin subscribes afresh, with the latency
        for source in member.publishing.values():
            if source is not None:
                source.sink = None
        # What it published left with it; a rejoin publishes afresh.
        member.publishing.clear()
        for other in list(self.members.values()):
            other.refresh_subscriptions(report=False)
            other.forget_view(member)
            other.on_participant_left(member, reason)
        if removed_reason:
            member.on_removed(removed_reason)

    def eject(
        self, *, ids: Iterable[str] = (), user_ids: Iterable[str] = (), ban: bool = False
    ) -> list[str]:
        """Eject participants, as ``POST /rooms/{name}/eject`` does.

        Args:
            ids: Participant ids.
            user_ids: User ids from meeting tokens.
            ban: Whether they may not rejoin.

        Returns:
            The ids of the participants ejected.
        """
        ids, user_ids = set(ids), set(user_ids)
        ejected = [
            m for m in self.members.values() if m.id in ids or (m.claims.user_id in user_ids)
        ]
        for member in ejected:
            if ban and member.claims.user_id:
                self.banned.add(member.claims.user_id)
            self.remove(member, "leftCall", removed_reason="ejected")
        return [m.id for m in ejected]

    def send_app_message(self, sender: Member, message: Any, to: str | None) -> str | None:
        """Send an app message to one participant or everyone else.

        It travels on the app-message path of the network, apart from media.

        Args:
            sender: Who sends it.
            message: The message.
            to: A participant id, or None for everyone.

        Returns:
            An error, or None.
        """
        if self.fail_app_messages:
            return "app message could not be sent"
        for member in list(self.members.values()):
            if member is not sender and (to is None or member.id == to):
                self.host.network.send_message(
                    (sender.id, member.id), self._arrive_message, member, message, sender
                )
        return None

    def _arrive_message(self, member: Member, message: Any, sender: Member) -> None:
        if member.room is self:
            member.on_app_message(message, sender)

    def update_permissions(self, caller: Member, updates: dict[str, Any]) -> str | None:
        """Change participants' permissions at runtime, as ``updateParticipant`` does.

        Only an owner, or a participant whose ``canAdmin`` includes
        ``"participants"``, may. Nothing is applied unless every update is of
        Daily's shape. Ids of participants not in the room are skipped (they may
        just have left). Subscriptions are re-evaluated at once, and everyone is
        told the participants changed.

        Args:
            caller: Who asks.
            updates: ``{participant_id: permissions}`` in Daily's JSON shape.

        Returns:
            An error, or None.
        """
        if caller.room is not self:
            return "not in a call"
        if not (caller.claims.is_owner or caller.permissions.may_admin("participants")):
            return NOT_ADMIN
        try:
            parsed = {pid: permissions.parse(value) for pid, value in updates.items()}
        except PermissionsError as e:
            return f"invalid-permissions: {e}"
        changed = []
        for pid, update in parsed.items():
            member = self.members.get(pid)
            if member is not None:
                member.permissions = member.permissions.updated(update)
                changed.append(member)
        members = list(self.members.values())
        for member in members:
            member.refresh_subscriptions(report=False)
        for member in members:
            for other in members:
                if other is not member:
                    # Whose permissions changed has changed, whatever its tracks look like.
                    member.report_changes(other, force=other in changed)
        return None

    def close(self) -> None:
        """Cancel the room's timers and stop its cameras."""
        for timer in self._timers:
            timer.cancel()
        for member in self.members.values():
            for source in member.publishing.values():
                if isinstance(source, SyntheticCamera):
                    source.stop()

    def participants(self) -> list[Member]:
        """Everyone in the room.

        Returns:
            The members.
        """
        return list(self.members.values())
