"""The offline Daily behaves as Daily does, with the real, unmodified DailyTransport."""

import ast
import asyncio
import time
from pathlib import Path

import aiohttp
import numpy as np
import pytest
from conftest import DAILY_KEY
from pipecat.frames.frames import EndFrame, OutputAudioRawFrame, UserAudioRawFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.transports.daily import transport as transport_module
from pipecat.transports.daily.transport import (
    DailyOutputTransportMessageUrgentFrame,
    DailyParams,
    DailyTransport,
)
from pipecat.transports.daily.utils import (
    DailyMeetingTokenParams,
    DailyMeetingTokenProperties,
    DailyRESTHelper,
    DailyRoomParams,
)
from pipecat.workers.runner import WorkerRunner

import pipecat_bey.testing.daily_sim as daily_sim
from pipecat_bey.testing import JoinError, SimulatedParticipant, SimulatedUser
from pipecat_bey.testing.daily_sim import tokens

TRACK = "customAudio:bey-custom-track"


class AudioCapture(FrameProcessor):
    def __init__(self):
        super().__init__()
        self.by_user: dict[str, bytearray] = {}

    async def process_frame(self, frame, direction):
        await super().process_frame(frame, direction)
        if isinstance(frame, UserAudioRawFrame):
            self.by_user.setdefault(frame.user_id, bytearray()).extend(frame.audio)
        await self.push_frame(frame, direction)


class Bot:
    """A plain pipecat pipeline around the real DailyTransport."""

    def __init__(self, room, token=None, **params):
        params = {"audio_in_enabled": True, "audio_out_enabled": True} | params
        self.transport = DailyTransport(room.url, token, "Bot", DailyParams(**params))
        self.capture = AudioCapture()
        self.events = []
        self.joined = asyncio.Event()
        self.worker = PipelineWorker(
            Pipeline([self.transport.input(), self.capture, self.transport.output()]),
            params=PipelineParams(audio_in_sample_rate=16000, audio_out_sample_rate=24000),
        )
        for name in ("on_participant_joined", "on_participant_left", "on_app_message", "on_joined"):
            self.transport.add_event_handler(name, self._recorder(name))

    def _recorder(self, name):
        async def record(transport, *args):
            self.events.append((name, args))
            if name == "on_joined":
                self.joined.set()

        return record

    async def __aenter__(self):
        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(self.worker)
        self.run = asyncio.create_task(runner.run())
        await asyncio.wait_for(self.joined.wait(), 10)
        return self

    async def __aexit__(self, *exc):
        await self.worker.queue_frame(EndFrame())
        await asyncio.wait_for(self.run, 20)

    def local_id(self):
        return self.transport.participants()["local"]["id"]

    async def wait_event(self, name, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [args for n, args in self.events if n == name]
            if found:
                return found
            await asyncio.sleep(0.02)
        raise AssertionError(f"no {name} event within {timeout} s: {self.events}")


def tone(seconds, rate, freq=440.0):
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * freq * t) * 8000).astype(np.int16).tobytes()


async def test_pipeline_runs_from_start_to_end_and_captures_the_user(daily):
    room = daily.create_room()
    user = SimulatedUser(daily, room, "Alice")
    async with Bot(room) as bot:
        await user.join()
        (joined,) = await bot.wait_event("on_participant_joined")
        assert joined[0]["info"]["userName"] == "Alice"
        # A new subscription takes a moment to deliver media, as with a real SFU.
        assert await daily.wait_for(lambda: user.id in bot.capture.by_user, 5)
        speech = tone(0.6, 16000)
        await user.speak(speech, 16000)
        await daily.wait_for(lambda: speech in bytes(bot.capture.by_user.get(user.id, b"")), 5)
    assert speech in bytes(bot.capture.by_user[user.id])


async def test_a_participant_already_in_the_room_is_reported_on_join(daily):
    room = daily.create_room()
    user = SimulatedUser(daily, room, "Early")
    await user.join()
    async with Bot(room) as bot:
        (joined,) = await bot.wait_event("on_participant_joined")
        assert joined[0]["id"] == user.id


