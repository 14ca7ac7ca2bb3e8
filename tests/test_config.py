"""Configuration: every bad setting fails when the service is built, naming the fix."""

import importlib
import math

import pytest
from conftest import BEY_KEY, DAILY_KEY
from pipecat.transports.daily.transport import DailyParams, DailyTransport

import pipecat_bey
from pipecat_bey import DEFAULT_AVATAR_ID, BeyConfigError, BeyParams, BeyVideoService
from pipecat_bey.config import BEY_AUDIO_TRACK

KEYS = {"api_key": BEY_KEY, "daily_api_key": DAILY_KEY}


def transport_for(daily, url=None):
    room = daily.create_room()
    return DailyTransport(url or room.url, None, "Bot", DailyParams(audio_out_enabled=True))


def refused(daily, match, **kwargs):
    with pytest.raises(BeyConfigError, match=match) as caught:
        BeyVideoService(transport=transport_for(daily), **kwargs)
    text = str(caught.value)
    assert BEY_KEY not in text and DAILY_KEY not in text
    assert isinstance(caught.value, ValueError)  # `except ValueError` keeps working
    return text


async def test_settings_come_from_the_environment(daily, clean_env):
    clean_env.setenv("BEY_API_KEY", BEY_KEY)
    clean_env.setenv("DAILY_API_KEY", DAILY_KEY)
    clean_env.setenv("BEY_AVATAR_ID", "694c83e2-8895-4a98-bd16-56332ca3f449")
    transport = transport_for(daily)
    service = BeyVideoService(transport=transport)
    assert "694c83e2" in repr(service) and BEY_KEY not in repr(service)
    assert BEY_AUDIO_TRACK in transport._params.audio_out_destinations


async def test_an_empty_environment_variable_counts_as_not_set(daily, clean_env):
    # What `KEY=` in a .env file leaves behind once load_dotenv has run.
    clean_env.setenv("BEY_AVATAR_ID", "")
    clean_env.setenv("DAILY_API_URL", "  ")
    clean_env.setenv("BEY_API_URL", "")
    service = BeyVideoService(transport=transport_for(daily), **KEYS)
    assert DEFAULT_AVATAR_ID in repr(service)
    clean_env.setenv("BEY_API_KEY", "")
    refused(daily, "BEY_API_KEY", daily_api_key=DAILY_KEY)
    clean_env.setenv("DAILY_API_KEY", "")
    refused(daily, "DAILY_API_KEY", api_key=BEY_KEY)


@pytest.mark.parametrize("where", ["argument", "environment"])
async def test_a_plain_http_daily_api_url_fails_at_construction(daily, clean_env, where):
    url = "http://api.daily.example/v1"
    if where == "environment":
        clean_env.setenv("DAILY_API_URL", url)
        text = refused(daily, "DAILY_API_URL", **KEYS)
    else:
        text = refused(daily, "DAILY_API_URL", daily_api_url=url, **KEYS)
    assert "https" in text


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"daily_api_key": DAILY_KEY}, "BEY_API_KEY"),
        ({"api_key": BEY_KEY}, "DAILY_API_KEY"),
        ({**KEYS, "avatar_id": ""}, "avatar_id"),
        ({**KEYS, "avatar_id": "   "}, "avatar_id"),
        ({**KEYS, "avatar_id": 123}, "avatar_id must be a string"),
        ({"api_key": "   ", "daily_api_key": DAILY_KEY}, "api_key"),
        ({**KEYS, "api_url": "http://api.bey.example"}, "BEY_API_URL"),
        ({"api_key": BEY_KEY, "avatar_token": "not-a-jwt"}, "avatar_token"),
        ({**KEYS, "params": {"avatar_join_timeout_s": 5}}, "BeyParams"),
    ],
)
async def test_bad_settings_name_what_to_fix(daily, clean_env, kwargs, words):
    refused(daily, words, **kwargs)


