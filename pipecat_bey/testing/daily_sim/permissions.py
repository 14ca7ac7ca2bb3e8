"""Bottom layer: Daily participant permissions (``canSend``, ``canReceive``, ``canAdmin``).

Daily's shape, as its documentation gives it for meeting tokens, participant
objects and ``updateParticipant`` (daily-python's ``update_remote_participants``):

- ``canSend``: ``True``, ``False`` or a list of media: ``"audio"`` (the microphone),
  ``"video"`` (the camera), ``"screenAudio"``, ``"screenVideo"``, ``"customAudio"``,
  ``"customVideo"``. ``"microphone"`` and ``"camera"`` are accepted as the names
  daily-python's track settings use, and stand for ``"audio"`` and ``"video"``.
- ``canReceive``: ``{"base": ..., "byUserId": {user id: ...}, "byParticipantId":
  {participant id: ...}}``, the most specific entry that says something about a
  medium winning. Each value is ``True``, ``False`` or a dict of media, whose custom
  media may name tracks: ``{"customAudio": {"bey-custom-track": False, "*": True}}``.
  A medium nothing mentions may be received (Daily's default is ``base: True``).
- ``canAdmin``: ``True``, ``False`` or a list of ``"participants"``, ``"streaming"``,
  ``"transcription"``.
- ``hasPresence`` is accepted and kept, but hidden participants are not simulated.

Nothing here knows about rooms: :func:`parse` checks and normalises what a token,
the REST stand-in or a runtime update carries, and :class:`Permissions` answers
what a participant may send, receive and administer.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

# Daily's media names, and the daily-python track names that stand for two of them.
MEDIA = ("audio", "video", "screenAudio", "screenVideo", "customAudio", "customVideo")
ALIASES = {"microphone": "audio", "camera": "video"}
CUSTOM_MEDIA = ("customAudio", "customVideo")
ADMIN = ("participants", "streaming", "transcription")
_CAN_RECEIVE_KEYS = ("base", "byUserId", "byParticipantId")

# A canReceive rule: a bool for every medium, or {medium: bool | {track name or "*": bool}}.
Rule = bool | Mapping[str, Any]


class PermissionsError(ValueError):
    """Permissions that are not of Daily's shape; the message says what is wrong."""


@dataclass(frozen=True)
class CanReceive:
    """Which participants' media a participant may receive.

    Parameters:
        base: The rule for everyone.
        by_user_id: Rules by the publisher's user id (from its meeting token).
        by_participant_id: Rules by the publisher's participant id.
    """

    base: Rule = True
    by_user_id: Mapping[str, Rule] = field(default_factory=dict)
    by_participant_id: Mapping[str, Rule] = field(default_factory=dict)

    def allows(
        self, publisher_id: str, publisher_user_id: str | None, medium: str, track: str | None
    ) -> bool:
        """Whether media of a publisher's track may be received.

        Args:
            publisher_id: The publisher's participant id.
            publisher_user_id: The publisher's user id, if its token has one.
            medium: Daily's media name (``"audio"``, ``"customAudio"``...).
            track: A custom track's name (None for the other media).

        Returns:
            True if allowed.
        """
        rules = [
            self.by_participant_id.get(publisher_id),
            self.by_user_id.get(publisher_user_id) if publisher_user_id else None,
            self.base,
        ]
        for rule in rules:
            verdict = _rule_says(rule, medium, track)
            if verdict is not None:
                return verdict
        return True

    def to_dict(self) -> dict[str, Any]:
        """Daily's JSON shape.

        Returns:
            ``{"base": ..., "byUserId": ..., "byParticipantId": ...}``.
        """
        return {
            "base": _rule_json(self.base),
            "byUserId": {k: _rule_json(v) for k, v in self.by_user_id.items()},
            "byParticipantId": {k: _rule_json(v) for k, v in self.by_participant_id.items()},
        }


