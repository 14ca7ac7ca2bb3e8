"""A voice bot with a Beyond Presence avatar, on any transport pipecat's runner offers.

Run it locally with Pipecat's development runner:

    pip install . "pipecat-ai[daily,webrtc,deepgram,openai,cartesia,silero,runner]"  # a clone
    cp examples/env.example .env   # and fill in the keys
    python examples/bot.py                    # SmallWebRTC: open http://localhost:7860/client
    python examples/bot.py --transport daily  # a Daily room (the runner prints its URL)
    python examples/bot.py -t livekit         # a LiveKit room (pip install "pipecat-bey[livekit]")

On Daily and on LiveKit the avatar joins the bot's room (LiveKit: LIVEKIT_URL,
LIVEKIT_API_KEY and LIVEKIT_API_SECRET, which the runner needs too, mint the
avatar's token). On SmallWebRTC (or any other transport)
the avatar sits in a private Daily room of the bot's, and its face and voice are
relayed through the bot's own output: that output needs video, live, at the
avatar's size and frame rate, as set below.

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
from pipecat.runner.types import RunnerArguments
from pipecat.runner.utils import create_transport
from pipecat.services.cartesia.tts import CartesiaTTSService
from pipecat.services.deepgram.stt import DeepgramSTTService
from pipecat.services.openai.llm import OpenAILLMService
from pipecat.transports.base_transport import BaseTransport, TransportParams
from pipecat.transports.daily.transport import DailyParams, DailyTransport
from pipecat.workers.runner import WorkerRunner

from pipecat_bey import BeyVideoService
from pipecat_bey.config import env

load_dotenv(override=True)

DEFAULT_VOICE_ID = "71a7ad14-091c-4e8e-a314-022ece01c121"
"""The Cartesia voice used when CARTESIA_VOICE_ID is not set."""

AVATAR_VIDEO_SIZE = (1280, 720)
"""The avatar's video size: the relayed output sends frames of this size (no resizing)."""


# What each runner transport needs. A relayed avatar needs video out, live (each of its
# frames shown as it comes), at its size (no resizing) and rate.
def livekit_params() -> TransportParams:
    """LiveKit's params (imported here: livekit is an extra)."""
    from pipecat.transports.livekit.transport import LiveKitParams

    return LiveKitParams(audio_in_enabled=True, audio_out_enabled=True)


TRANSPORT_PARAMS = {
    "daily": lambda: DailyParams(audio_in_enabled=True, audio_out_enabled=True),
    "livekit": livekit_params,
    "webrtc": lambda: TransportParams(
        audio_in_enabled=True,
        audio_out_enabled=True,
        video_out_enabled=True,
        video_out_is_live=True,
        video_out_width=AVATAR_VIDEO_SIZE[0],
        video_out_height=AVATAR_VIDEO_SIZE[1],
        video_out_framerate=25,
    ),
}

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
    transport: BaseTransport, http: aiohttp.ClientSession
) -> tuple[Pipeline, BeyVideoService, LLMContextAggregatorPair]:
    """Build the bot's pipeline: STT, LLM, TTS, then the avatar before the output.

    Args:
        transport: The bot's transport (on Daily the avatar joins its room; on any
            other it is relayed).
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
    # (BEY_AVATAR_ID empty or unset: the stock avatar). DAILY_API_KEY also creates the
    # avatar's private room when it is relayed. On LiveKit: LIVEKIT_API_KEY and
    # LIVEKIT_API_SECRET.
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


async def run_bot(transport: BaseTransport) -> None:
    """Talk until the user leaves.

    Args:
        transport: The bot's transport, as the runner made it.
    """
    async with aiohttp.ClientSession() as http:
        pipeline, avatar, _ = build_pipeline(transport, http)
        # pipecat tells RTVI clients what the bot does from its transports; the
        # avatar adds video, which the transport cannot know.
        worker = PipelineWorker(
            pipeline,
            params=PipelineParams(enable_metrics=True),
            capabilities=avatar.bot_capabilities,
        )

        async def greet(transport: BaseTransport, client: object) -> None:
            # On Daily the avatar is a participant too: greet only the user.
            if not (isinstance(client, dict) and avatar.is_avatar(client)):
                await worker.queue_frames([LLMRunFrame()])

        async def leave(transport: BaseTransport, client: object, *reason: object) -> None:
            if not (isinstance(client, dict) and avatar.is_avatar(client)):
                await worker.cancel()

        # Daily reports every participant (the avatar too); other transports, the client
        # (LiveKit's clients are every participant too, the avatar among them).
        on_daily = isinstance(transport, DailyTransport)
        transport.add_event_handler(
            "on_participant_joined" if on_daily else "on_client_connected", greet
        )
        transport.add_event_handler(
            "on_participant_left" if on_daily else "on_client_disconnected", leave
        )

        @avatar.event_handler("on_session_error")
        async def on_session_error(service: BeyVideoService, error: Exception) -> None:
            logger.warning(f"Speaking without the avatar: {error}")

        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(worker)
        await runner.run()


async def bot(runner_args: RunnerArguments) -> None:
    """Entry point for Pipecat's development runner and Pipecat Cloud.

    Args:
        runner_args: The session the runner (or the cloud) started: a Daily or
            LiveKit room, or a SmallWebRTC connection.
    """
    transport = await create_transport(runner_args, TRANSPORT_PARAMS)
    await run_bot(transport)


if __name__ == "__main__":
    from pipecat.runner.run import main

    main()
