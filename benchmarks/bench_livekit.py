"""7. LiveKit beside Daily: start-up, first audio and CPU per bot, in one run.

The LiveKit side is real: the pinned ``livekit-server``, LiveKit's own avatar code (the
offline world's ``LiveKitAvatar``), Pipecat's ``LiveKitTransport``, WebRTC and the data
stream; the Daily side is the simulated room. Both take the same settings of the local
Beyond Presence API (answering after 0.2 s) and of the avatar (joining 0.5 s after its
session starts), and run in alternation, three runs each.

- *start-up*: from the pipeline's start to the avatar in the bot's room (the service's
  ``on_avatar_joined``);
- *first audio*: the avatar ready, from queuing the first TTS frame of a short utterance
  (``speech``, sound from its first sample) to the avatar's renderer receiving its first
  sample of sound;
- *CPU per bot*: over 10 s of speech (``babble``) and 1 s after it. On LiveKit the bot runs in
  a process of its own, so its figure is the bot's alone (its WebRTC stack included); the
  simulated Daily room lives in the bot's process, so Daily's figure is the bot and the
  simulation together.

It needs a fresh network namespace (the LiveKit world's), so it runs itself again under
``unshare -n`` when it is not in one. ``python benchmarks/bench_livekit.py`` runs it alone;
``benchmarks/run.py --only livekit`` with the others.
"""

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bench_common import babble, bench_world, end_bot, row, say, start_bot, tts_frames, until

from pipecat_bey import BeyParams
from pipecat_bey.testing import AvatarBehaviour

if TYPE_CHECKING:
    from pipecat_bey.testing.livekit_world import LiveKitWorld

API_LATENCY_S = 0.2
AVATAR_JOIN_S = 0.5
SPEECH_S = 10.0
FIRST_S = 0.3  # the utterance first audio is timed on (``speech``: sound from its start)
AFTER_S = 1.0
RATE = 24000
RUNS = 3
READY_S = 1.0  # after the avatar joined: its camera, the service's ready delay, and more

PARAMS = {"avatar_ready_delay_s": 0.1}
ROW_PREFIX = "BENCH_ROW "
SCRIPT = Path(__file__).resolve()


async def livekit(runs: int = RUNS) -> None:
    """For ``run.py``: here if in a fresh network namespace, else in a process that is."""
    from pipecat_bey.testing.netns import in_fresh_network_namespace, unshared

    if in_fresh_network_namespace():
        await livekit_beside_daily(runs)
        return
    command = unshared([sys.executable, str(SCRIPT), "--runs", str(runs)])
    done = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE)
    out, _ = await done.communicate()
    for line in out.decode().splitlines():
        if line.startswith(ROW_PREFIX):
            row(*json.loads(line[len(ROW_PREFIX) :]))


async def daily_run() -> dict:
    """One bot with its avatar in a simulated Daily room."""
    async with bench_world(
        AvatarBehaviour(join_delay_s=AVATAR_JOIN_S), api_latency_s=API_LATENCY_S
    ) as world:
        daily = world.daily
        t0 = time.monotonic()
        bot = await start_bot(world, with_service=True, params=BeyParams(**PARAMS))
        await until(lambda: bool(daily.avatars) and daily.avatars[0].in_room, 30, poll_s=0.005)
        joined = time.monotonic()
        await asyncio.sleep(READY_S)
        avatar = daily.avatars[0]
        before = len(avatar.received_chunks)
        speak_at = time.monotonic()
        await say(bot, FIRST_S, RATE)
        await asyncio.sleep(FIRST_S + AFTER_S)
        first = next((at for at, p in avatar.received_chunks[before:] if any(p)), None)
        cpu0, wall0 = time.process_time(), time.monotonic()
        await say(bot, SPEECH_S, RATE, babble(SPEECH_S, RATE))
        await asyncio.sleep(SPEECH_S + AFTER_S)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
        await end_bot(bot)
    return {
        "startup_s": joined - t0,
        "first_audio_ms": None if first is None else (first - speak_at) * 1000,
        "cpu": cpu / wall,
    }


