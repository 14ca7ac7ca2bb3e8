"""``pipecat-bey demo``: a real bot pipeline with the avatar, run offline.

In parts: :mod:`~pipecat_bey.cli.demo.runner` runs the demo in an offline
world (its options, the conversation, the files it writes),
:mod:`~pipecat_bey.cli.demo.livekit_runner` runs it on a real LiveKit server
(``--transport livekit``), :mod:`~pipecat_bey.cli.demo.command` is the command line,
:mod:`~pipecat_bey.cli.demo.report` computes the report's figures from what the
stand-ins recorded (the benchmarks use it too), and
:mod:`~pipecat_bey.cli.demo.summary_text` puts a report in plain words.

The names below load on first use, so that importing the report does not import
the runner.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipecat_bey.cli.demo.command import add_log_sink, options_from_args, run_demo_cli
    from pipecat_bey.cli.demo.report import Seen, relay_report, room_report
    from pipecat_bey.cli.demo.runner import (
        DEMO_TEXT,
        FIRST_SOUND_S,
        QUIET_S,
        DemoOptions,
        check_options,
        default_barge_in,
        default_speech,
        run_demo,
    )
    from pipecat_bey.cli.demo.summary_text import (
        STALE_SPEECH_BOUND_S,
        heard_anything,
        print_outcome,
        summary,
    )

__all__ = [
    "DEMO_TEXT",
    "FIRST_SOUND_S",
    "QUIET_S",
    "STALE_SPEECH_BOUND_S",
    "DemoOptions",
    "Seen",
    "add_log_sink",
    "check_options",
    "default_barge_in",
    "default_speech",
    "heard_anything",
    "options_from_args",
    "print_outcome",
    "relay_report",
    "room_report",
    "run_demo",
    "run_demo_cli",
    "summary",
]

# Where each name lives.
_HOMES = {
    "Seen": "pipecat_bey.cli.demo.report",
    "relay_report": "pipecat_bey.cli.demo.report",
    "room_report": "pipecat_bey.cli.demo.report",
    "DEMO_TEXT": "pipecat_bey.cli.demo.runner",
    "FIRST_SOUND_S": "pipecat_bey.cli.demo.runner",
    "QUIET_S": "pipecat_bey.cli.demo.runner",
    "DemoOptions": "pipecat_bey.cli.demo.runner",
    "add_log_sink": "pipecat_bey.cli.demo.command",
    "check_options": "pipecat_bey.cli.demo.runner",
    "default_barge_in": "pipecat_bey.cli.demo.runner",
    "default_speech": "pipecat_bey.cli.demo.runner",
    "options_from_args": "pipecat_bey.cli.demo.command",
    "run_demo": "pipecat_bey.cli.demo.runner",
    "run_demo_cli": "pipecat_bey.cli.demo.command",
    "STALE_SPEECH_BOUND_S": "pipecat_bey.cli.demo.summary_text",
    "heard_anything": "pipecat_bey.cli.demo.summary_text",
    "print_outcome": "pipecat_bey.cli.demo.summary_text",
    "summary": "pipecat_bey.cli.demo.summary_text",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'pipecat_bey.cli.demo' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
