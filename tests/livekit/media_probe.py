"""Media through a real LiveKit server, offline: two participants, inside a namespace of its own.

Run by tests/test_livekit_server.py as ``unshare -n -- python tests/livekit/media_probe.py``:
it brings up the namespace's interfaces (``lo`` and a veth pair with 10.204.0.1), starts
``LiveKitServer`` there, reads the join response a client gets, and connects two
participants with the ``livekit`` SDK: ``bot`` publishes a microphone track carrying a
440 Hz tone and a camera track of one colour, sends an utterance of 16 kHz PCM as a byte
stream on ``lk.audio_stream`` (with ``sample_rate``/``num_channels`` attributes) to
``avatar``, and calls ``avatar``'s RPC ``lk.clear_buffer``. ``avatar`` records what it
received: the decoded audio (its loudest frequency, from an FFT), the video frames' size and
colour, the byte stream's bytes, the RPC. It prints one line,
``LIVEKIT_PROBE_RESULT <json>``, on stdout; judging is the test's job. Every wait is bounded
and the whole run ends by ``--deadline-s``.
"""

import argparse
import asyncio
import hashlib
import sys
import time

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

from pipecat_bey.testing.livekit_server import LiveKitServer
from pipecat_bey.testing.netns import setup_namespace_network

ROOM = "probe-room"
BOT, AVATAR = "bot", "avatar"

SAMPLE_RATE = 48000
TONE_HZ = 440.0
TONE_S = 4.0
FRAME_MS = 10
ANALYSED_S = 1.0
"""How much voiced audio the receiver analyses (1 Hz FFT bins)."""

WIDTH, HEIGHT, FPS = 320, 240, 15
COLOUR = (40, 110, 170)
VIDEO_FRAMES_WANTED = 10

SPEECH_RATE = 16000
SPEECH_S = 1.5
SPEECH_CHUNK = 3200
"""Bytes per write: 100 ms of 16 kHz mono 16-bit PCM."""