async def livekit_run(world: "LiveKitWorld", index: int) -> dict:
    """One bot (a process of its own) with its avatar in a room of its own on the server."""
    room = f"bench-{index}"
    spec = {
        "url": world.url,
        "token": world.bot_token("bot", room),
        "room": room,
        **world.bey_settings(),
        **world.livekit_settings(),
    }
    sent = len(world.avatars)
    bot = await asyncio.create_subprocess_exec(
        sys.executable, str(SCRIPT), "--bot",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await bot.communicate(json.dumps(spec).encode())
    lines = [line for line in out.decode().splitlines() if line.startswith("{")]
    if bot.returncode != 0 or not lines or len(world.avatars) != sent + 1:
        raise RuntimeError(f"the LiveKit bot failed (exit {bot.returncode})")
    result = json.loads(lines[-1])
    avatar, speak_at = world.avatars[-1], result["speak_at"]
    first = next((at for at, _ in avatar.arrivals if at >= speak_at), None)
    return {
        "startup_s": result["joined"] - result["t0"],
        "first_audio_ms": None if first is None else (first - speak_at) * 1000,
        "cpu": result["cpu"],
    }


async def bot_main(spec: dict) -> dict:
    """The LiveKit bot, in its own process: start, wait for the avatar, speak, end."""
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.pipeline.runner import WorkerRunner
    from pipecat.pipeline.worker import PipelineParams, PipelineWorker
    from pipecat.transports.livekit.transport import LiveKitParams, LiveKitTransport

    from pipecat_bey import BeyVideoService
    from pipecat_bey.testing import BotRun

    transport = LiveKitTransport(
        url=spec["url"],
        token=spec["token"],
        room_name=spec["room"],
        params=LiveKitParams(audio_in_enabled=False, audio_out_enabled=True),
    )
    service = BeyVideoService(
        transport=transport,
        params=BeyParams(**PARAMS),
        api_key=spec["api_key"],
        api_url=spec["api_url"],
        livekit_url=spec["livekit_url"],
        livekit_api_key=spec["livekit_api_key"],
        livekit_api_secret=spec["livekit_api_secret"],
    )
    joined = asyncio.Event()

    @service.event_handler("on_avatar_joined")
    async def on_avatar_joined(service: BeyVideoService, participant: object) -> None:
        joined.set()

    worker = PipelineWorker(
        Pipeline([transport.input(), service, transport.output()]),
        params=PipelineParams(audio_out_sample_rate=RATE),
        idle_timeout_secs=None,
    )
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    t0 = time.monotonic()
    run = BotRun(worker, runner)
    await asyncio.wait_for(joined.wait(), 30)
    joined_at = time.monotonic()
    await asyncio.sleep(READY_S)
    speak_at = time.monotonic()
    await worker.queue_frames(tts_frames(FIRST_S, RATE))
    await asyncio.sleep(FIRST_S + AFTER_S)
    cpu0, wall0 = time.process_time(), time.monotonic()
    await worker.queue_frames(tts_frames(SPEECH_S, RATE, babble(SPEECH_S, RATE)))
    await asyncio.sleep(SPEECH_S + AFTER_S)
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    await run.end(60)
    return {"t0": t0, "joined": joined_at, "speak_at": speak_at, "cpu": cpu / wall}


def _figures(runs: list[dict], key: str, spec: str) -> str:
    values = [r[key] for r in runs if r[key] is not None]
    if not values:
        return "not measured"
    return f"{statistics.median(values):{spec}} (runs {min(values):{spec}} to {max(values):{spec}})"


async def livekit_beside_daily(runs: int = RUNS) -> None:
    """Start-up, first audio and CPU per bot, LiveKit and Daily in alternation."""
    from pipecat_bey.testing.livekit_world import LiveKitWorld

    lk, dy = [], []
    async with LiveKitWorld(avatar_join_delay_s=AVATAR_JOIN_S, user=False) as world:
        assert world.bey is not None
        world.bey.latency = API_LATENCY_S
        for index in range(runs):
            lk.append(await livekit_run(world, index))
            dy.append(await daily_run())
    settings = f"(API {API_LATENCY_S:g} s, avatar join {AVATAR_JOIN_S:g} s; {runs} runs each)"
    row(
        "LiveKit: start to the avatar in the room",
        f"LiveKit {_figures(lk, 'startup_s', '.2f')} s; Daily {_figures(dy, 'startup_s', '.2f')} s",
        settings + "; LiveKit's includes the bot's real WebRTC join",
    )
    row(
        "LiveKit: first TTS frame to the avatar's first sample",
        f"LiveKit {_figures(lk, 'first_audio_ms', '.1f')} ms; "
        f"Daily {_figures(dy, 'first_audio_ms', '.1f')} ms",
        "(LiveKit: a byte stream through the server's data channel; Daily: the simulated "
        "track, one 40 ms chunk)",
    )
    lk_cpu = [dict(r, cpu=r["cpu"] * 100) for r in lk]
    dy_cpu = [dict(r, cpu=r["cpu"] * 100) for r in dy]
    row(
        "LiveKit: CPU per bot, 10 s of speech",
        f"LiveKit {_figures(lk_cpu, 'cpu', '.1f')} % of a core (the bot's process alone); "
        f"Daily {_figures(dy_cpu, 'cpu', '.1f')} % (the bot and the simulated room)",
        "(process time over wall time, 10 s of speech and 1 s after it)",
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bot", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--runs", type=int, default=RUNS)
    args = parser.parse_args()
    if args.bot:
        from loguru import logger

        logger.remove()
        print(json.dumps(asyncio.run(bot_main(json.load(sys.stdin)))), flush=True)
        sys.exit(0)
    from loguru import logger

    logger.remove()
    asyncio.run(livekit(args.runs))
    from bench_common import ROWS

    for name, value, note in ROWS:
        print(ROW_PREFIX + json.dumps([name, value, note]), flush=True)
