"""The offline LiveKit world, with a bot played by hand: the avatar comes, speaks, sees, leaves.

Run by tests/test_livekit_world.py as ``unshare -n -- python tests/livekit/world_probe.py
--case plain|impaired``. It enters ``LiveKitWorld`` (the namespace's network, the server, the
Beyond Presence emulator, a user in the room). The bot, a plain participant of the ``livekit``
SDK (no Pipecat service), joins as ``bot``, registers ``lk.playback_started`` and
``lk.playback_finished``, publishes a ``pipecat-audio`` microphone track (silence, as Pipecat's
output does when it has nothing to say), and asks the emulator for a LiveKit session
(``POST /v1/sessions``: ``transport: "livekit"``, the server's URL, an avatar token from
``avatar_token``). Once the avatar has published its camera, the bot sends it 2 s of a 440 Hz
tone as one ``lk.audio_stream`` byte stream of 16 kHz PCM, waits for ``lk.playback_finished``
and for the user to hear it all, and then:

- ``plain``: removes the avatar (``LiveKitAPI(...).room.remove_participant``); the avatar must
  notice and close itself, and the world records it removed;
- ``impaired``: measures the TCP round trip to the server, impairs the network
  (``world.netem``: 50 ms, 10 ms jitter, 2 % loss) and measures it again before the session; it
  never removes the avatar, so the world must record it leaked.

It prints one line, ``LIVEKIT_PROBE_RESULT <json>``; judging is the test's job.
"""

import argparse
import asyncio
import itertools
import json
import sys
import time

import aiohttp
import numpy as np
from livekit import api, rtc
from probe_common import ice_in_log, peak_frequency, run_probe, tone

from pipecat_bey.testing.livekit_avatar import AVATAR_IDENTITY, avatar_token
from pipecat_bey.testing.livekit_user import HEARD_RATE, LiveKitUser
from pipecat_bey.testing.livekit_world import LiveKitWorld

BOT = "bot"
AVATAR_ID = "avatar-under-test"
TONE_HZ = 440.0
TONE_S = 2.0
SPEECH_RATE = 16000
BOT_RATE = 24000
IMPAIRMENT = {"delay_ms": 50.0, "jitter_ms": 10.0, "loss_pct": 2.0}


