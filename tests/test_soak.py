"""Soak: a long conversation (turns, barge-ins, the avatar leaving and rejoining).

Memory and the number of tasks stay flat. It lasts PIPECAT_BEY_SOAK_S seconds
(default 600) and is marked slow; the CI run includes it.
"""

import asyncio
import gc
import os
import time

import pytest
from avatar_bot import DATA, avatar_bot
from pipecat.frames.frames import TTSSpeakFrame

from pipecat_bey.testing import AvatarBehaviour

SOAK_S = float(os.getenv("PIPECAT_BEY_SOAK_S", "600"))


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.slow
async def test_a_long_conversation_keeps_memory_and_tasks_flat():
    behaviour = AvatarBehaviour(join_delay_s=0.5, leave_after_s=SOAK_S / 3, rejoin_after_s=2.0)
    async with avatar_bot(behaviour=behaviour, clip=DATA / "utterance_b.wav") as bot:
        daily = bot.daily
        warm_up_end = time.monotonic() + min(60.0, SOAK_S / 5)
        end = time.monotonic() + SOAK_S
        baseline = None
        turn = 0
        while time.monotonic() < end:
            turn += 1
            await bot.run.queue_frames(TTSSpeakFrame(f"turn {turn}"))
            if turn % 3 == 0:
                await daily.wait_for(lambda: False, 1.5)
                await bot.user.speak_wav(DATA / "barge_in.wav")
            await daily.wait_for(lambda: False, 5.0)
            # The simulated participants record everything they hear; that is the
            # test's memory, not the bot's.
            for participant in [bot.user, *daily.avatars]:
                participant.received.clear()
                participant.app_messages.clear()
            for avatar in daily.avatars:
                avatar.spoken.clear()
            if baseline is None and time.monotonic() > warm_up_end:
                gc.collect()
                baseline = (rss_mb(), len(asyncio.all_tasks()))
        gc.collect()
        final = (rss_mb(), len(asyncio.all_tasks()))
        avatar_rejoined = len(daily.avatars[0].joined_times) >= 2
    assert baseline is not None
    assert final[0] - baseline[0] < 10, f"RSS grew from {baseline[0]:.1f} to {final[0]:.1f} MB"
    assert final[1] <= baseline[1], f"tasks grew from {baseline[1]} to {final[1]}"
    assert avatar_rejoined and turn > 3
