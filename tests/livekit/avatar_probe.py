"""The LiveKit avatar stand-in in a real LiveKit room, offline, inside a namespace of its own.

Run by tests/test_livekit_server.py as ``unshare -n -- python tests/livekit/avatar_probe.py``:
it brings up the namespace's interfaces, starts ``LiveKitServer``, and in one room a
``bot`` (a plain participant of the ``livekit`` SDK, registering ``lk.playback_started`` and
``lk.playback_finished`` as a bot must) and ``LiveKitAvatar`` with the avatar's token
(``avatar_token``: kind ``agent``, publishing on behalf of ``bot``). Once the bot sees the
avatar's camera, it speaks to it as the LiveKit plugin does, as byte streams of 16 kHz PCM on
``lk.audio_stream``:

1. a 440 Hz tone of 1.5 s, played to its end;
2. a 660 Hz tone of 6 s, interrupted by the RPC ``lk.clear_buffer`` once the bot has heard
   0.5 s of it from the avatar;
3. a 440 Hz tone of 1 s again, after the barge-in.

The bot records what it hears (the avatar's microphone, decoded at 48 kHz) and sees (its
camera: size, colour, the frame numbers in the bottom band), and the notifications; the
avatar records what reached it. It prints one line, ``LIVEKIT_PROBE_RESULT <json>``, on
stdout; judging is the test's job. Every wait is bounded and the whole run ends by
``--deadline-s``.
"""

import argparse
import asyncio
import itertools
import json
import sys
import time
from dataclasses import asdict

import numpy as np
from livekit import rtc
from probe_common import (
    VOICED_RMS,
    ice_in_log,
    log,
    peak_frequency,
    rms,
    run_probe,
    tone,
)

from pipecat_bey.testing.daily_sim.picture import looks_like_avatar, read_visible_frame_number
from pipecat_bey.testing.livekit_avatar import (
    AVATAR_IDENTITY,
    LiveKitAvatar,
    avatar_token,
)
from pipecat_bey.testing.livekit_server import LiveKitServer
from pipecat_bey.testing.netns import setup_namespace_network

ROOM = "avatar-room"
BOT = "bot"
HEARD_RATE = 48000
SPEECH_RATE = 16000
SPEECH_CHUNK_S = 0.1
UTTERANCES = [
    # (name, tone, seconds, interrupt after the bot has heard this much of it)
    ("played", 440.0, 1.5, None),
    ("interrupted", 660.0, 6.0, 0.5),
    ("after_barge_in", 440.0, 1.0, None),
]


