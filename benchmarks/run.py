"""Benchmarks of the avatar path; prints one table. Not part of the test run.

    python benchmarks/run.py                     # full figures (about 30 minutes)
    python benchmarks/run.py --quick             # a smoke check, under 3 minutes in all
    python benchmarks/run.py --only scale --sessions 100 200
    python benchmarks/run.py --only relay_scale --bots 8 16 --size 1280x720

Every ratio is measured within one run, both sides on the same machine and load.
"""

import argparse
import asyncio
import importlib.metadata
import os
import sys
import time

from bench_audio import audio_overhead
from bench_common import ROWS
from bench_first_audio import first_audio
from bench_livekit import livekit
from bench_relay import relay
from bench_relay_scale import relay_scale
from bench_scale import rss_mb, scale
from bench_startup import startup
from loguru import logger

BENCHMARKS = ("audio", "startup", "first-audio", "scale", "relay", "relay_scale", "livekit")


def parse_size(text: str) -> tuple[int, int]:
    width, height = text.lower().split("x")
    return int(width), int(height)


async def main(
    quick: bool,
    only: list[str],
    sessions: list[int] | None,
    bots: list[int] | None = None,
    size: tuple[int, int] = (512, 512),
    seconds: float | None = None,
) -> None:
    logger.remove()
    logger.add(sys.stderr, level="ERROR")
    print("running benchmarks" + (" (quick)" if quick else ""), file=sys.stderr)
    if "audio" in only:
        await audio_overhead(2.0 if quick else 6.0, 60.0 if quick else 300.0, 2 if quick else 6)
    if "startup" in only:
        await startup([0.2, 1.0] if quick else [0.2, 1.0, 3.0])
    if "first-audio" in only:
        await first_audio(3 if quick else 10)
    if "scale" in only:
        counts = sessions or ([1, 10] if quick else [1, 10, 50, 100, 150, 200])
        await scale(sorted(counts), 3.0 if quick else 10.0, baseline_mb=rss_mb())
        await scale(
            [n for n in counts if n >= 100] or counts[-1:], 3.0 if quick else 10.0, tune_gc=True
        )
    speech_s = seconds or (3.0 if quick else 10.0)
    if "relay" in only:
        if quick:
            await relay(speech_s, 1, ("room", "relay"))
        else:
            await relay(speech_s, 3)
    if "relay_scale" in only:
        counts = bots or ([1, 2] if quick else [1, 2, 4, 8, 12, 16, 24])
        await relay_scale(sorted(counts), speech_s, size)
    if "livekit" in only:
        await livekit(1 if quick else 3)
    width = max(len(r[0]) for r in ROWS)
    print(f"\n| {'benchmark'.ljust(width)} | result | notes |")
    print(f"|{'-' * (width + 2)}|---|---|")
    for name, value, note in ROWS:
        print(f"| {name.ljust(width)} | {value} | {note} |")
    print(
        f"\n{time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
        f"pipecat-ai {importlib.metadata.version('pipecat-ai')}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs, for a smoke check")
    parser.add_argument(
        "--only", action="append", choices=BENCHMARKS, help="run only this one (repeatable)"
    )
    parser.add_argument(
        "--sessions", type=int, nargs="+", help="session counts for the scale benchmark"
    )
    parser.add_argument(
        "--bots", type=int, nargs="+", help="bot counts for the relay_scale benchmark"
    )
    parser.add_argument(
        "--size",
        type=parse_size,
        default=(512, 512),
        help="the avatar's video size for relay_scale, WxH (default 512x512)",
    )
    parser.add_argument(
        "--seconds", type=float, help="seconds of speech for relay and relay_scale (default 10)"
    )
    args = parser.parse_args()
    asyncio.run(
        main(
            args.quick,
            args.only or list(BENCHMARKS),
            args.sessions,
            args.bots,
            args.size,
            args.seconds,
        )
    )
