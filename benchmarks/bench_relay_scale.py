"""6. Relay scale: N relayed bots in one process, each with its user in a room of its own."""

import asyncio
import gc
import time

import numpy as np
from bench_common import (
    VIDEO_FPS,
    HeardFrom,
    Usage,
    babble,
    bot_id,
    end_bots,
    live_video,
    measure_lag,
    relay_behaviour,
    row,
    size_name,
    speak_until_heard,
    start_bot,
    wait_listening,
)

from pipecat_bey.testing import OfflineWorld
from pipecat_bey.testing.av_sync import lip_sync, video_fps
from pipecat_bey.testing.daily_sim import MICROPHONE, SimulatedUser


async def relay_scale(counts: list[int], seconds: float, size: tuple[int, int]) -> None:
    """N relayed bots in one process, each with its user in a room of its own."""
    for n in counts:
        name = f"relay scale, {n} bot{'s' if n != 1 else ''}, {size_name(size)}"
        gc.collect()
        async with OfflineWorld(behaviour=relay_behaviour(size), user=False) as world:
            daily = world.daily
            users, bots = [], []
            for _ in range(n):
                room = world.new_room()
                user = SimulatedUser(daily, room, "User")
                await user.join()
                users.append(user)
                bots.append(
                    await start_bot(
                        world, with_service=True, placement="relay", room=room, **live_video(size)
                    )
                )
            await wait_listening(world, n)
            ids = [bot_id(bot) for bot in bots]
            for user, me in zip(users, ids, strict=True):
                user.watch_video(me)
            heard = [HeardFrom(u, me) for u, me in zip(users, ids, strict=True)]
            lags: list[float] = []
            stop = asyncio.Event()
            tick = asyncio.create_task(measure_lag(stop, lags))

            t0 = time.monotonic()
            pcm = babble(seconds, 24000)
            usage, heard_all = await Usage.of(speak_until_heard(bots, heard, pcm))
            stop.set()
            await tick
            avatars = {a.id: a for a in daily.avatars}
            rates, skipped, skews, signed = [], 0, [], []
            for user, me, bot in zip(users, ids, bots, strict=True):
                frames = [f for f in user.received_video if f.publisher_id == me and f.at >= t0]
                rate = video_fps(frames)
                rates.append(rate.fps)
                skipped += rate.skipped + rate.out_of_order
                voice = [r for r in user.received if r.publisher_id == me and r.track == MICROPHONE]
                avatar = avatars[bot.service.avatar_participant_id]
                sync = lip_sync(frames, avatar.mic_pieces, voice)
                if sync.p95_abs_ms is not None and sync.median_ms is not None:
                    skews.append(sync.p95_abs_ms)
                    signed.append(sync.median_ms)
            await end_bots(bots)
        p99 = float(np.percentile(lags, 99)) if lags else 0.0
        load, loop = usage.load, usage.loop_load
        worst_skew = max(skews) if skews else float("inf")
        # Late: frames lost, or shown more than two frame periods off the voice.
        late = min(rates) < VIDEO_FPS * 0.95 or worst_skew > 2000 / VIDEO_FPS
        half = 500 / VIDEO_FPS
        row(
            name,
            f"CPU {load * 100:.0f}% of a core, {load / n * 100:.1f}% per bot (event loop's "
            f"thread {loop * 100:.0f}%{', saturated' if loop > 0.9 else ''}); the users saw "
            f"{min(rates):.1f} fps (the slowest) to {max(rates):.1f}; A/V skew p95 "
            f"{worst_skew:.0f} ms (the worst bot)" + (" LATE" if late else ""),
            f"(median skew per bot {min(signed, default=0):+.0f} to {max(signed, default=0):+.0f}"
            f" ms, the video behind the voice by over half a frame for "
            f"{sum(m > half for m in signed)} of {n}, ahead for {sum(m < -half for m in signed)};"
            f" frames skipped or out of order {skipped}; loop lag p99 {p99:.1f} ms, longest "
            f"{max(lags, default=0):.0f} ms"
            + ("" if heard_all else "; NOT ALL SPEECH ARRIVED")
            + ")",
        )
        if loop > 0.9 or min(rates) < VIDEO_FPS * 0.8:
            break  # a core is full, or a fifth of the frames lost: more bots would say no more