class Bot:
    """The bot by hand: its room, its silent ``pipecat-audio`` and the avatar's notifications."""

    def __init__(self) -> None:
        self.room = rtc.Room()
        self.notifications: list[dict] = []
        self.finished = asyncio.Event()
        self.avatar_camera = asyncio.Event()
        self.room.on("track_published", self._on_published)
        self._silence: asyncio.Task | None = None

    def _on_published(self, publication: rtc.RemoteTrackPublication, participant) -> None:
        if participant.identity == AVATAR_IDENTITY and publication.kind == rtc.TrackKind.KIND_VIDEO:
            self.avatar_camera.set()

    async def join(self, url: str, token: str) -> None:
        await self.room.connect(url, token)
        local = self.room.local_participant
        local.register_rpc_method("lk.playback_started", self._note("lk.playback_started"))
        local.register_rpc_method("lk.playback_finished", self._note("lk.playback_finished"))
        source = rtc.AudioSource(BOT_RATE, 1)
        track = rtc.LocalAudioTrack.create_audio_track("pipecat-audio", source)
        await local.publish_track(
            track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        )
        self._silence = asyncio.create_task(self._say_nothing(source))

    def _note(self, method: str):
        def handler(data: rtc.RpcInvocationData) -> str:
            payload = json.loads(data.payload) if data.payload else None
            self.notifications.append(
                {"method": method, "caller": data.caller_identity, "payload": payload}
            )
            if method == "lk.playback_finished":
                self.finished.set()
            return "ok"

        return handler

    @staticmethod
    async def _say_nothing(source: rtc.AudioSource) -> None:
        """Silence in 10 ms frames, paced by the source, as Pipecat's output sends it."""
        frame = rtc.AudioFrame(bytes(BOT_RATE // 100 * 2), BOT_RATE, 1, BOT_RATE // 100)
        while True:
            await source.capture_frame(frame)

    async def speak(self, pcm: bytes) -> None:
        """One utterance as the LiveKit plugin sends it, faster than real time."""
        writer = await self.room.local_participant.stream_bytes(
            name="utterance-1",
            topic="lk.audio_stream",
            destination_identities=[AVATAR_IDENTITY],
            attributes={"sample_rate": str(SPEECH_RATE), "num_channels": "1"},
        )
        chunk = SPEECH_RATE // 10 * 2
        for start in range(0, len(pcm), chunk):
            await writer.write(pcm[start : start + chunk])
        await writer.aclose()

    async def close(self) -> None:
        if self._silence is not None:
            self._silence.cancel()
            await asyncio.gather(self._silence, return_exceptions=True)
        await self.room.disconnect()


async def start_session(world: LiveKitWorld) -> dict:
    """``POST /v1/sessions`` for a LiveKit session, as the service would."""
    settings = world.livekit_settings()
    token = avatar_token(
        settings["livekit_api_key"], settings["livekit_api_secret"], world.room, BOT
    )
    bey = world.bey_settings()
    body = {"transport": "livekit", "avatar_id": AVATAR_ID, "url": world.url, "token": token}
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
        session.post(
            f"{bey['api_url']}/v1/sessions", json=body, headers={"x-api-key": bey["api_key"]}
        ) as response,
    ):
        return {"status": response.status, "body": await response.json()}


async def remove_avatar(world: LiveKitWorld) -> None:
    """What the service does at the end: ``RoomService.RemoveParticipant``."""
    settings = world.livekit_settings()
    lk = api.LiveKitAPI(
        settings["livekit_url"], settings["livekit_api_key"], settings["livekit_api_secret"]
    )
    try:
        await lk.room.remove_participant(
            api.RoomParticipantIdentity(room=world.room, identity=AVATAR_IDENTITY)
        )
    finally:
        await lk.aclose()


def heard_summary(user: LiveKitUser, identity: str, track: str) -> dict:
    """The voice heard on one track: its length, its span, its frequency."""
    intervals = user.voiced_intervals(identity, track, min_gap_s=0.3)
    summary: dict = {
        "voiced_s": user.heard_s(identity, track),
        "intervals": [[round(a, 3), round(b, 3)] for a, b in intervals],
        "span_s": round(intervals[-1][1] - intervals[0][0], 3) if intervals else 0.0,
    }
    voiced = [f.samples for f in user.audio_frames(identity, track) if f.voiced]
    if len(voiced) > 40:
        samples = np.concatenate(voiced[10:])  # past the onset through the codec
        summary["peak_hz"], summary["peak_share"] = peak_frequency(samples, HEARD_RATE)
    return summary


def face_frames(user: LiveKitUser) -> list:
    return [f for f in user.video_frames(AVATAR_IDENTITY, "camera") if f.width >= 16]


def video_span_s(user: LiveKitUser) -> float:
    frames = face_frames(user)
    return frames[-1].at - frames[0].at if len(frames) > 1 else 0.0


def video_summary(user: LiveKitUser, identity: str) -> dict:
    every = user.video_frames(identity, "camera")
    # The first frames may come at a tiny size while the encoder starts (8x8): set aside.
    frames = [f for f in every if f.width >= 16]
    span = frames[-1].at - frames[0].at if len(frames) > 1 else 0.0
    numbers = [f.number for f in frames]
    steps = [(b - a) % 65536 for a, b in itertools.pairwise(numbers)]
    return {
        "frames": len(frames),
        "tiny_frames": len(every) - len(frames),
        "fps": round((len(frames) - 1) / span, 1) if span else 0.0,
        "sizes": sorted({(f.width, f.height) for f in frames}),
        "avatar_share": round(sum(f.avatar for f in frames) / len(frames), 3) if frames else 0.0,
        "forward_share": round(sum(0 < d <= 50 for d in steps) / len(steps), 3) if steps else 0.0,
    }


def publications(user: LiveKitUser) -> list[dict]:
    return [
        {
            "event": event.event,
            "identity": event.key.identity,
            "name": event.key.name,
            "source": event.key.source,
            "kind": event.key.kind,
            "muted": event.muted,
            "on_behalf_of": event.attributes.get("lk.publish_on_behalf"),
        }
        for event in user.publications
    ]


async def converse(world: LiveKitWorld, bot: Bot, result: dict, args: argparse.Namespace) -> None:
    t0 = time.monotonic()

    def mark(name: str) -> None:
        result["timings"][name] = round(time.monotonic() - t0, 3)

    user = world.user
    assert user is not None
    await bot.join(world.url, world.bot_token(BOT))
    mark("bot_joined")
    if args.case == "impaired":
        result["rtt_before_ms"] = round(await world.rtt_ms(), 2)
        await world.netem(**IMPAIRMENT)
        result["rtt_after_ms"] = round(await world.rtt_ms(), 2)
        mark("impaired")
    result["session"] = await start_session(world)
    mark("session")
    await asyncio.wait_for(bot.avatar_camera.wait(), args.wait_s)
    mark("avatar_camera")
    result["avatar_camera_after_s"] = round(time.monotonic() - t0 - result["timings"]["session"], 3)

    await bot.speak(tone(SPEECH_RATE, TONE_S, TONE_HZ).tobytes())
    mark("spoken")
    await asyncio.wait_for(bot.finished.wait(), args.wait_s)
    mark("playback_finished")
    # What it played reaches the user a moment later; then half a second of silence.
    heard = await user.wait_for(lambda: user.heard_s(AVATAR_IDENTITY) >= TONE_S - 0.3, args.wait_s)
    quiet = await user.wait_for(
        lambda: (
            (intervals := user.voiced_intervals(AVATAR_IDENTITY))
            and time.monotonic() - intervals[-1][1] > 0.5
        ),
        args.wait_s,
    )
    mark("heard")
    if not (heard and quiet):
        result["errors"].append(f"the user heard {user.heard_s(AVATAR_IDENTITY)} s of the avatar")
    # Three seconds of the face, at least, to measure its frame rate on.
    await user.wait_for(lambda: video_span_s(user) >= 3.0, args.wait_s)
    mark("seen")

    if args.case == "plain":
        avatar = world.avatar
        assert avatar is not None
        await remove_avatar(world)
        mark("removed")
        result["avatar_left"] = await avatar.wait_left(args.wait_s)
        result["user_saw_avatar_leave"] = await user.wait_for(
            lambda: user.participants[AVATAR_IDENTITY].left_at is not None, args.wait_s
        )
        mark("avatar_left")


def record_user(world: LiveKitWorld, result: dict) -> None:
    user = world.user
    assert user is not None
    avatar = user.participants.get(AVATAR_IDENTITY)
    result["avatar_seen_as"] = (
        {"kind": avatar.kind, "attributes": avatar.attributes} if avatar else None
    )
    result["avatar_voice"] = heard_summary(user, AVATAR_IDENTITY, "microphone")
    result["bot_voice"] = heard_summary(user, BOT, "pipecat-audio")
    result["bot_audio_frames"] = len(user.audio_frames(BOT, "pipecat-audio"))
    result["publishers_for_bot"] = user.publishers_for(BOT)
    result["video"] = video_summary(user, AVATAR_IDENTITY)
    result["publications"] = publications(user)


async def run(args: argparse.Namespace) -> dict:
    result: dict = {"case": args.case, "errors": [], "timings": {}}
    world = LiveKitWorld(
        log_dir=args.out, avatar_join_delay_s=0.5, impairable=args.case == "impaired"
    )
    bot = Bot()
    async with world:
        try:
            await converse(world, bot, result, args)
        except Exception as error:
            result["errors"].append(f"{type(error).__name__}: {error}")
        finally:
            await bot.close()
            record_user(world, result)
            result["repr"] = repr(world)
            result["impairment"] = world.impairment
    server = world.server
    assert server is not None
    result["server"] = {"exit_code": server.returncode, "ice": ice_in_log(server.log_text())}
    result["notifications"] = bot.notifications
    result["avatars"] = [
        {"left_reason": a.left_reason, "removed": a.removed, "spoken_s": round(a.spoken_s, 3)}
        for a in world.avatars
    ]
    result["leaked"] = len(world.leaked)
    result["sessions"] = len(world.bey.sessions) if world.bey else 0
    return result


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--case", choices=("plain", "impaired"), default="plain")


if __name__ == "__main__":
    sys.exit(run_probe(run, waits="each wait", options=options))
