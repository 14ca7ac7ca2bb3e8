"""The relayed avatar in your browser, offline: pipecat's runner, no accounts, no network.

The bot runs on pipecat's development runner with its default SmallWebRTC
transport. The avatar is the simulated one, in a private room of the simulated
Daily, its face and voice relayed through the bot's own output into the page;
the bot's speech comes from a WAV clip instead of an LLM and TTS. Run it, from
the repository's root:

    pip install -e ".[examples]"
    (cd examples/web && npm ci && npm run build)   # the page's client, once
    python examples/offline_web_bot.py             # then open http://localhost:7860

It serves its own page (``examples/web/``), whose client is built from
``@pipecat-ai/client-js`` and ``@pipecat-ai/small-webrtc-transport`` and asks
for no STUN server, so nothing leaves the machine. pipecat's prebuilt page
(``/client``) would load Daily's client bundle from a CDN even for SmallWebRTC,
and fail offline; ``/client`` leads to this page instead. The bot greets the page
when it connects; its Barge in button sends the RTVI client message ``barge-in``,
which interrupts the bot as a user speaking over it would.
"""

import os
import sys
from collections.abc import Awaitable, Callable
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, RedirectResponse
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

WEB = Path(__file__).resolve().parent / "web"
"""The page: ``index.html`` and ``app.js``, and the client built into ``dist/``."""
PAGE_FILES = {
    "/": WEB / "index.html",
    "/app.js": WEB / "app.js",
    "/pipecat-client.js": WEB / "dist" / "pipecat-client.js",
}


def build_command() -> str:
    """The one command that builds the page's client, as run from the current directory.

    Returns:
        A shell command line.
    """
    where = os.path.relpath(WEB)
    if where.startswith(".."):
        where = str(WEB)
    return f"(cd {where} && npm ci && npm run build)"


def page_missing() -> str | None:
    """Why the page cannot be served, naming the command that builds it.

    Returns:
        The reason, or None when every file of the page is there.
    """
    missing = [path for path in PAGE_FILES.values() if not path.is_file()]
    if not missing:
        return None
    names = ", ".join(os.path.relpath(path, WEB.parent.parent) for path in missing)
    return f"the page is not built ({names} missing); build it once with: {build_command()}"


def add_page_routes(app: FastAPI) -> None:
    """Serve the page at ``/``, and send ``/client`` (the prebuilt page) there.

    Call it before the runner adds its own routes (routes match in the order they
    were added), that is, before ``pipecat.runner.run.main``.

    Args:
        app: The runner's FastAPI app.
    """

    def serve(path: Path) -> Callable[[], Awaitable[FileResponse]]:
        async def page_file() -> FileResponse:
            return FileResponse(path, headers={"Cache-Control": "no-cache"})

        return page_file

    for route, path in PAGE_FILES.items():
        app.add_api_route(route, serve(path), methods=["GET"], include_in_schema=False)

    async def to_the_page() -> RedirectResponse:
        return RedirectResponse(url="/")

    for route in ("/client", "/client/"):
        app.add_api_route(route, to_the_page, methods=["GET"], include_in_schema=False)


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
    if problem := page_missing():
        sys.exit(f"offline_web_bot: error: {problem}")
    from pipecat.runner.run import app, main

    add_page_routes(app)
    main()
