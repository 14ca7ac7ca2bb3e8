"""Call-client layer: the others as a call client sees them, hears of them and asks of them.

A client lists who is in its room (remote participants shown as it sees them:
a track's state depends on its own subscriptions and permissions), is told when
someone joins, changes or leaves and when an app message arrives, and may send
app messages and change others' permissions, as the room allows.
"""

from typing import Any

from pipecat_bey.testing.daily_sim.call_events import CallEvents
from pipecat_bey.testing.daily_sim.member import Member

NOT_IN_A_CALL = "not in a call"


class Participants:
    """What a call client sees of, is told of and asks of the others in its room."""

    def __init__(self, client: Member, events: CallEvents) -> None:
        """Create the view of one client.

        Args:
            client: The client, the ``"local"`` participant.
            events: Its event handler.
        """
        self._client = client
        self._events = events

    def listing(self) -> dict[str, Any]:
        """Everyone in the room, ``"local"`` being the client.

        Returns:
            Participants by id.
        """
        client = self._client
        result = {"local": client.info(local=True)}
        if client.room:
            for member in client.room.members.values():
                if member is not client:
                    result[member.id] = member.info(viewer=client)
        return result

    def counts(self) -> dict[str, int]:
        """How many are in the room.

        Returns:
            ``{"present": n, "hidden": 0}``.
        """
        room = self._client.room
        return {"present": len(room.members) if room else 0, "hidden": 0}

    def update_remote(self, remote_participants: dict[str, Any]) -> str | None:
        """Change remote participants' permissions, as the room allows the client.

        Args:
            remote_participants: ``{participant_id: {"permissions": ...}}``.

        Returns:
            An error, or None.

        Raises:
            NotImplementedError: For updates other than ``permissions`` (not simulated).
        """
        updates = {}
        for participant_id, settings in remote_participants.items():
            other = set(settings) - {"permissions"}
            if other:
                raise NotImplementedError(
                    f"the simulated CallClient does not support update_remote_participants"
                    f" with {sorted(other)}"
                )
            if "permissions" in settings:
                updates[participant_id] = settings["permissions"]
        if self._client.room is None:
            return NOT_IN_A_CALL
        return self._client.room.update_permissions(self._client, updates)

    def send_app_message(self, message: Any, participant_id: str | None) -> str | None:
        """Send an app message to one participant or everyone.

        Args:
            message: JSON-serialisable message.
            participant_id: The recipient, or None for everyone.

        Returns:
            An error, or None.
        """
        if self._client.room is None:
            return NOT_IN_A_CALL
        return self._client.room.send_app_message(self._client, message, participant_id)

    # What the client is told, as Daily's events.
    def joined(self, member: Member) -> None:
        """Tell the handler someone joined.

        Args:
            member: Who.
        """
        self._events.emit("on_participant_joined", member.info(viewer=self._client))

    def left(self, member: Member, reason: str) -> None:
        """Tell the handler someone left.

        Args:
            member: Who.
            reason: Daily's reason.
        """
        self._events.emit("on_participant_left", member.info(viewer=self._client), reason)

    def updated(self, member: Member) -> None:
        """Tell the handler someone changed, or what the client sees of them did.

        Args:
            member: Who.
        """
        self._events.emit("on_participant_updated", member.info(viewer=self._client))

    def app_message(self, message: Any, sender: Member) -> None:
        """Tell the handler an app message arrived.

        Args:
            message: The message.
            sender: Who sent it.
        """
        self._events.emit("on_app_message", message, sender.id)
