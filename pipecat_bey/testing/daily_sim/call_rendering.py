"""Call-client layer: a call client's renderers, remote audio and video for its application.

Media reaches a client as the receiving side's jitter buffer plays it out; its
renderers are called from the simulation's callback thread, like daily-python's:
audio cut into callback-sized pieces at the rate asked for, video frames in the
color format asked for. Remote microphones also play on the process's selected
speaker, if any.
"""

from collections.abc import Callable
from typing import Protocol

from pipecat_bey.testing.audio import to_mono
from pipecat_bey.testing.daily_sim.audio import AudioData, CustomAudioSource, Resampler
from pipecat_bey.testing.daily_sim.call_events import Dispatcher
from pipecat_bey.testing.daily_sim.devices import Devices
from pipecat_bey.testing.daily_sim.picture import frame_size
from pipecat_bey.testing.daily_sim.tracks import CAMERA, MICROPHONE, custom_audio
from pipecat_bey.testing.daily_sim.video import SentVideo, VideoFrame

# Silence a track carried between two pieces (a jump of its position) up to this long
# is rendered as zeros, so what is rendered keeps the track's timing when a publisher
# writes a moment late; longer silences are not rendered, as if renderers were fed
# only while there is sound.
FILLED_SILENCE_S = 0.1


class RenderHost(Dispatcher, Protocol):
    """What renderers need of the simulation: its callback thread and its speaker."""

    @property
    def devices(self) -> Devices:
        """Custom tracks by id and the selected speaker."""
        ...


class _AudioRenderer:
    """An audio renderer: remote audio cut into callback-sized pieces at a given rate."""

    def __init__(self, callback: Callable[..., None], sample_rate: int, interval_ms: int) -> None:
        self.callback = callback
        self.sample_rate = sample_rate
        self.piece_bytes = sample_rate * interval_ms // 1000 * 2
        self.buffer = bytearray()
        self.resampler: Resampler | None = None


class Renderers:
    """The audio and video renderers of one call client, by participant and track."""

    def __init__(self, host: RenderHost) -> None:
        """Create a client's renderers (none set).

        Args:
            host: The simulation (callback thread, selected speaker).
        """
        self._host = host
        self._audio: dict[tuple[str, str], _AudioRenderer] = {}
        self._video: dict[tuple[str, str], tuple[Callable[..., None], str]] = {}
        # The track position each received track is expected to continue at.
        self._next_position: dict[tuple[str, str], int] = {}
        self._speaker_resamplers: dict[str, Resampler] = {}

    def set_audio(
        self,
        participant_id: str,
        callback: Callable[..., None],
        audio_source: str,
        sample_rate: int,
        callback_interval_ms: int,
    ) -> None:
        """Render a participant's audio as ``callback(participant_id, AudioData, source)``.

        Args:
            participant_id: Whose audio.
            callback: The renderer.
            audio_source: ``"microphone"``, ``"screenAudio"`` or a custom track name.
            sample_rate: Rate to deliver at.
            callback_interval_ms: Size of each piece, in milliseconds.
        """
        key = (
            audio_source
            if audio_source in (MICROPHONE, "screenAudio")
            else custom_audio(audio_source)
        )
        self._audio[(participant_id, key)] = _AudioRenderer(
            callback, sample_rate, callback_interval_ms
        )

    def set_video(
        self,
        participant_id: str,
        callback: Callable[..., None],
        video_source: str,
        color_format: str,
    ) -> None:
        """Render a participant's video as ``callback(participant_id, VideoFrame, source)``.

        Args:
            participant_id: Whose video.
            callback: The renderer.
            video_source: ``"camera"``, ``"screenVideo"`` or a custom video track's name.
            color_format: The color format frames are delivered in.

        Raises:
            ValueError: If the color format is not simulated.
        """
        frame_size(4, 4, color_format)  # refuses a format that is not simulated
        key = video_source
        if video_source not in (CAMERA, "screenVideo"):
            key = f"customVideo:{video_source}"
        self._video[(participant_id, key)] = (callback, color_format)

    def forget(self, participant_id: str) -> None:
        """Drop the renderers of a participant who left, and what was kept of its tracks.

        Args:
            participant_id: Who left.
        """
        for key in [k for k in self._audio if k[0] == participant_id]:
            del self._audio[key]
        for key in [k for k in self._video if k[0] == participant_id]:
            del self._video[key]
        for key in [k for k in self._next_position if k[0] == participant_id]:
            del self._next_position[key]
        self._speaker_resamplers.pop(participant_id, None)

    def wants_video(self, publisher_id: str, track: str) -> bool:
        """Whether a publisher's video track has a renderer.

        Args:
            publisher_id: The publisher.
            track: The track key.

        Returns:
            True if it is rendered.
        """
        return (publisher_id, track) in self._video

    def render_video(self, publisher_id: str, track: str, frame: SentVideo) -> None:
        """Hand a received frame to the track's renderer, if it has one.

        Args:
            publisher_id: Who sent it.
            track: The track key.
            frame: The frame.
        """
        renderer = self._video.get((publisher_id, track))
        if renderer is None:
            return
        callback, color_format = renderer
        received = VideoFrame.received(frame, color_format)
        self._host.dispatch(callback, publisher_id, received, track.split(":")[-1])

    def render_audio(
        self, publisher_id: str, track: str, source: CustomAudioSource, pcm: bytes, position: int
    ) -> None:
        """Hand received audio to the track's renderer and, a microphone's, to the speaker.

        A short silence before it (see :data:`FILLED_SILENCE_S`) is rendered as zeros.

        Args:
            publisher_id: Who sent it.
            track: The track key.
            source: The publisher's source (sample rate, channels).
            pcm: The audio.
            position: Its position in the track, in samples.
        """
        if source.channels != 1:
            pcm = to_mono(pcm, source.channels)
        key = (publisher_id, track)
        expected = self._next_position.get(key)
        self._next_position[key] = position + len(pcm) // 2
        if (
            expected is not None
            and 0 < position - expected <= FILLED_SILENCE_S * source.sample_rate
        ):
            pcm = bytes(2 * (position - expected)) + pcm
        renderer = self._audio.get(key)
        if renderer is not None:
            self._cut(renderer, publisher_id, track, source, pcm)
        speaker = self._host.devices.selected_speaker
        if speaker is not None and track == MICROPHONE:
            # One stream per publisher: a stream made afresh for each piece would keep
            # back what its filter still needs, and a short piece would come out empty.
            resampler = self._speaker_resamplers.get(publisher_id)
            if resampler is None or (resampler.from_rate, resampler.to_rate) != (
                source.sample_rate,
                speaker.sample_rate,
            ):
                resampler = Resampler(source.sample_rate, speaker.sample_rate)
                self._speaker_resamplers[publisher_id] = resampler
            speaker.push(publisher_id, resampler(pcm))

    def _cut(
        self,
        renderer: _AudioRenderer,
        publisher_id: str,
        track: str,
        source: CustomAudioSource,
        pcm: bytes,
    ) -> None:
        """Resample audio for a renderer and call it with each whole piece."""
        if renderer.resampler is None or renderer.resampler.from_rate != source.sample_rate:
            renderer.resampler = Resampler(source.sample_rate, renderer.sample_rate)
        renderer.buffer.extend(renderer.resampler(pcm))
        while len(renderer.buffer) >= renderer.piece_bytes:
            piece = bytes(renderer.buffer[: renderer.piece_bytes])
            del renderer.buffer[: renderer.piece_bytes]
            audio = AudioData(piece, renderer.sample_rate, 1)
            self._host.dispatch(renderer.callback, publisher_id, audio, track.split(":")[-1])