class Bot:
    """The bot's side: speaks to the avatar, hears and sees it, takes its notifications."""

    def __init__(self) -> None:
        self.room = rtc.Room()
        self.heard: list[tuple[float, np.ndarray, bool]] = []
        """(arrival time, 10 ms of 48 kHz mono, whether it is voiced) of the avatar's
        microphone."""
        self.heard_more = asyncio.Event()
        self.seen: list[dict] = []
        self.avatar_video = asyncio.Event()
        self.avatar_info: dict = {}
        self.notifications: list[dict] = []
        self.notified = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()
        self.room.on("track_subscribed", self._on_track)

    def register(self) -> None:
        participant = self.room.local_participant
        participant.register_rpc_method("lk.playback_finished", self._playback_finished)
        participant.register_rpc_method("lk.playback_started", self._playback_started)

    def _note(self, method: str, data: rtc.RpcInvocationData) -> None:
        self.notifications.append(
            {
                "method": method,
                "caller": data.caller_identity,
                "payload": json.loads(data.payload) if data.payload else None,
                "at": time.monotonic(),
            }
        )
        self.notified.set()

    def _playback_finished(self, data: rtc.RpcInvocationData) -> str:
        self._note("lk.playback_finished", data)
        return "ok"

    def _playback_started(self, data: rtc.RpcInvocationData) -> str:
        self._note("lk.playback_started", data)
        return "ok"

    def finished(self) -> list[dict]:
        return [n for n in self.notifications if n["method"] == "lk.playback_finished"]

    async def wait_finished(self, count: int, timeout_s: float) -> dict:
        async def until() -> None:
            while len(self.finished()) < count:
                self.notified.clear()
                await self.notified.wait()

        await asyncio.wait_for(until(), timeout_s)
        return self.finished()[count - 1]

    def _on_track(
        self,
        track: rtc.Track,
        publication: rtc.RemoteTrackPublication,
        participant: rtc.RemoteParticipant,
    ) -> None:
        log(f"bot subscribed to {participant.identity}'s {publication.source} ({track.kind})")
        self.avatar_info = {
            "identity": participant.identity,
            "kind": rtc.ParticipantKind.Name(participant.kind),
            "attributes": dict(participant.attributes),
        }
        reader = self._hear(track) if track.kind == rtc.TrackKind.KIND_AUDIO else self._see(track)
        task = asyncio.ensure_future(reader)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _hear(self, track: rtc.Track) -> None:
        stream = rtc.AudioStream.from_track(
            track=track, sample_rate=HEARD_RATE, num_channels=1, frame_size_ms=10
        )
        try:
            async for event in stream:
                samples = np.frombuffer(event.frame.data, np.int16).copy()
                self.heard.append((time.monotonic(), samples, rms(samples) > VOICED_RMS))
                self.heard_more.set()
        finally:
            await stream.aclose()

    async def _see(self, track: rtc.Track) -> None:
        stream = rtc.VideoStream(track)
        try:
            async for event in stream:
                frame = event.frame
                rgba = frame.convert(rtc.VideoBufferType.RGBA)
                pixels = bytes(rgba.data)
                self.seen.append(
                    {
                        "at": time.monotonic(),
                        "size": [frame.width, frame.height],
                        "avatar": looks_like_avatar(pixels, rgba.width, rgba.height, "RGBA"),
                        "number": read_visible_frame_number(
                            pixels, rgba.width, rgba.height, "RGBA"
                        ),
                    }
                )
                self.avatar_video.set()
        finally:
            await stream.aclose()

    def voiced_since(self, since: float) -> float:
        return sum(len(s) for at, s, voiced in self.heard if voiced and at > since) / HEARD_RATE

    async def wait_heard(self, since: float, seconds: float, timeout_s: float) -> None:
        """Until the bot has heard `seconds` of voice since `since`; TimeoutError after
        `timeout_s`."""

        async def until() -> None:
            while self.voiced_since(since) < seconds:
                self.heard_more.clear()
                await self.heard_more.wait()

        await asyncio.wait_for(until(), timeout_s)

    async def wait_quiet(self, seconds: float, timeout_s: float) -> None:
        """Until the last `seconds` the bot heard were all silence; TimeoutError after
        `timeout_s`."""
        frames = round(seconds * 100)

        async def until() -> None:
            while len(self.heard) < frames or any(v for _, _, v in self.heard[-frames:]):
                self.heard_more.clear()
                await self.heard_more.wait()

        await asyncio.wait_for(until(), timeout_s)

    async def speak(self, hz: float, seconds: float) -> None:
        """One utterance, faster than real time, as the LiveKit plugin sends it: a byte
        stream of 16 kHz PCM, closed at the utterance's end."""
        writer = await self.room.local_participant.stream_bytes(
            name=f"utterance-{hz:.0f}",
            topic="lk.audio_stream",
            destination_identities=[AVATAR_IDENTITY],
            attributes={"sample_rate": str(SPEECH_RATE), "num_channels": "1"},
        )
        pcm = tone(SPEECH_RATE, seconds, hz).tobytes()
        chunk = int(SPEECH_RATE * SPEECH_CHUNK_S) * 2
        for start in range(0, len(pcm), chunk):
            await writer.write(pcm[start : start + chunk])
        await writer.aclose()

    def heard_between(self, start: float, end: float) -> dict:
        voiced = [s for at, s, loud in self.heard if loud and start < at <= end]
        summary: dict = {"voiced_s": round(sum(len(s) for s in voiced) / HEARD_RATE, 3)}
        if len(voiced) >= 30:
            samples = np.concatenate(voiced[5:])  # past the onset through the codec
            summary["peak_hz"], summary["peak_share"] = peak_frequency(samples, HEARD_RATE)
        return summary

    def last_voiced(self, after: float) -> float | None:
        times = [at for at, _, voiced in self.heard if voiced and at > after]
        return times[-1] if times else None

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.room.disconnect()


async def converse(bot: Bot, avatar: LiveKitAvatar, result: dict, wait_s: float) -> None:
    t0 = time.monotonic()
    utterances = result["utterances"]
    for index, (name, hz, seconds, interrupt_after_s) in enumerate(UTTERANCES, start=1):
        # Each utterance after the last one has stopped playing where the bot hears it.
        await bot.wait_quiet(0.2, wait_s)
        sent_at = time.monotonic()
        entry: dict = {"name": name, "hz": hz, "sent_s": seconds}
        utterances.append(entry)
        speaking = asyncio.create_task(bot.speak(hz, seconds))
        entry["sent_at"] = round(sent_at - t0, 3)
        if interrupt_after_s is not None:
            # The barge-in, while the avatar speaks (and the bot may still be sending).
            await bot.wait_heard(sent_at, interrupt_after_s, wait_s)
            clear_at = time.monotonic()
            entry["clear_at"] = round(clear_at - t0, 3)
            entry["clear_response"] = await bot.room.local_participant.perform_rpc(
                destination_identity=AVATAR_IDENTITY,
                method="lk.clear_buffer",
                payload="",
                response_timeout=5,
            )
        await asyncio.wait_for(speaking, wait_s)
        entry["sent_in_s"] = round(time.monotonic() - sent_at, 3)
        finished = await bot.wait_finished(index, wait_s)
        entry["finished"] = finished["payload"]
        entry["finished_at"] = round(finished["at"] - t0, 3)
        if interrupt_after_s is not None:
            # Listen on for a second after the notification: the avatar must stay silent.
            await asyncio.sleep(max(0.0, finished["at"] + 1.0 - time.monotonic()))
            last = bot.last_voiced(clear_at)
            entry["voiced_after_clear_s"] = round(last - clear_at, 3) if last else 0.0
            entry["heard"] = bot.heard_between(sent_at, clear_at)
        else:
            # What it played reaches the bot a moment after the notification.
            await bot.wait_quiet(0.2, wait_s)
            entry["heard"] = bot.heard_between(sent_at, time.monotonic())
        log(f"utterance {name}: {entry}")


