"""What the avatar service can be told, how it is checked, and its defaults.

Every setting is checked when the service is built, never at start: a bad value
raises ``BeyConfigError`` (a ``ValueError``) whose message names the argument or
environment variable to fix. An environment variable set to an empty string
(as ``KEY=`` in a ``.env`` file leaves it) counts as not set.
"""

import os
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from pipecat_bey._urls import check_api_base_url
from pipecat_bey.errors import BeyConfigError

BEY_AUDIO_TRACK = "bey-custom-track"
"""The Daily custom audio track the avatar listens to."""

INTERRUPT_MESSAGE = "interrupt"
"""The app message that makes the avatar drop the speech it still holds."""

DEFAULT_AVATAR_ID = "b9be11b8-89fb-4227-8f86-4a881393cbdb"
"""The stock "Ege" avatar."""

DEFAULT_DAILY_API_URL = "https://api.daily.co/v1"
"""Daily's REST API."""


def env(name: str) -> str | None:
    """Read an environment variable, an empty or blank value counting as unset.

    Args:
        name: The variable.

    Returns:
        Its value without surrounding whitespace, or None.
    """
    value = os.getenv(name, "").strip()
    return value or None


def setting(value: Any, *, argument: str, variable: str | None = None) -> str | None:
    """Take a string setting from an argument, else from the environment.

    Args:
        value: What the caller passed (None: not passed).
        argument: The argument's name, for the error.
        variable: The environment variable to fall back on, if any.

    Returns:
        The stripped value, or None when neither gives one.

    Raises:
        BeyConfigError: If the value passed is not a string, or is blank.
    """
    if value is None:
        return env(variable) if variable else None
    if not isinstance(value, str):
        raise BeyConfigError(f"{argument} must be a string, got {type(value).__name__}")
    if not value.strip():
        where = f" or set {variable}" if variable else ""
        raise BeyConfigError(f"{argument} is empty; pass a value{where}, or leave it out")
    return value.strip()


def avatar_id_setting(avatar_id: Any) -> str:
    """The avatar to use: the argument, else ``BEY_AVATAR_ID``, else the stock avatar.

    Args:
        avatar_id: What the caller passed.

    Returns:
        The avatar id.

    Raises:
        BeyConfigError: If it is not a string or is blank.
    """
    return setting(avatar_id, argument="avatar_id", variable="BEY_AVATAR_ID") or DEFAULT_AVATAR_ID


def daily_api_url_setting(daily_api_url: Any) -> str:
    """The Daily REST base URL, checked now: https, or plain http to loopback only.

    Args:
        daily_api_url: What the caller passed.

    Returns:
        The URL without a trailing slash.

    Raises:
        BeyConfigError: If it is not an acceptable URL.
    """
    url = setting(daily_api_url, argument="daily_api_url", variable="DAILY_API_URL")
    return check_api_base_url(
        url or DEFAULT_DAILY_API_URL, what="Daily API URL", env="DAILY_API_URL"
    )


class BeyParams(BaseModel):
    """Tuning of the avatar's life cycle.

    Unknown fields and values that are not finite numbers are refused with a
    ``BeyConfigError`` naming them, so a typo cannot go unnoticed.

    Parameters:
        avatar_join_timeout_s: Seconds from pipeline start for the avatar to join
            the room before the service gives up on it (error, event, fallback).
        avatar_video_timeout_s: Seconds from the avatar joining for its camera to
            come on. The avatar listens once it renders, so its speech is held
            until its camera is on; past this the speech goes to it anyway, with a
            warning. (A guess: its renderer starting takes well under this.)
        avatar_ready_delay_s: Seconds between the avatar's camera coming on and
            the service sending it audio: a margin for the avatar's subscription
            to the track taking effect after its face shows (the SFU's set-up,
            and a face that may show a little before it listens). Audio written
            before the avatar has subscribed would be heard by no one. The
            default covers the simulation's realistic profile (0.2 s lead plus
            0.3 s of set-up, both guesses); ``pipecat-bey check`` measures it.
        interrupt_repeats: After a barge-in, ``"interrupt"`` is sent again this
            many times, ``interrupt_repeat_interval_s`` apart, while no new speech
            went to the avatar. Speech sent just before the barge-in may still be
            in flight (Opus, the SFU, a jitter buffer) when the first message,
            which travels on its own path, arrives; the repeats drop it. 0 sends
            it once.
        interrupt_repeat_interval_s: Seconds between those repeats. Together they
            cover an in-flight delay (network plus jitter) of
            ``interrupt_repeats * interrupt_repeat_interval_s``.
        fallback_to_bot_voice: Whether the bot speaks in its own voice (its Daily
            microphone) when the avatar cannot start or leaves, so the user still
            hears it.
        max_held_audio_s: At most this many seconds of speech are held while the
            avatar is joining; beyond that the oldest is dropped, with a warning.
        avatar_token_ttl_s: Lifetime of the avatar's meeting token. Daily ejects
            the avatar when it runs out, which bounds what a forgotten avatar costs.
        avatar_user_name: The name the avatar shows in the room.
        eject_timeout_s: How long ejecting the avatar at the end may take.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=False)

    avatar_join_timeout_s: float = Field(default=30.0, gt=0)
    avatar_video_timeout_s: float = Field(default=10.0, gt=0)
    avatar_ready_delay_s: float = Field(default=0.5, ge=0)
    interrupt_repeats: int = Field(default=3, ge=0, le=50)
    interrupt_repeat_interval_s: float = Field(default=0.1, gt=0)
    fallback_to_bot_voice: bool = True
    max_held_audio_s: float = Field(default=30.0, gt=0)
    avatar_token_ttl_s: float = Field(default=3600.0, ge=60)
    avatar_user_name: str = Field(default="Avatar", min_length=1)
    eject_timeout_s: float = Field(default=5.0, gt=0)

    def __init__(self, **data: Any) -> None:
        """Check the tuning.

        Args:
            **data: The fields to set.

        Raises:
            BeyConfigError: If a field is unknown or a value is out of range.
        """
        try:
            super().__init__(**data)
        except pydantic.ValidationError as e:
            problems = "; ".join(_describe(error) for error in e.errors(include_url=False))
            raise BeyConfigError(f"invalid BeyParams: {problems}") from None


def _describe(error: Any) -> str:
    field = ".".join(str(part) for part in error["loc"]) or "BeyParams"
    if error["type"] == "extra_forbidden":
        known = ", ".join(BeyParams.model_fields)
        return f"{field} is not a setting (known: {known})"
    return f"{field}={error.get('input')!r}: {error['msg']}"
