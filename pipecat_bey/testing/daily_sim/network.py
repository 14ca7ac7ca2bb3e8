"""Bottom layer: the network between participants, with delay, jitter and ordered paths.

Over Daily, audio and video go through the SFU and a jitter buffer on the
receiving side, while app messages travel on a path of their own and can arrive
before audio written just before them (see the project's reference notes).
:class:`Network` models that with the simulation's loop timers, no threads:

- media sent at time ``t`` on a path (one receiver, one publisher, one track)
  reaches the network's end at ``t + delay_s + uniform(0, jitter_s)`` and waits
  in the receiver's jitter buffer until its playout time, ``t + delay_s +
  receive_buffer_s``, as WebRTC's receive buffers (NetEQ for audio, the video
  jitter buffer) hand media on at a steady pace: jitter the buffer covers shows
  as a constant latency, not as gaps. A piece that arrives after its playout
  time is handed on when it arrives, late; and nothing is handed on before the
  piece ahead of it on its path;
- an app message arrives ``app_message_delay_s`` after it was sent, in order with
  the other app messages between the same two participants, whatever media is
  still on its way. App messages are not jitter-buffered.

The randomness is seeded, so a run can be repeated, and the clock and timers
are the simulation's loop unless a virtual clock is given (:class:`Timers`), on
which the network's decisions can be followed exactly. With no delay, no jitter and
no receive buffer (the defaults), media is handed over at once, synchronously,
when sent; with no app-message delay, so are app messages. The delays may be
changed while the simulation runs (a network that degrades): what is already on
its way keeps its schedule, and nothing overtakes it on its path.
"""

import asyncio
import random
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Protocol

from loguru import logger


class Timer(Protocol):
    """A timer that was set (``asyncio.TimerHandle`` is one)."""

    def cancel(self) -> None:
        """Stop it, if it has not fired yet."""
        ...


class Timers(Protocol):
    """What the network sets its timers on (an asyncio loop is one)."""

    def call_later(self, delay: float, callback: Callable[..., None], *args: Any) -> Timer:
        """Call ``callback(*args)`` after ``delay`` seconds of the network's clock.

        Args:
            delay: Seconds from now.
            callback: The callable.
            *args: Its arguments.

        Returns:
            The timer.
        """
        ...


@dataclass
class _Path:
    """Deliveries still on their way along one path, in order of arrival."""

    last_arrival: float = 0.0
    queue: deque[tuple[float, Callable[..., None], tuple[Any, ...]]] = field(default_factory=deque)
    timer: Timer | None = None


