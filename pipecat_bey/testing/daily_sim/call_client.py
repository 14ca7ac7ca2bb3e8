"""Call-client layer: stand-ins for daily-python's ``CallClient`` and ``Daily``.

It sits above the room layer, beside the participants and the REST endpoints.
``DailyTransport`` creates these itself, with no reference to a simulation, so
the simulation installs subclasses already bound to it (:meth:`CallClient.bound_to`
with a :class:`CallHost`, :meth:`Daily.bound_to` with its ``Devices``).

Like daily-python, event callbacks, renderer audio and renderer video reach the
application from a thread of the simulation's own, never from the asyncio loop,
and completions are plain callables. A client publishes its microphone and
camera from the custom tracks its inputs name (``inputs.<kind>.settings.customTrack.id``),
and custom audio and video tracks; frames written to a published
``CustomVideoSource`` reach the participants that render them. Remote participants are shown as this
client sees them: a track's state depends on its own subscriptions and
permissions. Calls an ordinary voice-bot session does not make raise
``NotImplementedError`` naming themselves.
"""

import asyncio
from collections.abc import Callable
from typing import Any, ClassVar, Protocol

from pipecat_bey.testing.audio import to_mono
from pipecat_bey.testing.daily_sim.audio import AudioData, CustomAudioSource, Resampler
from pipecat_bey.testing.daily_sim.devices import (
    CustomAudioTrack,
    CustomVideoTrack,
    Devices,
    VirtualMicrophoneDevice,
    VirtualSpeakerDevice,
    video_track_source,
)
from pipecat_bey.testing.daily_sim.member import Member
from pipecat_bey.testing.daily_sim.picture import frame_size
from pipecat_bey.testing.daily_sim.room import JoinError, Room
from pipecat_bey.testing.daily_sim.tokens import TokenError
from pipecat_bey.testing.daily_sim.tracks import (
    CAMERA,
    MICROPHONE,
    Source,
    custom_audio,
    custom_video,
)
from pipecat_bey.testing.daily_sim.video import SentVideo, VideoFrame, VideoSource

Completion = Callable[..., None] | None

# Silence a track carried between two pieces (a jump of its position) up to this long
# is rendered as zeros, so what is rendered keeps the track's timing when a publisher
# writes a moment late; longer silences are not rendered, as if renderers were fed
# only while there is sound.
FILLED_SILENCE_S = 0.1


