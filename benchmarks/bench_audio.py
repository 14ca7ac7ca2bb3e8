"""1. Audio path: CPU per second of TTS audio, the service beside a pass-through."""

import asyncio
import statistics
import time

from bench_common import (
    FRAMES_PER_S,
    Bot,
    Heard,
    add_avatar,
    bench_world,
    end_bots,
    row,
    start_bot,
    tts_frames,
    until,
)
from pipecat.frames.frames import Frame, OutputAudioRawFrame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from pipecat_bey.testing import AvatarBehaviour


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
