"""Benchmarks of the avatar path; prints one table. Not part of the test run.

    python benchmarks/run.py           # full figures (a few minutes)
    python benchmarks/run.py --quick   # each benchmark in well under a minute

Every ratio is measured within one run, both sides on the same machine and load.
"""

import argparse
import asyncio
import gc
import itertools
import os
import resource
import statistics
import sys
import time
from dataclasses import dataclass

import numpy as np
from loguru import logger
from pipecat.frames.frames import (
    EndFrame,
    Frame,
    OutputAudioRawFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.transports.daily.transport import DailyParams, DailyTransport
from pipecat.workers.runner import WorkerRunner

from pipecat_bey import BEY_AUDIO_TRACK, BeyParams, BeyVideoService
from pipecat_bey.testing import AvatarBehaviour, BeyEmulator, DailySimulation

BEY_KEY, DAILY_KEY = "bench-bey-key", "bench-daily-key"
ROWS: list[tuple[str, str, str]] = []


def row(name: str, value: str, note: str = "") -> None:
    ROWS.append((name, value, note))
    print(f"  {name}: {value} {note}", file=sys.stderr)


class PassThrough(FrameProcessor):
    """The baseline: sends TTS audio straight to the avatar's track."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if direction == FrameDirection.DOWNSTREAM and isinstance(
            frame, (OutputAudioRawFrame, TTSStartedFrame, TTSStoppedFrame)
        ):
            frame.transport_destination = BEY_AUDIO_TRACK
        await self.push_frame(frame, direction)


@dataclass
class Bot:
    worker: PipelineWorker
    run: asyncio.Task
    service: FrameProcessor
    transport: DailyTransport


async def start_bot(bey, daily, *, with_service: bool, out_rate: int = 24000, params=None) -> Bot:
    room = daily.create_room()
    params_kwargs = {"audio_in_enabled": False, "audio_out_enabled": True}
    if not with_service:
        params_kwargs["audio_out_destinations"] = [BEY_AUDIO_TRACK]
    transport = DailyTransport(room.url, None, "Bot", DailyParams(**params_kwargs))
    if with_service:
        service = BeyVideoService(
            transport=transport,
            api_key=BEY_KEY,
            api_url=bey.url,
            daily_api_key=DAILY_KEY,
            daily_api_url=daily.rest_url,
            params=params or BeyParams(avatar_ready_delay_s=0.1),
        )
    else:
        service = PassThrough()
    worker = PipelineWorker(
        Pipeline([transport.input(), service, transport.output()]),
        params=PipelineParams(audio_out_sample_rate=out_rate),
        idle_timeout_secs=None,
    )
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    return Bot(worker, asyncio.create_task(runner.run()), service, transport)


async def end_bot(bot: Bot) -> None:
    await bot.worker.queue_frame(EndFrame())
    await asyncio.wait_for(bot.run, 60)


def speech(seconds: float, rate: int) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    return (
        (np.sin(2 * np.pi * 220 * t) * np.sin(2 * np.pi * 2 * t) * 12000).astype(np.int16).tobytes()
    )


async def say(bot: Bot, seconds: float, rate: int, chunk_ms: int = 20) -> None:
    pcm = speech(seconds, rate)
    step = rate * chunk_ms // 1000 * 2
    frames: list[Frame] = [TTSStartedFrame()]
    frames += [TTSAudioRawFrame(pcm[i : i + step], rate, 1) for i in range(0, len(pcm), step)]
    frames.append(TTSStoppedFrame())
    await bot.worker.queue_frames(frames)


async def wait_avatar_audio(daily: DailySimulation, seconds: float, timeout: float) -> None:
    def enough() -> bool:
        return any(
            sum(len(p) for _, p in a.received_chunks if any(p)) / 2 / (a.received_sample_rate or 1)
            >= seconds
            for a in daily.avatars
        )

    await daily.wait_for(enough, timeout)


# 1. Audio path overhead.
async def audio_overhead(seconds: float) -> None:
    for rate in (16000, 24000, 48000):
        cpu = {}
        for with_service in (False, True):
            async with (
                BeyEmulator(api_keys={BEY_KEY}) as bey,
                DailySimulation(api_key=DAILY_KEY) as daily,
            ):
                daily.attach_bey(bey, AvatarBehaviour(join_delay_s=0.0, playback_delay_s=0.0))
                bot = await start_bot(bey, daily, with_service=with_service)
                if with_service:
                    await daily.wait_for(
                        lambda: bool(daily.avatars) and daily.avatars[0].in_room, 10
                    )
                else:
                    room = next(iter(daily.rooms.values()))
                    from pipecat_bey.testing.daily_sim import SimulatedAvatar

                    avatar = SimulatedAvatar(daily, room, daily.mint_token(room), AvatarBehaviour())
                    daily.avatars.append(avatar)
                    daily.spawn(avatar.run(), "bench-avatar")
                    await daily.wait_for(lambda a=avatar: a.in_room, 10)
                await asyncio.sleep(0.5)
                start_cpu = time.process_time()
                await say(bot, seconds, rate)
                await wait_avatar_audio(daily, seconds * 0.98, seconds * 3 + 10)
                cpu[with_service] = time.process_time() - start_cpu
                await end_bot(bot)
        ratio = cpu[True] / cpu[False]
        extra_ms = (cpu[True] - cpu[False]) / seconds * 1000
        row(
            f"audio path, {rate // 1000} kHz TTS",
            f"{cpu[True] / seconds * 1000:.1f} ms CPU per s of audio",
            f"(pass-through {cpu[False] / seconds * 1000:.1f}; ratio {ratio:.3f}; "
            f"service adds {extra_ms:+.2f} ms/s)",
        )


# 2. Start-up critical path.
async def startup(latencies: list[float]) -> None:
    join_s, mint_s, avatar_delay = 1.0, 0.2, 0.5
    for api_s in latencies:
        async with (
            BeyEmulator(api_keys={BEY_KEY}, latency=api_s) as bey,
            DailySimulation(
                api_key=DAILY_KEY, join_latency_s=join_s, rest_latency_s=mint_s
            ) as daily,
        ):
            daily.attach_bey(bey, AvatarBehaviour(join_delay_s=avatar_delay))
            t0 = time.monotonic()
            bot = await start_bot(bey, daily, with_service=True)
            await daily.wait_for(lambda: bool(daily.avatars) and daily.avatars[0].in_room, 30)
            measured = time.monotonic() - t0
            await end_bot(bot)
        sequential = join_s + mint_s + api_s + avatar_delay
        parallel = max(join_s, mint_s + api_s) + avatar_delay
        row(
            f"start to avatar in room, API {api_s:g} s",
            f"{measured:.2f} s",
            f"(steps one after another: {sequential:.2f} s; max(join, token+session)+avatar: "
            f"{parallel:.2f} s)",
        )


# 3. Time to first avatar audio.
async def first_audio(runs: int) -> None:
    samples = []
    async with BeyEmulator(api_keys={BEY_KEY}) as bey, DailySimulation(api_key=DAILY_KEY) as daily:
        daily.attach_bey(bey, AvatarBehaviour(join_delay_s=0.0))
        bot = await start_bot(bey, daily, with_service=True)
        await daily.wait_for(lambda: bool(daily.avatars) and daily.avatars[0].in_room, 10)
        await asyncio.sleep(0.5)
        avatar = daily.avatars[0]
        for _ in range(runs):
            before = len(avatar.received_chunks)
            t0 = time.monotonic()
            await say(bot, 0.3, 24000)
            await daily.wait_for(
                lambda b=before: any(any(p) for _, p in avatar.received_chunks[b:]), 5
            )
            first = next(at for at, p in avatar.received_chunks[before:] if any(p))
            samples.append((first - t0) * 1000)
            await asyncio.sleep(0.6)
        await end_bot(bot)
    row(
        "first TTS frame to avatar's first sample",
        f"median {statistics.median(samples):.1f} ms, max {max(samples):.1f} ms",
        "(target: one 40 ms chunk plus pacing)",
    )


async def measure_lag(stop: asyncio.Event, lags: list[float]) -> None:
    """Record how late a 10 ms sleep wakes up, until stopped: the event loop's lag."""
    while not stop.is_set():
        t = time.monotonic()
        await asyncio.sleep(0.01)
        lags.append((time.monotonic() - t - 0.01) * 1000)


# 4. Scale.
async def scale(counts: list[int], seconds: float) -> None:
    for n in counts:
        gc.collect()
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        async with (
            BeyEmulator(api_keys={BEY_KEY}) as bey,
            DailySimulation(api_key=DAILY_KEY) as daily,
        ):
            daily.attach_bey(bey, AvatarBehaviour(join_delay_s=0.2, playback_delay_s=0.0))
            bots = [await start_bot(bey, daily, with_service=True) for _ in range(n)]
            await daily.wait_for(
                lambda n=n: len(daily.avatars) == n and all(a.in_room for a in daily.avatars), 60
            )
            await asyncio.sleep(0.6)
            lags: list[float] = []
            stop = asyncio.Event()
            tick = asyncio.create_task(measure_lag(stop, lags))
            cpu0, wall0 = time.process_time(), time.monotonic()
            for bot in bots:
                await say(bot, seconds, 24000)
            await daily.wait_for(
                lambda: all(
                    sum(len(p) for _, p in a.received_chunks if any(p)) / 2 / 24000
                    >= seconds * 0.98
                    for a in daily.avatars
                ),
                seconds * 4 + 30,
            )
            cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
            stop.set()
            await tick
            late = 0
            for avatar in daily.avatars:
                times = [at for at, p in avatar.received_chunks if any(p)]
                late += sum(1 for a, b in itertools.pairwise(times) if b - a > 0.08)
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            for bot in bots:
                await end_bot(bot)
        p99 = float(np.percentile(lags, 99)) if lags else 0.0
        row(
            f"scale, {n} sessions",
            f"CPU {cpu / wall * 100:.0f}% of a core, {cpu / wall / n * 100:.2f}% per session",
            f"(loop lag p99 {p99:.1f} ms; late chunks {late}; peak RSS +"
            f"{(rss - rss_before) / 1024 / max(n, 1):.1f} MB per session)",
        )


async def main(quick: bool) -> None:
    logger.remove()
    logger.add(sys.stderr, level="ERROR")
    print("running benchmarks" + (" (quick)" if quick else ""), file=sys.stderr)
    await audio_overhead(3.0 if quick else 10.0)
    await startup([0.2, 1.0] if quick else [0.2, 1.0, 3.0])
    await first_audio(3 if quick else 10)
    await scale([1, 10] if quick else [1, 10, 50, 100, 200], 3.0 if quick else 10.0)
    width = max(len(r[0]) for r in ROWS)
    print(f"\n| {'benchmark'.ljust(width)} | result | notes |")
    print(f"|{'-' * (width + 2)}|---|---|")
    for name, value, note in ROWS:
        print(f"| {name.ljust(width)} | {value} | {note} |")
    print(f"\n{time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs, for a smoke check")
    asyncio.run(main(parser.parse_args().quick))
