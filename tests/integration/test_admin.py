"""Operator endpoints: token, merchants (secret shown once), journaled credits, ledger check."""

import shutil
from pathlib import Path
from typing import Any

import asyncpg

from gateway.client import AdminClient
from gateway.notifications.event_types import DEFAULT_NOTIFY_EVENTS
from gateway.storage.migrate import migrate, migration_files
from tests.harness import LiveGateway, drop_database, unique_name, with_database
from tests.payloads import payout_body


async def test_admin_routes_need_the_token(gateway: LiveGateway) -> None:
    for token in ("", "wrong-token"):
        async with AdminClient(gateway.url, token) as admin:
            resp = await admin.get("/admin/merchants")
        assert resp.status == 401
        assert resp.error_code == "unauthorized"


async def test_created_merchant_shows_secret_once_with_defaults(gateway: LiveGateway) -> None:
    created = await gateway.admin.create_merchant(name="Acme")
    assert len(created["secret"]) >= 32
    assert created["funding_mode"] == "prefunded"
    assert created["rate_limit"] == {"rps": 100, "burst": 200}
    assert created["review_threshold"] is None
    fetched = (await gateway.admin.get(f"/admin/merchants/{created['id']}")).json()
    assert "secret" not in fetched
    assert fetched["name"] == "Acme"
    listed = (await gateway.admin.get("/admin/merchants")).json()
    assert [m["id"] for m in listed["data"]] == [created["id"]]
    assert all("secret" not in m for m in listed["data"])


