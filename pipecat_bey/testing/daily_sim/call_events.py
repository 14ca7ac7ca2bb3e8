"""Call-client layer: what a call client tells its application, and from which thread.

Like daily-python, a client calls its event handler's ``on_*`` methods from a
thread of the simulation's own (a :class:`Dispatcher`), never from the asyncio
loop, and completions are plain callables, called with the result.
"""

from collections.abc import Callable
from typing import Any, Protocol

Completion = Callable[..., None] | None


class Dispatcher(Protocol):
    """What calls the application back from the thread that delivers daily-python's events."""

    def dispatch(self, callback: Callable[..., Any], *args: Any) -> None:
        """Call ``callback(*args)`` from the thread that delivers daily-python's events.

        Args:
            callback: The callable.
            *args: Its arguments.
        """
        ...


def complete(completion: Completion, *args: Any) -> None:
    """Call a completion, if one was given.

    Args:
        completion: The completion, or None.
        *args: What it is called with (``data, error`` or ``error``).
    """
    if completion is not None:
        completion(*args)


class CallEvents:
    """A call client's event handler, called from the dispatcher's thread."""

    def __init__(self, handler: Any, dispatcher: Dispatcher) -> None:
        """Create the events of one client.

        Args:
            handler: A ``daily.EventHandler`` whose ``on_*`` methods get events (or None).
            dispatcher: What calls them.
        """
        self._handler = handler
        self._dispatcher = dispatcher

    def emit(self, name: str, *args: Any) -> None:
        """Call the handler's method ``name`` with ``args``, if it has one.

        Args:
            name: The event (``"on_call_state_updated"``...).
            *args: Its arguments.
        """
        method = getattr(self._handler, name, None)
        if method is not None:
            self._dispatcher.dispatch(method, *args)

    def call_state(self, state: str) -> None:
        """Tell the handler the call's state changed.

        Args:
            state: ``"joining"``, ``"joined"``, ``"leaving"`` or ``"left"``.
        """
        self.emit("on_call_state_updated", state)
