"""Benchmarks of the avatar path; prints one table. Not part of the test run.

    python benchmarks/run.py                     # full figures (about 30 minutes)
    python benchmarks/run.py --quick             # a smoke check, under 3 minutes in all
    python benchmarks/run.py --only scale --sessions 100 200
    python benchmarks/run.py --only relay_scale --bots 8 16 --size 1280x720

Every ratio is measured within one run, both sides on the same machine and load.
"""

import argparse
import asyncio
import dataclasses
import gc
import importlib.metadata
import itertools
import os
import statistics
import sys
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

import aiohttp
import numpy as np
from loguru import logger
from pipecat.frames.frames import (
    Frame,
    OutputAudioRawFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.transports.daily.transport import DailyTransport

from pipecat_bey import (
    BEY_AUDIO_TRACK,
    BeyClient,
    BeyParams,
    start_avatar_session,
)
from pipecat_bey.cli.demo import relay_report
from pipecat_bey.daily.rest import AvatarIdentity, DailyRoomAPI
from pipecat_bey.testing import (
    AvatarBehaviour,
    BotRun,
    DailySimulation,
    OfflineWorld,
    relayed_video,
)
from pipecat_bey.testing.av_sync import lip_sync, video_fps
from pipecat_bey.testing.daily_sim import (
    MICROPHONE,
    Room,
    SimulatedAvatar,
    SimulatedParticipant,
    SimulatedUser,
    VideoStamp,
    custom_audio,
    synthetic_frame,
)
from pipecat_bey.video import DEFAULT_AVATAR_ID

BEY_TRACK_KEY = custom_audio(BEY_AUDIO_TRACK)  # the avatar's subscription to the bot's track
ROWS: list[tuple[str, str, str]] = []
FRAMES_PER_S = 50  # TTS frames of 20 ms
TUNED_GC_THRESHOLDS = (50_000, 20, 100)  # CPython's defaults are (700, 10, 10)
T = TypeVar("T")
PAUSE_S = 0.4  # between the sentences of ``babble``


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
    run: BotRun
    service: FrameProcessor
    transport: DailyTransport
    transport_room: Room

    @property
    def worker(self) -> PipelineWorker:
        return self.run.worker


async def start_bot(
    world: OfflineWorld,
    *,
    with_service: bool,
    out_rate: int = 24000,
    params=None,
    sink=None,
    placement: str = "room",
    room: Room | None = None,
    **transport_params,
) -> Bot:
    """A bot in a room (default: one of its own): the service (or the pass-through), the output."""
    room = room or world.new_room()
    destinations = {} if with_service else {"audio_out_destinations": [BEY_AUDIO_TRACK]}
    transport = world.transport(room, audio_in_enabled=False, **destinations, **transport_params)
    if with_service:
        service: FrameProcessor = world.avatar_service(
            transport, params=params or BeyParams(avatar_ready_delay_s=0.1), placement=placement
        )
    else:
        service = PassThrough()
    processors = [transport.input(), service, *([sink] if sink else []), transport.output()]
    run = await world.start(
        Pipeline(processors),
        params=PipelineParams(audio_out_sample_rate=out_rate),
        idle_timeout_secs=None,
    )
    return Bot(run, service, transport, room)


def bench_world(behaviour: AvatarBehaviour, **settings) -> OfflineWorld:
    """A world with no user: the benchmarks measure bots and avatars only."""
    return OfflineWorld(behaviour=behaviour, user=False, **settings)


async def end_bot(bot: Bot) -> None:
    await bot.run.end(60)


async def end_bots(bots: list[Bot]) -> None:
    # All at once: each bot takes a few seconds to end, as pipecat's output transport sends
    # `audio_out_end_silence_secs` (2 s) of silence on each of its two destinations.
    await asyncio.gather(*(end_bot(bot) for bot in bots))


def speech(seconds: float, rate: int) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    return (
        (np.sin(2 * np.pi * 220 * t) * np.sin(2 * np.pi * 2 * t) * 12000).astype(np.int16).tobytes()
    )


def babble(seconds: float, rate: int, seed: int = 0) -> bytes:
    """Speech-like sound that never repeats itself: sentences of a wandering voice.

    Lip sync is measured by finding each stretch of the avatar's voice in what the user
    heard; in ``speech``, a tone under a 4 Hz beat, a stretch also matches whole beats away.
    Here the pitch moves every 50 ms (110 to 220 Hz, three harmonics) and the loudness every
    syllable (0.1 to 0.3 s; 20 to 100 %), in sentences of 1.5 to 3 s, each followed by a
    pause of 0.4 s (exact silence), as a TTS says a paragraph.
    """
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    at = np.arange(n)
    knots = np.arange(0, n + rate // 20, rate // 20)
    pitch = np.interp(at, knots, rng.uniform(110, 220, len(knots)))
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    voice = np.sin(phase) + 0.5 * np.sin(2 * phase) + 0.25 * np.sin(3 * phase)
    syllables = np.cumsum(rng.uniform(0.1, 0.3, int(seconds / 0.1) + 2)) * rate
    loudness = np.interp(at, np.r_[0, syllables], rng.uniform(0.2, 1, len(syllables) + 1))
    pcm = voice * loudness * 7000
    end = 0.0
    while end < seconds:
        end += rng.uniform(1.5, 3.0)
        pcm[int(end * rate) : int((end + PAUSE_S) * rate)] = 0
        end += PAUSE_S
    return pcm.astype(np.int16).tobytes()


def sound_s(pcm: bytes, rate: int) -> float:
    """Seconds of ``pcm`` not in exact silence, counted in 20 ms pieces (as ``HeardFrom``)."""
    samples = np.frombuffer(pcm, np.int16)
    step = rate // FRAMES_PER_S
    pieces = [samples[i : i + step] for i in range(0, len(samples), step)]
    return sum(len(p) for p in pieces if p.any()) / rate


async def say(bot: Bot, seconds: float, rate: int, pcm: bytes | None = None) -> None:
    await bot.worker.queue_frames(tts_frames(seconds, rate, pcm))


class Heard:
    """Seconds of speech an avatar has received, counted incrementally.

    Recounting every chunk on every check would cost O(sessions x chunks) and show up in the
    very CPU figures being measured.
    """

    def __init__(self, avatar: SimulatedAvatar) -> None:
        self.avatar = avatar
        self._seen = 0
        self._bytes = 0

    def seconds(self) -> float:
        new = self.avatar.received[self._seen :]
        self._seen += len(new)
        self._bytes += sum(len(r.pcm) for r in new if r.track == BEY_TRACK_KEY and any(r.pcm))
        return self._bytes / 2 / (self.avatar.received_sample_rate or 1)


async def until(predicate, timeout: float, poll_s: float = 0.1) -> bool:
    """Poll ``predicate`` at a fixed rate until it holds or time runs out.

    Unlike ``DailySimulation.wait_for``, which re-checks on every piece of audio delivered,
    its cost does not grow with the traffic being measured.
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(poll_s)
    return True


async def add_avatar(
    daily: DailySimulation, room, behaviour: AvatarBehaviour | None = None
) -> SimulatedAvatar:
    """An avatar in a room no session was started for: the pass-through's listener."""
    avatar = SimulatedAvatar(daily, room, daily.mint_token(room), behaviour or AvatarBehaviour())
    daily.avatars.append(avatar)
    daily.spawn(avatar.run(), "bench-avatar")
    await daily.wait_for(lambda: avatar.in_room, 10)
    return avatar


class DropAudio(FrameProcessor):
    """Counts the audio bound for the avatar's track and drops it, so nothing is paced."""

    def __init__(self) -> None:
        super().__init__()
        self.target = 0
        self.count = 0
        self.done = asyncio.Event()

    def expect(self, frames: int) -> None:
        self.target, self.count = frames, 0
        self.done.clear()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, OutputAudioRawFrame) and frame.transport_destination:
            self.count += 1
            if self.count >= self.target:
                self.done.set()
            return
        await self.push_frame(frame, direction)


async def feed(bot: Bot, sink: DropAudio, frames: list[Frame]) -> None:
    """Push frames as fast as the pipeline takes them; return once the sink has them all."""
    sink.expect(sum(isinstance(f, OutputAudioRawFrame) for f in frames))
    await bot.worker.queue_frames(frames)
    if sink.target:
        await asyncio.wait_for(sink.done.wait(), 30)


def tts_frames(seconds: float, rate: int, pcm: bytes | None = None) -> list[Frame]:
    """TTS output as a TTS service pushes it: started, 20 ms audio frames, stopped.

    Of ``pcm`` if given, else of ``speech(seconds, rate)``.
    """
    pcm = speech(seconds, rate) if pcm is None else pcm
    step = rate // FRAMES_PER_S * 2
    frames: list[Frame] = [TTSStartedFrame()]
    frames += [TTSAudioRawFrame(pcm[i : i + step], rate, 1) for i in range(0, len(pcm), step)]
    frames.append(TTSStoppedFrame())
    return frames


# 1. Audio path overhead.
async def audio_overhead(seconds: float, isolated_seconds: float, reps: int) -> None:
    """Service vs pass-through, in one process, measured in alternation.

    Two figures per rate:
    - the whole path (service or pass-through, then the output transport pacing into the
      avatar's track, the simulated room delivering it), in real time: what a bot pays, but its
      CPU is mostly the output transport's and the run-to-run noise is several percent;
    - the processor alone: the same frames as fast as the pipeline takes them, the audio dropped
      right after the processor, so the difference is the service's own cost, precise to a
      fraction of a millisecond per second of audio.
    """
    for rate in (16000, 24000, 48000):
        full: dict[bool, list[float]] = {True: [], False: []}
        alone: dict[bool, list[float]] = {True: [], False: []}
        behaviour = AvatarBehaviour(join_delay_s=0.0, playback_delay_s=0.0)
        async with bench_world(behaviour) as world:
            daily = world.daily
            bots = {True: await start_bot(world, with_service=True)}
            await daily.wait_for(
                lambda: bool(world.daily.avatars) and world.daily.avatars[0].in_room, 10
            )
            bots[False] = await start_bot(world, with_service=False)
            pass_through_avatar = await add_avatar(daily, bots[False].transport_room)
            sinks = {True: DropAudio(), False: DropAudio()}
            fast = {w: await start_bot(world, with_service=w, sink=sinks[w]) for w in sinks}
            await daily.wait_for(
                lambda: len(world.daily.avatars) == 3 and world.daily.avatars[2].in_room, 10
            )
            await add_avatar(daily, fast[False].transport_room)
            await asyncio.sleep(0.5)
            heard = {True: Heard(daily.avatars[0]), False: Heard(pass_through_avatar)}

            speech_frames = tts_frames(seconds, rate)
            many = tts_frames(isolated_seconds, rate)
            for rep in range(reps):
                # Alternate which goes first so a drift in the machine's load favours neither.
                for with_service in (False, True) if rep % 2 == 0 else (True, False):
                    target = heard[with_service].seconds() + seconds * 0.98
                    cpu0 = time.process_time()
                    await bots[with_service].worker.queue_frames(speech_frames)
                    h, t = heard[with_service], target
                    if not await until(lambda h=h, t=t: h.seconds() >= t, seconds * 3 + 10):
                        raise RuntimeError("the avatar did not hear all the speech")
                    full[with_service].append(time.process_time() - cpu0)

                # The processor alone, one second of audio each in turn, so that whatever else
                # the machine does falls on both alike; a second at a time, as queuing all of
                # it would keep thousands of frames alive for the garbage collector to walk.
                # The event loop's thread only: the simulated room's threads are idle here and
                # would add nothing but noise.
                spent = {True: 0.0, False: 0.0}
                for k, i in enumerate(range(0, len(many), FRAMES_PER_S)):
                    for with_service in (False, True) if k % 2 == 0 else (True, False):
                        cpu0 = time.thread_time()
                        batch = many[i : i + FRAMES_PER_S]
                        await feed(fast[with_service], sinks[with_service], batch)
                        spent[with_service] += time.thread_time() - cpu0
                for with_service, cpu in spent.items():
                    alone[with_service].append(cpu)
            await end_bots([*bots.values(), *fast.values()])

        ratios = [s / p for s, p in zip(full[True], full[False], strict=True)]
        full_ms = statistics.median(full[False]) / seconds * 1000
        added = [
            (s - p) / isolated_seconds * 1000
            for s, p in zip(alone[True], alone[False], strict=True)
        ]
        added_ms = statistics.median(added)
        row(
            f"audio path, {rate // 1000} kHz TTS",
            f"service adds {added_ms:+.2f} ms CPU per s of audio (runs {min(added):+.2f} to "
            f"{max(added):+.2f}); ratio {(full_ms + added_ms) / full_ms:.3f}",
            f"(whole path with pass-through {full_ms:.1f} ms/s; whole-path ratio measured "
            f"directly {statistics.median(ratios):.3f}, runs {min(ratios):.2f} to "
            f"{max(ratios):.2f})",
        )


# 2. Start-up critical path.
def bot_in(room: Room) -> bool:
    return any(m.user_name == "Bot" for m in room.members.values())


def bot_and_avatar_in(room: Room, daily: DailySimulation) -> bool:
    return bot_in(room) and any(a.in_room and a.room is room for a in daily.avatars)


async def steps_in_sequence(world: OfflineWorld) -> float:
    """The naive order: the bot joins, then mints the avatar's token, then starts the session."""
    daily = world.daily
    t0 = time.monotonic()
    bot = await start_bot(world, with_service=False)
    room = bot.transport_room
    await until(lambda: bot_in(room), 30, poll_s=0.005)
    # The service's own start path (token, then session), after the bot joined.
    async with aiohttp.ClientSession() as http:
        daily_api = DailyRoomAPI(api_key=world.daily_key, session=http, api_url=daily.rest_url)
        client = BeyClient(world.bey_key, base_url=world.bey.url, session=http)
        await start_avatar_session(
            client,
            avatar_id=DEFAULT_AVATAR_ID,
            room_url=room.url,
            identity=AvatarIdentity.new("Avatar"),
            daily=daily_api,
            token_ttl_s=600,
        )
    await until(lambda: bot_and_avatar_in(room, daily), 30, poll_s=0.005)
    elapsed = time.monotonic() - t0
    await end_bot(bot)
    return elapsed


async def startup(latencies: list[float]) -> None:
    """Pipeline start to bot and avatar both in the room, the service vs the steps in sequence."""
    join_s, mint_s, avatar_delay = 1.0, 0.2, 0.5
    for api_s in latencies:
        async with bench_world(
            AvatarBehaviour(join_delay_s=avatar_delay),
            api_latency_s=api_s,
            join_latency_s=join_s,
            rest_latency_s=mint_s,
        ) as world:
            t0 = time.monotonic()
            bot = await start_bot(world, with_service=True)
            await until(
                lambda b=bot: bot_and_avatar_in(b.transport_room, world.daily), 30, poll_s=0.005
            )
            measured = time.monotonic() - t0
            await end_bot(bot)
            sequential = await steps_in_sequence(world)
        expected = max(join_s, mint_s + api_s + avatar_delay)
        row(
            f"start to bot and avatar in the room, API {api_s:g} s",
            f"{measured:.2f} s; steps one after another {sequential:.2f} s",
            f"(bot join {join_s:g} s, token {mint_s:g} s, avatar join {avatar_delay:g} s; "
            f"max(join, token+session+avatar join) = {expected:.2f} s)",
        )


# 3. Time to first avatar audio.
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


async def measure_lag(stop: asyncio.Event, lags: list[float]) -> None:
    """Record how late a 10 ms sleep wakes up, until stopped: the event loop's lag."""
    while not stop.is_set():
        t = time.monotonic()
        await asyncio.sleep(0.01)
        lags.append((time.monotonic() - t - 0.01) * 1000)


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


# 4. Scale.
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


# 5. The relay placement.
RELAY_SIZES = ((512, 512), (1280, 720))
VIDEO_FPS = 25


def relay_behaviour(size: tuple[int, int]) -> AvatarBehaviour:
    """An avatar with a camera of ``size`` at 25 fps, there at once."""
    return AvatarBehaviour(join_delay_s=0.2, video_size=size, video_fps=VIDEO_FPS)


def live_video(size: tuple[int, int]) -> dict:
    """The bot's output for a relayed avatar: live video at its size and rate (as the demo)."""
    return relayed_video(relay_behaviour(size))


def size_name(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


class HeardFrom:
    """Seconds of sound a participant has received on one publisher's microphone, counted
    incrementally (``heard_speech_s`` reassembles the whole track at every call)."""

    def __init__(self, listener: SimulatedParticipant, publisher_id: str) -> None:
        self.listener, self.publisher_id = listener, publisher_id
        self._seen = 0
        self._samples = 0
        self._rate = 0

    def seconds(self) -> float:
        received = self.listener.received
        for piece in received[self._seen :]:
            if piece.publisher_id == self.publisher_id and piece.track == MICROPHONE:
                if any(piece.pcm):
                    self._samples += len(piece.pcm) // 2
                    self._rate = piece.sample_rate
        self._seen = len(received)
        return self._samples / self._rate if self._rate else 0.0


async def speak_until_heard(bots: list[Bot], heard: list[HeardFrom], pcm: bytes) -> bool:
    """Have every bot say ``pcm`` (24 kHz); return once all of it was heard (or not)."""
    seconds = len(pcm) / 2 / 24000
    for bot in bots:
        await say(bot, seconds, 24000, pcm)
    target = sound_s(pcm, 24000) * 0.97
    return await until(
        lambda: all(h.seconds() >= target for h in heard),
        seconds * 3 + 10 * len(bots),
        poll_s=0.2,
    )


def bot_id(bot: Bot) -> str:
    return str(bot.transport.participants()["local"]["id"])


@dataclass
class Usage:
    """CPU over a window of wall time: the process's (every thread) and the loop thread's."""

    cpu: float = 0.0
    loop: float = 0.0
    wall: float = 0.0

    @classmethod
    async def of(cls, work: Awaitable[T]) -> tuple["Usage", T]:
        """Await ``work``, and say what it cost; returns the usage and its result."""
        cpu0, loop0, wall0 = time.process_time(), time.thread_time(), time.monotonic()
        result = await work
        cpu, loop = time.process_time() - cpu0, time.thread_time() - loop0
        return cls(cpu, loop, time.monotonic() - wall0), result

    @property
    def load(self) -> float:
        """Share of a core the process used (process time over wall time)."""
        return self.cpu / self.wall

    @property
    def loop_load(self) -> float:
        """Share of a core the event loop's thread used."""
        return self.loop / self.wall


@dataclass
class PlacementRun:
    usage: Usage
    report: dict  # the demo's relay figures (relayed runs only)


async def wait_listening(world: OfflineWorld, n: int) -> None:
    """Until ``n`` avatars listen, their cameras on, and the service has seen them ready."""
    daily = world.daily
    if not await until(
        lambda: (
            len(daily.avatars) == n
            and all(a.listening and (a.camera or not a.behaviour.camera) for a in daily.avatars)
        ),
        30 + n,
    ):
        raise RuntimeError("the avatars did not all come")
    await asyncio.sleep(0.6)  # the service's avatar_ready_delay_s (0.1 s here), and more


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
    seconds: float, reps: int, variants: tuple[str, ...] = tuple(VARIANTS), sizes=RELAY_SIZES
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


# 6. Relayed bots per core.
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


BENCHMARKS = ("audio", "startup", "first-audio", "scale", "relay", "relay_scale")


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