async def test_merchant_list_pages_with_a_cursor(gateway: LiveGateway) -> None:
    ids = [(await gateway.admin.create_merchant(name=f"M{i}"))["id"] for i in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        path = "/admin/merchants?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = (await gateway.admin.get(path)).json()
        seen += [m["id"] for m in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids)


async def test_patch_changes_only_given_fields(gateway: LiveGateway) -> None:
    m = await gateway.admin.create_merchant(name="Acme", fee_bps=5)
    resp = await gateway.admin.patch(
        f"/admin/merchants/{m['id']}", {"rate_limit": {"rps": 7, "burst": 9}}
    )
    assert resp.status == 200
    assert resp.json()["rate_limit"] == {"rps": 7, "burst": 9}
    assert resp.json()["fee_bps"] == 5
    missing = await gateway.admin.patch("/admin/merchants/m_missing", {"name": "x"})
    assert missing.status == 404


async def test_notify_events_are_set_at_creation_and_by_patch(gateway: LiveGateway) -> None:
    m = await gateway.admin.create_merchant(
        name="Acme", notify_events=["payout.failed", "b2b.cleared", "payout.failed"]
    )
    assert m["notify_events"] == ["payout.failed", "b2b.cleared"]  # each type once
    path = f"/admin/merchants/{m['id']}"
    resp = await gateway.admin.patch(path, {"notify_events": ["*"]})
    assert resp.status == 200, resp.body
    assert resp.json()["notify_events"] == ["*"]
    refused = await gateway.admin.patch(path, {"notify_events": ["payout.accepted", "nope"]})
    assert refused.status == 400
    assert refused.json()["error"]["code"] == "invalid_request"
    assert refused.json()["error"]["field"] == "notify_events"
    assert (await gateway.admin.get(path)).json()["notify_events"] == ["*"]
    # a merchant that says nothing gets the final events
    assert (await gateway.admin.create_merchant(name="Plain"))["notify_events"] == list(
        DEFAULT_NOTIFY_EVENTS
    )


async def test_default_notify_events_are_spec_11s_final_events(gateway: LiveGateway) -> None:
    spec_11 = ["payout.succeeded", "payout.failed", "payout.returned", "payout.rejected",
               "payout.review_pending", "b2b.cleared", "b2b.failed", "b2b.reversed",
               "collection.succeeded", "collection.failed"]  # fmt: skip
    assert list(DEFAULT_NOTIFY_EVENTS) == spec_11
    assert (await gateway.admin.create_merchant(name="Plain"))["notify_events"] == spec_11


async def test_merchants_left_on_the_old_default_get_collection_events(
    storage: Any, tmp_path: Path
) -> None:
    """Migration 0014: a merchant whose notify_events is exactly the old default (it never
    chose) gets the new one; a merchant that chose keeps its choice."""
    conn = await asyncpg.connect(with_database(storage.server_url, "postgres"))
    name = unique_name("paygate_m13")
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    url = with_database(storage.server_url, name)
    try:
        db = await asyncpg.connect(url)
        try:
            for number, path in migration_files():
                if number <= 13:
                    shutil.copy(path, tmp_path)
            await migrate(db, directory=tmp_path)
            await db.execute(
                """INSERT INTO merchants (id, name, secret, funding_mode, max_amount_fen,
                       daily_amount_fen, daily_count, rate_limit_rps, rate_limit_burst,
                       notify_events)
                   VALUES ('m_plain', 'P', 's', 'prefunded', 1, 1, 1, 1, 1, DEFAULT),
                          ('m_chose', 'C', 's', 'prefunded', 1, 1, 1, 1, 1,
                           ARRAY['payout.failed'])"""
            )
            await migrate(db)
            got = dict(await db.fetch("SELECT id, notify_events FROM merchants ORDER BY id"))
        finally:
            await db.close()
    finally:
        await drop_database(with_database(storage.server_url, "postgres"), name)
    assert got == {"m_chose": ["payout.failed"], "m_plain": list(DEFAULT_NOTIFY_EVENTS)}


async def test_column_default_is_the_documented_notify_events(db: asyncpg.Connection) -> None:
    # Merchants created before notify_events existed got the column's default.
    got = await db.fetchval(
        """INSERT INTO merchants (id, name, secret, funding_mode, max_amount_fen,
               daily_amount_fen, daily_count, rate_limit_rps, rate_limit_burst)
           VALUES ('m_old', 'Old', 's', 'prefunded', 1, 1, 1, 1, 1) RETURNING notify_events"""
    )
    assert got == list(DEFAULT_NOTIFY_EVENTS)


async def test_credit_is_journaled_balanced_and_shows_in_balance(
    gateway: LiveGateway, db: asyncpg.Connection
) -> None:
    m, client = await gateway.merchant()
    resp = await gateway.admin.credit(m["id"], 123_45, "wire-1")
    assert resp.status == 201
    credit_id = resp.json()["id"]
    postings = await db.fetch(
        """SELECT p.account, p.amount_fen FROM postings p
           JOIN journal_entries e ON e.id = p.entry_id WHERE e.ref_id = $1""",
        credit_id,
    )
    assert sum(p["amount_fen"] for p in postings) == 0
    assert {p["account"]: p["amount_fen"] for p in postings} == {
        f"{m['id']}:available": 123_45,
        "platform:deposits": -123_45,
    }
    balance = (await client.get("/v1/balance")).json()
    assert balance["available"] == 123_45
    assert balance["spendable"] == 123_45
    assert (await gateway.ledger_ok())["ok"] is True


async def test_credit_reference_is_idempotent(gateway: LiveGateway) -> None:
    m, client = await gateway.merchant()
    first = await gateway.admin.credit(m["id"], 500, "ref-1")
    again = await gateway.admin.credit(m["id"], 500, "ref-1")
    other = await gateway.admin.credit(m["id"], 501, "ref-1")
    assert (first.status, again.status, other.status) == (201, 200, 409)
    assert again.json()["id"] == first.json()["id"]
    assert other.error_code == "idempotency_conflict"
    assert (await client.get("/v1/balance")).json()["available"] == 500


async def test_credit_to_unknown_merchant_is_404(gateway: LiveGateway) -> None:
    resp = await gateway.admin.credit("m_missing", 500, "ref-1")
    assert resp.status == 404


async def test_ledger_check_lists_every_invariant(gateway: LiveGateway) -> None:
    data = await gateway.ledger_ok()
    names = {c["name"] for c in data["checks"]}
    assert {
        "entries_sum_to_zero",
        "cached_balances_equal_postings",
        "prefunded_available_not_negative",
        "advance_used_within_limit",
        "advance_pool_within_cap",
        "payouts_have_one_ledger_outcome",
    } <= names
    assert data["ok"] is True


async def test_ledger_check_detects_a_corrupted_cached_balance(
    gateway: LiveGateway, db: asyncpg.Connection
) -> None:
    m, _ = await gateway.merchant(credit_fen=1000)
    await db.execute(
        "UPDATE merchant_balances SET available_fen = 999 WHERE merchant_id = $1", m["id"]
    )
    data = await gateway.ledger_ok()
    assert data["ok"] is False
    bad = {c["name"]: c["violations"] for c in data["checks"] if not c["ok"]}
    assert bad == {"cached_balances_equal_postings": 1}


async def test_ledger_check_detects_an_open_payout_missing_from_the_work_queue(
    gateway: LiveGateway, db: asyncpg.Connection
) -> None:
    _, client = await gateway.merchant(credit_fen=100_000)
    resp = await client.post("/v1/payouts", payout_body(1_000))
    assert resp.status == 201, resp.body
    assert (await gateway.ledger_ok())["ok"]
    await db.execute("DELETE FROM payout_queue WHERE payout_id = $1", resp.json()["id"])
    data = await gateway.ledger_ok()
    bad = {c["name"]: c["violations"] for c in data["checks"] if not c["ok"]}
    assert bad == {"open_payouts_are_queued": 1}
