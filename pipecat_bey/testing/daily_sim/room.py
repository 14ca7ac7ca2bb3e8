"""Room layer, its top: a simulated Daily room, who is in it, and what reaches whom.

A ``Room`` admits members (checking their meeting tokens as Daily does), takes
them out (leaving, ejection, an expired token), changes their permissions at
runtime, and carries what they send each other: media to those who receive it,
app messages to whom they are for. It knows nothing of the simulation itself:
it is given a :class:`RoomHost` (its domain, subscription latency, loop,
network and token check).

Media follows Daily's subscription model: a member receives another's track
only while that track is published, the publisher may send it, the receiver may
receive it, and its subscription to it is on and has taken effect (see
``reception`` and ``subscriptions``); it then reaches the receiver through the
simulation's :class:`~pipecat_bey.testing.daily_sim.network.Network`. A member
is told (``on_participant_updated``) whenever what it sees of someone changes.
"""

import asyncio
import time
import uuid
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any, Protocol

from pipecat_bey.testing.daily_sim import permissions
from pipecat_bey.testing.daily_sim.delivery import Delivery
from pipecat_bey.testing.daily_sim.member import Member, MemberHost
from pipecat_bey.testing.daily_sim.permissions import PermissionsError
from pipecat_bey.testing.daily_sim.tokens import TokenClaims
from pipecat_bey.testing.daily_sim.video import SyntheticCamera

# The error an update of others' permissions gets without the right to make it
# (the wording is a guess; Daily refuses such updates).
NOT_ADMIN = "not-allowed: updating participants needs a meeting owner or canAdmin 'participants'"


class RoomHost(MemberHost, Protocol):
    """What a room needs from the simulation that holds it (and its members from it)."""

    @property
    def domain(self) -> str:
        """The Daily domain of room URLs."""
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
        delivery: What carries media and app messages between its members.
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
        self.delivery = Delivery(self)
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
                other.reception.introduce(member)
                # Daily reports those already in the room to the newcomer as joining too.
                member.on_participant_joined(other)
                member.reception.introduce(other)

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
        member.detach()
        for other in list(self.members.values()):
            other.refresh_subscriptions(report=False)
            other.reception.forget(member)
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
        self.delivery.send_app_message(sender, message, to)
        return None

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
