"""Property: any sequence of credits, payouts and outcomes, transfers, freezes and unfreezes,
withdrawals and collections with their bank outcomes (SPEC 16) keeps the ledger check green and
conserves each merchant's money (credits + collected + advance = available + held + paid out −
returned + what its customers' accounts hold). Runs the real accept / transition / credit /
transfer / freeze / collection code against real PostgreSQL."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from gateway.accounts import customers, freezes, repo
from gateway.accounts.transfers import item, transfer_batch
from gateway.collection.create import create_collection
from gateway.collection.state import CollectionEvent
from gateway.collection.transitions import CollectionWord, apply_words
from gateway.contract.requests import (
    AccountOpen,
    CollectionRequest,
    CustomerCreate,
    FreezeRequest,
    Payee,
    Payer,
    PayoutRequest,
    TransferRequest,
    UnfreezeRequest,
)
from gateway.ledger.check import run_checks
from gateway.ledger.credits import apply_credit
from gateway.merchants import model as mmodel
from gateway.merchants import repo as merchants_repo
from gateway.payouts.accept import accept_batch
from gateway.payouts.accept_fast import accept_fast
from gateway.payouts.model import AcceptItem, request_hash
from gateway.payouts.state import Event
from gateway.payouts.transitions import PayoutEvent, apply_events
from gateway.storage.pools import init_connection
from protocol.errors import ApiError
from protocol.ids import new_id, new_secret
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
    # In the order they happened: drawing from them must not depend on random ids' order.
    succeeded: dict[str, None] = field(default_factory=dict)
    settlement: str = ""
    # Personal accounts: id -> [available, frozen]; active freezes: id -> [account, remaining].
    accounts: dict[str, list[int]] = field(default_factory=dict)
    freezes: dict[str, list[Any]] = field(default_factory=dict)
    collected: int = 0  # debits that succeeded (money in from payers' cards)
    owed: dict[str, int] = field(default_factory=dict)  # payer -> fronted, not yet repaid

    def endpoints(self) -> list[str]:
        return [self.settlement, *self.accounts]

    def spendable(self, account: str) -> int:
        """What a transfer may take from an account: its available (the merchant's, for the
        settlement account)."""
        return self.available if account == self.settlement else self.accounts[account][0]


def _open_accounts(conn: asyncpg.Connection, run: Any, m: MerchantModel) -> None:
    """One personal customer with a wallet, a sub-account under it, and a second wallet."""
    _, cus = run(customers.create(conn, m.id, CustomerCreate(new_id("u"), "Prop User")))
    _, top = run(repo.open_account(conn, m.id, AccountOpen(cus["id"], "wallet", "CNY")))
    _, sub = run(repo.open_account(conn, m.id, AccountOpen(cus["id"], "loan", "CNY", top["id"])))
    _, other = run(repo.open_account(conn, m.id, AccountOpen(cus["id"], "savings", "CNY")))
    for acc in (top, sub, other):
        m.accounts[acc["id"]] = [0, 0]
    settlement = "SELECT id FROM customer_accounts WHERE merchant_id = $1 AND kind = 'merchant'"
    m.settlement = run(conn.fetchval(settlement, m.id))


def _merchant(mode: str) -> mmodel.Merchant:
    return mmodel.Merchant(
        id=new_id("m"), name="prop", secret=new_secret(), status="active", funding_mode=mode,
        currency="CNY", advance_limit_fen=30_000 if mode == "advance" else 0, fee_fixed_fen=7,
        fee_bps=13, max_amount_fen=10**9, daily_amount_fen=10**12, daily_count=10**6,
        rate_limit_rps=1, rate_limit_burst=1, review_threshold_fen=None, notify_url=None,
    )  # fmt: skip


PAYERS = ("6217000000001", "6217000000002")


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
                _open_accounts(conn, run, self.merchants[-1])
                self._seed(self.merchants[-1])

        def _seed(self, m: MerchantModel) -> None:
            """Start with money everywhere, so transfers, freezes and claims happen early."""
            run(apply_credit(conn, m.id, 100_000, "CNY", new_id("ref")))
            m.available += 100_000
            m.credits += 100_000
            items = [item(m.id, TransferRequest(new_id("t"), m.settlement, acc, 20_000))
                     for acc in m.accounts]  # fmt: skip
            assert {r.http_status for r in run(transfer_batch(conn, items))} == {201}
            for acc in m.accounts:
                m.accounts[acc][0] += 20_000
                m.available -= 20_000
            self._freeze(m, next(iter(m.accounts)), 5_000)
            if len(self.merchants) == 2:  # the advance merchant, just added
                # Each example fronts one failed debit and has it repaid, whatever it draws
                # later (the coverage check below asserts both kinds ran).
                self._collect(1, m.settlement, PAYERS[0], 1_000, front=True, succeed=False)
                self._collect(1, m.settlement, PAYERS[0], 1_500, front=False, succeed=True)

        @rule(i=st.integers(0, 1), amount=st.integers(1, 200_000))
        def credit(self, i: int, amount: int) -> None:
            m = self.merchants[i]
            run(apply_credit(conn, m.id, amount, "CNY", new_id("ref")))
            m.available += amount
            m.credits += amount

        @rule(i=st.integers(0, 1), amounts=st.lists(st.integers(1, 20_000), min_size=1,
                                                   max_size=4), data=st.data())  # fmt: skip
        def payouts(self, i: int, amounts: list[int], data: st.DataObject) -> None:
            """Payouts, some of them withdrawals (提现) from a personal account."""
            m = self.merchants[i]
            items = []
            for amount in amounts:
                source = data.draw(st.sampled_from([None, *m.accounts]))
                req = PayoutRequest(new_id("o"), amount, "CNY", PAYEE)
                if source is not None:
                    req = PayoutRequest(new_id("o"), amount, "CNY", PAYEE, account_id=source)
                items.append(AcceptItem(m.id, req, request_hash(req)))
            now = datetime.now(UTC)
            # As the gateway does: the fast path (accept_fast.py) when drawn, the locked path
            # when it is not or when the fast one declines the batch.
            results = None
            if data.draw(st.booleans(), label="fast"):
                results = run(accept_fast(conn, items, now, NO_VELOCITY_LIMIT))
            if results is None:
                results = run(accept_batch(conn, items, now, NO_VELOCITY_LIMIT))
            for result in results:
                if result.http_status != 201:
                    assert result.error is not None
                    assert result.error.code in ("insufficient_funds", "advance_limit_exceeded",
                                                 "account_frozen_funds")  # fmt: skip
                    continue
                p = result.payout
                assert p is not None
                total = p["amount"] + p["fee"]
                if p["account_id"] is not None:
                    m.accounts[p["account_id"]][0] -= p["amount"]
                    assert m.accounts[p["account_id"]][0] >= 0
                    m.available += p["amount"]
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
            pid = data.draw(st.sampled_from(list(m.open)))
            p = m.open.pop(pid)
            total = p["amount"] + p["fee"]
            if data.draw(st.booleans()):
                run(apply_events(conn, [PayoutEvent(pid, Event.SUBMIT, bank_id="103"),
                                        PayoutEvent(pid, Event.SUCCEED)]))  # fmt: skip
                m.held -= total
                m.paid_out += total
                m.succeeded[pid] = None
            else:
                events = [PayoutEvent(pid, Event.FAIL, failure_code="account_frozen")]
                if data.draw(st.booleans()):
                    events.insert(0, PayoutEvent(pid, Event.SUBMIT, bank_id="103"))
                run(apply_events(conn, events))
                m.held -= total
                # The advance part goes back to the line as far as the line still carries it
                # (a collection may have repaid the line meanwhile); the rest to available.
                to_line = min(p["funding"]["advance"], m.advance_used)
                m.available += p["funding"]["balance"] + p["funding"]["advance"] - to_line
                m.advance_used -= to_line
                if p["account_id"] is not None:  # a withdrawal's amount goes back to it
                    m.available -= p["amount"]
                    m.accounts[p["account_id"]][0] += p["amount"]

        @rule(i=st.integers(0, 1), data=st.data())
        def bank_return(self, i: int, data: st.DataObject) -> None:
            m = self.merchants[i]
            if not m.succeeded:
                return
            pid = data.draw(st.sampled_from(list(m.succeeded)))
            m.succeeded.pop(pid, None)
            (applied,) = run(apply_events(conn, [PayoutEvent(pid, Event.RETURN)]))
            assert applied.applied
            back = applied.payout["account_id"]
            if back is None:
                m.available += applied.payout["amount"]
            else:
                m.accounts[back][0] += applied.payout["amount"]
            m.returned += applied.payout["amount"]

        @rule(i=st.integers(0, 1), data=st.data())
        def duplicate_outcome(self, i: int, data: st.DataObject) -> None:
            """A late or repeated event on a final payout changes nothing."""
            m = self.merchants[i]
            if not m.succeeded:
                return
            pid = data.draw(st.sampled_from(list(m.succeeded)))
            event = data.draw(st.sampled_from([Event.SUCCEED, Event.FAIL, Event.SUBMIT]))
            (applied,) = run(apply_events(conn, [PayoutEvent(pid, event)]))
            assert not applied.applied

        @rule(i=st.integers(0, 1), data=st.data())
        def transfers(self, i: int, data: st.DataObject) -> None:
            """A batch of transfers (some claim transfers), decided in order by the model too."""
            m = self.merchants[i]
            items, expected = [], []
            ends = m.endpoints()
            for _ in range(data.draw(st.integers(1, 4))):
                # Mostly from an account with money to move (available or a freeze's).
                held = {acc for acc, _ in m.freezes.values()}
                funded = [e for e in ends if m.spendable(e) > 0 or e in held]
                src = data.draw(st.sampled_from(funded or ends))
                dst = data.draw(st.sampled_from([e for e in ends if e != src]))
                claims = [f for f, (acc, _) in m.freezes.items() if acc == src]
                frz = data.draw(st.sampled_from([None, *claims])) if claims else None
                # Mostly what fits (so money spreads over the accounts), sometimes anything.
                room = m.freezes[frz][1] if frz is not None else m.spendable(src)
                amount = data.draw(st.one_of(st.integers(1, max(1, room)),
                                             st.integers(1, 60_000)))  # fmt: skip
                items.append(item(m.id, TransferRequest(new_id("t"), src, dst, amount, frz)))
                fits = amount <= (m.freezes[frz][1] if frz is not None else m.spendable(src))
                expected.append(fits)
                if not fits:
                    continue
                if frz is not None:
                    m.freezes[frz][1] -= amount
                    if m.freezes[frz][1] == 0:
                        del m.freezes[frz]
                    m.accounts[src][1] -= amount
                elif src == m.settlement:
                    m.available -= amount
                else:
                    m.accounts[src][0] -= amount
                if dst == m.settlement:
                    m.available += amount
                else:
                    m.accounts[dst][0] += amount
            results = run(transfer_batch(conn, items))
            assert [r.http_status for r in results] == [201 if f else 422 for f in expected]

        @rule(i=st.integers(0, 1), data=st.data())
        def freeze(self, i: int, data: st.DataObject) -> None:
            m = self.merchants[i]
            funded = [a for a, (available, _) in m.accounts.items() if available > 0]
            acc = data.draw(st.sampled_from(funded or list(m.accounts)))
            amount = data.draw(st.one_of(st.integers(1, max(1, m.accounts[acc][0])),
                                         st.integers(1, 40_000)))  # fmt: skip
            self._freeze(m, acc, amount)

        def _freeze(self, m: MerchantModel, acc: str, amount: int) -> None:
            req = FreezeRequest(new_id("f"), acc, amount, "prop")
            try:
                status, frz = run(freezes.create_freeze(conn, m.id, req))
            except ApiError as exc:
                assert exc.code == "insufficient_funds" and amount > m.accounts[acc][0]
                return
            assert status == 201 and amount <= m.accounts[acc][0]
            m.accounts[acc][0] -= amount
            m.accounts[acc][1] += amount
            m.freezes[frz["id"]] = [acc, amount]

        @rule(i=st.integers(0, 1), data=st.data())
        def unfreeze(self, i: int, data: st.DataObject) -> None:
            m = self.merchants[i]
            if not m.freezes:
                return
            frz = data.draw(st.sampled_from(list(m.freezes)))
            acc, remaining = m.freezes[frz]
            amount = data.draw(st.one_of(st.none(), st.integers(1, remaining)))
            req = UnfreezeRequest(new_id("u"), amount)
            got = run(freezes.unfreeze(conn, m.id, frz, req))
            taken = remaining if amount is None else amount
            assert got["remaining"] == remaining - taken
            if data.draw(st.booleans()):  # a retry (its answer lost) releases nothing more
                again = run(freezes.unfreeze(conn, m.id, frz, req))
                assert orjson.dumps(again) == orjson.dumps(got)  # the same answer, as sent
            m.accounts[acc][0] += taken
            m.accounts[acc][1] -= taken
            m.freezes[frz][1] -= taken
            if m.freezes[frz][1] == 0:
                del m.freezes[frz]

        @rule(i=st.integers(0, 1), data=st.data())
        def claim(self, i: int, data: st.DataObject) -> None:
            """债权转让: part or all of a freeze to another account (personal or settlement)."""
            m = self.merchants[i]
            if not m.freezes:
                return
            frz = data.draw(st.sampled_from(list(m.freezes)))
            src, remaining = m.freezes[frz]
            dst = data.draw(st.sampled_from([e for e in m.endpoints() if e != src]))
            amount = data.draw(st.integers(1, remaining))
            req = TransferRequest(new_id("t"), src, dst, amount, frz)
            (result,) = run(transfer_batch(conn, [item(m.id, req)]))
            assert result.http_status == 201, result.error
            m.accounts[src][1] -= amount
            m.freezes[frz][1] -= amount
            if m.freezes[frz][1] == 0:
                del m.freezes[frz]
            if dst == m.settlement:
                m.available += amount
            else:
                m.accounts[dst][0] += amount

        @rule(i=st.integers(0, 1), data=st.data())
        def collection(self, i: int, data: st.DataObject) -> None:
            """代收 into an account (or the settlement account), then the bank's word: success
            repays what was fronted for the payer first; a failure with advance_on_failure is
            fronted from the advance line (the advance merchant's) when the line has room."""
            m = self.merchants[i]
            dst = data.draw(st.sampled_from(m.endpoints()))
            payer = data.draw(st.sampled_from(PAYERS))
            amount = data.draw(st.integers(1, 25_000))
            front = i == 1 and data.draw(st.booleans())
            succeed = data.draw(st.booleans())
            self._collect(i, dst, payer, amount, front, succeed, twice=data.draw(st.booleans()))

        def _collect(self, i: int, dst: str, payer: str, amount: int, front: bool,
                     succeed: bool, *, twice: bool = False) -> None:  # fmt: skip
            m = self.merchants[i]
            req = CollectionRequest(new_id("c"), dst, amount, "CNY",
                                    Payer(payer, "Zhao Liu", "103100000026"), front)  # fmt: skip
            status, col = run(create_collection(conn, m.id, 30_000 if i == 1 else 0, req))
            assert status == 201 and col["status"] == "pending"
            event = CollectionEvent.SUCCEED if succeed else CollectionEvent.FAIL
            words = [CollectionWord(col["id"], event, bank_id="103", failure_code="card_frozen")]
            if twice:  # the bank says it twice: the second changes nothing
                words.append(words[0])
            applied = run(apply_words(conn, words))
            assert [a.applied for a in applied] == [True, False][: len(words)]
            figures = "SELECT advanced_fen, repaid_fen FROM collections WHERE id = $1"
            done = run(conn.fetchrow(figures, col["id"]))
            got = amount
            if succeed:
                repay = min(amount, m.owed.get(payer, 0))
                assert done["repaid_fen"] == repay
                to_line = min(repay, m.advance_used)
                m.owed[payer] = m.owed.get(payer, 0) - repay
                m.advance_used -= to_line
                m.available += repay - to_line
                m.collected += amount
                got = amount - repay
            else:
                fits = front and amount <= 30_000 - m.advance_used
                assert done["advanced_fen"] == (amount if fits else 0)
                if not fits:
                    return
                m.owed[payer] = m.owed.get(payer, 0) + amount
                m.advance_used += amount
            if dst == m.settlement:
                m.available += got
            else:
                m.accounts[dst][0] += got

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
                rows = run(conn.fetch(
                    "SELECT account_id, available_fen, frozen_fen FROM account_balances"
                    " WHERE account_id = ANY($1::text[])", sorted(m.accounts)))  # fmt: skip
                assert {r["account_id"]: [r["available_fen"], r["frozen_fen"]] for r in rows} == (
                    m.accounts
                )
                in_accounts = sum(a + f for a, f in m.accounts.values())
                assert m.credits + m.collected + m.advance_used == (
                    m.available + m.held + m.paid_out - m.returned + in_accounts
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
        # The account rules did run: transfers (claims among them), freezes and unfreezes.
        counts = run(conn.fetchrow(
            """SELECT (SELECT count(*) FROM transfers) AS transfers,
                      (SELECT count(*) FROM transfers WHERE from_freeze IS NOT NULL) AS claims,
                      (SELECT count(*) FROM freezes WHERE released_fen > 0) AS unfrozen,
                      (SELECT count(*) FROM payouts WHERE account_id IS NOT NULL) AS withdrawals,
                      (SELECT count(*) FROM collections WHERE advanced_fen > 0) AS fronted,
                      (SELECT count(*) FROM collections WHERE repaid_fen > 0) AS repaid""",
        ))  # fmt: skip
        assert [k for k, v in counts.items() if v == 0] == [], dict(counts)
    finally:
        run(conn.close())
        run(drop_database(storage.admin_url, name))
        loop.close()
