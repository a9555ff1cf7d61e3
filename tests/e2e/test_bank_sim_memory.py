"""The bank simulator's own process killed (SIGKILL) and started again on its books keeps what
it was told at run time (issue 22, item 7): a changed profile (an outage a scenario set) and
the nonces it has seen, so a gateway request captured before the restart is still refused."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import orjson

from protocol import signing
from protocol.keys import GATEWAY_KEY_ID, bank_secret
from tests.bank_sim import payout
from tests.e2e.test_bank_restart import BankProcess
from tests.harness import Reply, free_port, raw_request

MASTER = "e2e-bank-memory-master-secret"


@asynccontextmanager
async def bank_and_http(tmp_path: Path) -> AsyncIterator[tuple[BankProcess, aiohttp.ClientSession]]:
    env = {
        **os.environ,
        "PAYGATE_CALLBACK_URL": "",
        "PAYGATE_BANK_MASTER_SECRET": MASTER,
        "PAYGATE_BANK_PROFILE_PRESET": "instant",  # no drawn faults on the submit
        "PAYGATE_LOG_LEVEL": "WARNING",
    }
    bank = BankProcess(free_port(), tmp_path / "books.sqlite3", tmp_path / "bank.log", env)
    bank.start()
    try:
        # A connection kept alive would outlive the killed process: one connection a request.
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
            yield bank, http
    finally:
        bank.stop()


async def test_a_changed_profile_survives_a_bank_restart(tmp_path: Path) -> None:
    async with bank_and_http(tmp_path) as (bank, http):
        outage = {"maintenance_now": True, "tps": 7}
        put = await raw_request(http, "PUT", bank.url + "/banks/103/profile", orjson.dumps(outage))
        assert put.status == 200, put.body
        bank.kill()  # no clean shutdown: the change must be on disk before the PUT answered
        bank.start()
        profile = await raw_request(http, "GET", bank.url + "/banks/103/profile")
        assert (profile.body["maintenance_now"], profile.body["tps"]) == (True, 7)
        untouched = await raw_request(http, "GET", bank.url + "/banks/102/profile")
        assert untouched.body["maintenance_now"] is False


async def test_a_request_replayed_after_a_bank_restart_is_refused(tmp_path: Path) -> None:
    async with bank_and_http(tmp_path) as (bank, http):
        path = "/banks/102/payouts"
        body = orjson.dumps(payout("po_replay_after_restart"))
        secret = bank_secret(MASTER, "102")
        headers = signing.sign_request(GATEWAY_KEY_ID, secret, "POST", path, body)

        async def send() -> Reply:
            return await raw_request(http, "POST", bank.url + path, body, headers)

        first = await send()
        assert first.status == 200, first.body
        bank.kill()
        bank.start()
        replay = await send()
        assert (replay.status, replay.code) == (401, "replayed_request"), replay.body
