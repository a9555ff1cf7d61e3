"""Crash safety (SPEC 14, issue 16): one `paygate up` (embedded PostgreSQL and Redis, the
fault-heavy bank profile) has one process or store SIGKILLed in the middle of each run of
2,000 payouts; its supervisor brings it back. Each run ends with every acknowledged payout
present and final, none submitted to the bank twice (the bank's own records), none paid twice
(the bank's paid set is the gateway's settled set, one ledger outcome per payout), and the
ledger check clean. The figures are printed (`pytest -s`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson
import pytest

from gateway.client import AdminClient, MerchantClient
from loadtest.system import faults
from loadtest.system.up import running_system
from tests.harness import free_port, wait_until
from tests.payloads import spread_payouts

BATCH = 100
BATCHES_PER_MERCHANT = 10  # two merchants: 2,000 payouts per run
KILL_AFTER = 500  # acknowledged payouts before the kill
FINAL_BOUND_S = 120.0  # every payout final within this long after the restart
# What a client retries while something is down (a 500 would be our bug: it fails the run).
RETRYABLE = {429, 502, 503, 504}


@dataclass
class System:
    info: dict[str, Any]
    state_dir: Path


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    state_dir = tmp_path_factory.mktemp("crash") / "state"
    env = {
        "PAYGATE_DATABASE_URL": "",  # embedded stores: they are what gets killed
        "PAYGATE_REDIS_URL": "",
        "PAYGATE_BANK_PROFILE_PRESET": "fault_heavy",
        "PAYGATE_LOG_LEVEL": "WARNING",
        "PAYGATE_SUBMIT_TIMEOUT_S": "0.5",
        "PAYGATE_QUERY_TIMEOUT_S": "0.5",
        "PAYGATE_POLL_MAX_INTERVAL_S": "1.0",
        "PAYGATE_BANK_NO_RECORD_POLLS": "4",
        "PAYGATE_BANK_NO_RECORD_MIN_S": "2",
    }
    with running_system(state_dir, port=free_port(), bank_port=free_port(),
                        sink_port=free_port(), env=env) as info:  # fmt: skip
        yield System(info, state_dir)


@dataclass
class Run:
    acked: set[str] = field(default_factory=set)
    retries: int = 0
    statuses: dict[int, int] = field(default_factory=dict)


async def submit_until_acked(client: MerchantClient, items: list[dict[str, Any]], run: Run) -> None:
    """POST one payout batch until it is answered (the same merchant_order_ids each time, so a
    retry of a batch that was in fact taken replays it)."""
    deadline = time.monotonic() + 90
    while True:
        try:
            resp = await client.post("/v1/payout-batches", {"items": items})
            run.statuses[resp.status] = run.statuses.get(resp.status, 0) + 1
            if resp.status == 200:
                body = resp.json()
                assert body["accepted"] == len(items), body["items"][:2]
                run.acked |= {item["payout"]["id"] for item in body["items"]}
                return
            assert resp.status in RETRYABLE, (resp.status, resp.body)
        except (aiohttp.ClientError, TimeoutError):
            run.statuses[0] = run.statuses.get(0, 0) + 1
        assert time.monotonic() < deadline, "the gateway did not come back"
        run.retries += 1
        # Retry once the gateway says it is ready again (its stores answer).
        await wait_until(lambda: _ready(client), bool, timeout_s=deadline - time.monotonic())


async def _ready(client: MerchantClient) -> bool:
    try:
        return (await client.get("/readyz")).status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


async def merchants(info: dict[str, Any]) -> list[MerchantClient]:
    async with AdminClient(info["gateway_url"], info["admin_token"]) as admin:
        made = []
        limit = {"rps": 10_000, "burst": 10_000}
        for fields in ({"funding_mode": "prefunded"},
                       {"funding_mode": "advance", "advance_limit": 1_000_000_000}):  # fmt: skip
            m = await admin.create_merchant(
                name="Crash Test", fee_fixed=50, rate_limit=limit, **fields
            )
            if fields["funding_mode"] == "prefunded":
                resp = await admin.credit(m["id"], 1_000_000_000, f"seed-{m['id']}")
                assert resp.status == 201, resp.body
            made.append(m)
    return [MerchantClient(info["gateway_url"], m["id"], m["secret"]) for m in made]


async def payout_rows(info: dict[str, Any], ids: set[str]) -> dict[str, dict[str, Any]]:
    conn = await asyncpg.connect(info["database_url"])
    try:
        rows = await conn.fetch(
            "SELECT id, status, failure_code FROM payouts WHERE id = ANY($1::text[])", sorted(ids)
        )
    finally:
        await conn.close()
    return {r["id"]: dict(r) for r in rows}


async def crash_run(system: System, name: str, tag: str) -> dict[str, Any]:
    info = system.info
    run = Run()
    clients = await merchants(info)
    killed: dict[str, float] = {}

    async def drive(client: MerchantClient, n: int) -> None:
        for b in range(BATCHES_PER_MERCHANT):
            items = spread_payouts(BATCH, f"{tag}{n}{b:02d}")
            await submit_until_acked(client, items, run)

    async def inject() -> None:
        await wait_until(lambda: _count(run), lambda n: n >= KILL_AFTER, timeout_s=60)
        old = await asyncio.to_thread(faults.kill, system.state_dir, name)
        killed["at"] = time.monotonic()
        await asyncio.to_thread(faults.wait_restarted, system.state_dir, name, old)
        killed["back"] = time.monotonic()

    try:
        for c in clients:
            await c.__aenter__()
        await asyncio.gather(inject(), *(drive(c, n) for n, c in enumerate(clients)))
    finally:
        for c in clients:
            await c.close()
    assert len(run.acked) == BATCH * BATCHES_PER_MERCHANT * len(clients)

    async def open_rows() -> int:
        try:
            rows = await payout_rows(info, run.acked)
        except (OSError, asyncpg.PostgresError):
            return -1  # the database is still coming back
        return sum(1 for r in rows.values() if r["status"] in ("accepted", "processing"))

    await wait_until(open_rows, lambda n: n == 0, timeout_s=FINAL_BOUND_S, interval_s=0.5)
    final_after_s = time.monotonic() - killed["back"]
    rows = await payout_rows(info, run.acked)
    assert set(rows) == run.acked, "an acknowledged payout was lost"

    async with aiohttp.ClientSession() as http:
        async with http.get(f"{info['bank_sim_url']}/sim/records") as resp:
            records = [r for r in orjson.loads(await resp.read())["data"] if r["ref"] in run.acked]
        async with AdminClient(info["gateway_url"], info["admin_token"]) as admin:
            check = (await admin.get("/admin/ledger/check")).json()
    assert all(r["submissions"] == 1 for r in records), "a payout was submitted twice"
    bank_paid = {r["ref"] for r in records if r["status"] in ("succeeded", "returned")}
    gateway_paid = {pid for pid, r in rows.items() if r["status"] in ("succeeded", "returned")}
    assert bank_paid == gateway_paid, "the bank's paid set differs from the gateway's"
    received = {r["ref"] for r in records}
    no_record = {pid for pid, r in rows.items() if r["failure_code"] == "bank_no_record"}
    assert not no_record & received, "failed bank_no_record for a payment the bank had"
    assert check["ok"], [c for c in check["checks"] if not c["ok"]]
    mix: dict[str, int] = {}
    for r in rows.values():
        mix[r["status"]] = mix.get(r["status"], 0) + 1
    figures = {
        "killed": name,
        "acknowledged": len(run.acked),
        "lost": 0,
        "submitted_twice": 0,
        "paid": len(gateway_paid),
        "statuses": mix,
        "bank_no_record": len(no_record),
        "client_retries": run.retries,
        "answers": {str(k): v for k, v in sorted(run.statuses.items())},
        "down_s": round(killed["back"] - killed["at"], 2),
        "all_final_after_restart_s": round(final_after_s, 1),
    }
    print("crash figures:", orjson.dumps(figures).decode())
    return figures


async def _count(run: Run) -> int:
    return len(run.acked)


KILLED = ["gateway", "worker", "bank-sim", "postgres", "redis"]


@pytest.mark.parametrize("name", KILLED)
async def test_sigkill_mid_run_loses_nothing_and_pays_once(system: System, name: str) -> None:
    # Payee account numbers are digits: the tag is the fault's index.
    figures = await crash_run(system, name, str(KILLED.index(name) + 1))
    assert figures["all_final_after_restart_s"] < FINAL_BOUND_S
    if name in ("worker", "bank-sim", "webhook-sink"):
        # Background processes: the merchant's requests are served all along.
        assert set(figures["answers"]) == {"200"}, figures["answers"]
