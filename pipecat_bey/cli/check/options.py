"""What ``pipecat-bey check`` runs with: its options, and how long its requests and rooms last."""

from dataclasses import dataclass, field
from pathlib import Path

from pipecat_bey.cli.check.phrase import default_phrase

REQUEST_TIMEOUT_S = 15.0
"""How long one Daily REST request may take."""

CLEANUP_TIMEOUT_S = 10.0
"""How long each clean-up action (eject, leave, delete the room) may take."""

# The bot's and the avatar's tokens, and the room, live a few minutes: long enough
# for every wait of the check, short enough that nothing outlives a crashed check.
_MIN_LIFETIME_S = 300.0


@dataclass
class CheckOptions:
    """What ``pipecat-bey check`` runs with.

    Parameters:
        api_key: Beyond Presence API key (None: ``BEY_API_KEY``).
        daily_api_key: Daily API key (None: ``DAILY_API_KEY``).
        api_url: Beyond Presence API URL (None: ``BEY_API_URL``, then the service's).
        daily_api_url: Daily REST URL (None: ``DAILY_API_URL``, then Daily's).
        avatar_id: The avatar (None: ``BEY_AVATAR_ID``, then the stock one).
        room_url: A Daily room of yours to use instead of creating one (it is not deleted).
        timeout_s: How long each wait may take: the bot joining, the avatar
            joining, its camera, its first speech.
        record: Where to write the recording, if anywhere.
        phrase: A 16-bit WAV whose first seconds are sent to the avatar.
    """

    api_key: str | None = None
    daily_api_key: str | None = None
    api_url: str | None = None
    daily_api_url: str | None = None
    avatar_id: str | None = None
    room_url: str | None = None
    timeout_s: float = 30.0
    record: Path | None = None
    phrase: Path = field(default_factory=default_phrase)


def given(value: str | None) -> str | None:
    """An option's value, empty or blank counting as not given (as for the variables).

    Args:
        value: The option's value.

    Returns:
        The value stripped, or None.
    """
    return value.strip() if value and value.strip() else None


def lifetime_s(options: CheckOptions) -> float:
    """How long the room and the tokens of a run live.

    Args:
        options: What the check runs with (its ``timeout_s``).

    Returns:
        Seconds: a few minutes at least, and longer than all of the check's waits.
    """
    return max(_MIN_LIFETIME_S, 4 * options.timeout_s + 60)
