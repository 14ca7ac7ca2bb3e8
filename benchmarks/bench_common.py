"""What the benchmarks share: bots and worlds to measure, speech to say, counters and clocks."""

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
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

from pipecat_bey import BeyParams
from pipecat_bey.config import BEY_AUDIO_TRACK
from pipecat_bey.testing import (
    AvatarBehaviour,
    BotRun,
    DailySimulation,
    OfflineWorld,
    relayed_video,
)
from pipecat_bey.testing.daily_sim import (
    MICROPHONE,
    Room,
    SimulatedAvatar,
    SimulatedParticipant,
    custom_audio,
)

BEY_TRACK_KEY = custom_audio(BEY_AUDIO_TRACK)  # the avatar's subscription to the bot's track
ROWS: list[tuple[str, str, str]] = []
FRAMES_PER_S = 50  # TTS frames of 20 ms
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
    params: BeyParams | None = None,
    sink: FrameProcessor | None = None,
    placement: str = "room",
    room: Room | None = None,
    **transport_params: Any,
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


def bench_world(behaviour: AvatarBehaviour, **settings: Any) -> OfflineWorld:
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


async def until(predicate: Callable[[], bool], timeout: float, poll_s: float = 0.1) -> bool:
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
    daily: DailySimulation, room: Room, behaviour: AvatarBehaviour | None = None
) -> SimulatedAvatar:
    """An avatar in a room no session was started for: the pass-through's listener."""
    avatar = SimulatedAvatar(daily, room, daily.mint_token(room), behaviour or AvatarBehaviour())
    daily.avatars.append(avatar)
    daily.spawn(avatar.run(), "bench-avatar")
    await daily.wait_for(lambda: avatar.in_room, 10)
    return avatar


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


async def measure_lag(stop: asyncio.Event, lags: list[float]) -> None:
    """Record how late a 10 ms sleep wakes up, until stopped: the event loop's lag."""
    while not stop.is_set():
        t = time.monotonic()
        await asyncio.sleep(0.01)
        lags.append((time.monotonic() - t - 0.01) * 1000)


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
    incrementally (``heard_speech_s`` reassembles the whole track at every call).
    """

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
