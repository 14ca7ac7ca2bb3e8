"""3. First audio: from queuing the first TTS frame to the avatar's first sample."""

import asyncio
import statistics
import time

from bench_common import bench_world, end_bot, row, say, start_bot

from pipecat_bey.testing import AvatarBehaviour


async def first_audio(runs: int) -> None:
    samples = []
    async with bench_world(AvatarBehaviour(join_delay_s=0.0)) as world:
        daily = world.daily
        bot = await start_bot(world, with_service=True)
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
