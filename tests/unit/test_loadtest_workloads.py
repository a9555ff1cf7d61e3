"""Workloads build the same requests from the same seed, and bodies the gateway's own
schemas accept."""

from __future__ import annotations

from collections import Counter

import msgspec
import orjson
import pytest

from gateway.contract.requests import (
    B2BRequest,
    CollectionRequest,
    PayoutBatchRequest,
    PayoutRequest,
    TransferRequest,
)
from loadtest.generator.shapes import constant
from loadtest.generator.spec import LoadSpec, MerchantCred, MerchantPick, TransferRoute
from loadtest.generator.workloads import (
    BATCH_ITEMS,
    MAX_TRANSFER_FEN,
    MIN_TRANSFER_FEN,
    PAYEE_BANKS,
    PAYER_BANKS,
    Dice,
    Workload,
)

ROUTES = (
    TransferRoute(0, "acc_settle", "acc_a"),
    TransferRoute(2, "acc_b", "acc_c"),
    TransferRoute(1, "acc_d", "acc_e"),
)


def workload(name: str, seed: int = 1, pick: MerchantPick = "round_robin") -> Workload:
    return Workload(name, seed=seed, run_id="r1", merchant_weights=[1.0] * 3, merchant_pick=pick)


@pytest.mark.parametrize("name", ["noop", "payouts", "mixed"])
def test_same_seed_same_requests(name: str) -> None:
    first = [workload(name).build(i) for i in range(200)]
    again = [workload(name).build(i) for i in range(200)]
    assert first == again


def test_another_seed_other_payees() -> None:
    a = [workload("payouts", seed=1).build(i).body for i in range(20)]
    b = [workload("payouts", seed=2).build(i).body for i in range(20)]
    assert a != b


def test_request_i_does_not_depend_on_what_was_built_before() -> None:
    w = workload("mixed")
    later = w.build(57)
    for i in range(57):
        w.build(i)
    assert w.build(57) == later


def test_noop_is_an_empty_signed_post() -> None:
    request = workload("noop").build(0)
    assert (request.method, request.path, request.body) == ("POST", "/v1/noop", b"{}")


def test_payout_bodies_are_valid_and_varied() -> None:
    bodies = [workload("payouts").build(i) for i in range(2000)]
    payouts = [msgspec.json.decode(r.body, type=PayoutRequest) for r in bodies]
    assert all(r.path == "/v1/payouts" and r.method == "POST" for r in bodies)
    assert len({p.merchant_order_id for p in payouts}) == len(payouts)
    assert all(p.merchant_order_id.startswith("r1-") for p in payouts)
    assert all(100 <= p.amount <= 50_000 for p in payouts)
    assert {len(p.payee.account_no) for p in payouts} == {16, 17, 18, 19}
    assert all(len(p.payee.bank_code) == 12 for p in payouts)
    assert all(p.payee.account_type == "personal" for p in payouts)
    prefixes = Counter(p.payee.bank_code[:3] for p in payouts)
    assert set(prefixes) == {prefix for prefix, _ in PAYEE_BANKS}
    assert prefixes["102"] > prefixes["313"]  # weighted, 30 : 8


def test_mixed_has_the_advertised_proportions_and_valid_bodies() -> None:
    requests = [workload("mixed").build(i) for i in range(5000)]
    kinds = Counter(r.kind for r in requests)
    share = {kind: n / len(requests) for kind, n in kinds.items()}
    assert share["payout"] == pytest.approx(0.84, abs=0.03)
    for kind in ("batch", "b2b"):
        assert share[kind] == pytest.approx(0.03, abs=0.01)
    for kind in ("balance", "list"):
        assert share[kind] == pytest.approx(0.05, abs=0.015)
    for r in requests:
        if r.kind == "batch":
            batch = msgspec.json.decode(r.body, type=PayoutBatchRequest)
            assert len(batch.items) == BATCH_ITEMS
            for item in batch.items:
                msgspec.json.decode(bytes(item), type=PayoutRequest)
        elif r.kind == "b2b":
            b2b = msgspec.json.decode(r.body, type=B2BRequest)
            assert b2b.payer_bank in {bank for bank, _ in PAYER_BANKS}
            assert b2b.payer_account_name == f"Demo Corp {r.merchant_index + 1}"
        elif r.kind == "payout":
            msgspec.json.decode(r.body, type=PayoutRequest)
        else:
            assert r.method == "GET" and r.body == b""
            assert r.path in ("/v1/balance", "/v1/payouts?limit=5")


def test_batch_item_order_ids_are_unique_across_the_run() -> None:
    ids: list[str] = []
    for r in (workload("mixed").build(i) for i in range(3000)):
        if r.kind == "batch":
            ids += [item["merchant_order_id"] for item in orjson.loads(r.body)["items"]]
        elif r.kind in ("payout",):
            ids.append(orjson.loads(r.body)["merchant_order_id"])
    assert len(ids) == len(set(ids))


