"""What the commands share: files checked before anything runs, progress, Ctrl-C and SIGTERM.

Signals
-------
:func:`stop_signals` holds SIGINT and SIGTERM for the whole life of a command,
and :func:`run_to_the_end` runs its asynchronous part. The first signal
cancels that run, whose clean-up then runs to the end (:func:`finish`,
:class:`ExitsFully`): later signals only say that it is under way, so no
second Ctrl-C can cut a clean-up short, however soon it comes. Before the run
starts (imports, reading files) the first signal stops the command where it
is, as Ctrl-C usually does. Once a signal came, the command ignores further
ones until it has exited, so the exit status is always 128 plus the signal's
number: 130 for Ctrl-C, 143 for SIGTERM.
"""

import asyncio
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Generic, Protocol, TypeVar

_T = TypeVar("_T")
_T_co = TypeVar("_T_co", covariant=True)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
"""The signals that stop a command: Ctrl-C and ``kill``'s default."""


def check_writable(path: Path, what: str) -> None:
    """Refuse an output path that cannot be written, before anything runs.

    The path is tried as the command will use it: the file is opened for writing
    (appending, so an existing file is left as it is); a file created for the try
    is removed again.

    Args:
        path: Where the command will write.
        what: What the file is, for the error (e.g. "--report").

    Raises:
        ValueError: Naming the path, what is wrong and what to do: the path is a
            directory, its directory does not exist or is a file, or the file
            cannot be opened for writing there (a read-only file system, no
            permission, a special file).
    """
    if path.is_dir():
        raise ValueError(f"{what} {path}: is a directory; give the name of a file in it")
    parent = path.parent
    if not parent.is_dir():
        existing = next((p for p in (parent, *parent.parents) if p.exists()), None)
        if existing is not None and not existing.is_dir():
            raise ValueError(
                f"{what} {path}: {existing} is a file, not a directory; give a path in a directory"
            )
        raise ValueError(
            f"{what} {path}: the directory {parent} does not exist; create it "
            f"(mkdir -p {parent}) or give a path in a directory that exists"
        )
    existed = path.exists()
    try:
        # O_NONBLOCK: a pipe with no reader is refused at once rather than waited on.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK, 0o666)
    except OSError as e:
        raise ValueError(
            f"{what} {path}: cannot be written there ({e.strerror or e}); give a path in a "
            "directory you can write to"
        ) from None
    os.close(fd)
    if not existed:
        Path(os.path.realpath(path)).unlink(missing_ok=True)


def check_distinct(outputs: dict[str, Path | None], inputs: dict[str, Path | None]) -> None:
    """Refuse an output that would overwrite an input, or another output.

    Args:
        outputs: Each output option and its path (None: not given).
        inputs: Each input option and its path (None: not given).

    Raises:
        ValueError: Naming both options and the path.
    """
    seen: list[tuple[str, Path]] = [(o, p) for o, p in inputs.items() if p is not None]
    for option, path in outputs.items():
        if path is None:
            continue
        for other, earlier in seen:
            if _same_file(path, earlier):
                raise ValueError(
                    f"{option} {path} is the same file as {other} {earlier}, which it would "
                    f"overwrite; give {option} another path"
                )
        seen.append((option, path))


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


def print_now(line: str) -> None:
    """Print a progress line at once, even when standard output is a pipe.

    Args:
        line: The line.
    """
    print(line, flush=True)


# Signals.


def signal_name(signum: int) -> str:
    """How a stop signal is named to the user.

    Args:
        signum: The signal.

    Returns:
        ``"Ctrl-C"`` for SIGINT, else the signal's name (``"SIGTERM"``).
    """
    return "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name


def cancel_reason(error: BaseException) -> str:
    """What cancelled a run, as the user knows it.

    Args:
        error: The cancellation.

    Returns:
        The name of the signal that stopped the command (:func:`signal_name`), if
        one did; else the cancellation's message, if it has one (not every
        cancellation keeps it on its way up); else ``"Ctrl-C"``.
    """
    if _SIGNALS.received is not None:
        return signal_name(_SIGNALS.received)
    message = error.args[0] if error.args else None
    return message if isinstance(message, str) and message else "Ctrl-C"


class Stopped(KeyboardInterrupt):
    """A signal stopped the command; whatever its run had to clean up is cleaned up.

    A ``KeyboardInterrupt``, so code that handles Ctrl-C handles it too.

    Parameters:
        signum: The signal (SIGINT or SIGTERM).
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal_name(signum))
        self.signum = signum

    @property
    def status(self) -> int:
        """The exit status: 128 plus the signal's number (130 for Ctrl-C, 143 for SIGTERM)."""
        return 128 + self.signum

    @property
    def how(self) -> str:
        """In a word or two: ``"interrupted"`` (Ctrl-C) or ``"terminated (SIGTERM)"``."""
        if self.signum == signal.SIGINT:
            return "interrupted"
        return f"terminated ({signal_name(self.signum)})"


def exit_status(error: KeyboardInterrupt) -> int:
    """The exit status for a command stopped by a signal.

    Args:
        error: What stopped it.

    Returns:
        :attr:`Stopped.status`, or 130 for a plain ``KeyboardInterrupt``.
    """
    return error.status if isinstance(error, Stopped) else 130


