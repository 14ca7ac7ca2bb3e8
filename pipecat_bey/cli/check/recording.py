"""Recordings of ``pipecat-bey check`` as settings of the simulated Daily.

A recording (``pipecat-bey check --record FILE``) holds the timings a real
call showed: how long the avatar took to join, to show its face, to speak what
it was sent. :func:`load_recording` turns them into settings for
``DailySimulation.from_settings``, so a user's real timings drive their offline
tests; :func:`load_world` reads a ``--world`` file (a recording, or settings),
and :func:`load_world_option` the option itself (a file, or settings as JSON).
"""

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipecat_bey.testing.daily_sim import REALISTIC, WORLD_SETTINGS, AvatarBehaviour


def world_settings_from_recording(recording: Mapping[str, Any]) -> dict[str, float]:
    """Settings of the simulated Daily from a recording of ``pipecat-bey check``.

    Starts from ``DailySimulation.realistic()``'s values and replaces those the
    recording measured:

    - ``join_delay_s`` (the avatar's): ``avatar_joined_s``.
    - ``subscribe_delay_s``: ``avatar_video_s`` plus the realistic ``camera_lead_s``.
      Only the camera can be seen; the simulated avatar listens that long after
      its camera comes on, as the guess has it.
    - ``playback_delay_s``: ``first_avatar_speech_ms`` less two one-way network
      delays (to the avatar and back), each with half the jitter, at least 0.
    - ``join_latency_s`` (the bot's join): ``bot_joined_s``.
    - ``rest_latency_s``: ``room_created_s``, one REST round trip.

    ``network_delay_s``, ``jitter_s``, ``app_message_delay_s``,
    ``subscribe_latency_s`` and ``camera_lead_s`` stay the realistic guesses:
    the check cannot tell them apart from the rest.

    Args:
        recording: A recording (``--record``), as loaded from its JSON.

    Returns:
        ``{setting: value}`` for ``DailySimulation.from_settings``.

    Raises:
        ValueError: If it is not a recording.
    """
    if not isinstance(recording, Mapping) or not isinstance(recording.get("steps"), list):
        raise ValueError("not a recording of pipecat-bey check (it has no list of steps)")

    def measured(key: str) -> float | None:
        value = recording.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{key} is not a number: {value!r}")
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{key} is not a finite number of 0 or more: {value!r}")
        return float(value)

    settings = {key: float(value) for key, value in REALISTIC.items()}
    if (joined := measured("avatar_joined_s")) is not None:
        settings["join_delay_s"] = round(joined, 3)
    if (video := measured("avatar_video_s")) is not None:
        settings["subscribe_delay_s"] = round(video + settings["camera_lead_s"], 3)
    if (first_ms := measured("first_avatar_speech_ms")) is not None:
        one_way = settings["network_delay_s"] + settings["jitter_s"] / 2
        settings["playback_delay_s"] = round(max(first_ms / 1000 - 2 * one_way, 0.0), 3)
    if (bot := measured("bot_joined_s")) is not None:
        settings["join_latency_s"] = round(bot, 3)
    if (rest := measured("room_created_s")) is not None:
        settings["rest_latency_s"] = round(rest, 3)
    return settings


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ValueError(f"{path}: not a JSON file ({e})") from None


def load_recording(path: str | Path) -> dict[str, float]:
    """Load a recording of ``pipecat-bey check`` as settings of the simulated Daily.

    Example::

        settings = load_recording("r.json")
        async with DailySimulation.from_settings(settings, api_key=key) as daily:
            ...  # the avatar joins, shows its face and speaks as late as yours did

    Args:
        path: The ``--record`` file.

    Returns:
        ``{setting: value}`` (see :func:`world_settings_from_recording`).

    Raises:
        ValueError: If the file is missing or not a recording; the message names it.
    """
    path = Path(path)
    try:
        return world_settings_from_recording(_read_json(path))
    except ValueError as e:
        if str(e).startswith(str(path)):
            raise
        raise ValueError(f"{path}: {e}") from None


def load_world(path: str | Path) -> dict[str, Any]:
    """Load ``--world FILE``: a recording, or simulation settings as a JSON object.

    A settings object names keys of ``DailySimulation.from_settings`` (timings of
    the world, ``AvatarBehaviour`` fields such as ``join_delay_s`` or ``never_join``);
    keys it leaves out keep the simulation's fast defaults.

    Args:
        path: The file.

    Returns:
        The settings.

    Raises:
        ValueError: If the file is missing, not JSON, or names an unknown setting.
    """
    path = Path(path)
    data = _read_json(path)
    if isinstance(data, dict) and "steps" in data:
        return load_recording(path)
    return _world_settings(data, str(path))


_EXAMPLE = """'{"join_delay_s": 8}'"""


def load_world_option(value: str) -> tuple[dict[str, Any], Path | None]:
    """Read ``--world``: a file (a recording, or settings), or the settings as inline JSON.

    An existing path is read as a file; text that starts like JSON (``{``) is
    parsed as settings (or a recording).

    Args:
        value: The option's value.

    Returns:
        The settings, and the file they came from (None for inline JSON).

    Raises:
        ValueError: Naming ``--world`` and what was taken to be meant: a file that
            is missing, a directory or not a world; JSON that does not parse or
            names an unknown setting; or text that is neither.
    """
    path = Path(value)
    if path.is_dir():
        raise ValueError(
            f"--world {value}: is a directory; give a --record file, a file of settings, "
            f"or the settings as JSON, e.g. {_EXAMPLE}"
        )
    if path.exists():
        return load_world(path), path
    text = value.strip()
    if text.startswith(("{", "[")):
        try:
            data = json.loads(text)
        except ValueError as e:
            raise ValueError(
                f"--world {value!r}: taken as inline JSON, but it is not valid JSON ({e}); "
                f"quote it for the shell, e.g. --world {_EXAMPLE}"
            ) from None
        where = "--world (inline JSON)"
        if isinstance(data, dict) and "steps" in data:
            try:
                return world_settings_from_recording(data), None
            except ValueError as e:
                raise ValueError(f"{where}: {e}") from None
        return _world_settings(data, where), None
    raise ValueError(
        f"--world {value!r}: neither a file (there is no such file) nor a JSON object; give "
        f"a --record file, a file of settings, or the settings as JSON, e.g. {_EXAMPLE}"
    )


def _world_settings(data: Any, where: str) -> dict[str, Any]:
    """Check simulation settings read from a file or the command line."""
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a JSON object of settings or a recording")
    known = set(WORLD_SETTINGS) | set(AvatarBehaviour.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(
            f"{where}: unknown setting(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        )
    return data
