"""Bottom layer: calls that may come from any thread, run on the simulation's loop.

daily-python lets an application write audio and video from any thread; the
simulation's sources, and everything they feed, live on one asyncio loop.
:func:`call_on_loop` runs a call there: at once when the caller is already on
the loop, through ``call_soon_threadsafe`` otherwise.
"""

import asyncio
from collections.abc import Callable
from typing import Any


def off_loop(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether the caller is on another thread than the loop (or on no loop at all).

    Args:
        loop: The loop.

    Returns:
        True if a call must be handed over to the loop.
    """
    try:
        return asyncio.get_running_loop() is not loop
    except RuntimeError:
        return True


def call_on_loop(
    loop: asyncio.AbstractEventLoop | None, callback: Callable[..., None], *args: Any
) -> None:
    """Call ``callback(*args)`` on the loop: now if the caller is on it, else from the loop.

    Args:
        loop: The loop (None: call now, there is no loop to hand over to).
        callback: The callable.
        *args: Its arguments.
    """
    if loop is not None and off_loop(loop):
        loop.call_soon_threadsafe(callback, *args)
    else:
        callback(*args)