async def test_custom_track_audio_is_sample_exact_and_gated_by_subscriptions(daily):
    room = daily.create_room()
    listener = SimulatedParticipant(daily, room, "Listener")
    deaf = SimulatedParticipant(daily, room, "Deaf")
    async with Bot(room, audio_out_destinations=["bey-custom-track"]) as bot:
        await listener.join()
        await deaf.join()
        deaf.update_profiles({"base": {"customAudio": {"bey-custom-track": "unsubscribed"}}})
        await asyncio.sleep(daily.subscribe_latency_s * 2)  # let the subscription settle
        rng = np.random.default_rng(7)
        audio = rng.integers(-20000, 20000, 24000 * 1, dtype=np.int16).tobytes()
        frame = OutputAudioRawFrame(audio, 24000, 1)
        frame.transport_destination = "bey-custom-track"
        await bot.worker.queue_frame(frame)
        bot_id = bot.local_id()
        assert await daily.wait_for(lambda: audio in listener.heard_audio(bot_id, TRACK), timeout=5)
    assert not [r for r in deaf.received if r.track == TRACK]


async def test_app_messages_both_ways(daily):
    room = daily.create_room()
    user = SimulatedUser(daily, room, "Alice")
    async with Bot(room) as bot:
        await user.join()
        await bot.wait_event("on_participant_joined")
        await bot.worker.queue_frame(
            DailyOutputTransportMessageUrgentFrame(message={"hi": 1}, participant_id=user.id)
        )
        assert await daily.wait_for(lambda: bool(user.app_messages), 5)
        assert user.app_messages[0].message == {"hi": 1}
        assert user.send_app_message("interrupt") is None
        ((message, sender),) = await bot.wait_event("on_app_message")
    assert message == "interrupt" and sender == user.id


async def test_rest_eject_removes_a_participant(daily):
    room = daily.create_room()
    user = SimulatedUser(daily, room, "Alice", token=daily.mint_token(room, user_id="u-1"))
    async with Bot(room) as bot:
        await user.join()
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{daily.rest_url}/rooms/{room.name}/eject",
                json={"user_ids": ["u-1"]},
                headers={"Authorization": f"Bearer {DAILY_KEY}"},
            ) as response:
                assert response.status == 200
                assert (await response.json()) == {"ejectedIds": [user.id]}
        (left,) = await bot.wait_event("on_participant_left")
    assert left[0]["id"] == user.id and user.removed_reason == "ejected" and not user.in_room


async def test_token_expiry_ejects_when_asked(daily):
    room = daily.create_room()
    token = daily.mint_token(room, ttl_s=0.5, eject_at_token_exp=True)
    user = SimulatedUser(daily, room, "Short", token=token)
    await user.join()
    assert await daily.wait_for(lambda: not user.in_room, 5)
    assert user.removed_reason == "token-expired"


@pytest.mark.parametrize("case", ["other room", "expired", "forged", "private without token"])
async def test_tokens_are_checked_by_the_room(daily, case):
    room = daily.create_room(private=True)
    other = daily.create_room()
    token = {
        "other room": daily.mint_token(other),
        "expired": daily.mint_token(room, exp=time.time() - 10),
        "forged": tokens.mint({"room_name": room.name}, b"not-the-simulation-secret"),
        "private without token": None,
    }[case]
    with pytest.raises(JoinError, match="not-allowed"):
        await SimulatedUser(daily, room, "Mallory", token=token).join()


async def test_the_bot_is_told_when_its_join_fails(daily):
    room = daily.create_room(private=True)
    bot = Bot(room, token=None)
    errors = []
    bot.transport.add_event_handler("on_error", lambda t, e: errors.append(e))
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(bot.worker)
    run = asyncio.create_task(runner.run())
    assert await daily.wait_for(lambda: bool(errors), 5)
    assert "not-allowed" in errors[0]
    await bot.worker.queue_frame(EndFrame())
    await asyncio.wait_for(run, 10)


