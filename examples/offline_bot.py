"""The avatar bot, tested offline: the stand-ins in place of every outside service.

A scripted user joins a simulated Daily room, the bot greets them (not the avatar),
the user asks something midway through the greeting (barge-in), and the bot answers.
Speech comes from WAV clips instead of STT, LLM and TTS. Run it:

    python examples/offline_bot.py

Use it as a template for testing your own bot: build your pipeline where
``standard_pipeline`` is called, with the services that need the network
swapped for stand-ins, and assert on what the avatar and the user received.
"""

import asyncio
import sys
from importlib.resources import files
from pathlib import Path

from loguru import logger
from pipecat.frames.frames import TTSSpeakFrame
from pipecat.pipeline.worker import PipelineParams
from pipecat.transports.daily.transport import DailyTransport

from pipecat_bey.testing import (
    AvatarBehaviour,
    OfflineWorld,
    SimulatedUser,
    WavTTSService,
    standard_pipeline,
)
from pipecat_bey.testing.audio import speech_duration_s

ASSETS = Path(str(files("pipecat_bey") / "assets"))
GREETING, ANSWER = "Hello, and welcome!", "Of course, ask away."


async def main() -> dict[str, float]:
    """Run the conversation and report what the avatar said and the user heard.

    Returns:
        Seconds of speech the avatar received and the user heard from it, the
        number of "interrupt" messages it got, and 1.0 if it left at the end.
    """
    behaviour = AvatarBehaviour(join_delay_s=1.0)
    # The user joins once the bot is running, so the bot greets them as they arrive.
    async with OfflineWorld(behaviour=behaviour, api_latency_s=0.3, user=False) as world:
        transport = world.transport()
        avatar = world.avatar_service(transport)
        tts = WavTTSService(
            clips={GREETING: ASSETS / "demo_speech.wav", ANSWER: ASSETS / "barge_in.wav"}
        )
        run = await world.start(
            standard_pipeline(transport, tts, avatar),
            params=PipelineParams(enable_metrics=True),
            capabilities=avatar.bot_capabilities,  # RTVI clients learn the bot has video
        )

        @transport.event_handler("on_participant_joined")
        async def on_participant_joined(transport: DailyTransport, participant: dict) -> None:
            if not avatar.is_avatar(participant):
                await run.queue_frames(TTSSpeakFrame(GREETING))

        user = SimulatedUser(world.daily, world.room, "User")
        await user.join()
        logger.info("the user joined; the bot greets them")
        await world.daily.wait_for(lambda: world.avatar is not None and world.avatar.in_room, 15)
        the_avatar = world.avatar
        assert the_avatar is not None, "the avatar did not join"
        # Let the greeting start, then ask something over it.
        await world.daily.wait_for(lambda: the_avatar.speech_received_s() >= 1.0, 15)
        logger.info("the user asks something over the greeting")
        await user.speak_wav(ASSETS / "barge_in.wav")
        await run.queue_frames(TTSSpeakFrame(ANSWER))
        # Ending lets the answer, queued ahead of the end, play out first.
        await run.end()

        rate = the_avatar.received_sample_rate or 24000
        result = {
            "avatar_received_speech_s": speech_duration_s(the_avatar.received_audio(), rate),
            "interrupts": float(len(the_avatar.interrupts)),
            "user_heard_avatar_s": user.heard_speech_s(the_avatar.id),
            "avatar_left": float(not the_avatar.in_room),
        }
    print(
        f"The avatar received {result['avatar_received_speech_s']:.1f} s of speech and "
        f'{int(result["interrupts"])} "interrupt" message(s), and left at the end: '
        f"{bool(result['avatar_left'])}. The user heard it for "
        f"{result['user_heard_avatar_s']:.1f} s."
    )
    return result


if __name__ == "__main__":
    logger.remove()
    logger.add(sys.stderr, level="INFO")
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        # Cancelling main() ended the pipeline (the avatar is ejected) and closed the stand-ins.
        print("offline_bot: interrupted", file=sys.stderr)
        sys.exit(130)
