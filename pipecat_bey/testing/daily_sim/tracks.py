"""Room layer, its lowest part: how a member's tracks are named, and what feeds them.

A member publishes each track under a key: Daily's media names for the
microphone and the camera, ``"customAudio:<name>"`` and ``"customVideo:<name>"``
for custom tracks. Behind each key is a source of the media layer.
"""

from collections.abc import Iterator, Mapping

from pipecat_bey.testing.daily_sim.audio import CustomAudioSource
from pipecat_bey.testing.daily_sim.video import CustomVideoSource, SyntheticCamera

MICROPHONE = "microphone"
CAMERA = "camera"

# What a member publishes as a track.
Source = CustomAudioSource | SyntheticCamera | CustomVideoSource
VIDEO_SOURCES = (SyntheticCamera, CustomVideoSource)


def custom_audio(name: str) -> str:
    """Key of a custom audio track.

    Args:
        name: The custom track's name.

    Returns:
        Its key.
    """
    return f"customAudio:{name}"


def custom_video(name: str) -> str:
    """Key of a custom video track.

    Args:
        name: The custom track's name.

    Returns:
        Its key.
    """
    return f"customVideo:{name}"


def custom_tracks(publishing: Mapping[str, Source | None], kind: str) -> Iterator[str]:
    """Keys of the custom tracks of one kind a member publishes now.

    Args:
        publishing: The member's sources by track key (None: stopped).
        kind: ``"customAudio"`` or ``"customVideo"``.

    Returns:
        The keys, in the order they were first published.
    """
    prefix = f"{kind}:"
    return (
        key for key, source in publishing.items() if key.startswith(prefix) and source is not None
    )
