"""Daily's REST calls the service makes (rooms, tokens), against the simulated Daily."""

import aiohttp
import pytest
from conftest import DAILY_KEY

from pipecat_bey.daily.rest import DailyRoomAPI
from pipecat_bey.errors import DailyAPIError
from pipecat_bey.testing.daily_sim import SimulatedUser


def api(daily, http, key=DAILY_KEY):
    return DailyRoomAPI(api_key=key, session=http, api_url=daily.rest_url)


async def test_a_private_room_is_made_joined_with_an_owner_token_and_deleted(daily):
    async with aiohttp.ClientSession() as http:
        rooms = api(daily, http)
        name = DailyRoomAPI.new_room_name("pipecat-bey-relay")
        url = await rooms.create_private_room(name, lifetime_s=600)
        assert url.endswith(f"/{name}") and daily.rooms[name].private
        # Private: no one gets in without a token; the owner's token lets the bot in.
        stranger = SimulatedUser(daily, daily.rooms[name], "Stranger")
        with pytest.raises(Exception, match="private"):
            await stranger.join()
        token = await rooms.mint_owner_token(url, user_name="Bot", ttl_s=600)
        bot = SimulatedUser(daily, daily.rooms[name], "Bot", token=token)
        await bot.join()
        assert bot.in_room
        await rooms.delete_room(url)
        assert name not in daily.rooms and not bot.in_room
        await rooms.delete_room(name)  # already gone: not an error


async def test_a_refused_key_is_a_daily_error_with_its_status_and_no_key(daily):
    async with aiohttp.ClientSession() as http:
        rooms = api(daily, http, key="not-the-key")
        with pytest.raises(DailyAPIError) as caught:
            await rooms.create_private_room("a-room", lifetime_s=600)
    assert caught.value.status == 401
    assert "not-the-key" not in str(caught.value) and "refused" in str(caught.value)
