"""Property: any sequence of credits, payouts and outcomes keeps the ledger check green and
conserves each merchant's money (credits + advance = available + held + paid out − returned).
Runs the real accept / transition / credit code against real PostgreSQL."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from gateway.api.schemas import Payee, PayoutRequest
from gateway.ids import new_id, new_secret
from gateway.ledger.check import run_checks
from gateway.ledger.credits import apply_credit
from gateway.merchants import model as mmodel
from gateway.merchants import repo as merchants_repo
from gateway.payouts.accept import AcceptItem, accept_batch
from gateway.payouts.model import request_hash
from gateway.payouts.state import Event
from gateway.payouts.transitions import PayoutEvent, apply_events
from gateway.storage.pools import init_connection
from risk.rules import RiskRules
from tests.harness import create_database, drop_database, unique_name, with_database

NO_VELOCITY_LIMIT = RiskRules(payee_velocity_per_hour=10**9)
PAYEE = Payee("6222020200112233445", "Li Si", "103100000026", "personal")


@dataclass
class MerchantModel:
    id: str
    available: int = 0
    held: int = 0
    advance_used: int = 0
    credits: int = 0
    paid_out: int = 0
    returned: int = 0
    open: dict[str, dict[str, Any]] = field(default_factory=dict)
    succeeded: set[str] = field(default_factory=set)


def _merchant(mode: str) -> mmodel.Merchant:
    return mmodel.Merchant(
        id=new_id("m"), name="prop", secret=new_secret(), status="active", funding_mode=mode,
        currency="CNY", advance_limit_fen=30_000 if mode == "advance" else 0, fee_fixed_fen=7,
        fee_bps=13, max_amount_fen=10**9, daily_amount_fen=10**12, daily_count=10**6,
        rate_limit_rps=1, rate_limit_burst=1, review_threshold_fen=None, notify_url=None,
    )  # fmt: skip


def test_ledger_invariants_hold_over_random_operation_sequences(storage: Any) -> None:
    loop = asyncio.new_event_loop()
    name = unique_name("paygate_prop")
    loop.run_until_complete(create_database(storage.admin_url, name, storage.template))
    conn: asyncpg.Connection = loop.run_until_complete(
        asyncpg.connect(with_database(storage.server_url, name))
    )
    loop.run_until_complete(init_connection(conn))
    run = loop.run_until_complete

    class LedgerMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.merchants = []
            for mode in ("prefunded", "advance"):
                m = run(merchants_repo.insert(conn, _merchant(mode)))
                self.merchants.append(MerchantModel(m.id))

        @rule(i=st.integers(0, 1), amount=st.integers(1, 200_000))
        def credit(self, i: int, amount: int) -> None:
            m = self.merchants[i]
            run(apply_credit(conn, m.id, amount, "CNY", new_id("ref")))
            m.available += amount
            m.credits += amount

        @rule(i=st.integers(0, 1), amounts=st.lists(st.integers(1, 20_000), min_size=1,
                                                   max_size=4))  # fmt: skip
        def payouts(self, i: int, amounts: list[int]) -> None:
            m = self.merchants[i]
            items = []
            for amount in amounts:
                req = PayoutRequest(new_id("o"), amount, "CNY", PAYEE)
                items.append(AcceptItem(m.id, req, request_hash(req)))
            for result in run(accept_batch(conn, items, datetime.now(UTC), NO_VELOCITY_LIMIT)):
                if result.http_status != 201:
                    assert result.error is not None
                    assert result.error.code in ("insufficient_funds", "advance_limit_exceeded")
                    continue
                p = result.payout
                assert p is not None
                total = p["amount"] + p["fee"]
                assert p["funding"]["balance"] + p["funding"]["advance"] == total
                m.available -= p["funding"]["balance"]
                m.advance_used += p["funding"]["advance"]
                m.held += total
                m.open[p["id"]] = p

        @rule(i=st.integers(0, 1), data=st.data())
        def outcome(self, i: int, data: st.DataObject) -> None:
            m = self.merchants[i]
            if not m.open:
                return
            pid = data.draw(st.sampled_from(sorted(m.open)))
            p = m.open.pop(pid)
            total = p["amount"] + p["fee"]
            if data.draw(st.booleans()):
                run(apply_events(conn, [PayoutEvent(pid, Event.SUBMIT, bank_id="103"),
                                        PayoutEvent(pid, Event.SUCCEED)]))  # fmt: skip
                m.held -= total
                m.paid_out += total
                m.succeeded.add(pid)
            else:
                events = [PayoutEvent(pid, Event.FAIL, failure_code="account_frozen")]
                if data.draw(st.booleans()):
                    events.insert(0, PayoutEvent(pid, Event.SUBMIT, bank_id="103"))
                run(apply_events(conn, events))
                m.held -= total
                m.available += p["funding"]["balance"]
                m.advance_used -= p["funding"]["advance"]

        @rule(i=st.integers(0, 1), data=st.data())
        def bank_return(self, i: int, data: st.DataObject) -> None:
            m = self.merchants[i]
            if not m.succeeded:
                return
            pid = data.draw(st.sampled_from(sorted(m.succeeded)))
            m.succeeded.discard(pid)
            (applied,) = run(apply_events(conn, [PayoutEvent(pid, Event.RETURN)]))
            assert applied.applied
            m.available += applied.payout["amount"]
            m.returned += applied.payout["amount"]

        @rule(i=st.integers(0, 1), data=st.data())
        def duplicate_outcome(self, i: int, data: st.DataObject) -> None:
            """A late or repeated event on a final payout changes nothing."""
            m = self.merchants[i]
            if not m.succeeded:
                return
            pid = data.draw(st.sampled_from(sorted(m.succeeded)))
            event = data.draw(st.sampled_from([Event.SUCCEED, Event.FAIL, Event.SUBMIT]))
            (applied,) = run(apply_events(conn, [PayoutEvent(pid, event)]))
            assert not applied.applied

        @invariant()
        def balances_match_the_model_and_money_is_conserved(self) -> None:
            for m in self.merchants:
                row = run(conn.fetchrow(
                    "SELECT available_fen, held_fen, advance_used_fen FROM merchant_balances"
                    " WHERE merchant_id = $1", m.id))  # fmt: skip
                assert (row["available_fen"], row["held_fen"], row["advance_used_fen"]) == (
                    m.available,
                    m.held,
                    m.advance_used,
                )
                assert m.credits + m.advance_used == (
                    m.available + m.held + m.paid_out - m.returned
                )

        def teardown(self) -> None:
            results = run(run_checks(conn))
            assert all(r.ok for r in results), [r for r in results if not r.ok]

    try:
        run_state_machine_as_test(
            LedgerMachine,
            settings=settings(
                max_examples=40,
                stateful_step_count=40,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
                # The database outlives examples (shared rows such as the advance pool), so a
                # replayed example may draw differently: run a fixed set, keep no replay store.
                derandomize=True,
                database=None,
            ),
        )
        total = run(conn.fetchval("SELECT coalesce(sum(amount_fen), 0) FROM postings"))
        assert total == 0
    finally:
        run(conn.close())
        run(drop_database(storage.admin_url, name))
        loop.close()
