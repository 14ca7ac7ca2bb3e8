"""``pipecat-bey check --offline``: the same check against the local stand-ins.

The only part of the check that uses ``pipecat_bey.testing``, and only once it runs.
"""

import secrets as token_bytes
from collections.abc import Mapping, MutableSet
from dataclasses import replace
from typing import Any

from pipecat_bey.cli._io import ExitsFully, print_now
from pipecat_bey.cli.check.options import CheckOptions, given
from pipecat_bey.cli.check.run import run_check
from pipecat_bey.cli.check.steps import Progress


async def run_offline_check(
    options: CheckOptions,
    *,
    world: Mapping[str, Any] | None = None,
    progress: Progress = print_now,
    secrets: MutableSet[str] | None = None,
    bey_key: str | None = None,
    daily_key: str | None = None,
) -> dict[str, Any]:
    """Run the check against the local Beyond Presence API and the simulated Daily.

    The very same :func:`~pipecat_bey.cli.check.run.run_check`, its URLs pointed
    at the stand-ins. They accept only their own keys (throwaway ones unless
    given): a key passed in ``options`` is sent as it is, so a wrong key is
    refused as the real API would refuse it. Keys from the environment are not used.

    Args:
        options: What to run with (``api_url``, ``daily_api_url`` are replaced).
        world: Settings of the simulated Daily
            (:func:`~pipecat_bey.cli.check.recording.load_world`); None:
            ``DailySimulation.realistic()``.
        progress: Where the step lines go.
        secrets: Filled with every key and token used (see ``run_check``).
        bey_key: The key the local Beyond Presence API accepts.
        daily_key: The key the simulated Daily accepts.

    Returns:
        The recording.
    """
    from pipecat_bey.testing.bey_emulator import BeyEmulator
    from pipecat_bey.testing.daily_sim import REALISTIC, DailySimulation

    bey_key = bey_key or f"bey-offline-{token_bytes.token_hex(12)}"
    daily_key = daily_key or f"daily-offline-{token_bytes.token_hex(12)}"
    secrets = secrets if secrets is not None else set()
    secrets.update((bey_key, daily_key))
    settings = dict(REALISTIC) if world is None else dict(world)
    simulation = DailySimulation.from_settings(settings, api_key=daily_key)
    progress(
        "offline: the local Beyond Presence API and a simulated Daily "
        f"({'realistic timings' if world is None else 'the given world'})"
    )
    # Closed to the end even if the run is cancelled as they close (Ctrl-C just then).
    async with (
        ExitsFully(BeyEmulator(api_keys={bey_key})) as bey,
        ExitsFully(simulation) as daily,
    ):
        daily.attach_bey(bey)
        local = replace(
            options,
            api_key=given(options.api_key) or bey_key,
            daily_api_key=given(options.daily_api_key) or daily_key,
            api_url=bey.url,
            daily_api_url=daily.rest_url,
        )
        return await run_check(
            local, progress=progress, secrets=secrets, offline=True, notes={"world": settings}
        )
