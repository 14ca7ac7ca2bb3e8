"""A voice bot with a Beyond Presence avatar, on Daily.

Run it locally with Pipecat's development runner (it creates a Daily room and
prints its URL):

    pip install . "pipecat-ai[daily,deepgram,openai,cartesia,silero,runner]"   # from a clone
    cp examples/env.example .env   # and fill in the keys
    python examples/bot.py --transport daily

The same file deploys to Pipecat Cloud: the cloud calls ``bot(runner_args)``
with the room it created (see examples/Dockerfile and examples/pcc-deploy.toml).

A variable left empty in .env (``CARTESIA_VOICE_ID=``) counts as not set.
"""


import aiohttp
from dotenv import load_dotenv
from loguru import logger
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.frames.frames import LLMRunFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.runner.types import DailyRunnerArguments, RunnerArguments
from pipecat.services.cartesia.tts import CartesiaTTSService
from pipecat.services.deepgram.stt import DeepgramSTTService
from pipecat.services.openai.llm import OpenAILLMService
from pipecat.transports.daily.transport import DailyParams, DailyTransport
from pipecat.workers.runner import WorkerRunner

from pipecat_bey import BeyVideoService
from pipecat_bey.config import env

load_dotenv(override=True)

DEFAULT_VOICE_ID = "71a7ad14-091c-4e8e-a314-022ece01c121"
"""The Cartesia voice used when CARTESIA_VOICE_ID is not set."""

SYSTEM_PROMPT = (
    "You are a friendly assistant with a face, talking to the user in a video call. "
    "Keep answers short and conversational: they are spoken aloud."
)


def required_env(name: str) -> str:
    """Read an environment variable the bot cannot run without.

    Args:
        name: The variable.

    Returns:
        Its value.

    Raises:
        RuntimeError: If it is not set or empty, naming it.
    """
    value = env(name)
    if value is None:
        raise RuntimeError(
            f"{name} is not set: set it in the environment or in .env (see env.example)"
        )
    return value


def build_pipeline(
    transport: DailyTransport, http: aiohttp.ClientSession
) -> tuple[Pipeline, BeyVideoService, LLMContextAggregatorPair]:
    """Build the bot's pipeline: STT, LLM, TTS, then the avatar before the output.

    Args:
        transport: The bot's Daily transport.
        http: HTTP session for the avatar's API calls.

    Returns:
        The pipeline, the avatar service and the context aggregators.
    """
    stt = DeepgramSTTService(api_key=required_env("DEEPGRAM_API_KEY"))
    llm = OpenAILLMService(api_key=required_env("OPENAI_API_KEY"))
    tts = CartesiaTTSService(
        api_key=required_env("CARTESIA_API_KEY"),
        settings=CartesiaTTSService.Settings(voice=env("CARTESIA_VOICE_ID") or DEFAULT_VOICE_ID),
    )
    # Keys, avatar and Daily settings come from BEY_API_KEY, BEY_AVATAR_ID and DAILY_API_KEY
    # (BEY_AVATAR_ID empty or unset: the stock avatar).
    avatar = BeyVideoService(transport=transport, session=http)

    context = LLMContext([{"role": "system", "content": SYSTEM_PROMPT}])
    aggregators = LLMContextAggregatorPair(
        context, user_params=LLMUserAggregatorParams(vad_analyzer=SileroVADAnalyzer())
    )
    pipeline = Pipeline(
        [
            transport.input(),
            stt,
            aggregators.user(),
            llm,
            tts,
            avatar,  # after the TTS, before the output: the avatar speaks for the bot
            transport.output(),
            aggregators.assistant(),
        ]
    )
    return pipeline, avatar, aggregators


async def run_bot(room_url: str, token: str | None) -> None:
    """Join the room and talk until the user leaves.

    Args:
        room_url: The Daily room.
        token: The bot's meeting token, if the room needs one.
    """
    transport = DailyTransport(
        room_url,
        token,
        "Bot",
        DailyParams(audio_in_enabled=True, audio_out_enabled=True),
    )
    async with aiohttp.ClientSession() as http:
        pipeline, avatar, _ = build_pipeline(transport, http)
        # pipecat tells RTVI clients what the bot does from its transports; the
        # avatar adds video, which the transport cannot know.
        worker = PipelineWorker(
            pipeline,
            params=PipelineParams(enable_metrics=True),
            capabilities=avatar.bot_capabilities,
        )

        @transport.event_handler("on_participant_joined")
        async def on_participant_joined(transport: DailyTransport, participant: dict) -> None:
            # The avatar is a participant too: greet only the user.
            if avatar.is_avatar(participant):
                return
            await worker.queue_frames([LLMRunFrame()])

        @transport.event_handler("on_participant_left")
        async def on_participant_left(
            transport: DailyTransport, participant: dict, reason: str
        ) -> None:
            if not avatar.is_avatar(participant):
                await worker.cancel()

        @avatar.event_handler("on_session_error")
        async def on_session_error(service: BeyVideoService, error: Exception) -> None:
            logger.warning(f"Speaking without the avatar: {error}")

        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(worker)
        await runner.run()


async def bot(runner_args: RunnerArguments) -> None:
    """Entry point for Pipecat's development runner and Pipecat Cloud.

    Args:
        runner_args: The room the runner created for this session.
    """
    if not isinstance(runner_args, DailyRunnerArguments):
        raise ValueError("this bot runs on Daily: start it with --transport daily")
    await run_bot(runner_args.room_url, runner_args.token)


if __name__ == "__main__":
    from pipecat.runner.run import main

    main()