@dataclass(frozen=True)
class Permissions:
    """What a participant may do in a call.

    Parameters:
        can_send: True, False, or the Daily media names it may publish.
        can_receive: Whose media it may receive.
        can_admin: True, False, or the admin areas it holds.
        has_presence: Whether others see it (kept, not simulated).
    """

    can_send: bool | frozenset[str] = True
    can_receive: CanReceive = field(default_factory=CanReceive)
    can_admin: bool | frozenset[str] = False
    has_presence: bool = True

    def may_send(self, medium: str) -> bool:
        """Whether it may publish a medium.

        Args:
            medium: Daily's media name.

        Returns:
            True if allowed.
        """
        if isinstance(self.can_send, bool):
            return self.can_send
        return medium in self.can_send

    def may_admin(self, area: str) -> bool:
        """Whether it holds an admin area (``"participants"``...).

        Args:
            area: The area.

        Returns:
            True if it does.
        """
        if isinstance(self.can_admin, bool):
            return self.can_admin
        return area in self.can_admin

    def updated(self, update: "PermissionsUpdate") -> "Permissions":
        """These permissions with an update applied, as Daily applies one.

        ``canSend``, ``canAdmin`` and ``hasPresence`` are replaced when given; of
        ``canReceive``, each of ``base``, ``byUserId`` and ``byParticipantId`` is
        replaced when given.

        Args:
            update: The update.

        Returns:
            The new permissions.
        """
        can_receive = self.can_receive
        if update.base is not None:
            can_receive = replace(can_receive, base=update.base)
        if update.by_user_id is not None:
            can_receive = replace(can_receive, by_user_id=update.by_user_id)
        if update.by_participant_id is not None:
            can_receive = replace(can_receive, by_participant_id=update.by_participant_id)
        return Permissions(
            can_send=self.can_send if update.can_send is None else update.can_send,
            can_receive=can_receive,
            can_admin=self.can_admin if update.can_admin is None else update.can_admin,
            has_presence=self.has_presence if update.has_presence is None else update.has_presence,
        )

    def to_dict(self) -> dict[str, Any]:
        """Daily's JSON shape, as in a participant's ``info.permissions``.

        Returns:
            ``{"hasPresence", "canSend", "canReceive", "canAdmin"}``.
        """
        return {
            "hasPresence": self.has_presence,
            "canSend": _set_json(self.can_send),
            "canReceive": self.can_receive.to_dict(),
            "canAdmin": _set_json(self.can_admin),
        }


@dataclass(frozen=True)
class PermissionsUpdate:
    """Permissions as given in a token or an update: None where nothing was said.

    Parameters:
        can_send: New ``canSend``.
        can_admin: New ``canAdmin``.
        has_presence: New ``hasPresence``.
        base: New ``canReceive.base``.
        by_user_id: New ``canReceive.byUserId``.
        by_participant_id: New ``canReceive.byParticipantId``.
    """

    can_send: bool | frozenset[str] | None = None
    can_admin: bool | frozenset[str] | None = None
    has_presence: bool | None = None
    base: Rule | None = None
    by_user_id: Mapping[str, Rule] | None = None
    by_participant_id: Mapping[str, Rule] | None = None


def parse(value: Any) -> PermissionsUpdate:
    """Check and normalise Daily ``permissions`` JSON.

    Args:
        value: The ``permissions`` object of a token, a REST body or an update.

    Returns:
        What it says.

    Raises:
        PermissionsError: If it is not of Daily's shape.
    """
    if not isinstance(value, Mapping):
        raise PermissionsError("permissions must be an object")
    unknown = set(value) - {"canSend", "canReceive", "canAdmin", "hasPresence"}
    if unknown:
        raise PermissionsError(f"permissions has unknown fields: {sorted(unknown)}")
    update: dict[str, Any] = {}
    if "canSend" in value:
        update["can_send"] = _parse_set(value["canSend"], "canSend", MEDIA, ALIASES)
    if "canAdmin" in value:
        update["can_admin"] = _parse_set(value["canAdmin"], "canAdmin", ADMIN, {})
    if "hasPresence" in value:
        if not isinstance(value["hasPresence"], bool):
            raise PermissionsError("permissions.hasPresence must be a boolean")
        update["has_presence"] = value["hasPresence"]
    if "canReceive" in value:
        can_receive = value["canReceive"]
        if not isinstance(can_receive, Mapping):
            raise PermissionsError("permissions.canReceive must be an object")
        unknown = set(can_receive) - set(_CAN_RECEIVE_KEYS)
        if unknown:
            raise PermissionsError(f"permissions.canReceive has unknown fields: {sorted(unknown)}")
        if "base" in can_receive:
            update["base"] = _parse_rule(can_receive["base"], "canReceive.base")
        for key, name in (("byUserId", "by_user_id"), ("byParticipantId", "by_participant_id")):
            if key in can_receive:
                rules = can_receive[key]
                if not isinstance(rules, Mapping):
                    raise PermissionsError(f"permissions.canReceive.{key} must be an object")
                update[name] = {
                    str(k): _parse_rule(v, f"canReceive.{key}.{k}") for k, v in rules.items()
                }
    return PermissionsUpdate(**update)


