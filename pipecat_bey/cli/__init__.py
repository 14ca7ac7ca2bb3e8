"""The ``pipecat-bey`` command: ``demo``, ``check``, ``session create``, ``emulator``.

``app`` parses the command line and dispatches; ``check`` and ``demo`` are the two
commands with a run of their own behind them.
"""

from pipecat_bey.cli.app import main

__all__ = ["main"]
