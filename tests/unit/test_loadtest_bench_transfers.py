"""The bench's transfer shapes: the hot one goes through one account, the spread one around
rings of personal accounts that never drain; refusals and unanswered requests are counted."""

from __future__ import annotations

from collections import Counter

import pytest

from loadtest.bench.transfers import (
    MerchantAccounts,
    describe,
    hot_load,
    outcome,
    spread_load,
)
from loadtest.generator.recorder import Recorder
from loadtest.generator.spec import MerchantCred


def books(*sizes: int) -> list[MerchantAccounts]:
    return [
        MerchantAccounts(
            MerchantCred(f"m_{k}", f"secret-{k}"),
            f"acc_settle_{k}",
            tuple(f"acc_{k}_{j}" for j in range(n)),
        )
        for k, n in enumerate(sizes)
    ]


def test_the_hot_shape_sends_everything_from_the_settlement_account() -> None:
    (book,) = books(5)
    load = hot_load(book)
    assert load.merchants == (book.merchant,)
    assert {r.from_account for r in load.routes} == {"acc_settle_0"}
    assert [r.to_account for r in load.routes] == list(book.personal)
    assert {r.merchant_index for r in load.routes} == {0}


def test_the_spread_shape_is_a_ring_per_merchant_interleaved() -> None:
    shelf = books(4, 3, 1)  # a merchant with one account has no pair to move money along
    load = spread_load(shelf)
    assert load.merchants == tuple(b.merchant for b in shelf)
    assert [r.merchant_index for r in load.routes[:4]] == [0, 1, 0, 1]
    assert len(load.routes) == 4 + 3
    for r in load.routes:
        accounts = shelf[r.merchant_index].personal
        assert r.from_account in accounts and r.to_account in accounts
        assert r.from_account != r.to_account
    # Every account sends once and receives once a round: none drains.
    sends = Counter(r.from_account for r in load.routes)
    receives = Counter(r.to_account for r in load.routes)
    assert sends == receives and set(sends.values()) == {1}
    assert len({(r.from_account, r.to_account) for r in load.routes}) == len(load.routes)
    with pytest.raises(ValueError, match="two personal accounts"):
        spread_load(books(1, 1))


def test_outcome_counts_created_replayed_refused_and_unanswered() -> None:
    rec = Recorder(0.0)
    refusal = (422, "insufficient_funds")
    answers = [(201, None)] * 6 + [(200, None), refusal, refusal, (500, None)]
    for i, (status, code) in enumerate(answers):
        rec.on_scheduled(i / 100)
        rec.on_sent(i / 100, i / 100, "transfer")
        rec.on_response(i / 100, i / 100 + 0.01, status, code)
    rec.on_scheduled(0.5)
    rec.on_sent(0.5, 0.5, "transfer")
    rec.on_error(0.5, 1.5, "timeout")
    counts = outcome(rec.result({"workload": "transfers"}, shape_duration_s=1.0))
    assert counts == {
        "created": 6,
        "replayed": 1,
        "refused": {"insufficient_funds": 2, "no error code": 1},
        "no_answer": {"timeout": 1},
    }
    assert describe(counts) == (
        "6 created; refused 3 (insufficient_funds 2, no error code 1); no answer 1 (timeout 1)"
    )
    nothing = {"created": 5, "replayed": 0, "refused": {}, "no_answer": {}}
    assert describe(nothing) == "5 created; refused 0; no answer 0"