def test_round_robin_hot_and_weighted_merchants() -> None:
    assert [workload("noop").build(i).merchant_index for i in range(6)] == [0, 1, 2, 0, 1, 2]
    hot = workload("noop", pick="hot")
    assert {hot.build(i).merchant_index for i in range(100)} == {0}
    weighted = Workload(
        "noop", seed=1, run_id="r", merchant_weights=[3.0, 0.0, 1.0], merchant_pick="weighted"
    )
    picks = Counter(weighted.build(i).merchant_index for i in range(4000))
    assert picks[1] == 0
    assert picks[0] / picks[2] == pytest.approx(3, rel=0.15)


def test_bad_workload_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown workload"):
        workload("payout")
    with pytest.raises(ValueError):
        Workload("noop", seed=1, run_id="r", merchant_weights=[])
    with pytest.raises(ValueError):
        Workload("noop", seed=1, run_id="r", merchant_weights=[0.0], merchant_pick="weighted")


def test_transfers_go_along_the_routes_in_turn_each_from_its_own_merchant() -> None:
    w = Workload("transfers", seed=1, run_id="r1", merchant_weights=[1.0] * 3, routes=ROUTES)
    built = [w.build(i) for i in range(600)]
    assert all((r.method, r.path, r.kind) == ("POST", "/v1/transfers", "transfer") for r in built)
    bodies = [msgspec.json.decode(r.body, type=TransferRequest) for r in built]
    for i, (request, body) in enumerate(zip(built, bodies, strict=True)):
        route = ROUTES[i % len(ROUTES)]
        assert request.merchant_index == route.merchant_index
        assert (body.from_account, body.to_account) == (route.from_account, route.to_account)
        assert body.from_freeze is None
    assert len({b.merchant_order_id for b in bodies}) == len(bodies)
    amounts = [b.amount for b in bodies]
    assert all(MIN_TRANSFER_FEN <= a <= MAX_TRANSFER_FEN for a in amounts)
    assert len(set(amounts)) > 500
    again = Workload("transfers", seed=1, run_id="r1", merchant_weights=[1.0] * 3, routes=ROUTES)
    assert [again.build(i) for i in range(600)] == built


def test_transfers_need_routes_within_the_merchants() -> None:
    with pytest.raises(ValueError, match="route"):
        workload("transfers")
    spec = LoadSpec(
        base_url="http://127.0.0.1:8080",
        merchants=(MerchantCred("m_1", "s1"), MerchantCred("m_2", "s2"), MerchantCred("m_3", "s3")),
        workload="transfers",
        shape=constant(100, 10),
        routes=ROUTES,
    )
    assert LoadSpec.from_dict(orjson.loads(orjson.dumps(spec.to_dict()))) == spec
    with pytest.raises(ValueError, match="route"):
        LoadSpec.from_dict({**spec.to_dict(), "routes": []})
    with pytest.raises(ValueError, match="merchant index"):
        LoadSpec.from_dict({**spec.to_dict(), "merchants": spec.to_dict()["merchants"][:2]})


def test_dice_draws_are_uniform_enough() -> None:
    counts = Counter(Dice(9, i).below(6) for i in range(6000))
    assert set(counts) == set(range(6))
    assert all(800 <= n <= 1200 for n in counts.values())
    assert all(10 <= Dice(1, i).between(10, 12) <= 12 for i in range(100))
    assert len(Dice(1, 1).digits(30)) == 30  # draws past one digest's worth of bits


def test_accounts_workload_is_a_p2p_day_along_the_routes() -> None:
    """Transfers, collections and withdrawals in the advertised shares, each from the route's
    merchant and valid for the gateway's schemas; only the listed merchants (垫资 ones) ask
    advance_on_failure, and payers' cards repeat (a fronted payer pays again)."""
    w = Workload("accounts", seed=3, run_id="r1", merchant_weights=[1.0] * 3, routes=ROUTES,
                 advance_merchants=[2])  # fmt: skip
    built = [w.build(i) for i in range(3000)]
    kinds = Counter(r.kind for r in built)
    assert set(kinds) == {"transfer", "collection", "withdrawal"}
    for kind, share in (("transfer", 0.50), ("collection", 0.35), ("withdrawal", 0.15)):
        assert abs(kinds[kind] / len(built) - share) < 0.03, kinds
    cards: Counter[str] = Counter()
    for i, r in enumerate(built):
        route = ROUTES[i % len(ROUTES)]
        assert r.merchant_index == route.merchant_index
        if r.kind == "transfer":
            t = msgspec.json.decode(r.body, type=TransferRequest)
            assert (t.from_account, t.to_account) == (route.from_account, route.to_account)
        elif r.kind == "collection":
            c = msgspec.json.decode(r.body, type=CollectionRequest)
            assert c.account_id == route.to_account
            assert not c.advance_on_failure or route.merchant_index == 2
            cards[c.payer.account_no] += 1
        else:
            p = msgspec.json.decode(r.body, type=PayoutRequest)
            assert (r.path, p.account_id) == ("/v1/payouts", route.from_account)
    assert max(cards.values()) > 3  # a few dozen cards per merchant: payers come back
    fronting = [orjson.loads(r.body)["advance_on_failure"] for r in built
                if r.kind == "collection" and r.merchant_index == 2]  # fmt: skip
    assert 0.3 < sum(fronting) / len(fronting) < 0.7
    with pytest.raises(ValueError, match="route"):
        workload("accounts")
