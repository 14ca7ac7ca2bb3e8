"""``pipecat-bey demo`` on the command line: its options, its log, its run and its exit status.

It runs the Daily demo (:mod:`pipecat_bey.cli.demo.runner`) or, with ``--transport
livekit``, the LiveKit one (:mod:`pipecat_bey.cli.demo.livekit_runner`), which needs a
private network namespace: outside one, the command runs itself again under
``unshare -n`` (:mod:`pipecat_bey.cli._namespace`).
"""

import argparse
import sys
from typing import Any, TextIO

from pipecat_bey.cli._io import exit_status, run_to_the_end
from pipecat_bey.cli._namespace import (
    LIVEKIT_OFFLINE,
    enter_offline_livekit,
    missing_livekit_package,
)
from pipecat_bey.cli.demo.runner import ENDING, DemoOptions, check_options, run_demo
from pipecat_bey.cli.demo.summary_text import print_outcome

__all__ = ["add_log_sink", "options_from_args", "run_demo_cli"]

# pipecat logs each ErrorFrame twice (where it is pushed, and again at the
# start of the pipeline); the demo says each error once, through the events.
_DUPLICATE_ERROR_LOGS = {
    ("pipecat.processors.frame_processor", "push_error_frame"),
    ("pipecat.pipeline.worker", "_source_push_frame"),
}


def _not_a_duplicate(record: dict[str, Any]) -> bool:
    return (record["name"], record["function"]) not in _DUPLICATE_ERROR_LOGS


def add_log_sink(stream: TextIO) -> int:
    """Log warnings and errors to ``stream``, one line each, as the demo shows them.

    pipecat's own logs of an ``ErrorFrame`` are left out: the demo says each error
    once, as it happens.

    Args:
        stream: Where the lines go.

    Returns:
        The loguru handler id (for ``logger.remove``).
    """
    from loguru import logger

    # loguru ends each message with a newline itself when the format is a string.
    return logger.add(stream, level="WARNING", format="{level}: {message}", filter=_not_a_duplicate)


def options_from_args(args: argparse.Namespace) -> DemoOptions:
    """The demo's options from ``pipecat-bey demo``'s command line.

    Args:
        args: The parsed command line.

    Returns:
        The options.
    """
    options = DemoOptions(
        out=args.out,
        relay=args.relay,
        avatar_join_delay_s=args.avatar_join_delay,
        api_latency_s=args.api_latency,
        subscribe_delay_s=args.subscribe_delay,
        network_delay_s=args.network_delay,
        jitter_s=args.jitter,
        barge_in=not args.no_barge_in,
        report=args.report,
        transport=args.transport,
        loss_pct=args.loss,
    )
    if args.input is not None:
        options.speech = args.input
    return options


def run_demo_cli(args: argparse.Namespace) -> int:
    """Run ``pipecat-bey demo`` with parsed arguments.

    Args:
        args: The command line.

    Returns:
        The exit status: see :func:`print_outcome`; 130 when interrupted (Ctrl-C),
        143 when terminated (SIGTERM).

    Raises:
        ValueError: If a file or an option is unusable, or (``--transport livekit``) the
            machine lacks what the LiveKit world needs; nothing has run.
    """
    from loguru import logger

    logger.remove()
    add_log_sink(sys.stderr)
    options = options_from_args(args)
    check_options(options)  # before anything runs, in a namespace or not
    if options.transport == "livekit":
        main = _livekit_demo(options)
    else:
        if options.loss_pct:
            raise ValueError(
                "--loss is the LiveKit demo's (real packets are lost on its link; the simulated "
                "Daily room loses none): add --transport livekit, or leave --loss out"
            )
        main = run_demo(options)
    try:
        # The first Ctrl-C (or SIGTERM) cancels the run, which cancels the pipeline
        # and closes the local services before it is raised here; later ones wait.
        report = run_to_the_end(main, again=f"pipecat-bey: still {ENDING}; it takes a few seconds")
    except KeyboardInterrupt as e:
        how = getattr(e, "how", "interrupted")
        print(f"pipecat-bey: demo {how}", file=sys.stderr)
        return exit_status(e)
    return print_outcome(report)


def _livekit_demo(options: DemoOptions) -> Any:
    """The LiveKit demo's run, in a fresh network namespace: this process, or itself again.

    Raises:
        ValueError: When an option means nothing on LiveKit, or a LiveKit package, the
            server or the namespace is missing, naming what to do.
    """
    missing = missing_livekit_package("--transport livekit", LIVEKIT_OFFLINE, "livekit-offline")
    if missing:
        raise ValueError(missing)
    from pipecat_bey.cli.demo.livekit_runner import check_livekit_options, run_livekit_demo

    check_livekit_options(options)
    enter_offline_livekit("--transport livekit")
    return run_livekit_demo(options)