class Network:
    """Delays media and app messages between participants.

    Attributes:
        delay_s: One-way media delay.
        jitter_s: Extra media delay, drawn uniformly from ``[0, jitter_s]`` per piece.
        receive_buffer_s: The receivers' jitter buffer: media plays out this long
            after ``delay_s`` (None: ``jitter_s``, whatever it is at the time).
        app_message_delay_s: One-way app-message delay.
    """

    def __init__(
        self,
        *,
        delay_s: float = 0.0,
        jitter_s: float = 0.0,
        app_message_delay_s: float = 0.0,
        seed: int | None = 0,
        receive_buffer_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Create the network.

        Args:
            delay_s: One-way media delay, seconds.
            jitter_s: Maximum extra media delay, seconds.
            app_message_delay_s: One-way app-message delay, seconds.
            seed: Seed of the jitter's randomness (None: a fresh one each run).
            receive_buffer_s: How long past ``delay_s`` receivers play media out,
                seconds (None: ``jitter_s``; 0: on arrival, gaps under jitter).
            clock: The monotonic clock media is sent and delivered by, in seconds
                (a virtual one goes with the :class:`Timers` given to :meth:`bind`).

        Raises:
            ValueError: If a delay is negative.
        """
        if min(delay_s, jitter_s, app_message_delay_s, receive_buffer_s or 0.0) < 0:
            raise ValueError("network delays cannot be negative")
        self.delay_s = delay_s
        self.jitter_s = jitter_s
        self.receive_buffer_s = receive_buffer_s
        self.app_message_delay_s = app_message_delay_s
        self._random = random.Random(seed)
        self._clock = clock
        self._paths: dict[Hashable, _Path] = {}
        self._loop: Timers | None = None

    @property
    def buffer_s(self) -> float:
        """How long past ``delay_s`` media plays out: ``receive_buffer_s``, or ``jitter_s``."""
        return self.jitter_s if self.receive_buffer_s is None else self.receive_buffer_s

    @property
    def playout_delay_s(self) -> float:
        """How long after it left the sender media plays out, unless it arrives later."""
        return self.delay_s + self.buffer_s

    @property
    def delays_media(self) -> bool:
        """Whether media takes time to arrive."""
        return self.delay_s > 0 or self.jitter_s > 0 or self.buffer_s > 0

    def bind(self, loop: Timers) -> None:
        """Run the network's timers on a loop.

        Args:
            loop: The simulation's loop (or timers on the network's virtual clock).
        """
        self._loop = loop

    def send_media(
        self, path: Hashable, sent_at: float, deliver: Callable[..., None], *args: Any
    ) -> None:
        """Send a piece of media; ``deliver(*args)`` is called when it plays out.

        That is at its playout time (``sent_at`` plus :attr:`playout_delay_s`), or
        on arrival if it arrives later, and never before the piece ahead of it.

        Args:
            path: What keeps its order: one receiver, one publisher, one track.
            sent_at: Monotonic time it left the sender (its delay counts from there).
            deliver: Called when it plays out, from the loop.
            *args: Its arguments.
        """
        if not self.delays_media:
            if path in self._paths:  # delays were just turned off: keep the order
                self._send(path, self._clock(), deliver, args)
            else:
                deliver(*args)
            return
        jitter = self._random.uniform(0, self.jitter_s) if self.jitter_s else 0.0
        # The receiver's jitter buffer holds what arrives early until its playout time.
        delay = self.delay_s + max(jitter, self.buffer_s)
        self._send(path, sent_at + delay, deliver, args)

    def send_message(self, path: Hashable, deliver: Callable[..., None], *args: Any) -> None:
        """Send an app message; ``deliver(*args)`` is called when it arrives.

        Args:
            path: What keeps its order: the sender and the recipient.
            deliver: Called on arrival, from the loop.
            *args: Its arguments.
        """
        key = ("app-message", path)
        if not self.app_message_delay_s and key not in self._paths:
            deliver(*args)
            return
        self._send(key, self._clock() + self.app_message_delay_s, deliver, args)

    def pending(self) -> int:
        """How many deliveries are still on their way.

        Returns:
            The number.
        """
        return sum(len(p.queue) for p in self._paths.values())

    def close(self) -> None:
        """Drop whatever is still on its way."""
        for path in self._paths.values():
            if path.timer is not None:
                path.timer.cancel()
        self._paths.clear()

    def _send(
        self,
        key: Hashable,
        arrival: float,
        deliver: Callable[..., None],
        args: tuple[Any, ...],
    ) -> None:
        path = self._paths.get(key)
        if path is None:
            path = self._paths[key] = _Path()
        arrival = max(arrival, path.last_arrival)
        path.last_arrival = arrival
        path.queue.append((arrival, deliver, args))
        if path.timer is None:
            self._schedule(key, path)

    def _schedule(self, key: Hashable, path: _Path) -> None:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        wait = max(path.queue[0][0] - self._clock(), 0.0)
        path.timer = self._loop.call_later(wait, self._arrive, key)

    def _arrive(self, key: Hashable) -> None:
        path = self._paths.get(key)
        if path is None:
            return
        path.timer = None
        now = self._clock()
        # A timer may fire a hair early; what is due within a millisecond is due.
        while path.queue and path.queue[0][0] <= now + 0.001:
            _, deliver, args = path.queue.popleft()
            try:
                deliver(*args)
            except Exception as e:  # one receiver failing must not stall the path
                logger.error(f"simulated network delivery {deliver!r} failed: {e!r}")
        if path.queue:
            self._schedule(key, path)
        elif path.last_arrival <= now:
            # Nothing in flight and nothing to order after: forget the path.
            del self._paths[key]