class CallHost(Protocol):
    """What a call client needs from the simulation it is bound to."""

    @property
    def devices(self) -> Devices:
        """Custom tracks by id and the selected speaker."""
        ...

    @property
    def join_latency_s(self) -> float:
        """Time a join takes to complete."""
        ...

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop the rooms run on."""
        ...

    def dispatch(self, callback: Callable[..., Any], *args: Any) -> None:
        """Call ``callback(*args)`` from the thread that delivers daily-python's events.

        Args:
            callback: The callable.
            *args: Its arguments.
        """
        ...

    def room_for_url(self, url: str) -> Room | None:
        """The room a URL names, if any.

        Args:
            url: A room URL.

        Returns:
            The room, or None.
        """
        ...


class _Renderer:
    """An audio renderer: remote audio cut into callback-sized pieces at a given rate."""

    def __init__(self, callback: Callable[..., None], sample_rate: int, interval_ms: int) -> None:
        self.callback = callback
        self.sample_rate = sample_rate
        self.piece_bytes = sample_rate * interval_ms // 1000 * 2
        self.buffer = bytearray()
        self.resampler: Resampler | None = None


class CallClient(Member):
    """Stand-in for ``daily.CallClient`` joined to simulated rooms.

    Instantiate a class made by :meth:`bound_to`, as ``DailyTransport`` does once
    the simulation has installed it.
    """

    host: ClassVar[CallHost]

    @classmethod
    def bound_to(cls, host: CallHost) -> type["CallClient"]:
        """A subclass whose clients join the rooms of ``host``.

        Args:
            host: The simulation.

        Returns:
            The class to instantiate as daily-python's ``CallClient``.
        """
        return type(cls.__name__, (cls,), {"host": host})

    def __init__(self, event_handler: Any = None) -> None:
        """Create the client.

        Args:
            event_handler: A ``daily.EventHandler`` whose ``on_*`` methods get events.

        Raises:
            TypeError: If the class is not bound to a simulation.
        """
        if not hasattr(type(self), "host"):
            raise TypeError("use CallClient.bound_to(simulation) to make call clients")
        super().__init__("Guest")
        self._handler = event_handler
        self._renderers: dict[tuple[str, str], _Renderer] = {}
        self._video_renderers: dict[tuple[str, str], tuple[Callable[..., None], str]] = {}
        self._inputs: dict[str, Any] = {}
        self._custom_sources: dict[str, Source] = {}
        # The track position each received track is expected to continue at.
        self._next_position: dict[tuple[str, str], int] = {}
        self._speaker_resamplers: dict[str, Resampler] = {}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise NotImplementedError(f"the simulated CallClient does not support {name}()")

    # Events to the handler, from the simulation's callback thread.
    def _event(self, name: str, *args: Any) -> None:
        method = getattr(self._handler, name, None)
        if method is not None:
            self.host.dispatch(method, *args)

    @staticmethod
    def _complete(completion: Completion, *args: Any) -> None:
        if completion is not None:
            completion(*args)

    # Joining and leaving.
    def join(
        self,
        meeting_url: str,
        meeting_token: str | None = None,
        client_settings: dict[str, Any] | None = None,
        completion: Completion = None,
    ) -> None:
        """Join a simulated room.

        Args:
            meeting_url: The room URL.
            meeting_token: A meeting token, if any.
            client_settings: ``inputs`` and ``publishing`` as Daily takes them.
            completion: Called with ``(data, error)``.
        """
        self._event("on_call_state_updated", "joining")
        if self.host.join_latency_s:
            self.host.loop.call_later(
                self.host.join_latency_s,
                self._finish_join,
                meeting_url,
                meeting_token,
                client_settings,
                completion,
            )
        else:
            self._finish_join(meeting_url, meeting_token, client_settings, completion)

    def _finish_join(
        self,
        meeting_url: str,
        meeting_token: str | None,
        client_settings: dict[str, Any] | None,
        completion: Completion,
    ) -> None:
        room = self.host.room_for_url(meeting_url)
        if room is None:
            self._event("on_call_state_updated", "left")
            self._complete(completion, None, f"no room at {meeting_url}")
            return
        try:
            room.admit(self, meeting_token)
        except (JoinError, TokenError) as e:
            self._event("on_call_state_updated", "left")
            self._complete(completion, None, str(e))
            return
        self._apply_client_settings(client_settings or {})
        self._event("on_call_state_updated", "joined")
        data = {
            "participants": {"local": self.info(local=True)},
            "meetingSession": {"id": room.session_id},
        }
        self._complete(completion, data, None)

    def _apply_client_settings(self, settings: dict[str, Any]) -> None:
        if "inputs" in settings:
            self.update_inputs(settings["inputs"])
        if "publishing" in settings:
            self.update_publishing(settings["publishing"])

    def leave(self, completion: Completion = None) -> None:
        """Leave the room.

        Args:
            completion: Called with ``None`` (no error).
        """
        if self.room is not None:
            self._event("on_call_state_updated", "leaving")
            self.room.remove(self, "leftCall")
            self._event("on_call_state_updated", "left")
        self._complete(completion, None)

    def release(self) -> None:
        """Release the client (leaving first if needed)."""
        if self.room is not None:
            self.room.remove(self, "leftCall")

    # State.
    def participants(self) -> dict[str, Any]:
        """Everyone in the room, ``"local"`` being this client.

        Returns:
            Participants by id.
        """
        result = {"local": self.info(local=True)}
        if self.room:
            for member in self.room.members.values():
                if member is not self:
                    result[member.id] = member.info(viewer=self)
        return result

    def participant_counts(self) -> dict[str, int]:
        """How many are in the room.

        Returns:
            ``{"present": n, "hidden": 0}``.
        """
        return {"present": len(self.room.members) if self.room else 0, "hidden": 0}

    def set_user_name(self, user_name: str) -> None:
        """Set the name others see (a token's name wins, as in Daily).

        Args:
            user_name: The name.
        """
        if not self.claims.user_name:
            self.user_name = user_name

    # Publishing.
    def update_inputs(self, input_settings: dict[str, Any], completion: Completion = None) -> None:
        """Choose the sources of the microphone and other inputs.

        Args:
            input_settings: Daily input settings.
            completion: Called with the error, ``None``.
        """
        for kind, settings in input_settings.items():
            current = self._inputs.setdefault(kind, {})
            current.update(settings)
            track_id = ((settings.get("settings") or {}).get("customTrack") or {}).get("id")
            if track_id and kind == MICROPHONE:
                current["source"] = self.host.devices.tracks.get(track_id)
            elif track_id and kind == CAMERA:
                current["source"] = video_track_source(track_id)
        self._refresh_inputs()
        self._complete(completion, None)

    def update_publishing(
        self, publishing_settings: dict[str, Any], completion: Completion = None
    ) -> None:
        """Start or stop publishing tracks.

        Args:
            publishing_settings: Daily publishing settings.
            completion: Called with the error, ``None``.
        """
        for kind, value in publishing_settings.items():
            if kind in ("customAudio", "customVideo"):
                key_of = custom_audio if kind == "customAudio" else custom_video
                for name, on in value.items():
                    key = key_of(name)
                    source = self._custom_sources.get(key)
                    self.set_publishing(key, source if _is_on(on) else None)
            else:
                self._inputs.setdefault(kind, {})["isPublishing"] = _is_on(value)
        self._refresh_inputs()
        self._complete(completion, None)

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
            if (self.publishing.get(kind) is not None) != bool(on) or (
                on and self.publishing.get(kind) is not source
            ):
                self.set_publishing(kind, source if on else None)

    def add_custom_audio_track(
        self,
        track_name: str,
        audio_track: CustomAudioTrack,
        ignore_audio_level: bool | None = None,
        completion: Completion = None,
    ) -> None:
        """Add and publish a custom audio track.

        Args:
            track_name: Its name.
            audio_track: The track.
            ignore_audio_level: Accepted for compatibility.
            completion: Called with ``None``.
        """
        key = custom_audio(track_name)
        self._custom_sources[key] = audio_track.source
        self.set_publishing(key, audio_track.source)
        self._complete(completion, None)

    def remove_custom_audio_track(self, track_name: str, completion: Completion = None) -> None:
        """Stop publishing and remove a custom audio track.

        Args:
            track_name: Its name.
            completion: Called with ``None``.
        """
        key = custom_audio(track_name)
        self._custom_sources.pop(key, None)
        self.set_publishing(key, None)
        self._complete(completion, None)

    def add_custom_video_track(
        self, track_name: str, video_track: CustomVideoTrack, completion: Completion = None
    ) -> None:
        """Add and publish a custom video track (frames written to its source are sent).

        Args:
            track_name: Its name.
            video_track: The track.
            completion: Called with ``None``.
        """
        key = custom_video(track_name)
        self._custom_sources[key] = video_track.source
        self.set_publishing(key, video_track.source)
        self._complete(completion, None)

    def remove_custom_video_track(self, track_name: str, completion: Completion = None) -> None:
        """Stop publishing and remove a custom video track.

        Args:
            track_name: Its name.
            completion: Called with ``None``.
        """
        key = custom_video(track_name)
        self._custom_sources.pop(key, None)
        self.set_publishing(key, None)
        self._complete(completion, None)

    # Receiving.
    def update_subscriptions(
        self,
        participant_settings: dict[str, Any] | None = None,
        profile_settings: dict[str, Any] | None = None,
        completion: Completion = None,
    ) -> None:
        """Change what this client receives.

        Args:
            participant_settings: Per-participant settings.
            profile_settings: Profile settings.
            completion: Called with the error, ``None``.
        """
        super().update_subscriptions(participant_settings, profile_settings)
        self._complete(completion, None)

    def update_subscription_profiles(
        self, profile_settings: dict[str, Any], completion: Completion = None
    ) -> None:
        """Define subscription profiles.

        Args:
            profile_settings: ``{profile: media settings}``.
            completion: Called with the error, ``None``.
        """
        self.update_profiles(profile_settings)
        self._complete(completion, None)

    def set_audio_renderer(
        self,
        participant_id: str,
        callback: Callable[..., None],
        audio_source: str = "microphone",
        sample_rate: int = 16000,
        callback_interval_ms: int = 20,
    ) -> None:
        """Receive a participant's audio as ``callback(participant_id, AudioData, source)``.

        Audio is delivered as the receiving side's jitter buffer plays it out: at
        a steady pace, the network delay and the simulation's ``receive_buffer_s``
        after it was sent (a piece arriving later than that, on arrival). Silence
        the track carried between two pieces is delivered as zeros if it lasted
        at most :data:`FILLED_SILENCE_S` (longer silences are not rendered).

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
        self._renderers[(participant_id, key)] = _Renderer(
            callback, sample_rate, callback_interval_ms
        )

    def set_video_renderer(
        self,
        participant_id: str,
        callback: Callable[..., None],
        video_source: str = "camera",
        color_format: str = "RGBA",
    ) -> None:
        """Receive a participant's video as ``callback(participant_id, VideoFrame, source)``.

        Frames come while this client's subscription to the track has taken effect
        (its state ``"playable"``), as the receiving side's jitter buffer renders
        them (like audio, see :meth:`set_audio_renderer`), from the simulation's
        callback thread: the avatar's synthetic camera, or the frames another
        client writes to its camera or custom video track (converted if they were
        written in another color format). Screen video is never sent.

        Args:
            participant_id: Whose video.
            callback: The renderer.
            video_source: ``"camera"``, a custom video track's name (``"screenVideo"``
                is accepted and stays dark).
            color_format: ``"RGBA"`` (Daily's default), ``"RGB"`` (pipecat's),
                ``"BGRA"``, ``"ARGB"``, ``"ABGR"`` or ``"I420"``.

        Raises:
            ValueError: If the color format is not simulated.
        """
        frame_size(4, 4, color_format)  # refuses a format that is not simulated
        key = video_source
        if video_source not in (CAMERA, "screenVideo"):
            key = f"customVideo:{video_source}"
        self._video_renderers[(participant_id, key)] = (callback, color_format)

    def update_remote_participants(
        self, remote_participants: dict[str, Any], completion: Completion = None
    ) -> None:
        """Change remote participants' permissions (``{participant_id: {"permissions": ...}}``).

        As in Daily, only a meeting owner or a participant whose ``canAdmin``
        includes ``"participants"`` may; others get an error in the completion.
        Changes take effect for media at once.

        Args:
            remote_participants: Updates by participant id.
            completion: Called with an error or ``None``.

        Raises:
            NotImplementedError: For updates other than ``permissions`` (not simulated).
        """
        updates = {}
        for participant_id, settings in remote_participants.items():
            other = set(settings) - {"permissions"}
            if other:
                raise NotImplementedError(
                    f"the simulated CallClient does not support update_remote_participants"
                    f" with {sorted(other)}"
                )
            if "permissions" in settings:
                updates[participant_id] = settings["permissions"]
        if self.room is None:
            self._complete(completion, "not in a call")
            return
        self._complete(completion, self.room.update_permissions(self, updates))

    def send_app_message(
        self, message: Any, participant_id: str | None = None, completion: Completion = None
    ) -> None:
        """Send an app message to one participant or everyone.

        Args:
            message: JSON-serialisable message.
            participant_id: The recipient, or None for everyone.
            completion: Called with an error or ``None``.
        """
        if self.room is None:
            self._complete(completion, "not in a call")
            return
        self._complete(completion, self.room.send_app_message(self, message, participant_id))

    # Member hooks: Daily's events.
    def on_participant_joined(self, member: Member) -> None:  # noqa: D102
        self._event("on_participant_joined", member.info(viewer=self))

    def on_participant_left(self, member: Member, reason: str) -> None:  # noqa: D102
        for key in [k for k in self._renderers if k[0] == member.id]:
            del self._renderers[key]
        for key in [k for k in self._video_renderers if k[0] == member.id]:
            del self._video_renderers[key]
        for key in [k for k in self._next_position if k[0] == member.id]:
            del self._next_position[key]
        self._speaker_resamplers.pop(member.id, None)
        self._event("on_participant_left", member.info(viewer=self), reason)

    def on_participant_updated(self, member: Member) -> None:  # noqa: D102
        self._event("on_participant_updated", member.info(viewer=self))

    def wants_video(self, publisher_id: str, track: str) -> bool:  # noqa: D102
        return (publisher_id, track) in self._video_renderers

    def on_video(  # noqa: D102
        self, publisher: Member, track: str, source: VideoSource, frame: SentVideo
    ) -> None:
        renderer = self._video_renderers.get((publisher.id, track))
        if renderer is None:
            return
        callback, color_format = renderer
        received = VideoFrame.received(frame, color_format)
        self.host.dispatch(callback, publisher.id, received, track.split(":")[-1])

    def on_app_message(self, message: Any, sender: Member) -> None:  # noqa: D102
        self._event("on_app_message", message, sender.id)

    def on_removed(self, reason: str) -> None:  # noqa: D102
        self._event("on_call_state_updated", "left")

    def on_audio(  # noqa: D102
        self,
        publisher: Member,
        track: str,
        source: CustomAudioSource,
        pcm: bytes,
        start: float,
        position: int,
    ) -> None:
        if source.channels != 1:
            pcm = to_mono(pcm, source.channels)
        key = (publisher.id, track)
        expected = self._next_position.get(key)
        self._next_position[key] = position + len(pcm) // 2
        if (
            expected is not None
            and 0 < position - expected <= FILLED_SILENCE_S * source.sample_rate
        ):
            pcm = bytes(2 * (position - expected)) + pcm
        renderer = self._renderers.get(key)
        if renderer is not None:
            if renderer.resampler is None or renderer.resampler.from_rate != source.sample_rate:
                renderer.resampler = Resampler(source.sample_rate, renderer.sample_rate)
            renderer.buffer.extend(renderer.resampler(pcm))
            while len(renderer.buffer) >= renderer.piece_bytes:
                piece = bytes(renderer.buffer[: renderer.piece_bytes])
                del renderer.buffer[: renderer.piece_bytes]
                audio = AudioData(piece, renderer.sample_rate, 1)
                self.host.dispatch(renderer.callback, publisher.id, audio, track.split(":")[-1])
        speaker = self.host.devices.selected_speaker
        if speaker is not None and track == MICROPHONE:
            # One stream per publisher: a stream made afresh for each piece would keep
            # back what its filter still needs, and a short piece would come out empty.
            resampler = self._speaker_resamplers.get(publisher.id)
            if resampler is None or (resampler.from_rate, resampler.to_rate) != (
                source.sample_rate,
                speaker.sample_rate,
            ):
                resampler = Resampler(source.sample_rate, speaker.sample_rate)
                self._speaker_resamplers[publisher.id] = resampler
            speaker.push(publisher.id, resampler(pcm))


def _is_on(value: Any) -> bool:
    if isinstance(value, dict):
        return bool(value.get("isPublishing", True))
    return bool(value)


class Daily:
    """Stand-in for ``daily.Daily``: process-wide devices and settings.

    Use a class made by :meth:`bound_to`, whose devices are a simulation's.
    """

    devices: ClassVar[Devices]

    @classmethod
    def bound_to(cls, devices: Devices) -> type["Daily"]:
        """A subclass whose devices are ``devices``.

        Args:
            devices: The simulation's devices.

        Returns:
            The class to use as daily-python's ``Daily``.
        """
        return type(cls.__name__, (cls,), {"devices": devices})

    @staticmethod
    def init(**kwargs: Any) -> None:
        """Initialise (nothing to do in the simulation).

        Args:
            **kwargs: Accepted for compatibility.
        """

    @staticmethod
    def deinit() -> None:
        """De-initialise (nothing to do)."""

    @staticmethod
    def set_log_level(level: Any) -> None:
        """Accept a log level.

        Args:
            level: The level.
        """

    @classmethod
    def create_speaker_device(
        cls,
        device_name: str,
        sample_rate: int = 16000,
        channels: int = 1,
        non_blocking: bool = False,
    ) -> VirtualSpeakerDevice:
        """Create a virtual speaker.

        Args:
            device_name: Its name.
            sample_rate: Rate it is read at.
            channels: Channels.
            non_blocking: Whether reads return at once.

        Returns:
            The device.
        """
        device = VirtualSpeakerDevice(device_name, sample_rate, channels, non_blocking)
        cls.devices.speakers[device_name] = device
        return device

    @classmethod
    def select_speaker_device(cls, device_name: str) -> None:
        """Make a speaker the process's output (as in Daily, one for all clients).

        Args:
            device_name: The device.
        """
        cls.devices.selected_speaker = cls.devices.speakers[device_name]

    @classmethod
    def create_microphone_device(
        cls,
        device_name: str,
        sample_rate: int = 16000,
        channels: int = 1,
        non_blocking: bool = False,
    ) -> VirtualMicrophoneDevice:
        """Create a virtual microphone whose audio a client can publish.

        Args:
            device_name: Its name.
            sample_rate: Rate of the audio written.
            channels: Channels.
            non_blocking: Whether writes return at once.

        Returns:
            The device.
        """
        device = VirtualMicrophoneDevice(device_name, sample_rate, channels, non_blocking)
        cls.devices.tracks[device_name] = device.source
        return device

    @staticmethod
    def create_native_vad(*args: Any, **kwargs: Any) -> Any:
        """Not simulated.

        Args:
            *args: Ignored.
            **kwargs: Ignored.

        Raises:
            NotImplementedError: Always.
        """
        raise NotImplementedError("the simulated Daily does not support create_native_vad()")
