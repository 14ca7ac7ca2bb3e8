"""World layer: what a simulation runs on: its loop, its tasks, its callback thread, its waiting.

daily-python calls event handlers and renderers from threads of its own, so a
:class:`Runtime` calls them, in order, from one thread of the simulation's
(:meth:`Runtime.dispatch`). It also runs the simulation's coroutines as tasks
cancelled when it stops, and lets code wait until something holds, re-checked
whenever a room notifies it.
"""

import asyncio
import queue
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from loguru import logger

from pipecat_bey.testing.daily_sim.changes import Changes

# Predicates given to ``wait_for`` may watch things outside the simulation (a bot's
# events, errors) that never notify it, so they are also re-checked this often.
RECHECK_S = 0.25


class Runtime:
    """A simulation's loop, tasks, callback thread and waiters."""

    def __init__(self) -> None:
        """Create the runtime (bound to a loop by :meth:`bind`)."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._callbacks: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...]] | None] = (
            queue.SimpleQueue()
        )
        self._callback_thread: threading.Thread | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._changes = Changes(recheck_s=RECHECK_S)

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The asyncio loop the simulation runs on.

        Raises:
            RuntimeError: If the simulation is not started.
        """
        if self._loop is None:
            raise RuntimeError("the simulation is not started")
        return self._loop

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run on a loop from now on.

        Args:
            loop: The running loop.
        """
        self._loop = loop

    # The callback thread.
    def start_callbacks(self) -> None:
        """Start the thread that calls what is dispatched."""
        self._callback_thread = threading.Thread(
            target=self._run_callbacks, name="daily-sim-callbacks", daemon=True
        )
        self._callback_thread.start()

    async def stop_callbacks(self) -> None:
        """Stop the callback thread once it has called what was dispatched before."""
        self._callbacks.put(None)
        if self._callback_thread is not None:
            await asyncio.to_thread(self._callback_thread.join, 5)

    def dispatch(self, callback: Callable[..., Any], *args: Any) -> None:
        """Call ``callback(*args)`` from the callback thread, in order.

        Args:
            callback: The callable.
            *args: Its arguments.
        """
        self._callbacks.put((callback, args))

    def _run_callbacks(self) -> None:
        while True:
            item = self._callbacks.get()
            if item is None:
                return
            callback, args = item
            try:
                callback(*args)
            except Exception as e:  # a failing handler must not stop the others
                logger.error(f"simulated Daily callback {callback!r} failed: {e!r}")

    # Tasks.
    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> "asyncio.Task[Any]":
        """Run a coroutine; it is cancelled by :meth:`cancel_tasks`.

        Args:
            coro: The coroutine.
            name: Task name.

        Returns:
            The task.
        """
        task = self.loop.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def cancel_tasks(self) -> None:
        """Cancel every task still running and wait for them to end."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # Waiting.
    def notify(self) -> None:
        """Wake whoever waits in :meth:`wait_for` (something happened)."""
        self._changes.notify()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``predicate()`` holds.

        Args:
            predicate: The condition, re-checked on each notification and every
                :data:`RECHECK_S`.
            timeout: Seconds to wait at most (``float("inf")``: forever).

        Returns:
            True once it holds, False if the time ran out first.
        """
        return await self._changes.wait_for(predicate, timeout)