def initial(
    token_permissions: Mapping[str, Any] | None, *, is_owner: bool, owner_only_broadcast: bool
) -> Permissions:
    """The permissions a participant joins with.

    Defaults: everything may be sent and received, nothing administered. In a room
    with ``owner_only_broadcast``, a non-owner may send nothing, custom tracks
    included (Daily documents the camera, microphone and screen; that custom
    tracks are refused too is a guess, the harsher case). A token's
    ``permissions`` override the defaults field by field. Owners may always
    administer participants; the room checks that through ``is_owner``.

    Args:
        token_permissions: The token's ``permissions``, if any.
        is_owner: Whether the token makes its bearer an owner.
        owner_only_broadcast: Whether the room lets only owners broadcast.

    Returns:
        The permissions.

    Raises:
        PermissionsError: If the token's permissions are not of Daily's shape.
    """
    permissions = Permissions(can_send=is_owner or not owner_only_broadcast)
    if token_permissions:
        permissions = permissions.updated(parse(token_permissions))
    return permissions


def track_medium(track: str) -> tuple[str, str | None]:
    """Daily's media name of a track key, and a custom track's name.

    Args:
        track: A track key: ``"microphone"``, ``"camera"``, ``"customAudio:<name>"``...

    Returns:
        ``(medium, custom track name or None)``.
    """
    kind, _, name = track.partition(":")
    return ALIASES.get(kind, kind), (name or None)


def _rule_says(rule: Rule | None, medium: str, track: str | None) -> bool | None:
    """What one rule says of a medium (None: nothing)."""
    if rule is None or isinstance(rule, bool):
        return rule
    value = rule.get(medium)
    if value is None or isinstance(value, bool):
        return value
    if track is not None and track in value:
        return value[track]
    return value.get("*")


def _parse_set(value: Any, name: str, allowed: tuple[str, ...], aliases: dict[str, str]) -> Any:
    if isinstance(value, bool):
        return value
    if not isinstance(value, (list, tuple, set, frozenset)) or not all(
        isinstance(v, str) for v in value
    ):
        raise PermissionsError(f"permissions.{name} must be a boolean or an array of strings")
    items = {aliases.get(v, v) for v in value}
    unknown = items - set(allowed)
    if unknown:
        raise PermissionsError(
            f"permissions.{name} has unknown values {sorted(unknown)}; allowed: {list(allowed)}"
        )
    return frozenset(items)


def _parse_rule(value: Any, name: str) -> Rule:
    if isinstance(value, bool):
        return value
    if not isinstance(value, Mapping):
        raise PermissionsError(f"permissions.{name} must be a boolean or an object of media")
    rule: dict[str, Any] = {}
    for medium, allowed in value.items():
        medium = ALIASES.get(medium, medium)
        if medium not in MEDIA:
            raise PermissionsError(f"permissions.{name} has an unknown medium {medium!r}")
        if isinstance(allowed, bool):
            rule[medium] = allowed
        elif medium in CUSTOM_MEDIA and isinstance(allowed, Mapping):
            if not all(isinstance(k, str) and isinstance(v, bool) for k, v in allowed.items()):
                raise PermissionsError(
                    f"permissions.{name}.{medium} must map track names to booleans"
                )
            rule[medium] = dict(allowed)
        else:
            raise PermissionsError(f"permissions.{name}.{medium} must be a boolean")
    return rule


def _rule_json(rule: Rule) -> Any:
    if isinstance(rule, bool):
        return rule
    return {k: dict(v) if isinstance(v, Mapping) else v for k, v in rule.items()}


def _set_json(value: bool | frozenset[str]) -> bool | list[str]:
    return value if isinstance(value, bool) else sorted(value)
