"""Call-client layer: the stand-in for daily-python's ``CallClient``.

It sits above the room layer, beside the participants and the REST endpoints.
``DailyTransport`` creates clients itself, with no reference to a simulation, so
the simulation installs a subclass already bound to it (:meth:`CallClient.bound_to`
with a :class:`CallHost`).

A client is a room member made of parts, each of the ``call_*`` modules:
``call_joining`` (joining and leaving), ``call_publishing`` (inputs and custom
tracks), ``call_rendering`` (audio and video renderers), ``call_participants``
(the others, app messages and permission updates) and ``call_events`` (the event
handler and completions). Like daily-python, event callbacks, renderer audio and
renderer video reach the application from a thread of the simulation's own,
never from the asyncio loop, and completions are plain callables. Frames written
to a published ``CustomVideoSource`` reach the participants that render them.
Calls an ordinary voice-bot session does not make raise ``NotImplementedError``
naming themselves.
"""

from collections.abc import Callable
from typing import Any, ClassVar, Protocol

from pipecat_bey.testing.daily_sim.audio import CustomAudioSource
from pipecat_bey.testing.daily_sim.call_events import CallEvents, Completion, complete
from pipecat_bey.testing.daily_sim.call_joining import JoinHost, Joining
from pipecat_bey.testing.daily_sim.call_participants import Participants
from pipecat_bey.testing.daily_sim.call_publishing import Publishing
from pipecat_bey.testing.daily_sim.call_rendering import Renderers, RenderHost
from pipecat_bey.testing.daily_sim.devices import CustomAudioTrack, CustomVideoTrack
from pipecat_bey.testing.daily_sim.member import Member
from pipecat_bey.testing.daily_sim.tracks import custom_audio, custom_video
from pipecat_bey.testing.daily_sim.video import SentVideo, VideoSource


class CallHost(JoinHost, RenderHost, Protocol):
    """What a call client needs from the simulation it is bound to.

    Its rooms and join latency, for joining; its callback thread and devices (the
    custom tracks inputs name, the selected speaker), for events and renderers.
    """


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
        self._events = CallEvents(event_handler, self.host)
        self._publishing = Publishing(self, self.host.devices)
        self._renderers = Renderers(self.host)
        self._others = Participants(self, self._events)
        self._joining = Joining(
            self, self.host, self._events, self._publishing.apply_client_settings
        )

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise NotImplementedError(f"the simulated CallClient does not support {name}()")

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
        self._joining.join(meeting_url, meeting_token, client_settings, completion)

    def leave(self, completion: Completion = None) -> None:
        """Leave the room.

        Args:
            completion: Called with ``None`` (no error).
        """
        self._joining.leave(completion)

    def release(self) -> None:
        """Release the client (leaving first if needed)."""
        self._joining.release()

    # State.
    def participants(self) -> dict[str, Any]:
        """Everyone in the room, ``"local"`` being this client.

        Returns:
            Participants by id.
        """
        return self._others.listing()

    def participant_counts(self) -> dict[str, int]:
        """How many are in the room.

        Returns:
            ``{"present": n, "hidden": 0}``.
        """
        return self._others.counts()

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
        self._publishing.update_inputs(input_settings)
        complete(completion, None)

    def update_publishing(
        self, publishing_settings: dict[str, Any], completion: Completion = None
    ) -> None:
        """Start or stop publishing tracks.

        Args:
            publishing_settings: Daily publishing settings.
            completion: Called with the error, ``None``.
        """
        self._publishing.update_publishing(publishing_settings)
        complete(completion, None)

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
        self._publishing.add_custom_track(custom_audio(track_name), audio_track.source)
        complete(completion, None)

    def remove_custom_audio_track(self, track_name: str, completion: Completion = None) -> None:
        """Stop publishing and remove a custom audio track.

        Args:
            track_name: Its name.
            completion: Called with ``None``.
        """
        self._publishing.remove_custom_track(custom_audio(track_name))
        complete(completion, None)

    def add_custom_video_track(
        self, track_name: str, video_track: CustomVideoTrack, completion: Completion = None
    ) -> None:
        """Add and publish a custom video track (frames written to its source are sent).

        Args:
            track_name: Its name.
            video_track: The track.
            completion: Called with ``None``.
        """
        self._publishing.add_custom_track(custom_video(track_name), video_track.source)
        complete(completion, None)

    def remove_custom_video_track(self, track_name: str, completion: Completion = None) -> None:
        """Stop publishing and remove a custom video track.

        Args:
            track_name: Its name.
            completion: Called with ``None``.
        """
        self._publishing.remove_custom_track(custom_video(track_name))
        complete(completion, None)

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
        complete(completion, None)

    def update_subscription_profiles(
        self, profile_settings: dict[str, Any], completion: Completion = None
    ) -> None:
        """Define subscription profiles.

        Args:
            profile_settings: ``{profile: media settings}``.
            completion: Called with the error, ``None``.
        """
        self.update_profiles(profile_settings)
        complete(completion, None)

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
        at most ``call_rendering.FILLED_SILENCE_S`` (longer silences are not rendered).

        Args:
            participant_id: Whose audio.
            callback: The renderer.
            audio_source: ``"microphone"``, ``"screenAudio"`` or a custom track name.
            sample_rate: Rate to deliver at.
            callback_interval_ms: Size of each piece, in milliseconds.
        """
        self._renderers.set_audio(
            participant_id, callback, audio_source, sample_rate, callback_interval_ms
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
        self._renderers.set_video(participant_id, callback, video_source, color_format)

    # Asking things of the others.
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
        complete(completion, self._others.update_remote(remote_participants))

    def send_app_message(
        self, message: Any, participant_id: str | None = None, completion: Completion = None
    ) -> None:
        """Send an app message to one participant or everyone.

        Args:
            message: JSON-serialisable message.
            participant_id: The recipient, or None for everyone.
            completion: Called with an error or ``None``.
        """
        complete(completion, self._others.send_app_message(message, participant_id))

    # Member hooks: Daily's events and the renderers.
    def on_participant_joined(self, member: Member) -> None:  # noqa: D102
        self._others.joined(member)

    def on_participant_left(self, member: Member, reason: str) -> None:  # noqa: D102
        self._renderers.forget(member.id)
        self._others.left(member, reason)

    def on_participant_updated(self, member: Member) -> None:  # noqa: D102
        self._others.updated(member)

    def on_app_message(self, message: Any, sender: Member) -> None:  # noqa: D102
        self._others.app_message(message, sender)

    def on_removed(self, reason: str) -> None:  # noqa: D102
        self._events.call_state("left")

    def wants_video(self, publisher_id: str, track: str) -> bool:  # noqa: D102
        return self._renderers.wants_video(publisher_id, track)

    def on_video(  # noqa: D102
        self, publisher: Member, track: str, source: VideoSource, frame: SentVideo
    ) -> None:
        self._renderers.render_video(publisher.id, track, frame)

    def on_audio(  # noqa: D102
        self,
        publisher: Member,
        track: str,
        source: CustomAudioSource,
        pcm: bytes,
        start: float,
        position: int,
    ) -> None:
        self._renderers.render_audio(publisher.id, track, source, pcm, position)
