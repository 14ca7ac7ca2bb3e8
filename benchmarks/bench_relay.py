"""5. Relay: one bot speaking to the user, its avatar in the user's room or relayed."""

import asyncio
import dataclasses
import gc
import statistics
import time
from dataclasses import dataclass

from bench_common import (
    VIDEO_FPS,
    HeardFrom,
    Usage,
    add_avatar,
    babble,
    bot_id,
    end_bot,
    live_video,
    relay_behaviour,
    row,
    size_name,
    speak_until_heard,
    start_bot,
    until,
    wait_listening,
)

from pipecat_bey import BeyParams
from pipecat_bey.cli.demo.report import relay_report
from pipecat_bey.testing import OfflineWorld
from pipecat_bey.testing.daily_sim import VideoStamp, synthetic_frame

RELAY_SIZES = ((512, 512), (1280, 720))


@dataclass
class PlacementRun:
    usage: Usage
    report: dict  # the demo's relay figures (relayed runs only)


# What the relay benchmark runs, in alternation: the avatar in the user's room, relayed, and
# relayed with parts of the path left out, to tell their costs apart.
VARIANTS = {
    "room": "avatar in the user's room",
    "relay": "relayed",
    "unwatched": "relayed, nobody watching the bot's camera",
    "video off": "relayed, the bot's video out off (frames relayed, dropped by the output)",
    "voice only": "relayed, the avatar's camera off (its voice alone)",
}


async def placement_run(variant: str, size: tuple[int, int], seconds: float) -> PlacementRun:
    """One bot speaking ``seconds`` to the world's user, its avatar in the user's room or
    relayed (``VARIANTS``); the CPU from queuing the speech to the user having heard it.

    The same world every time: the user in the room (its microphone streaming, as a
    browser's does), the avatar's camera at ``size``, 25 fps. In the room the user watches
    the avatar's camera; relayed, the bot's.
    """
    gc.collect()
    camera = variant != "voice only"
    behaviour = dataclasses.replace(relay_behaviour(size), camera=camera)
    # Without a camera, the service waits avatar_video_timeout_s for it, then speaks anyway.
    params = BeyParams(avatar_ready_delay_s=0.1, avatar_video_timeout_s=10.0 if camera else 0.1)
    async with OfflineWorld(behaviour=behaviour) as world:
        user = world.user
        assert user is not None
        relay = variant != "room"
        video = live_video(size) if relay else {}
        if variant == "video off":
            video["video_out_enabled"] = False
        bot = await start_bot(
            world,
            with_service=True,
            params=params,
            placement="relay" if relay else "room",
            room=world.room,
            **video,
        )
        await wait_listening(world, 1)
        avatar = world.daily.avatars[0]
        me = bot_id(bot)
        face = me if relay else avatar.id  # whose camera and microphone the user gets
        if variant != "unwatched":
            user.watch_video(face)
        heard = HeardFrom(user, face)

        pcm = babble(seconds, 24000)
        usage, heard_all = await Usage.of(speak_until_heard([bot], [heard], pcm))
        if not heard_all:
            raise RuntimeError(f"{variant}: the user did not hear the avatar say it all")
        report = relay_report(world, user, me, world.avatar) if relay else {}
        await end_bot(bot)
    return PlacementRun(usage, report)


async def bare_world(size: tuple[int, int], seconds: float) -> Usage:
    """The simulation alone: the user in its room, an avatar publishing its camera, no bot."""
    gc.collect()
    async with OfflineWorld(behaviour=relay_behaviour(size)) as world:
        avatar = await add_avatar(world.daily, world.new_room(), relay_behaviour(size))
        await until(lambda: avatar.camera is not None, 10)
        await asyncio.sleep(0.5)
        usage, _ = await Usage.of(asyncio.sleep(seconds))
        return usage


