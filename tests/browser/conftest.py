"""The console's browser tests (SPEC 17): one running system (gateway, workers, the bank
simulator) and one Chromium shared by every test here, Playwright driving it.

Chromium is Debian's (`apt-get install chromium fonts-noto-cjk`; Playwright's own download
is not reachable), found at $PAYGATE_CHROMIUM or /usr/bin/chromium. Without it these tests
are left out with one line saying so; with PAYGATE_REQUIRE_BROWSER=1 (CI) that is a failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, async_playwright

from gateway.operators import repo
from gateway.settings import Settings
from tests.banks import BankWorld, bank_world
from tests.browser.console import OPERATORS, password_of
from tests.conftest import ROOT, Storage
from tests.harness import ADMIN_TOKEN, create_database, drop_database, unique_name, with_database

HOW_TO = ("console browser tests skipped: no Chromium; `apt-get install chromium "
          "fonts-noto-cjk` (or set PAYGATE_CHROMIUM) to run them")  # fmt: skip
SHOTS = ROOT / ".paygate" / "console-shots"


def chromium_path() -> str | None:
    given = os.environ.get("PAYGATE_CHROMIUM") or "/usr/bin/chromium"
    found = shutil.which(given) if not os.path.isabs(given) else given
    return found if found and os.access(found, os.X_OK) else None


CHROMIUM = chromium_path()
if CHROMIUM is None:
    if os.environ.get("PAYGATE_REQUIRE_BROWSER") == "1":
        raise RuntimeError(
            "PAYGATE_REQUIRE_BROWSER=1 and no Chromium at $PAYGATE_CHROMIUM or "
            "/usr/bin/chromium: `apt-get install chromium fonts-noto-cjk`"
        )
    collect_ignore_glob = ["test_*.py"]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if CHROMIUM is None:
        terminalreporter.write_line(HOW_TO)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def console_db(storage: Storage) -> AsyncIterator[str]:
    name = unique_name("paygate_console")
    await create_database(storage.admin_url, name, storage.template)
    try:
        yield with_database(storage.server_url, name)
    finally:
        await drop_database(storage.admin_url, name)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def world(console_db: str, storage: Storage) -> AsyncIterator[BankWorld]:
    """The whole system in this process: gateway (with the console), workers, bank simulator;
    every bank pays; the operators of the tests added."""
    settings = Settings(database_url=console_db, redis_url=storage.redis_url,
                        admin_token=ADMIN_TOKEN, port=0, db_pool_max=20)  # fmt: skip
    async with bank_world(settings) as w:
        for bank_id in ("102", "103", "104", "105", "308", "ibps"):
            await w.profile(bank_id, outcomes={"succeeded": 1.0})
        conn = await w.gw.db()
        try:
            for name, role in OPERATORS.items():
                await repo.add(conn, name, role, password_of(name))
        finally:
            await conn.close()
        yield w


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    assert CHROMIUM is not None
    async with async_playwright() as p:
        # --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
        b = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield b
        finally:
            await b.close()


@pytest.fixture(scope="session")
def shots() -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS
