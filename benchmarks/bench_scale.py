"""4. Scale: N bot pipelines in one process, each with its own avatar, all speaking at once."""

import asyncio
import gc
import itertools
import os
import time

import numpy as np
from bench_common import Heard, bench_world, end_bots, measure_lag, row, say, start_bot, until

from pipecat_bey.testing import AvatarBehaviour

TUNED_GC_THRESHOLDS = (50_000, 20, 100)  # CPython's defaults are (700, 10, 10)


class GcPauses:
    """The longest pause of CPython's cyclic garbage collector while it is installed."""

    def __init__(self) -> None:
        self.longest_ms = 0.0
        self._t = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._t = time.perf_counter()
        else:
            self.longest_ms = max(self.longest_ms, (time.perf_counter() - self._t) * 1000)

    def __enter__(self) -> "GcPauses":
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


def rss_mb() -> float:
    """The process's resident memory now, in MB (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


async def scale(
    counts: list[int], seconds: float, *, tune_gc: bool = False, baseline_mb: float | None = None
) -> None:
    """N bots speaking at once, each with its own avatar in its own room.

    With ``tune_gc``, the garbage collector is set up as a process running many bots should
    (README, "Running many bots in one process"): the heap built while the bots start is frozen
    out of its sight, and it collects less often. Otherwise each full collection walks every
    object of every pipeline, including every queued audio frame, stalling all bots at once.

    Memory per session is resident memory while all speak, above ``baseline_mb`` (taken before
    any bot started), over N: the allocator keeps what earlier, smaller runs freed, so this
    holds for counts run in increasing order, and is left out otherwise.
    """
    for n in counts:
        name = f"scale, {n} session{'s' if n != 1 else ''}" + (", tuned GC" if tune_gc else "")
        gc.collect()
        behaviour = AvatarBehaviour(join_delay_s=0.2, playback_delay_s=0.0)
        async with bench_world(behaviour) as world:
            daily = world.daily
            t_start = time.monotonic()
            bots = [await start_bot(world, with_service=True) for _ in range(n)]
            joined = await until(
                lambda n=n: (
                    len(world.daily.avatars) == n and all(a.in_room for a in world.daily.avatars)
                ),
                30 + n * 0.5,
            )
            start_s = time.monotonic() - t_start
            if not joined:
                in_room = sum(a.in_room for a in daily.avatars)
                row(name, f"only {in_room} of {n} avatars joined")
                await end_bots(bots)
                continue
            await asyncio.sleep(0.6)
            thresholds = gc.get_threshold()
            if tune_gc:
                gc.collect()
                gc.freeze()
                gc.set_threshold(*TUNED_GC_THRESHOLDS)
            heard = [Heard(a) for a in daily.avatars]
            lags: list[float] = []
            stop = asyncio.Event()
            tick = asyncio.create_task(measure_lag(stop, lags))
            with GcPauses() as pauses:
                cpu0, wall0 = time.process_time(), time.monotonic()
                for bot in bots:
                    await say(bot, seconds, 24000)
                done = await until(
                    lambda heard=heard: all(h.seconds() >= seconds * 0.98 for h in heard),
                    seconds * 4 + 30,
                    poll_s=0.2,
                )
                cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
            stop.set()
            await tick
            late, longest_gap = 0, 0.0
            for avatar in daily.avatars:
                times = [at for at, p in avatar.received_chunks if any(p)]
                gaps = [b - a for a, b in itertools.pairwise(times)]
                late += sum(1 for g in gaps if g > 0.08)
                longest_gap = max([longest_gap, *gaps])
            rss = rss_mb()
            await end_bots(bots)
            gc.unfreeze()
            gc.set_threshold(*thresholds)
        p99 = float(np.percentile(lags, 99)) if lags else 0.0
        heard_all = "" if done else "; NOT ALL SPEECH ARRIVED"
        load = cpu / wall
        row(
            name,
            f"late chunks {late}; CPU {load * 100:.0f}% of a core"
            + (" (saturated)" if load > 0.9 else f", {load / n * 100:.2f}% per session"),
            f"(loop lag p99 {p99:.1f} ms; longest gap {longest_gap * 1000:.0f} ms; longest GC "
            f"pause {pauses.longest_ms:.0f} ms; "
            + (f"memory {(rss - baseline_mb) / n:.1f} MB per session; " if baseline_mb else "")
            + f"all started in {start_s:.1f} s{heard_all})",
        )
