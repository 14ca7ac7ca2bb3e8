"""The examples build their pipelines offline, and the offline bot runs to the end."""

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from dotenv import dotenv_values
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineWorker
from pipecat.services.cartesia.tts import CartesiaTTSService
from pipecat.transports.daily.transport import DailyParams, DailyTransport

from pipecat_bey import BeyVideoService

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
KEYS = ("DEEPGRAM_API_KEY", "OPENAI_API_KEY", "CARTESIA_API_KEY", "BEY_API_KEY", "DAILY_API_KEY")


def load(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


async def test_bot_builds_its_pipeline_with_placeholder_keys(daily, clean_env):
    for name in (
        "DEEPGRAM_API_KEY",
        "OPENAI_API_KEY",
        "CARTESIA_API_KEY",
        "BEY_API_KEY",
        "DAILY_API_KEY",
    ):
        clean_env.setenv(name, f"placeholder-{name.lower()}")
    bot = load("bot")
    room = daily.create_room()
    transport = DailyTransport(
        room.url, None, "Bot", DailyParams(audio_in_enabled=True, audio_out_enabled=True)
    )
    async with aiohttp.ClientSession() as http:
        pipeline, avatar, _ = bot.build_pipeline(transport, http)
    assert isinstance(pipeline, Pipeline) and isinstance(avatar, BeyVideoService)
    # RTVI clients are told the bot has video: the transport alone says it has none.
    assert PipelineWorker(pipeline).capabilities.video_out is False
    worker = PipelineWorker(pipeline, capabilities=avatar.bot_capabilities)
    assert worker.capabilities.video_out is True
    assert "capabilities=avatar.bot_capabilities" in (EXAMPLES / "bot.py").read_text()
    assert callable(bot.bot)


async def test_the_same_bot_relays_the_avatar_on_the_runners_default_smallwebrtc(daily, clean_env):
    from pipecat.runner.types import SmallWebRTCRunnerArguments
    from pipecat.runner.utils import create_transport
    from pipecat.transports.smallwebrtc.connection import SmallWebRTCConnection

    for name in ("DEEPGRAM_API_KEY", "OPENAI_API_KEY", "CARTESIA_API_KEY", "BEY_API_KEY"):
        clean_env.setenv(name, f"placeholder-{name.lower()}")
    clean_env.setenv("DAILY_API_KEY", "placeholder-daily")
    bot = load("bot")
    runner_args = SmallWebRTCRunnerArguments(webrtc_connection=SmallWebRTCConnection())
    transport = await create_transport(runner_args, bot.TRANSPORT_PARAMS)
    async with aiohttp.ClientSession() as http:
        _, avatar, _ = bot.build_pipeline(transport, http)
    assert avatar.placement == "relay"
    # The output shows the avatar: video on, live, at its size.
    params = transport._params
    assert params.video_out_enabled and params.video_out_is_live
    assert (params.video_out_width, params.video_out_height) == bot.AVATAR_VIDEO_SIZE


async def test_the_same_bot_puts_the_avatar_in_its_livekit_room_with_the_runner(clean_env):
    pytest.importorskip("livekit.api", reason="pip install 'pipecat-bey[livekit]'")
    from livekit import api
    from pipecat.runner.types import LiveKitRunnerArguments
    from pipecat.runner.utils import create_transport
    from pipecat.transports.livekit.transport import LiveKitTransport

    key, secret = "APIexample", "an-example-secret-long-enough-for-hs256-0123"
    for name in ("DEEPGRAM_API_KEY", "OPENAI_API_KEY", "CARTESIA_API_KEY", "BEY_API_KEY"):
        clean_env.setenv(name, f"placeholder-{name.lower()}")
    clean_env.setenv("LIVEKIT_API_KEY", key)
    clean_env.setenv("LIVEKIT_API_SECRET", secret)
    token = (  # as the runner mints it
        api.AccessToken(key, secret)
        .with_identity("Pipecat Bot")
        .with_grants(api.VideoGrants(room_join=True, room="lk-room"))
        .to_jwt()
    )
    bot = load("bot")
    runner_args = LiveKitRunnerArguments(
        room_name="lk-room", url="wss://example.livekit.cloud", token=token
    )
    transport = await create_transport(runner_args, bot.TRANSPORT_PARAMS)
    assert isinstance(transport, LiveKitTransport)
    async with aiohttp.ClientSession() as http:
        _, avatar, _ = bot.build_pipeline(transport, http)
    assert avatar.placement == "room"
    assert avatar.is_avatar({"id": "bey-avatar-agent"})  # not greeted as the user
    assert not avatar.is_avatar({"id": "user-1"})


def env_example_with_keys(env, **overrides):
    """Set the environment as `cp env.example .env` leaves it once the keys are filled in."""
    for name, value in dotenv_values(EXAMPLES / "env.example").items():
        env.setenv(name, value or "")  # every optional variable set, but empty
    for name in KEYS:
        env.setenv(name, f"placeholder-{name.lower()}")
    for name, value in overrides.items():
        env.setenv(name, value)


async def build_bot(daily):
    bot = load("bot")
    transport = DailyTransport(
        daily.create_room().url,
        None,
        "Bot",
        DailyParams(audio_in_enabled=True, audio_out_enabled=True),
    )
    async with aiohttp.ClientSession() as http:
        pipeline, avatar, _ = bot.build_pipeline(transport, http)
    tts = next(p for p in pipeline.processors if isinstance(p, CartesiaTTSService))
    return bot, avatar, tts


async def test_bot_uses_the_default_voice_when_cartesia_voice_id_is_empty(daily, clean_env):
    env_example_with_keys(clean_env)
    clean_env.delenv("BEY_AVATAR_ID")  # the service's own reading of it is tested elsewhere
    bot, _, tts = await build_bot(daily)
    assert tts.settings.voice == bot.DEFAULT_VOICE_ID


async def test_bot_runs_on_env_example_with_only_the_keys_filled_in(daily, clean_env):
    env_example_with_keys(clean_env)  # BEY_AVATAR_ID=, CARTESIA_VOICE_ID=, DAILY_ROOM_URL=
    bot, avatar, tts = await build_bot(daily)
    assert isinstance(avatar, BeyVideoService)
    assert tts.settings.voice == bot.DEFAULT_VOICE_ID


@pytest.mark.parametrize("name", ["DEEPGRAM_API_KEY", "OPENAI_API_KEY", "CARTESIA_API_KEY"])
async def test_bot_names_a_key_left_empty(name, daily, clean_env):
    env_example_with_keys(clean_env, **{name: ""})
    bot = load("bot")
    transport = DailyTransport(daily.create_room().url, None, "Bot", DailyParams())
    async with aiohttp.ClientSession() as http:
        with pytest.raises(RuntimeError, match=f"{name} is not set"):
            bot.build_pipeline(transport, http)


def test_deployment_files_name_the_bot():
    dockerfile = (EXAMPLES / "Dockerfile").read_text()
    assert "pipecat-base" in dockerfile and "bot.py" in dockerfile
    assert "agent_name" in (EXAMPLES / "pcc-deploy.toml").read_text()
    listed = {
        line.split("=")[0]
        for line in (EXAMPLES / "env.example").read_text().splitlines()
        if "=" in line
    }
    assert {
        "BEY_API_KEY",
        "DAILY_API_KEY",
        "DEEPGRAM_API_KEY",
        "OPENAI_API_KEY",
        "CARTESIA_API_KEY",
    } <= listed


async def test_offline_bot_runs_to_completion():
    result = await load("offline_bot").main()
    assert result["avatar_received_speech_s"] > 2.0
    assert result["interrupts"] >= 1
    assert result["user_heard_avatar_s"] > 2.0
    assert result["avatar_left"] == 1.0


# The offline web bot serves a page of its own, which needs nothing beyond the bot.


def test_the_offline_web_bot_serves_its_own_page_at_its_root():
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    web_bot = load("offline_web_bot")
    app = FastAPI()
    web_bot.add_page_routes(app)
    client = TestClient(app)
    page = client.get("/")
    assert page.status_code == 200
    assert '<script src="pipecat-client.js">' in page.text and '<script src="app.js">' in page.text
    assert "connectToBot" in client.get("/app.js").text
    # pipecat's prebuilt page loads Daily's bundle from a CDN: /client leads here instead.
    moved = client.get("/client", follow_redirects=False)
    assert moved.is_redirect and moved.headers["location"] == "/"
    # Nothing the page is made of names another host.
    for name in ("index.html", "app.js", "client.js"):
        source = (EXAMPLES / "web" / name).read_text()
        assert "http://" not in source and "https://" not in source, name


def test_the_offline_web_bot_names_the_one_command_that_builds_its_page(tmp_path):
    """Without the page's client built, it says how to build it, and serves nothing."""
    (tmp_path / "examples").mkdir()
    shutil.copy(EXAMPLES / "offline_web_bot.py", tmp_path / "examples")
    shutil.copytree(
        EXAMPLES / "web",
        tmp_path / "examples" / "web",
        ignore=shutil.ignore_patterns("dist", "node_modules"),
    )
    result = subprocess.run(
        [sys.executable, "examples/offline_web_bot.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if "offline_web_bot" in line]
    assert line == (
        "offline_web_bot: error: the page is not built (examples/web/dist/pipecat-client.js "
        "missing); build it once with: (cd examples/web && npm ci && npm run build)"
    )
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_the_examples_readme_says_what_each_example_needs_and_how_to_run_it():
    text = (EXAMPLES / "README.md").read_text()
    for example in sorted(EXAMPLES.glob("*.py")):
        assert f"`{example.name}`" in text, example.name
    assert "(cd examples/web && npm ci && npm run build)" in text
    assert "../README.md#deploy-to-pipecat-cloud" in text
