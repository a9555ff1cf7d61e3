"""Batches both ways, without HTTP: the batch desk answers each item as the bank would answer it
alone, and the callback queue gathers items into batches without reordering a sender's items."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec
import orjson
import pytest

from channels.bank_sim.bank import Bank, InMaintenance, Submission, bank_rng
from channels.bank_sim.batch_desk import BatchDesk, BatchNotSupported, BatchTooLarge, ItemRefusal
from channels.bank_sim.callback_queue import Batch, CallbackQueue
from channels.bank_sim.presets import BankIdentity, preset_profile
from channels.bank_sim.profile import BankProfile, Script
from channels.bank_sim.schemas import PayoutSubmission

ICBC = BankIdentity("102", "ICBC", "bank")
NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def item(ref: str, account_no: str = "6222020200112233445", **over: Any) -> dict[str, Any]:
    payee = {
        "account_no": account_no,
        "account_name": "Zhang San",
        "bank_code": "102100099996",
        "account_type": "personal",
    }
    return {"ref": ref, "amount": 10_000, "currency": "CNY", "payee": payee} | over


def raw(*items: Any) -> list[msgspec.Raw]:
    return [msgspec.Raw(orjson.dumps(i)) for i in items]


def desk(profile: BankProfile, seed: int = 7) -> BatchDesk:
    return BatchDesk(Bank(profile, bank_rng(seed, "102")), bank_rng(seed, "102", "batch"))


def answers(desk: BatchDesk, *items: Any) -> list[tuple[str | None, str]]:
    out: list[tuple[str | None, str]] = []
    for a in desk.submit(raw(*items), NOW).items:
        out.append((a.record.ref, "accepted") if isinstance(a, Submission) else (a.ref, a.code))
    return out


# --- the batch desk --------------------------------------------------------------------------


def test_a_batch_draws_each_payout_the_fate_it_would_draw_alone() -> None:
    profile = preset_profile("fault_heavy", ICBC)
    batched = desk(profile).submit(raw(*(item(f"po_{i}") for i in range(100))), NOW).items
    alone = Bank(profile, bank_rng(7, "102"))
    for i, answer in enumerate(batched):
        assert isinstance(answer, Submission)
        single = alone.submit(msgspec.convert(item(f"po_{i}"), PayoutSubmission), NOW)
        assert (answer.fate, answer.record.bank_ref) == (single.fate, single.record.bank_ref)


def test_a_malformed_item_takes_no_capacity_and_the_rest_are_busy_in_order() -> None:
    d = desk(BankProfile(tps=2))
    got = answers(d, item("po_bad", amount=-1), item("po_1"), item("po_2"), item("po_3"))
    assert got == [
        ("po_bad", "invalid_request"),
        ("po_1", "accepted"),
        ("po_2", "accepted"),
        ("po_3", "bank_busy"),
    ]
    answer = d.submit(raw(item("po_4")), NOW)
    assert answer.retry_after_s is not None and answer.retry_after_s > 0
    assert d.bank.counters.refused_busy == 2


def test_conflicts_and_replays_are_answered_per_item() -> None:
    d = desk(preset_profile("instant", ICBC))
    assert answers(d, item("po_1")) == [("po_1", "accepted")]
    got = answers(d, item("po_1", amount=5), item("po_1"), item("po_2"))
    assert got == [("po_1", "ref_conflict"), ("po_1", "accepted"), ("po_2", "accepted")]
    record = d.bank.get("po_1")
    assert record is not None and record.submissions == 2


def test_a_scripted_sync_fault_on_a_new_payout_hits_the_whole_batch_once() -> None:
    profile = msgspec.structs.replace(
        preset_profile("instant", ICBC), scripted={"acct-t": Script(sync="timeout")}
    )
    d = desk(profile)
    first = d.submit(raw(item("po_1"), item("po_2", "acct-t")), NOW)
    assert first.sync_fault == "timeout"
    again = d.submit(raw(item("po_2", "acct-t"), item("po_3")), NOW)  # po_2 is a replay now
    assert again.sync_fault is None


def test_the_profile_draws_one_sync_fault_per_batch_not_per_item() -> None:
    profile = msgspec.structs.replace(preset_profile("default", ICBC), connection_reset_prob=0.3)
    d = desk(profile)
    faults = [
        d.submit(raw(*(item(f"po_{b}_{i}") for i in range(10))), NOW).sync_fault for b in range(300)
    ]
    # Drawn per item, nine batches in ten would fail (1 - 0.7**10).
    assert 0.2 < faults.count("reset") / len(faults) < 0.4
    assert set(faults) == {"reset", None}


def test_a_batch_the_bank_does_not_take_records_nothing() -> None:
    single_only = desk(BankProfile(submit_batch_max=1))
    with pytest.raises(BatchNotSupported):
        single_only.submit(raw(item("po_1")), NOW)
    small = desk(BankProfile(submit_batch_max=2))
    with pytest.raises(BatchTooLarge):
        small.submit(raw(item("po_1"), item("po_2"), item("po_3")), NOW)
    closed = desk(BankProfile(maintenance_now=True))
    with pytest.raises(InMaintenance):
        closed.submit(raw(item("po_1"), item("po_2")), NOW)
    for d in (single_only, small, closed):
        assert list(d.bank.records()) == []


def test_an_item_without_a_readable_ref_is_refused_without_one() -> None:
    (refusal,) = desk(BankProfile()).submit(raw([1, 2]), NOW).items
    assert isinstance(refusal, ItemRefusal)
    assert (refusal.ref, refusal.code) == (None, "invalid_request")
    assert refusal.message.startswith("items[0]: ")


# --- the callback queue ----------------------------------------------------------------------


class FakeLoop:
    """Records what the queue posts and the timers it arms; `fire` runs the timers."""

    def __init__(self) -> None:
        self.posted: list[list[Batch]] = []
        self.timers: list[tuple[float, Callable[[], None]]] = []

    def queue(self) -> CallbackQueue:
        return CallbackQueue(self.posted.append, lambda s, fn: self.timers.append((s, fn)))

    def fire(self) -> None:
        timers, self.timers = self.timers, []
        for _, fn in timers:
            fn()

    def refs(self) -> list[list[list[str]]]:
        return [[[i["ref"] for i in batch] for batch in call] for call in self.posted]


def cb(ref: str) -> dict[str, Any]:
    return {"event_id": f"evt_{ref}", "ref": ref}


def test_a_full_batch_is_posted_at_once_and_its_timer_then_does_nothing() -> None:
    loop = FakeLoop()
    q = loop.queue()
    q.add([cb("a")], 3, 0.005)
    q.add([cb("b")], 3, 0.005)
    assert loop.posted == [] and [s for s, _ in loop.timers] == [0.005]
    q.add([cb("c")], 3, 0.005)
    assert loop.refs() == [[["a", "b", "c"]]]
    q.add([cb("d")], 3, 0.005)
    loop.timers[0][1]()  # the first batch's timer: already posted, leaves "d" gathering
    assert q.pending == 1
    loop.timers[1][1]()
    assert loop.refs() == [[["a", "b", "c"]], [["d"]]]


def test_a_partial_batch_is_posted_when_its_linger_runs_out() -> None:
    loop = FakeLoop()
    q = loop.queue()
    q.add([cb("a")], 500, 0.0)
    q.add([cb("a")], 500, 0.0)  # a duplicate shares the batch
    loop.fire()
    assert loop.refs() == [[["a", "a"]]]
    assert q.pending == 0


def test_items_added_together_are_never_split_across_batches() -> None:
    loop = FakeLoop()
    q = loop.queue()
    q.add([cb("x")], 3, 0.01)
    q.add([cb("returned"), cb("succeeded")], 3, 0.01)
    q.add([cb("r2"), cb("s2")], 3, 0.01)  # does not fit: the gathering batch goes first
    loop.fire()
    assert loop.refs() == [[["x", "returned", "succeeded"]], [["r2", "s2"]]]


def test_items_that_fill_a_batch_alone_go_at_once_in_ordered_chunks() -> None:
    loop = FakeLoop()
    q = loop.queue()
    q.add([cb("returned"), cb("succeeded")], 1, 0.01)
    q.add([cb("a"), cb("b"), cb("c")], 2, 0.01)
    assert loop.refs() == [[["returned"], ["succeeded"]], [["a", "b"], ["c"]]]
    assert loop.timers == [] and q.pending == 0
