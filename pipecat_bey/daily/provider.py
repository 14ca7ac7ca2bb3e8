"""Daily as a room provider: the avatar's session and the room it joins, built from settings.

Both placements start here: the avatar in the bot's own Daily room
(:meth:`DailyProvider.bot_room`) or in a private Daily room the bot relays
(:meth:`DailyProvider.backstage`). Each returns the avatar's session and its
room, checked now, so that a bad setting fails when the service is built.
"""

from pipecat.transports.base_transport import BaseTransport
from pipecat.transports.daily.transport import DailyTransport

from pipecat_bey.client import BeyClient
from pipecat_bey.config import BEY_AUDIO_TRACK, BeyParams, setting
from pipecat_bey.daily.avatar_session import AvatarSession
from pipecat_bey.daily.backstage_room import BackstageRoom
from pipecat_bey.daily.bot_room import BotRoom


class DailyProvider:
    """Builds the avatar's session and room on Daily."""

    def __init__(
        self,
        *,
        client: BeyClient,
        params: BeyParams,
        avatar_id: str | None = None,
        avatar_token: str | None = None,
        api_key: str | None = None,
        api_url: str | None = None,
    ) -> None:
        """Keep the settings; nothing is checked or built until a room is asked for.

        Args:
            client: The Beyond Presence API client.
            params: The service's tuning (the avatar's name and token lifetime).
            avatar_id: The avatar; see ``AvatarSession``.
            avatar_token: A meeting token of the caller's for the avatar.
            api_key: Daily API key. Defaults to ``DAILY_API_KEY``.
            api_url: Daily REST base URL. Defaults to ``DAILY_API_URL``, then Daily's.
        """
        self._client = client
        self._params = params
        self._avatar_id = avatar_id
        self._avatar_token = avatar_token
        self._api_key = api_key
        self._api_url = api_url

    @staticmethod
    def is_room(transport: BaseTransport | None) -> bool:
        """Whether a transport is in a Daily room the avatar can join.

        Args:
            transport: The bot's transport.

        Returns:
            True for a ``DailyTransport``.
        """
        return isinstance(transport, DailyTransport)

    def _avatar(self, room_url: str | None) -> AvatarSession:
        return AvatarSession(
            client=self._client,
            room_url=room_url,
            avatar_id=self._avatar_id,
            avatar_token=self._avatar_token,
            daily_api_key=self._api_key,
            daily_api_url=self._api_url,
            user_name=self._params.avatar_user_name,
            token_ttl_s=self._params.avatar_token_ttl_s,
        )

    def bot_room(self, transport: DailyTransport) -> tuple[AvatarSession, BotRoom]:
        """The avatar in the bot's own room.

        Args:
            transport: The bot's ``DailyTransport``.

        Returns:
            The avatar's session and the bot's room.

        Raises:
            BeyConfigError: If a setting is missing or invalid.
        """
        avatar = self._avatar(transport.room_url)
        return avatar, BotRoom(transport, track=BEY_AUDIO_TRACK)

    def backstage(
        self, *, room_url: str | None, token: str | None
    ) -> tuple[AvatarSession, BackstageRoom]:
        """The avatar in a private room whose media the bot relays.

        Args:
            room_url: A Daily room of the caller's, or None to create one (with
                the Daily API key) and delete it at the end.
            token: The bot's meeting token for ``room_url``, or None to mint an
                owner's token (or join without one).

        Returns:
            The avatar's session and the private room.

        Raises:
            BeyConfigError: If a setting is missing or invalid.
        """
        room_url = setting(room_url, argument="relay_room_url")
        avatar = self._avatar(room_url)
        room = BackstageRoom(
            track=BEY_AUDIO_TRACK,
            room_url=room_url,
            token=setting(token, argument="relay_room_token"),
            can_create_room=avatar.has_daily_api_key,
            rest=lambda: avatar.daily,
            lifetime_s=self._params.avatar_token_ttl_s,
        )
        return avatar, room