class Avatar:
    """The receiving participant: records what reaches it."""

    def __init__(self) -> None:
        self.room = rtc.Room()
        self.audio_chunks: list[np.ndarray] = []
        self.audio_formats: set[tuple[int, int]] = set()
        self.audio_frames = 0
        self.voiced_samples = 0
        self.audio_done = asyncio.Event()
        self.first_voiced_at: float | None = None
        self.video_frames = 0
        self.video_sizes: set[tuple[int, int]] = set()
        self.video_colours: list[list[float]] = []
        self.video_done = asyncio.Event()
        self.stream: dict = {}
        self.stream_done = asyncio.Event()
        self.rpc_calls: list[dict] = []
        self._tasks: set[asyncio.Task] = set()

        self.room.on("track_subscribed", self._on_track)
        self.room.register_byte_stream_handler("lk.audio_stream", self._on_byte_stream)

    def _spawn(self, coroutine: object) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_track(
        self,
        track: rtc.Track,
        publication: rtc.RemoteTrackPublication,
        participant: rtc.RemoteParticipant,
    ) -> None:
        log(f"avatar subscribed to {participant.identity}'s {publication.source} ({track.kind})")
        if track.kind == rtc.TrackKind.KIND_AUDIO:
            self._spawn(self._read_audio(track))
        elif track.kind == rtc.TrackKind.KIND_VIDEO:
            self._spawn(self._read_video(track))

    async def _read_audio(self, track: rtc.Track) -> None:
        stream = rtc.AudioStream.from_track(track=track, sample_rate=SAMPLE_RATE, num_channels=1)
        wanted = int(ANALYSED_S * SAMPLE_RATE)
        try:
            async for event in stream:
                frame = event.frame
                self.audio_frames += 1
                self.audio_formats.add((frame.sample_rate, frame.num_channels))
                samples = np.frombuffer(frame.data, dtype=np.int16).copy()
                if self.first_voiced_at is None:
                    if rms(samples) < VOICED_RMS:
                        continue
                    self.first_voiced_at = time.monotonic()
                    log("avatar hears the tone")
                self.audio_chunks.append(samples)
                self.voiced_samples += len(samples)
                if self.voiced_samples >= wanted + SAMPLE_RATE // 5:
                    self.audio_done.set()
                    break
        finally:
            await stream.aclose()

    async def _read_video(self, track: rtc.Track) -> None:
        stream = rtc.VideoStream(track)
        try:
            async for event in stream:
                frame = event.frame
                self.video_frames += 1
                self.video_sizes.add((frame.width, frame.height))
                rgba = frame.convert(rtc.VideoBufferType.RGBA)
                pixels = np.frombuffer(rgba.data, dtype=np.uint8).reshape(
                    rgba.height, rgba.width, 4
                )
                centre = pixels[
                    rgba.height // 4 : -rgba.height // 4, rgba.width // 4 : -rgba.width // 4
                ]
                self.video_colours.append(centre[..., :3].reshape(-1, 3).mean(axis=0).tolist())
                if self.video_frames >= VIDEO_FRAMES_WANTED:
                    self.video_done.set()
                    break
        finally:
            await stream.aclose()

    def _on_byte_stream(self, reader: rtc.ByteStreamReader, sender: str) -> None:
        self._spawn(self._read_byte_stream(reader, sender))

    async def _read_byte_stream(self, reader: rtc.ByteStreamReader, sender: str) -> None:
        chunks = [chunk async for chunk in reader]
        data = b"".join(chunks)
        info = reader.info
        self.stream = {
            "sender": sender,
            "topic": info.topic,
            "name": info.name,
            "attributes": dict(info.attributes or {}),
            "chunks": len(chunks),
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        log(f"avatar received a byte stream of {len(data)} bytes from {sender}")
        self.stream_done.set()

    async def clear_buffer(self, data: rtc.RpcInvocationData) -> str:
        self.rpc_calls.append(
            {"method": "lk.clear_buffer", "caller": data.caller_identity, "payload": data.payload}
        )
        return "ok"

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.room.disconnect()


async def publish_tone(source: rtc.AudioSource) -> None:
    """The tone in 10 ms frames; ``capture_frame`` paces them at real time."""
    samples = tone(SAMPLE_RATE, TONE_S, TONE_HZ)
    per_frame = SAMPLE_RATE * FRAME_MS // 1000
    for start in range(0, len(samples) - per_frame + 1, per_frame):
        frame = rtc.AudioFrame(
            samples[start : start + per_frame].tobytes(), SAMPLE_RATE, 1, per_frame
        )
        await source.capture_frame(frame)


async def publish_colour(source: rtc.VideoSource, until: asyncio.Event) -> None:
    """Frames of one colour at FPS until `until` is set."""
    pixel = bytes((*COLOUR, 255))
    frame = rtc.VideoFrame(WIDTH, HEIGHT, rtc.VideoBufferType.RGBA, pixel * (WIDTH * HEIGHT))
    started = time.monotonic()
    sent = 0
    while not until.is_set():
        source.capture_frame(frame)
        sent += 1
        # Real-time pacing of a camera: frame n is due at n / FPS.
        await asyncio.sleep(max(0.0, started + sent / FPS - time.monotonic()))


async def run(args: argparse.Namespace) -> dict:
    result: dict = {"errors": []}
    timings: dict[str, float] = {}
    result["timings"] = timings
    started = time.monotonic()

    def mark(name: str) -> None:
        timings[name] = round(time.monotonic() - started, 3)

    address = setup_namespace_network()
    mark("network")
    async with LiveKitServer(address, log_path=args.out / "server.log") as server:
        mark("server_up")
        result["server"] = {"url": server.url}
        join = await server.join_response(server.token("join-probe", ROOM))
        result["server"]["version"] = join.server_info.version
        result["ice_servers"] = [list(server.urls) for server in join.ice_servers]
        mark("join_response")

        avatar = Avatar()
        bot = rtc.Room()
        stop_video = asyncio.Event()
        tasks: list[asyncio.Task] = []
        try:
            await avatar.room.connect(server.url, server.token(AVATAR, ROOM))
            avatar.room.local_participant.register_rpc_method(
                "lk.clear_buffer", avatar.clear_buffer
            )
            mark("avatar_connected")
            await bot.connect(server.url, server.token(BOT, ROOM))
            mark("bot_connected")

            audio_source = rtc.AudioSource(SAMPLE_RATE, 1)
            microphone = rtc.LocalAudioTrack.create_audio_track("tone", audio_source)
            await bot.local_participant.publish_track(
                microphone, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
            )
            video_source = rtc.VideoSource(WIDTH, HEIGHT)
            camera = rtc.LocalVideoTrack.create_video_track("colour", video_source)
            await bot.local_participant.publish_track(
                camera, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_CAMERA)
            )
            mark("published")
            tasks.append(asyncio.create_task(publish_tone(audio_source)))
            tasks.append(asyncio.create_task(publish_colour(video_source, stop_video)))

            # An utterance for the avatar, faster than real time, as one byte stream.
            speech = tone(SPEECH_RATE, SPEECH_S, TONE_HZ).tobytes()
            result["sent_stream"] = {
                "size": len(speech),
                "sha256": hashlib.sha256(speech).hexdigest(),
            }
            writer = await bot.local_participant.stream_bytes(
                name="utterance-1",
                topic="lk.audio_stream",
                destination_identities=[AVATAR],
                attributes={"sample_rate": str(SPEECH_RATE), "num_channels": "1"},
            )
            for start in range(0, len(speech), SPEECH_CHUNK):
                await writer.write(speech[start : start + SPEECH_CHUNK])
            await writer.aclose()
            mark("stream_sent")
            await asyncio.wait_for(avatar.stream_done.wait(), args.wait_s)
            mark("stream_received")

            rpc_started = time.monotonic()
            answer = await bot.local_participant.perform_rpc(
                destination_identity=AVATAR,
                method="lk.clear_buffer",
                payload="",
                response_timeout=5,
            )
            result["rpc"] = {
                "response": answer,
                "calls": avatar.rpc_calls,
                "round_trip_ms": round((time.monotonic() - rpc_started) * 1000, 1),
            }
            mark("rpc_done")

            for name, event in (("audio", avatar.audio_done), ("video", avatar.video_done)):
                try:
                    await asyncio.wait_for(event.wait(), args.wait_s)
                    mark(f"{name}_done")
                except asyncio.TimeoutError:
                    result["errors"].append(f"no complete {name} within {args.wait_s} s")
        except Exception as error:
            result["errors"].append(f"{type(error).__name__}: {error}")
        finally:
            stop_video.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await avatar.close()
            await bot.disconnect()
            mark("disconnected")

    mark("server_stopped")
    result["server"]["exit_code"] = server.returncode
    result["server"]["ice"] = ice_in_log(server.log_text())
    result["stream"] = avatar.stream
    audio: dict = {
        "frames": avatar.audio_frames,
        "formats": sorted(avatar.audio_formats),
        "voiced_s": round(avatar.voiced_samples / SAMPLE_RATE, 3),
    }
    if avatar.voiced_samples >= int(ANALYSED_S * SAMPLE_RATE):
        voiced = np.concatenate(avatar.audio_chunks)
        # Skip the first 100 ms (the tone's onset through the codec), analyse 1 s.
        window = voiced[SAMPLE_RATE // 10 : SAMPLE_RATE // 10 + int(ANALYSED_S * SAMPLE_RATE)]
        audio["peak_hz"], audio["peak_share"] = peak_frequency(window, SAMPLE_RATE)
        audio["rms"] = rms(window)
    result["audio"] = audio
    colours = avatar.video_colours
    result["video"] = {
        "frames": avatar.video_frames,
        "sizes": sorted(avatar.video_sizes),
        "median_rgb": [round(float(np.median([c[i] for c in colours])), 1) for i in range(3)]
        if colours
        else [],
    }
    return result


if __name__ == "__main__":
    sys.exit(run_probe(run, waits="each media wait"))
