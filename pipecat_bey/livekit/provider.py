"""LiveKit as a room provider: the avatar in the bot's own LiveKit room, built from settings.

``LiveKitProvider.bot_room`` returns the avatar's session and the bot's room,
checked now (the server's URL, the API key and secret against the bot's own
token), so that a bad setting fails when the service is built.
"""

from pipecat.transports.base_transport import BaseTransport
from pipecat.transports.livekit.transport import LiveKitTransport

from pipecat_bey.client import BeyClient
from pipecat_bey.config import BeyParams, setting
from pipecat_bey.errors import BeyConfigError
from pipecat_bey.livekit.avatar_session import LiveKitAvatarSession, livekit_url_setting
from pipecat_bey.livekit.bot_room import LiveKitBotRoom, transport_token, transport_url
from pipecat_bey.livekit.tokens import read_bot_token


class LiveKitProvider:
    """Builds the avatar's session and room on LiveKit."""

    def __init__(
        self,
        *,
        client: BeyClient,
        params: BeyParams,
        avatar_id: str | None = None,
        url: str | None = None,
        api_key: str | None = None,
        api_secret: str | None = None,
    ) -> None:
        """Keep the settings; nothing is checked or built until a room is asked for.

        Args:
            client: The Beyond Presence API client.
            params: The service's tuning (the avatar's name and token lifetime).
            avatar_id: The avatar.
            url: The LiveKit server. Defaults to ``LIVEKIT_URL``, then the transport's.
            api_key: The LiveKit API key. Defaults to ``LIVEKIT_API_KEY``.
            api_secret: Its secret. Defaults to ``LIVEKIT_API_SECRET``.
        """
        self._client = client
        self._params = params
        self._avatar_id = avatar_id
        self._url = url
        self._api_key = api_key
        self._api_secret = api_secret

    @staticmethod
    def is_room(transport: BaseTransport | None) -> bool:
        """Whether a transport is in a LiveKit room the avatar can join.

        Args:
            transport: The bot's transport.

        Returns:
            True for a ``LiveKitTransport``.
        """
        return isinstance(transport, LiveKitTransport)

    def _credentials(self) -> tuple[str, str]:
        key = setting(self._api_key, argument="livekit_api_key", variable="LIVEKIT_API_KEY")
        secret = setting(
            self._api_secret, argument="livekit_api_secret", variable="LIVEKIT_API_SECRET"
        )
        if not key or not secret:
            missing = " and ".join(
                name
                for name, value in (("LIVEKIT_API_KEY", key), ("LIVEKIT_API_SECRET", secret))
                if not value
            )
            raise BeyConfigError(
                f"the avatar's LiveKit token is minted with your LiveKit API key and secret: "
                f"set {missing} (or pass livekit_api_key=... and livekit_api_secret=...)"
            )
        return key, secret

    def bot_room(self, transport: LiveKitTransport) -> tuple[LiveKitAvatarSession, LiveKitBotRoom]:
        """The avatar in the bot's own LiveKit room.

        Args:
            transport: The bot's ``LiveKitTransport``.

        Returns:
            The avatar's session and the bot's room.

        Raises:
            BeyConfigError: If a setting is missing or invalid.
        """
        url = livekit_url_setting(self._url, default=transport_url(transport))
        key, secret = self._credentials()
        token = transport_token(transport)
        if not token:
            raise BeyConfigError(
                "the bot's LiveKitTransport has no token; pass LiveKitTransport(url, token, "
                "room_name) with the bot's access token"
            )
        bot = read_bot_token(token, key, secret)
        avatar = LiveKitAvatarSession(
            client=self._client,
            url=url,
            api_key=key,
            api_secret=secret,
            bot=bot,
            avatar_id=self._avatar_id,
            name=self._params.avatar_user_name,
            token_ttl_s=self._params.avatar_token_ttl_s,
        )
        return avatar, LiveKitBotRoom(transport, avatar_identity=avatar.identity)