async def test_a_room_that_is_not_dailys_is_refused(daily):
    transport = DailyTransport("https://example.com/room", None, "Bot", DailyParams())
    with pytest.raises(BeyConfigError, match="not a Daily room URL"):
        BeyVideoService(transport=transport, **KEYS)


def test_it_needs_a_transport_and_the_room_placement_a_daily_one(daily):
    with pytest.raises(TypeError, match="pipecat transport"):
        BeyVideoService(transport=object(), **KEYS)
    with pytest.raises(BeyConfigError, match="placement='relay'"):
        BeyVideoService(placement="room", **KEYS)
    with pytest.raises(BeyConfigError, match="'room' or 'relay'"):
        BeyVideoService(placement="backstage", **KEYS)


def test_without_a_daily_transport_the_avatar_is_relayed(daily, clean_env):
    assert BeyVideoService(**KEYS).placement == "relay"
    transport = transport_for(daily)
    assert BeyVideoService(transport=transport, **KEYS).placement == "room"
    assert BeyVideoService(transport=transport, placement="relay", **KEYS).placement == "relay"
    # The relay creates its room with the Daily API key, unless it is given one.
    room = daily.create_room()
    no_daily = {
        "api_key": KEYS["api_key"],
        "avatar_token": daily.mint_token(room.name, user_id="a"),
    }
    with pytest.raises(BeyConfigError, match="relay_room_url"):
        BeyVideoService(**no_daily)
    relayed = BeyVideoService(relay_room_url=room.url, **no_daily)
    assert relayed.placement == "relay"


@pytest.mark.parametrize(
    "fields, words",
    [
        ({"join_timeout": 5}, "join_timeout is not a setting"),
        ({"avatar_join_timeout_s": math.nan}, "avatar_join_timeout_s=nan"),
        ({"avatar_join_timeout_s": math.inf}, "avatar_join_timeout_s=inf"),
        ({"avatar_join_timeout_s": -1}, "avatar_join_timeout_s=-1"),
        ({"avatar_ready_delay_s": -0.1}, "avatar_ready_delay_s"),
        ({"avatar_token_ttl_s": 10}, "avatar_token_ttl_s"),
        ({"max_held_audio_s": 0}, "max_held_audio_s"),
        ({"avatar_user_name": ""}, "avatar_user_name"),
    ],
)
def test_tuning_refuses_typos_and_nonsense(fields, words):
    with pytest.raises(BeyConfigError, match=words) as caught:
        BeyParams(**fields)
    assert isinstance(caught.value, ValueError)


def test_the_public_surface_is_what_a_bot_author_uses():
    assert len(pipecat_bey.__all__) <= 10
    for name in pipecat_bey.__all__:
        assert getattr(pipecat_bey, name) is not None
    # The rest lives in its module only: no second way to import it.
    for name, module in [
        ("BEY_AUDIO_TRACK", "pipecat_bey.config"),
        ("BeyValidationError", "pipecat_bey.errors"),
        ("DailyAPIError", "pipecat_bey.errors"),
        ("CreatePipecatSessionRequest", "pipecat_bey.models"),
    ]:
        assert getattr(importlib.import_module(module), name)
        with pytest.raises(AttributeError):
            getattr(pipecat_bey, name)
    # The models' 422 item does not shadow pydantic's ValidationError.
    assert not hasattr(importlib.import_module("pipecat_bey.models"), "ValidationError")
    with pytest.raises(AttributeError):
        _ = pipecat_bey.NoSuchName


def test_settings_are_taken_as_every_pipecat_service_takes_them(daily, clean_env):
    service = BeyVideoService(
        transport=transport_for(daily),
        settings=BeyVideoService.Settings(extra={"note": "kept"}),
        **KEYS,
    )
    assert service._settings.extra == {"note": "kept"}
    assert service._settings.model is None  # no model: the store is complete
    service._settings.validate_complete()
