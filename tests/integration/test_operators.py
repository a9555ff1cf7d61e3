"""Operators (SPEC 17): roles and passwords, the audit of every action in the transaction of
the change (the /admin API as the token), four eyes on large reviewed payouts."""

from __future__ import annotations

import stat
from pathlib import Path

import asyncpg
import pytest

from gateway.cli.operators import first_admin
from gateway.operators import actions, repo
from gateway.operators.model import Actor, may
from gateway.payouts.state import Event
from protocol.errors import Conflict
from tests.harness import LiveGateway
from tests.payloads import payout_body

FOUR_EYES = 5_000_000


def person(op: repo.Operator) -> Actor:
    return Actor(op.id, op.name, op.role, "console")


async def actions_of(db: asyncpg.Connection, object_id: str) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await db.fetch(
        "SELECT * FROM operator_actions WHERE object_id = $1 ORDER BY id", object_id
    )
    return rows


def test_roles_include_those_below() -> None:
    assert may("admin", "approver") and may("approver", "operator") and may("operator", "viewer")
    assert not may("viewer", "operator") and not may("operator", "approver")
    assert not may("approver", "admin")


async def test_passwords_are_hashed_and_checked(gateway: LiveGateway) -> None:
    conn = await gateway.db()
    try:
        await repo.add(conn, "alice", "approver", "correct horse")
        stored = await conn.fetchval("SELECT password_hash FROM operators WHERE name = 'alice'")
        assert stored.startswith("$argon2id$") and "correct horse" not in stored
        with pytest.raises(repo.OperatorExists):
            await repo.add(conn, "alice", "viewer", "another one")
        with pytest.raises(ValueError):
            await repo.add(conn, "bob", "root", "long enough")
    finally:
        await conn.close()
    pool = await asyncpg.create_pool(gateway.settings.database_url, min_size=1, max_size=1)
    try:
        found = await repo.check_login(pool, "alice", "correct horse")
        assert found is not None and found.role == "approver"
        assert await repo.check_login(pool, "alice", "wrong horse") is None
        assert await repo.check_login(pool, "nobody", "correct horse") is None
    finally:
        await pool.close()


async def test_admin_api_actions_are_audited_as_the_token(gateway: LiveGateway) -> None:
    m, client = await gateway.merchant(1_000_000)
    resp = await gateway.admin.patch(f"/admin/merchants/{m['id']}", {"advance_limit": 5_000})
    assert resp.status == 200
    again = await gateway.admin.credit(m["id"], 300, f"seed-{m['id']}-2")
    assert again.status == 201
    conn = await gateway.db()
    try:
        rows = await actions_of(conn, m["id"])
        assert [r["action"] for r in rows] == [
            "merchant.create", "merchant.credit", "merchant.change", "merchant.credit"
        ]  # fmt: skip
        assert {(r["operator_name"], r["via"]) for r in rows} == {("admin-token", "api")}
        assert rows[2]["before"] == {"advance_limit": 0}
        assert rows[2]["after"] == {"advance_limit": 5_000}
        assert rows[3]["after"]["available"] == rows[3]["before"]["available"] + 300
        assert all(r["sim_at"] is not None for r in rows)
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await conn.execute("DELETE FROM operator_actions")
    finally:
        await conn.close()
    assert (await client.get("/v1/balance")).json()["available"] == 1_000_300


async def test_large_payout_needs_two_different_approvers(gateway: LiveGateway) -> None:
    _, client = await gateway.merchant(20_000_000, review_threshold=1_000)
    big = (await client.post("/v1/payouts", payout_body(FOUR_EYES))).json()
    small = (await client.post("/v1/payouts", payout_body(FOUR_EYES - 1))).json()
    conn = await gateway.db()
    try:
        alice = person(await repo.add(conn, "alice", "approver", "password-a"))
        bob = person(await repo.add(conn, "bob", "approver", "password-b"))
        first = await actions.decide_review(conn, big["id"], Event.APPROVE, alice, None,
                                            FOUR_EYES, None)  # fmt: skip
        assert (first.approvals, first.needed, first.payout["status"]) == (1, 2, "review_pending")
        with pytest.raises(Conflict) as same:
            await actions.decide_review(conn, big["id"], Event.APPROVE, alice, None,
                                        FOUR_EYES, None)  # fmt: skip
        assert same.value.code == "same_approver"
        second = await actions.decide_review(conn, big["id"], Event.APPROVE, bob, None,
                                             FOUR_EYES, None)  # fmt: skip
        assert (second.approvals, second.payout["status"]) == (2, "accepted")
        one = await actions.decide_review(conn, small["id"], Event.APPROVE, alice, None,
                                          FOUR_EYES, None)  # fmt: skip
        assert (one.needed, one.payout["status"]) == (1, "accepted")
        rows = await actions_of(conn, big["id"])
        assert [(r["operator_name"], r["after"]["status"]) for r in rows] == [
            ("alice", "review_pending"), ("bob", "accepted")
        ]  # fmt: skip
    finally:
        await conn.close()


async def test_the_first_admin_is_made_once_and_its_password_kept_until_changed(
    gateway: LiveGateway, tmp_path: Path
) -> None:
    conn = await gateway.db()
    try:
        first = await first_admin(conn, tmp_path)
        kept = tmp_path / "console-admin.json"
        assert stat.S_IMODE(kept.stat().st_mode) == 0o600
        assert first["user"] == "admin" and first["password"] and len(first["password"]) >= 16
        assert await first_admin(conn, tmp_path) == first  # every later `up` shows it again
        await repo.set_password(conn, "admin", "changed-by-its-owner")
        assert await first_admin(conn, tmp_path) == {"user": "admin", "password": None}
        assert await conn.fetchval("SELECT count(*) FROM operators WHERE role = 'admin'") == 1
    finally:
        await conn.close()
