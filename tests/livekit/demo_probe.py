"""The LiveKit demo in cases a user cannot set from the command line.

Run by tests/test_livekit_demo.py as ``unshare -n -- python tests/livekit/demo_probe.py
--case refused|late|lost|no-start-call``. It runs ``run_livekit_demo`` (a real pipeline,
``LiveKitTransport``, the real server, the local Beyond Presence API, LiveKit's avatar code)
without a barge-in, with:

- ``refused``: the API answers the session with 402 (no credits): no avatar is sent;
- ``late``: the service waits 3 s for the avatar (``avatar_join_timeout_s``), and the avatar
  takes 6 s to join: it comes after the service gave up, while the bot still speaks;
- ``lost``: the avatar leaves by itself 3 s after joining, while it speaks;
- ``no-start-call``: the avatar never calls the bot's ``lk.playback_started`` (the call is
  optional in LiveKit's protocol).

An observer records what the avatar service pushed that a bot's pipeline relies on: its TTFB
metrics and the ``BotStartedSpeakingFrame``/``BotStoppedSpeakingFrame`` tagged for the
avatar. It prints the demo's report and those as one line, ``LIVEKIT_PROBE_RESULT <json>``;
judging is the test's job.
"""

import argparse
import sys

from pipecat.frames.frames import BotStartedSpeakingFrame, BotStoppedSpeakingFrame, MetricsFrame
from pipecat.metrics.metrics import TTFBMetricsData
from pipecat.observers.base_observer import BaseObserver, FramePushed
from probe_common import run_probe

from pipecat_bey import BeyParams, BeyVideoService
from pipecat_bey.cli.demo.livekit_runner import run_livekit_demo
from pipecat_bey.cli.demo.runner import DemoOptions
from pipecat_bey.config import BEY_AUDIO_TRACK
from pipecat_bey.testing.bey_emulator import Fault

JOIN_TIMEOUT_S = 3.0
LATE_JOIN_S = 6.0
LEAVES_AFTER_S = 3.0


class ServiceFrames(BaseObserver):
    """What the avatar service pushed: TTFB values, and its speaking frames, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.ttfb_s: list[float] = []
        self.speaking: list[str] = []

    async def on_push_frame(self, data: FramePushed) -> None:
        if not isinstance(data.source, BeyVideoService):
            return
        frame = data.frame
        if isinstance(frame, MetricsFrame):  # its own, not the TTS's passing through
            name = data.source.name
            self.ttfb_s += [
                m.value
                for m in frame.data
                if isinstance(m, TTFBMetricsData) and m.processor == name and m.value > 0
            ]
        elif isinstance(frame, (BotStartedSpeakingFrame, BotStoppedSpeakingFrame)):
            if frame.transport_destination == BEY_AUDIO_TRACK:
                self.speaking.append(f"{type(frame).__name__} {data.direction.name}")


async def run(args: argparse.Namespace) -> dict:
    frames = ServiceFrames()
    options = DemoOptions(out=args.out / "out.wav", barge_in=False, observers=[frames])
    if args.case == "refused":
        options.faults = [Fault.status(402)]
    elif args.case == "late":
        options.bey_params = BeyParams(avatar_join_timeout_s=JOIN_TIMEOUT_S)
        options.avatar_join_delay_s = LATE_JOIN_S
    elif args.case == "lost":
        options.livekit_avatar = {"leave_after_s": LEAVES_AFTER_S}
    else:
        options.livekit_avatar = {"calls_playback_started": False}
    report = await run_livekit_demo(options, progress=lambda line: print(line, file=sys.stderr))
    return {"errors": [], "report": report, "ttfb_s": frames.ttfb_s, "speaking": frames.speaking}


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--case", choices=("refused", "late", "lost", "no-start-call"), default="refused"
    )


if __name__ == "__main__":
    sys.exit(run_probe(run, waits="each wait", options=options))
