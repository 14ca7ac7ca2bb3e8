"""Media layer: what daily-python keeps for the whole process, tracks by id and devices.

Daily names custom tracks by id (``update_inputs`` picks the microphone's or the
camera's custom track that way) and keeps virtual speakers and microphones by
name, process-wide. The simulation keeps what is process-wide in daily-python in
a :class:`Devices` of its own and binds the stand-ins to it
(:meth:`CustomAudioTrack.bound_to`); custom video tracks are found by id with
:func:`video_track_source`. Track ids are unique in the process.
"""

import itertools
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from pipecat_bey.testing.daily_sim.audio import CustomAudioSource
from pipecat_bey.testing.daily_sim.video import CustomVideoSource

_track_ids = itertools.count(1)


class CustomAudioTrack:
    """Stand-in for ``daily.CustomAudioTrack``.

    Daily names a track by id (``update_inputs`` picks the microphone's custom
    track that way), so each track registers its source in the ``devices`` its
    class is bound to: use :meth:`bound_to`.
    """

    devices: ClassVar["Devices"]

    @classmethod
    def bound_to(cls, devices: "Devices") -> type["CustomAudioTrack"]:
        """A subclass whose tracks register in ``devices``.

        Args:
            devices: Where the tracks are registered.

        Returns:
            The class to instantiate as daily-python's ``CustomAudioTrack``.
        """
        return type(cls.__name__, (cls,), {"devices": devices})

    def __init__(self, audio_source: CustomAudioSource) -> None:
        """Wrap a source in a track.

        Args:
            audio_source: The source.

        Raises:
            TypeError: If the class is not bound to devices.
        """
        if not hasattr(type(self), "devices"):
            raise TypeError("use CustomAudioTrack.bound_to(devices) to make tracks")
        self.source = audio_source
        self.id = f"sim-audio-track-{next(_track_ids)}"
        self.devices.tracks[self.id] = audio_source


# Custom video tracks by id, process-wide as in daily-python (``update_inputs`` names the
# camera's custom track by id); ids are unique in the process, and a track the
# application dropped is forgotten.
_video_tracks: "weakref.WeakValueDictionary[str, CustomVideoSource]" = weakref.WeakValueDictionary()


def video_track_source(track_id: str) -> CustomVideoSource | None:
    """The source of a custom video track, by the track's id.

    Args:
        track_id: ``CustomVideoTrack.id``.

    Returns:
        Its source, or None if there is no such track (any more).
    """
    return _video_tracks.get(track_id)


class CustomVideoTrack:
    """Stand-in for ``daily.CustomVideoTrack``; found by id with :func:`video_track_source`."""

    def __init__(self, video_source: CustomVideoSource) -> None:
        """Wrap a source in a track.

        Args:
            video_source: The source.
        """
        self.source = video_source
        self.id = f"sim-video-track-{next(_track_ids)}"
        _video_tracks[self.id] = video_source


class VirtualSpeakerDevice:
    """Stand-in for Daily's virtual speaker: the mix of the microphones it hears."""

    def __init__(self, name: str, sample_rate: int, channels: int, non_blocking: bool) -> None:
        """Create the device.

        Args:
            name: Device name.
            sample_rate: Rate audio is read at.
            channels: Channels read.
            non_blocking: Whether reads return at once with what there is (they always do).
        """
        self.name = name
        self.sample_rate = sample_rate
        self.channels = channels
        self.non_blocking = non_blocking
        self._buffers: dict[str, bytearray] = {}

    def push(self, participant_id: str, pcm: bytes) -> None:
        """Queue audio heard from one participant (already at the device's rate).

        Args:
            participant_id: Who it came from.
            pcm: 16-bit mono PCM.
        """
        self._buffers.setdefault(participant_id, bytearray()).extend(pcm)

    def read_frames(
        self, num_frames: int, completion: Callable[[bytes], None] | None = None
    ) -> bytes:
        """Read up to ``num_frames`` of the mix (non-blocking: what there is).

        Args:
            num_frames: Frames wanted.
            completion: Called with the audio.

        Returns:
            The audio read.
        """
        want = num_frames * 2 * self.channels
        parts = []
        for buffer in self._buffers.values():
            if buffer:
                parts.append(bytes(buffer[:want]))
                del buffer[:want]
        if not parts:
            mixed = b""
        else:
            length = max(len(p) for p in parts)
            total = np.zeros(length // 2, dtype=np.int32)
            for part in parts:
                samples = np.frombuffer(part, dtype=np.int16)
                total[: len(samples)] += samples
            mixed = np.clip(total, -32768, 32767).astype(np.int16).tobytes()
        if completion is not None:
            completion(mixed)
        return mixed


class VirtualMicrophoneDevice:
    """Stand-in for Daily's virtual microphone: a named source of microphone audio."""

    def __init__(self, name: str, sample_rate: int, channels: int, non_blocking: bool) -> None:
        """Create the device.

        Args:
            name: Device name.
            sample_rate: Rate of the audio written.
            channels: Channels written.
            non_blocking: Whether writes return at once (they always do).
        """
        self.name = name
        self.source = CustomAudioSource(sample_rate, channels, auto_silence=True)

    def write_frames(self, frames: bytes, completion: Callable[[int], None] | None = None) -> int:
        """Write microphone audio, paced like a custom source.

        Args:
            frames: 16-bit PCM.
            completion: Called with the number of frames once played.

        Returns:
            The number of frames accepted.
        """
        return self.source.write_frames(frames, completion)


@dataclass
class Devices:
    """What daily-python keeps process-wide, for one simulation.

    Attributes:
        tracks: Audio sources by the id of their custom track or microphone device.
        speakers: Virtual speakers by name.
        selected_speaker: The speaker remote microphones play into, if one is selected.
    """

    tracks: dict[str, CustomAudioSource] = field(default_factory=dict)
    speakers: dict[str, VirtualSpeakerDevice] = field(default_factory=dict)
    selected_speaker: VirtualSpeakerDevice | None = None
