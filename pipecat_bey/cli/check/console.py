"""What ``pipecat-bey check`` shows on the console and how it exits, on Daily and on LiveKit.

Warnings and errors go to standard error one line each, every secret masked, from
pipecat's log (loguru) and from the standard library's (the SDKs'); the run is taken to
its end whatever signals come (:func:`pipecat_bey.cli._io.run_to_the_end`), and its
recording makes the exit status.
"""

import logging
import sys
from collections.abc import Collection, Coroutine
from typing import Any

from pipecat_bey._secrets import redact
from pipecat_bey.cli._io import exit_status, run_to_the_end
from pipecat_bey.cli.check.options import CLEANUP_TIMEOUT_S

__all__ = ["log_to_stderr", "run_to_exit_status"]


class _RedactingHandler(logging.Handler):
    """The standard library's log records, one line each, secrets masked."""

    def __init__(self, secrets: Collection[str]) -> None:
        super().__init__(level=logging.WARNING)
        self._secrets = secrets

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = f"{record.levelname}: {record.getMessage()}\n"
            sys.stderr.write(redact(line, *self._secrets))
        except Exception:  # a log line must never stop the check
            self.handleError(record)


def log_to_stderr(secrets: Collection[str]) -> None:
    """Show warnings and errors, one line each, with every secret masked.

    Args:
        secrets: Every key and token of the run (filled as the run goes on).
    """
    from loguru import logger

    def sink(message: Any) -> None:
        sys.stderr.write(redact(str(message), *secrets))

    logger.remove()
    logger.add(sink, level="WARNING", format="{level}: {message}")
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _RedactingHandler)]:
        root.removeHandler(handler)  # a run before this one in the same process
    root.addHandler(_RedactingHandler(secrets))


def run_to_exit_status(
    run: Coroutine[Any, Any, dict[str, Any]], *, offline: bool, removal: str
) -> int:
    """Run the check to its end and tell how it went.

    The first Ctrl-C (or SIGTERM) cancels the check, which cleans up (the avatar, the bot,
    the room) and writes its recording before it is raised here; later ones only say that
    the clean-up goes on.

    Args:
        run: The check's run; it returns the recording.
        offline: Whether it runs against the local stand-ins.
        removal: What the clean-up does to the avatar, as the user is told it ("ejecting
            the avatar").

    Returns:
        0 when every step passed, 1 otherwise, 130 when interrupted (Ctrl-C), 143 when
        terminated (SIGTERM).
    """
    if offline:
        # The local services log a client hanging up mid-request (as Ctrl-C makes the
        # check do) with a traceback; that is the check's own doing, not a fault.
        logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    again = (
        f"pipecat-bey: still cleaning up ({removal}, stopping the bot, deleting the room; "
        f"each at most {CLEANUP_TIMEOUT_S:g} s); the check exits once it is done"
    )
    try:
        recording = run_to_the_end(run, again=again)
    except KeyboardInterrupt as e:
        print(f"pipecat-bey: check {getattr(e, 'how', 'interrupted')}", file=sys.stderr)
        return exit_status(e)
    return 0 if recording["ok"] else 1