async def run(args: argparse.Namespace) -> dict:
    result: dict = {"errors": [], "utterances": []}
    address = setup_namespace_network()
    async with LiveKitServer(address, log_path=args.out / "server.log") as server:
        result["server"] = {"url": server.url}
        bot = Bot()
        avatar: LiveKitAvatar | None = None
        try:
            await bot.room.connect(server.url, server.token(BOT, ROOM))
            bot.register()
            token = avatar_token(server.api_key, server.api_secret, ROOM, BOT)
            avatar = LiveKitAvatar(server.url, token)
            started = time.monotonic()
            await avatar.start()
            await asyncio.wait_for(bot.avatar_video.wait(), args.wait_s)
            result["avatar_video_after_s"] = round(time.monotonic() - started, 3)
            result["avatar_seen_as"] = bot.avatar_info
            result["avatar_sender"] = avatar.sender_identity
            await converse(bot, avatar, result, args.wait_s)
        except Exception as error:
            result["errors"].append(f"{type(error).__name__}: {error}")
        finally:
            if avatar is not None:
                await avatar.aclose()
            await bot.close()
    result["server"]["exit_code"] = server.returncode
    result["server"]["ice"] = ice_in_log(server.log_text())
    result["notifications"] = [{k: v for k, v in n.items() if k != "at"} for n in bot.notifications]
    if avatar is not None:
        result["avatar"] = {
            "segments": [
                {
                    "sample_rate": s.sample_rate,
                    "num_channels": s.num_channels,
                    "received_s": round(s.duration_s, 3),
                    "cleared": s.cleared,
                    "ended": s.ended_at is not None,
                }
                for s in avatar.segments
            ],
            "clears": len(avatar.clears),
            "playback_finished": [
                {k: v for k, v in asdict(p).items() if k != "at"} for p in avatar.playback_finished
            ],
            "spoken_s": round(avatar.spoken_s, 3),
            "frames_made": avatar.face.frames if avatar.face else 0,
        }
    seen = bot.seen
    numbers = [s["number"] for s in seen]
    steps = [(b - a) % 65536 for a, b in itertools.pairwise(numbers)]
    span = seen[-1]["at"] - seen[0]["at"] if len(seen) > 1 else 0.0
    backwards, glitches = frame_order(numbers)
    result["video"] = {
        "frames": len(seen),
        "sizes": sorted({tuple(s["size"]) for s in seen}),
        "avatar_share": round(sum(s["avatar"] for s in seen) / len(seen), 3) if seen else 0.0,
        "fps": round((len(seen) - 1) / span, 1) if span else 0.0,
        "backwards": backwards,
        "glitches": glitches,
        "increasing_share": round(sum(0 < d <= 32768 for d in steps) / len(steps), 3)
        if steps
        else 0.0,
    }
    return result


def frame_order(numbers: list[int]) -> tuple[int, int]:
    """How often the face went back in time, and how many single frames read out of line.

    A frame out of line with both its neighbours, while they are in line with each other,
    is one frame (40 ms) misread after lossy coding, or shown out of turn: a glitch. Once
    glitches are set aside, any step to a lower number is the face replaying the past.
    """

    def forward(a: int, b: int) -> bool:  # b follows a closely (frame numbers wrap)
        return (b - a) % 65536 <= 50

    kept, glitches = [], 0
    for i, number in enumerate(numbers):
        if 0 < i < len(numbers) - 1:
            before, after = numbers[i - 1], numbers[i + 1]
            if forward(before, after) and not (forward(before, number) and forward(number, after)):
                glitches += 1
                continue
        kept.append(number)
    backwards = sum((b - a) % 65536 > 32768 for a, b in itertools.pairwise(kept))
    return backwards, glitches


if __name__ == "__main__":
    sys.exit(run_probe(run, waits="each wait"))