def pixel_cost_ms(size: tuple[int, int], frames: int = 50) -> float:
    """CPU of the simulation building one received frame's pixels (its stand-in for
    daily-python's decoded frame), in ms: what a relay pays per frame it reads.

    A frame every 4 ms, the last two kept alive, as the pipeline holds them: back to back
    in a tight loop, the copy would find its memory and caches warm, and cost half as much.
    """
    width, height = size
    kept: list[bytes] = []
    spent = 0.0
    for number in range(frames):
        cpu0 = time.thread_time()
        kept = [*kept[-1:], synthetic_frame(width, height, "RGB", VideoStamp(number, 0))]
        spent += time.thread_time() - cpu0
        time.sleep(0.004)
    return spent / frames * 1000


def pct(values: list[float]) -> str:
    """Median share of a core, in %, and the runs' range."""
    if len(values) == 1:
        return f"{values[0] * 100:.1f}%"
    return (
        f"{statistics.median(values) * 100:.1f}% (runs {min(values) * 100:.1f} to "
        f"{max(values) * 100:.1f})"
    )


def median_of(reports: list[dict], key: str) -> float | None:
    values = [r[key] for r in reports if r.get(key) is not None]
    return statistics.median(values) if values else None


async def relay(
    seconds: float,
    reps: int,
    variants: tuple[str, ...] = tuple(VARIANTS),
    sizes: tuple[tuple[int, int], ...] = RELAY_SIZES,
) -> None:
    """One relayed bot beside one whose avatar is in the room, in alternation, per size."""
    for size in sizes:
        runs: dict[str, list[PlacementRun]] = {v: [] for v in variants}
        for rep in range(reps):
            # Alternate the order so a drift in the machine's load favours none.
            for variant in variants if rep % 2 == 0 else variants[::-1]:
                runs[variant].append(await placement_run(variant, size, seconds))
        bare = await bare_world(size, seconds)
        pixels_ms = pixel_cost_ms(size)
        name = size_name(size)
        loads = {v: [r.usage.load for r in rs] for v, rs in runs.items()}
        loops = {v: [r.usage.loop_load for r in rs] for v, rs in runs.items()}
        # Pair by pair: the two of a pair ran back to back.
        added = [a - b for a, b in zip(loads["relay"], loads["room"], strict=True)]
        row(
            f"relay, {name}: CPU, relayed / in the room",
            f"relayed {pct(loads['relay'])} of a core; in the room {pct(loads['room'])}; "
            f"the relay adds {pct(added)} of a core",
            f"(event loop's thread: relayed {pct(loops['relay'])}, in the room "
            f"{pct(loops['room'])}; {reps} run{'s' if reps > 1 else ''} each of "
            f"{seconds:g} s of speech, from queuing it to the user having heard it)",
        )
        parts = [f"{VARIANTS[v]} {pct(loads[v])}" for v in variants if v not in ("room", "relay")]
        row(
            f"relay, {name}: CPU, parts",
            "; ".join(
                [
                    *parts,
                    f"the simulation alone {bare.load * 100:.1f}%",
                    f"the pixels of a received frame {pixels_ms:.2f} ms "
                    f"({pixels_ms * VIDEO_FPS / 10:.1f}% of a core at 25 fps)",
                ]
            ),
            "(the simulation alone: the user in its room, an avatar publishing its camera, no "
            "bot; pixels: the simulation's stand-in for daily-python decoding a frame)",
        )
        reports = [r.report for r in runs["relay"]]
        disorder = sum(r.get("video_out_of_order") or 0 for r in reports)
        skews = ", ".join(f"{r['av_skew_ms_p95']:g}" for r in reports if r.get("av_skew_ms_p95"))
        row(
            f"relay, {name}: what the user got",
            f"added latency {median_of(reports, 'relay_added_latency_ms')} ms; A/V skew p95 "
            f"{median_of(reports, 'av_skew_ms_p95')} ms (runs: {skews}); "
            f"{median_of(reports, 'video_fps')} fps",
            f"(medians of the relayed runs, as the demo computes them; signed skew, median of "
            f"the runs' medians {median_of(reports, 'av_skew_ms_median')} ms; frames out of "
            f"order {disorder}; latency: the bot's speech to the user, the avatar's rendering "
            "aside)",
        )
