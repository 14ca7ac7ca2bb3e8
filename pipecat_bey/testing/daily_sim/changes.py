"""Bottom layer: waiting until something has happened in the simulation.

A :class:`Changes` is told whenever something happened (a participant received
media, someone joined) and wakes whoever waits on it to re-check their
condition; what a participant's or the simulation's ``wait_for`` rests on.
"""

import asyncio
import math
import time
from collections.abc import Callable


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
