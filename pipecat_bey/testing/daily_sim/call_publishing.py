"""Call-client layer: what a call client publishes, from its inputs and custom tracks.

A client publishes its microphone and camera from the custom tracks its inputs
name (``inputs.<kind>.settings.customTrack.id``), while their input is enabled
and their publishing is on, and custom audio and video tracks while they are
added and their publishing is not turned off.
"""

from typing import Any

from pipecat_bey.testing.daily_sim.devices import Devices, video_track_source
from pipecat_bey.testing.daily_sim.member import Member
from pipecat_bey.testing.daily_sim.tracks import (
    CAMERA,
    MICROPHONE,
    Source,
    custom_audio,
    custom_video,
)


def _is_on(value: Any) -> bool:
    if isinstance(value, dict):
        return bool(value.get("isPublishing", True))
    return bool(value)


class Publishing:
    """A call client's inputs and custom tracks, and the tracks they make it publish."""

    def __init__(self, member: Member, devices: Devices) -> None:
        """Create the publishing of a client.

        Args:
            member: The client, which publishes the tracks.
            devices: The custom tracks its inputs may name, by id.
        """
        self._member = member
        self._devices = devices
        self._inputs: dict[str, Any] = {}
        self._custom_sources: dict[str, Source] = {}

    def apply_client_settings(self, settings: dict[str, Any]) -> None:
        """Apply the ``inputs`` and ``publishing`` of a join's client settings.

        Args:
            settings: Daily client settings.
        """
        if "inputs" in settings:
            self.update_inputs(settings["inputs"])
        if "publishing" in settings:
            self.update_publishing(settings["publishing"])

    def update_inputs(self, input_settings: dict[str, Any]) -> None:
        """Choose the sources of the microphone and other inputs.

        Args:
            input_settings: Daily input settings.
        """
        for kind, settings in input_settings.items():
            current = self._inputs.setdefault(kind, {})
            current.update(settings)
            track_id = ((settings.get("settings") or {}).get("customTrack") or {}).get("id")
            if track_id and kind == MICROPHONE:
                current["source"] = self._devices.tracks.get(track_id)
            elif track_id and kind == CAMERA:
                current["source"] = video_track_source(track_id)
        self._refresh_inputs()

    def update_publishing(self, publishing_settings: dict[str, Any]) -> None:
        """Start or stop publishing tracks.

        Args:
            publishing_settings: Daily publishing settings.
        """
        for kind, value in publishing_settings.items():
            if kind in ("customAudio", "customVideo"):
                key_of = custom_audio if kind == "customAudio" else custom_video
                for name, on in value.items():
                    key = key_of(name)
                    source = self._custom_sources.get(key)
                    self._member.set_publishing(key, source if _is_on(on) else None)
            else:
                self._inputs.setdefault(kind, {})["isPublishing"] = _is_on(value)
        self._refresh_inputs()

    def _refresh_inputs(self) -> None:
        """Publish the microphone and camera as their inputs and publishing settings say."""
        for kind in (MICROPHONE, CAMERA):
            settings = self._inputs.get(kind, {})
            source = settings.get("source")
            on = (
                source is not None
                and settings.get("isEnabled", True)
                and settings.get("isPublishing", False)
            )
            published = self._member.publishing.get(kind)
            if (published is not None) != bool(on) or (on and published is not source):
                self._member.set_publishing(kind, source if on else None)

    def add_custom_track(self, track: str, source: Source) -> None:
        """Add a custom track and publish it.

        Args:
            track: Its track key (``customAudio:<name>`` or ``customVideo:<name>``).
            source: What feeds it.
        """
        self._custom_sources[track] = source
        self._member.set_publishing(track, source)

    def remove_custom_track(self, track: str) -> None:
        """Stop publishing a custom track and remove it.

        Args:
            track: Its track key.
        """
        self._custom_sources.pop(track, None)
        self._member.set_publishing(track, None)
