"""2. Start-up: from pipeline start to bot and avatar both in the room."""

import time

import aiohttp
from bench_common import bench_world, end_bot, row, start_bot, until

from pipecat_bey import DEFAULT_AVATAR_ID, BeyClient, start_avatar_session
from pipecat_bey.daily.rest import AvatarIdentity, DailyRoomAPI
from pipecat_bey.testing import AvatarBehaviour, DailySimulation, OfflineWorld
from pipecat_bey.testing.daily_sim import Room


def bot_in(room: Room) -> bool:
    return any(m.user_name == "Bot" for m in room.members.values())


def bot_and_avatar_in(room: Room, daily: DailySimulation) -> bool:
    return bot_in(room) and any(a.in_room and a.room is room for a in daily.avatars)


async def steps_in_sequence(world: OfflineWorld) -> float:
    """The naive order: the bot joins, then mints the avatar's token, then starts the session."""
    daily = world.daily
    t0 = time.monotonic()
    bot = await start_bot(world, with_service=False)
    room = bot.transport_room
    await until(lambda: bot_in(room), 30, poll_s=0.005)
    # The service's own start path (token, then session), after the bot joined.
    async with aiohttp.ClientSession() as http:
        daily_api = DailyRoomAPI(api_key=world.daily_key, session=http, api_url=daily.rest_url)
        client = BeyClient(world.bey_key, base_url=world.bey.url, session=http)
        await start_avatar_session(
            client,
            avatar_id=DEFAULT_AVATAR_ID,
            room_url=room.url,
            identity=AvatarIdentity.new("Avatar"),
            daily=daily_api,
            token_ttl_s=600,
        )
    await until(lambda: bot_and_avatar_in(room, daily), 30, poll_s=0.005)
    elapsed = time.monotonic() - t0
    await end_bot(bot)
    return elapsed


async def startup(latencies: list[float]) -> None:
    """Pipeline start to bot and avatar both in the room, the service vs the steps in sequence."""
    join_s, mint_s, avatar_delay = 1.0, 0.2, 0.5
    for api_s in latencies:
        async with bench_world(
            AvatarBehaviour(join_delay_s=avatar_delay),
            api_latency_s=api_s,
            join_latency_s=join_s,
            rest_latency_s=mint_s,
        ) as world:
            t0 = time.monotonic()
            bot = await start_bot(world, with_service=True)
            await until(
                lambda b=bot: bot_and_avatar_in(b.transport_room, world.daily), 30, poll_s=0.005
            )
            measured = time.monotonic() - t0
            await end_bot(bot)
            sequential = await steps_in_sequence(world)
        expected = max(join_s, mint_s + api_s + avatar_delay)
        row(
            f"start to bot and avatar in the room, API {api_s:g} s",
            f"{measured:.2f} s; steps one after another {sequential:.2f} s",
            f"(bot join {join_s:g} s, token {mint_s:g} s, avatar join {avatar_delay:g} s; "
            f"max(join, token+session+avatar join) = {expected:.2f} s)",
        )
