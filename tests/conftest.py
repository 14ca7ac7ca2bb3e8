"""Shared fixtures: the local services, and a watch for secrets in every log line."""

import logging
import secrets
import sys

import pytest
from loguru import logger

from pipecat_bey.testing import BeyEmulator, DailySimulation
from pipecat_bey.testing.daily_sim import tokens

BEY_KEY = f"bey-test-key-{secrets.token_hex(12)}"
DAILY_KEY = f"daily-test-key-{secrets.token_hex(12)}"

# Every API key of the suite and every meeting token minted in it.
SECRETS: set[str] = {BEY_KEY, DAILY_KEY}
LEAKS: list[str] = []


def _check(text: str) -> None:
    for secret in SECRETS:
        if secret in text:
            LEAKS.append(text.replace(secret, "<SECRET>")[:300])


class _LeakHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        _check(self.format(record))


@pytest.fixture(scope="session", autouse=True)
def no_secret_in_any_log():
    """Fail the run if an API key or meeting token shows up in any log line or error."""
    original_mint = tokens.mint

    def recording_mint(properties, secret):
        token = original_mint(properties, secret)
        SECRETS.add(token)
        return token

    tokens.mint = recording_mint
    sink = logger.add(lambda message: _check(str(message)), level="TRACE")
    handler = _LeakHandler(level=logging.DEBUG)
    logging.getLogger().addHandler(handler)
    yield
    logging.getLogger().removeHandler(handler)
    logger.remove(sink)
    tokens.mint = original_mint
    assert not LEAKS, f"secrets leaked into logs: {LEAKS[:3]}"


def pytest_configure(config):
    """Show what importing this file printed (pipecat's banner) before the run, not after it.

    pytest captures the output of conftest imports; a process that runs no test, such as
    xdist's controller, would otherwise hold it until pytest exits, after the summary. A
    worker's stays with its first test's captured output.
    """
    capture = config.pluginmanager.getplugin("capturemanager")
    if capture is None or hasattr(config, "workerinput"):
        return
    out, err = capture.read_global_capture()
    sys.stdout.write(out)
    sys.stderr.write(err)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.longrepr is not None:
        _check(str(report.longrepr))


@pytest.fixture
async def bey():
    async with BeyEmulator(api_keys={BEY_KEY}) as emulator:
        yield emulator


@pytest.fixture
async def daily():
    async with DailySimulation(api_key=DAILY_KEY) as simulation:
        yield simulation


@pytest.fixture
def clean_env(monkeypatch):
    names = ("BEY_API_KEY", "BEY_API_URL", "BEY_AVATAR_ID", "DAILY_API_KEY", "DAILY_API_URL")
    for name in (*names, "LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch
