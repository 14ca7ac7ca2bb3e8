"""Room layer: one member's subscriptions to the others' tracks, and when each takes effect.

What a member asked for follows Daily's subscription model: explicit
per-participant settings first, then the subscription profile assigned to the
publisher (``"base"`` unless another is), then automatic subscription
(``"subscribed"``, Daily's default). Settings come in Daily's shape
(``update_subscriptions``, ``update_subscription_profiles``).

A subscription is *on* while the member is subscribed and permissions let the
track's media through to it. One that turns on takes effect, that is starts
delivering media, a subscription latency later, as an SFU needs time to set up
the consumer; one that turns off stops at once. Nothing here knows about
members or rooms: what is published, and whether permissions allow it, is
given to :meth:`Subscriptions.take_effect`.
"""

from collections.abc import Iterable, Iterator
from typing import Any

from pipecat_bey.testing.daily_sim.tracks import custom_audio, custom_video

# A subscription: the publisher's participant id and the track key.
Key = tuple[str, str]


def _flatten_media(media: Any) -> dict[str, str]:
    """Turn Daily media subscription settings into {track key or pattern: state}."""
    if isinstance(media, str):
        return {"*": media}
    flat: dict[str, str] = {}
    for kind, value in (media or {}).items():
        if kind in ("customAudio", "customVideo") and isinstance(value, dict):
            key_of = custom_audio if kind == "customAudio" else custom_video
            for name, state in value.items():
                flat[key_of(name)] = state
        elif kind in ("customAudio", "customVideo") and isinstance(value, str):
            flat[f"{kind}:*"] = value
        elif isinstance(value, str):
            flat[kind] = value
        elif isinstance(value, dict) and "subscribed" in value:
            flat[kind] = value["subscribed"]
    return flat


def _lookup(flat: dict[str, str], track: str) -> str | None:
    if track in flat:
        return flat[track]
    kind = track.split(":", 1)[0]
    if ":" in track and f"{kind}:*" in flat:
        return flat[f"{kind}:*"]
    return flat.get("*")


class Subscriptions:
    """One member's subscriptions: what it asked to receive, and since when each delivers."""

    def __init__(self) -> None:
        """Create them: subscribed to everything, as Daily is by default."""
        self._participant_settings: dict[str, dict[str, str]] = {}
        self._participant_profiles: dict[str, str] = {}
        self._profiles: dict[str, dict[str, str]] = {}
        # When each subscription that is on took effect (None: off).
        self._active_from: dict[Key, float | None] = {}

    # What the member asked for.
    def state(self, publisher_id: str, track: str) -> str:
        """The member's subscription state to another's track.

        Args:
            publisher_id: The publisher.
            track: The track key.

        Returns:
            ``"subscribed"``, ``"staged"`` or ``"unsubscribed"``.
        """
        explicit = _lookup(self._participant_settings.get(publisher_id, {}), track)
        if explicit is not None:
            return explicit
        profile = self._participant_profiles.get(publisher_id, "base")
        from_profile = _lookup(self._profiles.get(profile, {}), track)
        if from_profile is not None:
            return from_profile
        return "subscribed"  # Daily subscribes to every track automatically by default

    def update(
        self,
        participant_settings: dict[str, Any] | None = None,
        profile_settings: dict[str, Any] | None = None,
    ) -> None:
        """Apply Daily ``update_subscriptions`` settings.

        Args:
            participant_settings: ``{participant_id: {"media": ..., "profile": ...}}``.
            profile_settings: ``{profile: media settings}``.
        """
        for pid, settings in (participant_settings or {}).items():
            if "media" in settings:
                merged = self._participant_settings.setdefault(pid, {})
                merged.update(_flatten_media(settings["media"]))
            if "profile" in settings:
                self._participant_profiles[pid] = settings["profile"]
        if profile_settings:
            self.update_profiles(profile_settings)

    def update_profiles(self, profiles: dict[str, Any]) -> None:
        """Apply Daily ``update_subscription_profiles`` settings.

        Args:
            profiles: ``{profile name: media settings}``.
        """
        for name, media in profiles.items():
            self._profiles.setdefault(name, {}).update(_flatten_media(media))

    def clear(self) -> None:
        """Forget every setting and profile: subscribed to everything again."""
        self._participant_settings.clear()
        self._participant_profiles.clear()
        self._profiles.clear()

    # When they deliver.
    def take_effect(
        self, published: Iterable[tuple[str, str, bool]], now: float, latency: float
    ) -> bool:
        """Note when each subscription to a published track takes effect.

        A subscription that turns on takes effect ``latency`` after ``now``; one
        that is off, or to a track no longer published, is dropped.

        Args:
            published: ``(publisher id, track key, permitted)`` for every track
                published in the room, ``permitted`` saying whether permissions let
                its media through to the member.
            now: Monotonic time.
            latency: Time for a new subscription to start delivering.

        Returns:
            Whether a subscription turned on.
        """
        seen = set()
        activated = False
        for publisher_id, track, permitted in published:
            key = (publisher_id, track)
            seen.add(key)
            on = permitted and self.state(publisher_id, track) == "subscribed"
            if on and self._active_from.get(key) is None:
                self._active_from[key] = now + latency
                activated = True
            elif not on:
                self._active_from[key] = None
        for key in list(self._active_from):
            if key not in seen:
                del self._active_from[key]
        return activated

    def receives(self, publisher_id: str, track: str, at: float) -> bool:
        """Whether the subscription to a track delivers media at a time.

        Args:
            publisher_id: The publisher.
            track: The track key.
            at: Monotonic time.

        Returns:
            True if it is on and has taken effect by then.
        """
        active = self._active_from.get((publisher_id, track))
        return active is not None and at >= active

    def effective(self) -> Iterator[tuple[Key, float]]:
        """The subscriptions that are on, with when each took (or takes) effect.

        Returns:
            ``((publisher id, track key), monotonic time)`` pairs.
        """
        return ((key, at) for key, at in self._active_from.items() if at is not None)

    def stop(self) -> None:
        """Stop every subscription (the member left: a rejoin subscribes afresh, with latency)."""
        self._active_from.clear()
