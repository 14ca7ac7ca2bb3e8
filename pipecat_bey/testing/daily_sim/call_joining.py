"""Call-client layer: a call client joining a simulated room and leaving it.

A join finds the room its URL names, is admitted (the room checks the meeting
token), applies the client settings it came with and completes with what
daily-python reports; the call state goes ``joining``, then ``joined`` or, if
refused, ``left``. A join takes the simulation's ``join_latency_s``.
"""

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from pipecat_bey.testing.daily_sim.call_events import CallEvents, Completion, complete
from pipecat_bey.testing.daily_sim.member import Member
from pipecat_bey.testing.daily_sim.room import JoinError, Room
from pipecat_bey.testing.daily_sim.tokens import TokenError


class JoinHost(Protocol):
    """What joining needs of the simulation: its rooms and how long a join takes."""

    @property
    def join_latency_s(self) -> float:
        """Time a join takes to complete."""
        ...

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop the rooms run on."""
        ...

    def room_for_url(self, url: str) -> Room | None:
        """The room a URL names, if any.

        Args:
            url: A room URL.

        Returns:
            The room, or None.
        """
        ...


class Joining:
    """How one call client joins rooms and leaves them."""

    def __init__(
        self,
        client: Member,
        host: JoinHost,
        events: CallEvents,
        apply_settings: Callable[[dict[str, Any]], None],
    ) -> None:
        """Create the joining of a client.

        Args:
            client: The member that joins.
            host: The simulation whose rooms it joins.
            events: Its event handler.
            apply_settings: Applies the client settings a join brings (``inputs``,
                ``publishing``), once admitted.
        """
        self._client = client
        self._host = host
        self._events = events
        self._apply_settings = apply_settings

    def join(
        self,
        meeting_url: str,
        meeting_token: str | None,
        client_settings: dict[str, Any] | None,
        completion: Completion,
    ) -> None:
        """Join a room, after the simulation's join latency.

        Args:
            meeting_url: The room URL.
            meeting_token: A meeting token, if any.
            client_settings: ``inputs`` and ``publishing`` as Daily takes them.
            completion: Called with ``(data, error)``.
        """
        self._events.call_state("joining")
        if self._host.join_latency_s:
            self._host.loop.call_later(
                self._host.join_latency_s,
                self._finish_join,
                meeting_url,
                meeting_token,
                client_settings,
                completion,
            )
        else:
            self._finish_join(meeting_url, meeting_token, client_settings, completion)

    def _finish_join(
        self,
        meeting_url: str,
        meeting_token: str | None,
        client_settings: dict[str, Any] | None,
        completion: Completion,
    ) -> None:
        room = self._host.room_for_url(meeting_url)
        if room is None:
            self._events.call_state("left")
            complete(completion, None, f"no room at {meeting_url}")
            return
        try:
            room.admit(self._client, meeting_token)
        except (JoinError, TokenError) as e:
            self._events.call_state("left")
            complete(completion, None, str(e))
            return
        self._apply_settings(client_settings or {})
        self._events.call_state("joined")
        data = {
            "participants": {"local": self._client.info(local=True)},
            "meetingSession": {"id": room.session_id},
        }
        complete(completion, data, None)

    def leave(self, completion: Completion) -> None:
        """Leave the room, if in one.

        Args:
            completion: Called with ``None`` (no error).
        """
        room = self._client.room
        if room is not None:
            self._events.call_state("leaving")
            room.remove(self._client, "leftCall")
            self._events.call_state("left")
        complete(completion, None)

    def release(self) -> None:
        """Leave the room, if in one, telling no one of the call's state."""
        room = self._client.room
        if room is not None:
            room.remove(self._client, "leftCall")
