"""The ``keys`` step: both keys are set, and the URLs and the avatar id acceptable."""

import aiohttp

from pipecat_bey._urls import daily_room_name
from pipecat_bey.cli.check.options import CheckOptions, given
from pipecat_bey.cli.check.steps import StepFailed, StepRunner
from pipecat_bey.client import BeyClient
from pipecat_bey.config import avatar_id_setting, daily_api_url_setting, env
from pipecat_bey.errors import BeyConfigError


class Keys:
    """The keys and settings of a run, known once :meth:`check` has passed.

    Parameters:
        options: What the check runs with.
        runner: The run's steps (its secrets and recording).
        http: The HTTP session of the run.
    """

    def __init__(
        self, options: CheckOptions, runner: StepRunner, http: aiohttp.ClientSession
    ) -> None:
        self.client: BeyClient | None = None
        self.avatar_id = ""
        self.daily_key = ""
        self.daily_url = ""
        self._options = options
        self._runner = runner
        self._http = http

    async def check(self) -> str:
        """The ``keys`` step.

        Returns:
            What happened.

        Raises:
            StepFailed: If a key is missing, or a URL or the avatar id is not acceptable.
        """
        options = self._options
        api_key = given(options.api_key) or env("BEY_API_KEY")
        daily_key = given(options.daily_api_key) or env("DAILY_API_KEY")
        self._runner.secrets.update(k for k in (api_key, daily_key) if k)
        missing = []
        if api_key is None:
            missing.append(
                ("BEY_API_KEY", "set BEY_API_KEY (from https://app.bey.chat) or pass --api-key")
            )
        if daily_key is None:
            missing.append(
                (
                    "DAILY_API_KEY",
                    "set DAILY_API_KEY (from the Daily dashboard, Developers) "
                    "or pass --daily-api-key",
                )
            )
        if missing:
            names = " and ".join(name for name, _ in missing)
            raise StepFailed(
                f"{names} {'is' if len(missing) == 1 else 'are'} not set",
                "; ".join(hint for _, hint in missing),
            )
        assert api_key is not None and daily_key is not None
        settings = (
            ("--api-url or BEY_API_URL", lambda: self._bey_client(api_key)),
            ("--daily-api-url or DAILY_API_URL", self._daily_url),
            ("--avatar-id or BEY_AVATAR_ID", self._avatar_id),
        )
        for where, check in settings:
            try:
                check()
            except BeyConfigError as e:
                raise StepFailed(str(e), f"fix {where}") from None
        if options.room_url is not None:
            try:
                daily_room_name(options.room_url)
            except BeyConfigError as e:
                raise StepFailed(str(e), "fix --room-url, or leave it out") from None
        self.daily_key = daily_key
        self._runner.record["avatar_id"] = self.avatar_id
        return "BEY_API_KEY and DAILY_API_KEY are set"

    def _bey_client(self, api_key: str) -> None:
        url = given(self._options.api_url)
        self.client = BeyClient(api_key, base_url=url, session=self._http)

    def _daily_url(self) -> None:
        self.daily_url = daily_api_url_setting(given(self._options.daily_api_url))

    def _avatar_id(self) -> None:
        self.avatar_id = avatar_id_setting(given(self._options.avatar_id))
