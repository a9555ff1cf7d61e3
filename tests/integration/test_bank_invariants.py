"""The bank invariant run (SPEC 14, issue 4): thousands of payouts against the fault-heavy
profile — sync timeouts, resets, duplicate, reordered, lost and late callbacks, returns — end
with every payout final, the bank's paid set equal to the gateway's, nothing paid twice, and
the ledger's invariants all holding."""

from __future__ import annotations

import itertools
from typing import Any

from gateway.client import MerchantClient
from gateway.settings import Settings
from tests.banks import FINAL_STATUSES, bank_world
from tests.harness import wait_until
from tests.payloads import payout_body

PAYOUTS_PER_MERCHANT = 500
BANK_CODES = ["102100099996", "103100000019", "104100000017", "105100000018", "308584000013",
              "313100000013"]  # fmt: skip


def batch(n: int, tag: str) -> list[dict[str, Any]]:
    codes = itertools.cycle(BANK_CODES)
    return [
        payout_body(
            1_000 + i,
            order_id=f"{tag}-{i}",
            payee={
                "account_no": f"6217{tag}{i:08d}",
                "account_name": "Wang Wu",
                "bank_code": next(codes),
                "account_type": "personal",
            },
        )
        for i in range(n)
    ]


async def test_fault_heavy_run_ends_final_paid_once_and_balanced(settings: Settings) -> None:
    async with bank_world(settings, preset="fault_heavy", seed=20261125) as world:
        clients: list[MerchantClient] = []
        for _ in range(2):
            _, c = await world.gw.merchant(1_000_000_000, fee_fixed=50, fee_bps=10)
            clients.append(c)
            _, c = await world.gw.merchant(0, funding_mode="advance",
                                           advance_limit=1_000_000_000, fee_fixed=30)  # fmt: skip
            clients.append(c)
        accepted: set[str] = set()
        for n, client in enumerate(clients):
            resp = await client.post("/v1/payout-batches",
                                     {"items": batch(PAYOUTS_PER_MERCHANT, f"{n}")})  # fmt: skip
            assert resp.status == 200, resp.body
            body = resp.json()
            assert body["accepted"] == PAYOUTS_PER_MERCHANT, body["refused"]
            accepted |= {item["payout"]["id"] for item in body["items"]}
        assert len(accepted) >= 2_000

        conn = await world.gw.db()
        try:

            async def open_count() -> int:
                n: int = await conn.fetchval(
                    "SELECT count(*) FROM payouts WHERE NOT (status = ANY($1::text[]))",
                    sorted(FINAL_STATUSES),
                )
                return n

            await wait_until(open_count, lambda n: n == 0, timeout_s=240, interval_s=0.5)
            rows = await conn.fetch("SELECT id, status, failure_code FROM payouts")
        finally:
            await conn.close()

        gateway = {r["id"]: r["status"] for r in rows}
        assert set(gateway) == accepted
        records = await world.records()
        bank_paid = {r["ref"] for r in records if r["status"] in ("succeeded", "returned")}
        gateway_paid = {pid for pid, s in gateway.items() if s in ("succeeded", "returned")}
        assert bank_paid == gateway_paid
        assert all(r["submissions"] == 1 for r in records), "a payout was submitted twice"
        assert {r["ref"] for r in records} <= accepted
        # Every failure the bank reported is a failure here too (the rest never reached it).
        bank_failed = {r["ref"] for r in records if r["status"] == "failed"}
        assert all(gateway[ref] == "failed" for ref in bank_failed)
        statuses = {s for s in gateway.values()}
        assert {"succeeded", "failed"} <= statuses
        check = await world.gw.ledger_ok()
        assert check["ok"], [c for c in check["checks"] if not c["ok"]]
        stats = await world.sim_get("/sim/stats")
        print("bank stats:", stats)  # shown with -s: the faults this run went through
