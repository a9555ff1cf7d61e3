"""The console's merchant and notification actions over HTTP, each audited in its
transaction (SPEC 17), the other `/admin` actions' audit rows, and `paygate operator add`."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from gateway.operators import repo
from gateway.settings import Settings
from tests.console_http import add_operator, signed_in
from tests.harness import LiveGateway, live_gateway
from tests.payloads import payout_body

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def gw(settings: Settings) -> AsyncIterator[LiveGateway]:
    async with live_gateway(settings) as g:
        await add_operator(g, "ada", "admin", "ada-password")
        await add_operator(g, "otto", "operator", "otto-password")
        yield g


async def audit_rows(gw: LiveGateway, object_id: str) -> list[tuple[str, str, object, object]]:
    conn = await gw.db()
    try:
        rows = await conn.fetch(
            """SELECT action, operator_name, before, after FROM operator_actions
               WHERE object_id = $1 ORDER BY id""",
            object_id,
        )
    finally:
        await conn.close()
    return [(r["action"], r["operator_name"], r["before"], r["after"]) for r in rows]


async def test_an_admin_changes_a_merchants_line_rate_and_status(gw: LiveGateway) -> None:
    m, client = await gw.merchant(1_000, funding_mode="advance", advance_limit=10_000)
    base = f"/console/merchants/{m['id']}"
    async with signed_in(gw, "ada", "ada-password") as ada:
        assert await ada.post(f"{base}/advance-limit", {"advance_limit": "20000"}) == 303
        assert await ada.post(f"{base}/rate-limit", {"rps": "7", "burst": "9"}) == 303
        assert await ada.post(f"{base}/suspend", {"reason": "KYC review"}) == 303
        assert await ada.post(f"{base}/advance-limit", {"advance_limit": "-1"}) == 400
        status, page = await ada.get(base)
        assert status == 200 and "suspended" in page and "7/s, burst 9" in page
    refused = await client.post("/v1/payouts", payout_body(100))
    assert refused.status == 403 and refused.error_code == "merchant_suspended"
    async with signed_in(gw, "ada", "ada-password") as ada:
        assert await ada.post(f"{base}/resume", {}) == 303
    merchant = (await gw.admin.get(f"/admin/merchants/{m['id']}")).json()
    assert (merchant["advance_limit"], merchant["rate_limit"], merchant["status"]) == (
        20_000, {"rps": 7, "burst": 9}, "active"
    )  # fmt: skip
    changes = [(a, who, b, c) for a, who, b, c in await audit_rows(gw, m["id"])
               if a == "merchant.change"]  # fmt: skip
    assert changes == [
        ("merchant.change", "ada", {"advance_limit": 10_000}, {"advance_limit": 20_000}),
        ("merchant.change", "ada", {"rate_limit": {"rps": 10_000, "burst": 10_000}},
         {"rate_limit": {"rps": 7, "burst": 9}}),
        ("merchant.change", "ada", {"status": "active"}, {"status": "suspended"}),
        ("merchant.change", "ada", {"status": "suspended"}, {"status": "active"}),
    ]  # fmt: skip


async def test_an_operator_may_not_credit_and_may_redeliver(gw: LiveGateway) -> None:
    m, client = await gw.merchant(100_000)
    payout = (await client.post("/v1/payouts", payout_body(1_000))).json()
    conn = await gw.db()
    try:
        event_id = await conn.fetchval(
            "SELECT id FROM outbox_events WHERE object_id = $1 ORDER BY sequence LIMIT 1",
            payout["id"],
        )
    finally:
        await conn.close()
    async with signed_in(gw, "otto", "otto-password") as otto:
        form = {"amount_fen": "100", "reference": "r-1"}
        assert await otto.post(f"/console/merchants/{m['id']}/credit", form) == 403
        status, page = await otto.get(f"/console/merchants/{m['id']}")
        assert status == 200 and ">Credit</button>" not in page
        assert await otto.post(f"/console/events/{event_id}/redeliver", {}) == 303
    assert [a for a, *_ in await audit_rows(gw, event_id)] == ["event.redeliver"]
    assert (await client.get("/v1/balance")).json()["available"] < 100_000  # no credit


async def test_other_admin_actions_are_audited_as_the_token(gw: LiveGateway) -> None:
    assert (await gw.admin.post("/admin/blocklist", {"account_no": "6222000011112222",
                                                     "reason": "fraud"})).status == 201  # fmt: skip
    assert (await gw.admin.delete("/admin/blocklist/6222000011112222")).status == 204
    assert (await gw.admin.post("/admin/clock/advance", {"advance_s": 60})).status == 200
    assert (await gw.admin.patch("/admin/dispatch", {"paused": True})).status == 200
    assert [(a, who) for a, who, *_ in await audit_rows(gw, "6222000011112222")] == [
        ("blocklist.add", "admin-token"), ("blocklist.remove", "admin-token")
    ]  # fmt: skip
    assert [a for a, *_ in await audit_rows(gw, "sim")] == ["clock.advance"]
    assert [(a, b, c) for a, _, b, c in await audit_rows(gw, "all")] == [
        ("dispatch.pause", {"paused": False}, {"paused": True})
    ]


async def test_operator_add_prints_a_one_time_password_or_reads_one(
    database_url: str, tmp_path: Path
) -> None:
    env = {**os.environ, "PAYGATE_DATABASE_URL": database_url,
           "PAYGATE_STATE_DIR": str(tmp_path), "PAYGATE_LOG_LEVEL": "WARNING"}  # fmt: skip

    async def add(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "gateway", "operator", "add", *args]
        return await asyncio.to_thread(subprocess.run, cmd, env=env, cwd=ROOT,
                                       capture_output=True, text=True, timeout=60)  # fmt: skip

    made = await add("alice", "--role", "approver")
    assert made.returncode == 0, made.stderr
    password = made.stdout.strip().rsplit(" ", 1)[1]
    assert "one-time password" in made.stdout and len(password) >= 16
    secret = tmp_path / "pw"
    secret.write_text("bob-says-hello\n")
    assert (await add("bob", "--role", "viewer", "--password-file", str(secret))).returncode == 0
    again = await add("alice", "--role", "viewer")
    assert again.returncode == 2 and "exists" in again.stderr
    assert (await add("carol", "--role", "root")).returncode == 2  # argparse refuses the role
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    try:
        alice = await repo.check_login(pool, "alice", password)
        bob = await repo.check_login(pool, "bob", "bob-says-hello")
        assert alice is not None and alice.role == "approver"
        assert bob is not None and bob.role == "viewer"
        assert await repo.check_login(pool, "alice", "bob-says-hello") is None
    finally:
        await pool.close()


async def test_an_admin_adds_an_operator_who_then_signs_in(gw: LiveGateway) -> None:
    async with signed_in(gw, "otto", "otto-password") as otto:
        assert await otto.post("/console/operators", {"name": "eve", "role": "admin"}) == 403
        status, page = await otto.get("/console/operators")
        assert status == 200 and "Add operator" not in page
    async with signed_in(gw, "ada", "ada-password") as ada:
        csrf = await ada.csrf("/console/operators")
        form = {"name": "carol", "role": "approver", "csrf": csrf}
        async with ada.http.post(gw.url + "/console/operators", data=form) as resp:
            assert resp.status == 201
            page = await resp.text()
        found = re.search(r'data-field="password">([^<]+)<', page)
        assert found is not None, page[-2000:]
        again = {"name": "carol", "role": "viewer", "csrf": csrf}
        async with ada.http.post(gw.url + "/console/operators", data=again) as resp:
            assert resp.status == 400
    async with signed_in(gw, "carol", found.group(1)) as carol:
        status, page = await carol.get("/console/reviews")
        assert status == 200 and "carol · approver" in page
    conn = await gw.db()
    try:
        action = await conn.fetchrow(
            "SELECT operator_name, after FROM operator_actions WHERE action = 'operator.add'"
        )
    finally:
        await conn.close()
    assert action["operator_name"] == "ada"
    assert action["after"] == {"name": "carol", "role": "approver"}


async def test_merchants_are_listed_by_name_and_status(gw: LiveGateway) -> None:
    a, _ = await gw.merchant(name="Alpha 甲")
    b, _ = await gw.merchant(name="Beta 乙", status="suspended")
    async with signed_in(gw, "otto", "otto-password") as otto:
        _, page = await otto.get("/console/merchants?name=alpha")
        assert a["id"] in page and b["id"] not in page
        _, page = await otto.get("/console/merchants?status=suspended")
        assert b["id"] in page and a["id"] not in page