class _StopSignals:
    """SIGINT and SIGTERM of one process: what came, and what the running command does."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._installed = False
        self._previous: dict[int, Any] = {}
        self._running = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None
        self._again = ""

    def install(self) -> bool:
        """Take the signals over, from the main thread only.

        Returns:
            Whether they were taken over by this call (False: already, or not the main thread).
        """
        if self._installed or threading.current_thread() is not threading.main_thread():
            return False
        self.received = None
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        self._installed = True
        return True

    def uninstall(self) -> None:
        """Give the signals back; after a stop, ignore them until the process has exited.

        The process is on its way out then: a late Ctrl-C must not turn a clean
        exit into death by the signal (ignored signals stay ignored to the end of
        the interpreter's shutdown; a handler would be dropped before it).
        """
        if not self._installed:
            return
        for signum in STOP_SIGNALS:
            previous = self._previous.pop(signum, signal.SIG_DFL)
            signal.signal(signum, signal.SIG_IGN if self.received is not None else previous)
        self._installed = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        first = self.received is None
        if first:
            self.received = signum
        loop, task = self._loop, self._task
        if loop is not None and task is not None and not task.done():
            # Never more than one cancellation: the run's clean-up is left to finish.
            if first:
                loop.call_soon_threadsafe(task.cancel, signal_name(signum))
            elif self._again:
                loop.call_soon_threadsafe(_say_on_stderr, self._again)
            return
        if first and not self._running:
            raise Stopped(signum)  # nothing runs yet: stop where the command is

    def run(self, main: Coroutine[Any, Any, _T], again: str) -> _T:
        """Run ``main`` in a new event loop (see :func:`run_to_the_end`)."""
        installed_here = self.install()
        try:
            if self.received is not None:
                main.close()
                raise Stopped(self.received)
            self._running = True
            self._again = again
            try:
                result = asyncio.run(self._guarded(main))
            except BaseException as e:
                if self.received is not None:
                    raise Stopped(self.received) from (e if isinstance(e, Exception) else None)
                raise
            finally:
                self._running = False
                self._loop = self._task = None
            if self.received is not None:
                raise Stopped(self.received)  # it came as the run was ending
            return result
        finally:
            if installed_here:
                self.uninstall()

    async def _guarded(self, main: Coroutine[Any, Any, _T]) -> _T:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        if self.received is not None:  # it came while the loop was starting
            main.close()
            raise Stopped(self.received)
        return await main


_SIGNALS = _StopSignals()


def _say_on_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@contextlib.contextmanager
def stop_signals() -> Iterator[None]:
    """Hold SIGINT and SIGTERM while a command runs (see the module's docstring).

    Only the main thread can; elsewhere this does nothing. A signal that comes
    before :func:`run_to_the_end` raises :class:`Stopped` where the command is.
    """
    installed_here = _SIGNALS.install()
    try:
        yield
    finally:
        if installed_here:
            _SIGNALS.uninstall()


def run_to_the_end(main: Coroutine[Any, Any, _T], *, again: str = "") -> _T:
    """Run a command's asynchronous part; a signal cancels it once, and its clean-up is left be.

    Like ``asyncio.run``, but the first SIGINT or SIGTERM cancels ``main`` (the
    ``CancelledError`` carries the signal's name, see :func:`cancel_reason`) and
    later ones only print ``again``. Off the main thread it is ``asyncio.run``.

    Args:
        main: The run.
        again: Printed on standard error for each further signal, while the run
            cleans up (e.g. what it is still doing).

    Returns:
        What ``main`` returned.

    Raises:
        Stopped: If a signal came while it ran (or before), once it has ended.
    """
    if threading.current_thread() is not threading.main_thread():
        return asyncio.run(main)
    return _SIGNALS.run(main, again)


async def finish(
    work: Awaitable[_T], *, on_cancel: Callable[[asyncio.CancelledError], None] | None = None
) -> _T:
    """Await work to its end, even if the caller is cancelled meanwhile (clean-up).

    A cancellation of the caller does not reach the work: it is noted
    (``on_cancel``), the work goes on, and the cancellation is raised once the
    work is done.

    Args:
        work: The clean-up.
        on_cancel: Called with each cancellation that came while it ran.

    Returns:
        What the work returned.

    Raises:
        asyncio.CancelledError: If the caller was cancelled meanwhile (after the work is done).
        Exception: What the work raised, if it was not cancelled meanwhile.
    """
    task = asyncio.ensure_future(work)
    cancelled: asyncio.CancelledError | None = None
    while not task.done():
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError as e:
            cancelled = cancelled or e
            if on_cancel is not None:
                on_cancel(e)
    if cancelled is not None:
        if not task.cancelled() and task.exception() is not None:
            task.exception()  # retrieved: the cancellation goes on instead
        raise cancelled
    return task.result()


class _AsyncContext(Protocol[_T_co]):
    async def __aenter__(self) -> _T_co: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Any: ...


class ExitsFully(Generic[_T]):
    """An async context manager whose exit (its clean-up) runs to the end, cancelled or not.

    Parameters:
        inner: The context manager (an offline world, the local services...).
    """

    def __init__(self, inner: _AsyncContext[_T]) -> None:
        self._inner = inner

    async def __aenter__(self) -> _T:
        return await self._inner.__aenter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Any:
        return await finish(self._inner.__aexit__(exc_type, exc, tb))


class OnCancel:
    """An async context manager that tells when its block ends by a cancellation.

    Placed after the context managers that clean up (``async with world, OnCancel(say):``),
    it speaks before their clean-up starts.

    Parameters:
        on_cancel: Called with the cancellation; the cancellation goes on.
    """

    def __init__(self, on_cancel: Callable[[asyncio.CancelledError], None]) -> None:
        self._on_cancel = on_cancel

    async def __aenter__(self) -> "OnCancel":
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if isinstance(exc, asyncio.CancelledError):
            self._on_cancel(exc)
