"""The LiveKit demo when the avatar does not come: the bot speaks in its own voice.

Run by tests/test_livekit_demo.py as ``unshare -n -- python tests/livekit/fallback_probe.py
--case refused|late``. It runs ``run_livekit_demo`` (a real pipeline, ``LiveKitTransport``,
the real server, the local Beyond Presence API) with:

- ``refused``: the API answers the session with 402 (no credits): no avatar is sent;
- ``late``: the service waits 3 s for the avatar (``avatar_join_timeout_s``), and the avatar
  takes 6 s to join: it comes after the service gave up, while the bot still speaks.

It prints the demo's report as one line, ``LIVEKIT_PROBE_RESULT <json>``; judging is the
test's job.
"""

import argparse
import sys

from probe_common import run_probe

from pipecat_bey import BeyParams
from pipecat_bey.cli.demo.livekit_runner import run_livekit_demo
from pipecat_bey.cli.demo.runner import DemoOptions
from pipecat_bey.testing.bey_emulator import Fault

JOIN_TIMEOUT_S = 3.0
LATE_JOIN_S = 6.0


async def run(args: argparse.Namespace) -> dict:
    options = DemoOptions(out=args.out / "out.wav", barge_in=False)
    if args.case == "refused":
        options.faults = [Fault.status(402)]
    else:
        options.bey_params = BeyParams(avatar_join_timeout_s=JOIN_TIMEOUT_S)
        options.avatar_join_delay_s = LATE_JOIN_S
    report = await run_livekit_demo(options, progress=lambda line: print(line, file=sys.stderr))
    return {"errors": [], "report": report}


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--case", choices=("refused", "late"), default="refused")


if __name__ == "__main__":
    sys.exit(run_probe(run, waits="each wait", options=options))
