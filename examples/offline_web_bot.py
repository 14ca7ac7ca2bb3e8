"""The relayed avatar in your browser, offline: pipecat's runner, no accounts, no network.

The bot runs on pipecat's development runner with its default SmallWebRTC
transport. The avatar is the simulated one, in a private room of the simulated
Daily, its face and voice relayed through the bot's own output into the page;
the bot's speech comes from a WAV clip instead of an LLM and TTS. Run it:

    pip install -e ".[examples]"
    python examples/offline_web_bot.py        # then open http://localhost:7860/client

pipecat's prebuilt page at /client loads Daily's client bundle from a CDN, so it
needs the internet even for SmallWebRTC; any client built on
``@pipecat-ai/client-js`` with ``@pipecat-ai/small-webrtc-transport`` works offline
(``tests/browser`` has one). The bot greets the client when it connects; an RTVI
client message of type ``barge-in`` interrupts it, as a user speaking over it would.
"""

from importlib.resources import files
from pathlib import Path

from loguru import logger
from pipecat.frames.frames import TTSSpeakFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frameworks.rtvi import RTVIProcessor
from pipecat.runner.types import RunnerArguments
from pipecat.runner.utils import create_transport
from pipecat.transports.base_transport import BaseTransport, TransportParams
from pipecat.workers.runner import WorkerRunner

from pipecat_bey.testing import AvatarBehaviour, OfflineWorld, WavTTSService, relayed_video

GREETING = "Hello, and welcome!"
CLIP = Path(str(files("pipecat_bey") / "assets" / "demo_speech.wav"))
BEHAVIOUR = AvatarBehaviour(join_delay_s=0.5)
"""The simulated avatar: joins half a second after its session starts, 320x240 at 25 fps."""


def transport_params() -> TransportParams:
    """What the relayed avatar needs of the output: live video at its size and rate.

    Returns:
        The SmallWebRTC transport's params.
    """
    return TransportParams(
        audio_in_enabled=True, audio_out_enabled=True, **relayed_video(BEHAVIOUR)
    )


async def bot(runner_args: RunnerArguments) -> None:
    """One session: a simulated world for this client, the bot, the relayed avatar.

    Args:
        runner_args: The connection the runner made for the client.
    """
    async with OfflineWorld(behaviour=BEHAVIOUR, api_latency_s=0.2, user=False) as world:
        transport: BaseTransport = await create_transport(runner_args, {"webrtc": transport_params})
        avatar = world.avatar_service(transport)  # not a DailyTransport: relayed
        tts = WavTTSService(clips={GREETING: CLIP})
        worker = PipelineWorker(
            Pipeline([transport.input(), tts, avatar, transport.output()]),
            params=PipelineParams(enable_metrics=True),
            capabilities=avatar.bot_capabilities,
            idle_timeout_secs=None,
        )
        rtvi: RTVIProcessor = worker.rtvi

        @transport.event_handler("on_client_connected")
        async def on_client_connected(transport: BaseTransport, client: object) -> None:
            logger.info("a client connected; the bot greets it")
            await worker.queue_frames([TTSSpeakFrame(GREETING)])

        @transport.event_handler("on_client_disconnected")
        async def on_client_disconnected(transport: BaseTransport, client: object) -> None:
            await worker.cancel()

        @rtvi.event_handler("on_client_message")
        async def on_client_message(rtvi: RTVIProcessor, message: object) -> None:
            if getattr(message, "type", None) == "barge-in":
                logger.info("the client barged in")
                await rtvi.broadcast_interruption()

        runner = WorkerRunner(handle_sigint=runner_args.handle_sigint)
        await runner.add_workers(worker)
        await runner.run()


if __name__ == "__main__":
    from pipecat.runner.run import main

    main()
