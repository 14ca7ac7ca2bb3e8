"""The avatar bot, tested offline: the stand-ins in place of every outside service.

A scripted user joins a simulated Daily room, the bot greets them (not the avatar),
the user asks something midway through the greeting (barge-in), and the bot answers.
Speech comes from WAV clips instead of STT, LLM and TTS. Run it:

    python examples/offline_bot.py

Use it as a template for testing your own bot: keep your pipeline, swap the
services that need the network for stand-ins, and assert on what the avatar and
the user received.
"""

import asyncio
from importlib.resources import files
from pathlib import Path

from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.frames.frames import EndFrame, TTSSpeakFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.transports.daily.transport import DailyParams, DailyTransport
from pipecat.workers.runner import WorkerRunner

from pipecat_bey import BeyVideoService
from pipecat_bey.testing import (
    AvatarBehaviour,
    BeyEmulator,
    DailySimulation,
    SimulatedUser,
    WavTTSService,
)
from pipecat_bey.testing.audio import speech_duration_s

ASSETS = Path(str(files("pipecat_bey") / "assets"))
GREETING, ANSWER = "Hello, and welcome!", "Of course, ask away."
BEY_KEY, DAILY_KEY = "offline-bey-key", "offline-daily-key"


def build_pipeline(
    transport: DailyTransport, tts: WavTTSService, avatar: BeyVideoService
) -> tuple[Pipeline, LLMContextAggregatorPair]:
    """The bot: the same shape as examples/bot.py, without STT and LLM.

    Args:
        transport: The bot's Daily transport.
        tts: The TTS (here, recorded clips).
        avatar: The avatar service.

    Returns:
        The pipeline and its context aggregators.
    """
    aggregators = LLMContextAggregatorPair(
        LLMContext(), user_params=LLMUserAggregatorParams(vad_analyzer=SileroVADAnalyzer())
    )
    pipeline = Pipeline(
        [
            transport.input(),
            aggregators.user(),
            tts,
            avatar,
            transport.output(),
            aggregators.assistant(),
        ]
    )
    return pipeline, aggregators


async def main() -> dict[str, float]:
    """Run the conversation and report what the avatar said and the user heard.

    Returns:
        Seconds of speech the avatar received and the user heard from it.
    """
    async with (
        BeyEmulator(api_keys={BEY_KEY}, latency=0.3) as bey,
        DailySimulation(api_key=DAILY_KEY) as daily,
    ):
        room = daily.create_room("offline-bot")
        daily.attach_bey(bey, AvatarBehaviour(join_delay_s=1.0))
        transport = DailyTransport(
            room.url, None, "Bot", DailyParams(audio_in_enabled=True, audio_out_enabled=True)
        )
        avatar = BeyVideoService(
            transport=transport,
            api_key=BEY_KEY,
            api_url=bey.url,
            daily_api_key=DAILY_KEY,
            daily_api_url=daily.rest_url,
        )
        tts = WavTTSService(
            clips={GREETING: ASSETS / "demo_speech.wav", ANSWER: ASSETS / "barge_in.wav"}
        )
        pipeline, _ = build_pipeline(transport, tts, avatar)
        worker = PipelineWorker(pipeline, params=PipelineParams(enable_metrics=True))

        @transport.event_handler("on_participant_joined")
        async def on_participant_joined(transport: DailyTransport, participant: dict) -> None:
            if not avatar.is_avatar(participant):
                await worker.queue_frame(TTSSpeakFrame(GREETING))

        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(worker)
        run = asyncio.create_task(runner.run())

        user = SimulatedUser(daily, room, "User")
        await user.join()
        await daily.wait_for(lambda: bool(daily.avatars) and daily.avatars[0].in_room, 15)
        the_avatar = daily.avatars[0]
        # Let the greeting start, then ask something over it.
        await daily.wait_for(lambda: len(the_avatar.received_chunks) > 50, 15)
        await user.speak_wav(ASSETS / "barge_in.wav")
        await worker.queue_frame(TTSSpeakFrame(ANSWER))
        await daily.wait_for(lambda: False, 4.0)  # the answer plays out
        await worker.queue_frame(EndFrame())
        await asyncio.wait_for(run, 30)

        rate = the_avatar.received_sample_rate or 24000
        result = {
            "avatar_received_speech_s": speech_duration_s(the_avatar.received_audio(), rate),
            "interrupts": float(len(the_avatar.interrupts)),
            "user_heard_avatar_s": speech_duration_s(
                user.heard_audio(the_avatar.id), the_avatar.sample_rate
            ),
            "avatar_left": float(not the_avatar.in_room),
        }
    print(
        f"The avatar received {result['avatar_received_speech_s']:.1f} s of speech, was "
        f"interrupted {int(result['interrupts'])} time(s), and left at the end: "
        f"{bool(result['avatar_left'])}. The user heard it for "
        f"{result['user_heard_avatar_s']:.1f} s."
    )
    return result


if __name__ == "__main__":
    asyncio.run(main())