async def test_unsupported_calls_fail_loudly_naming_themselves(daily):
    call_client_class = daily.stand_ins["CallClient"]
    assert transport_module.CallClient is call_client_class  # what DailyTransport instantiates
    with pytest.raises(NotImplementedError, match="start_dialout"):
        call_client_class().start_dialout({})


async def test_wait_for_says_whether_the_condition_came_true(daily):
    room = daily.create_room()
    alice, bob = SimulatedUser(daily, room, "Alice"), SimulatedUser(daily, room, "Bob")
    await alice.join()
    await bob.join()
    for waiter in (daily, bob):
        looked = asyncio.Event()
        count = len(bob.app_messages)

        def arrived(looked=looked, count=count):
            looked.set()
            return len(bob.app_messages) > count

        waiting = asyncio.create_task(waiter.wait_for(arrived, timeout=5))
        await looked.wait()  # it has looked once and found nothing: the message wakes it
        assert alice.send_app_message({"to": "Bob"}) is None
        assert await waiting is True

        started = time.monotonic()
        assert await waiter.wait_for(lambda: False, timeout=0.05) is False
        assert time.monotonic() - started >= 0.05


async def test_pipecat_rest_helper_works_against_the_stand_in(daily):
    async with aiohttp.ClientSession() as http:
        helper = DailyRESTHelper(
            daily_api_key=DAILY_KEY, daily_api_url=daily.rest_url, aiohttp_session=http
        )
        room = await helper.create_room(DailyRoomParams(name="made-by-rest"))
        assert room.url == daily.rooms["made-by-rest"].url
        assert (await helper.get_room_from_url(room.url)).name == "made-by-rest"
        token = await helper.get_token(
            room.url,
            expiry_time=60,
            params=DailyMeetingTokenParams(
                properties=DailyMeetingTokenProperties(user_name="Avatar", user_id="bey-1")
            ),
        )
        claims = daily.verify_token(token)
        assert (claims.room_name, claims.user_name, claims.user_id) == (
            "made-by-rest",
            "Avatar",
            "bey-1",
        )
        assert claims.exp and claims.exp > time.time()
        bad = DailyRESTHelper(
            daily_api_key="wrong", daily_api_url=daily.rest_url, aiohttp_session=http
        )
        with pytest.raises(Exception, match="401"):
            await bad.get_token(room.url)
        async with http.post(
            f"{daily.rest_url}/rooms/nowhere/eject",
            json={"ids": ["x"]},
            headers={"Authorization": f"Bearer {DAILY_KEY}"},
        ) as response:
            assert response.status == 404 and (await response.json())["error"] == "not-found"


# Layers of the simulation, top (0) to bottom: a module may import only higher numbers.
LAYERS = {
    "world": 0,
    "call_client": 1,
    "participants": 1,
    "rest": 1,
    "room": 2,
    "media": 3,
    "tokens": 3,
}


def _imported_modules(tree, package):
    """Every module an AST imports, anywhere in it (functions, ``if TYPE_CHECKING:``).

    ``from X import y`` is reported as ``X.y``: the module ``y`` of ``X``, or a name in ``X``.
    """
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative to the package
                parent = package.rsplit(".", node.level - 1)[0]
                base = f"{parent}.{base}" if base else parent
            yield from (f"{base}.{alias.name}" for alias in node.names)


def test_each_module_imports_only_the_layers_below_it():
    package = daily_sim.__name__
    files = {p.stem: p for p in Path(daily_sim.__file__).parent.glob("*.py")}
    assert set(files) - {"__init__"} == set(LAYERS), "every module has a layer"
    for module, layer in LAYERS.items():
        tree = ast.parse(files[module].read_text())
        for name in _imported_modules(tree, package):
            if name != package and not name.startswith(package + "."):
                continue
            target = name[len(package) + 1 :].split(".")[0]
            # Anything else from the package itself comes through its __init__, i.e. the top.
            assert target in LAYERS, f"{module} imports {name} from the package"
            assert LAYERS[target] > layer, f"{module} (layer {layer}) imports {target}"


def test_imports_are_at_module_level():
    for path in Path(daily_sim.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        top = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                assert id(node) in top, f"{path.name}:{node.lineno} imports inside a block"
