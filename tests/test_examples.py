"""The examples build their pipelines offline, and the offline bot runs to the end."""

import importlib.util
import sys
from pathlib import Path

import aiohttp
import pytest
from pipecat.pipeline.pipeline import Pipeline
from pipecat.transports.daily.transport import DailyParams, DailyTransport

from pipecat_bey import BeyVideoService

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


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
    assert callable(bot.bot)


async def test_bot_refuses_a_transport_other_than_daily():
    from pipecat.runner.types import RunnerArguments

    bot = load("bot")
    with pytest.raises(ValueError, match="--transport daily"):
        await bot.bot(RunnerArguments())


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
