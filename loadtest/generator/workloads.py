"""Workloads: request i of a run as (method, path, body, merchant), decided by (seed, i) alone.

`noop`     POST /v1/noop `{}` (the bare signed ceiling)
`payouts`  POST /v1/payouts, a new merchant_order_id per run and i
`mixed`    ~84% payouts, 3% payout batches of 10, 3% B2B payments, 5% balance, 5% payout lists
`transfers` POST /v1/transfers along the spec's routes, request i on route i % len(routes)
`accounts` a P2P lender's day (SPEC 16) on route i % len(routes): 50% transfers along it, 35%
           collections (代收) into its destination from one of the merchant's few dozen
           payers' cards (so a fronted payer comes back and repays; advance_on_failure for
           half of them at merchants listed in `advance_merchants`), 15% withdrawals (提现,
           a payout naming its source account)
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

import orjson

from loadtest.generator.spec import MerchantPick, TransferRoute

WORKLOADS = ("noop", "payouts", "mixed", "transfers", "accounts")
ROUTED = frozenset({"transfers", "accounts"})  # workloads that need routes
MIN_AMOUNT_FEN = 100
MAX_AMOUNT_FEN = 50_000
MIN_B2B_FEN = 100_000
MAX_B2B_FEN = 5_000_000
MIN_TRANSFER_FEN = 100
MAX_TRANSFER_FEN = 10_000
MIN_COLLECTION_FEN = 1_000
MAX_COLLECTION_FEN = 20_000
PAYERS_PER_MERCHANT = 40  # few enough that a fronted payer soon pays again
# accounts: (kind, share in percent), in draw order
ACCOUNT_KINDS: tuple[tuple[str, int], ...] = (
    ("transfer", 50),
    ("collection", 35),
    ("withdrawal", 15),
)
BATCH_ITEMS = 10
# CNAPS bank prefixes with their share of payees; 313 (a city bank) has no direct channel.
PAYEE_BANKS: tuple[tuple[str, int], ...] = (
    ("102", 30),
    ("103", 20),
    ("104", 15),
    ("105", 15),
    ("308", 12),
    ("313", 8),
)
PAYER_BANKS: tuple[tuple[str, int], ...] = (
    ("102", 1),
    ("103", 1),
    ("104", 1),
    ("105", 1),
    ("308", 1),
)
SURNAMES = ("Zhang", "Wang", "Li", "Zhao", "Liu", "Chen", "Yang", "Huang", "Zhou", "Wu")
GIVEN_NAMES = ("Wei", "Fang", "Na", "Min", "Jing", "Lei", "Qiang", "Yan", "Jun", "Xiu Ying")
# mixed: (kind, share in percent), in draw order
MIXED_KINDS: tuple[tuple[str, int], ...] = (
    ("batch", 3),
    ("b2b", 3),
    ("balance", 5),
    ("list", 5),
    ("payout", 84),
)


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    body: bytes
    merchant_index: int
    kind: str


class Dice:
    """Deterministic draws for one request from blake2b(seed:i): about 10× cheaper than
    seeding a `random.Random` per request, which matters at tens of thousands per second."""

    __slots__ = ("_key", "_pool", "_refills")

    def __init__(self, seed: int, i: int) -> None:
        self._key = f"{seed}:{i}:".encode()
        self._pool = 0
        self._refills = 0

    def below(self, n: int) -> int:
        """Uniform in [0, n); bias at most 2**-64 (the pool always holds 64 spare bits)."""
        while self._pool < n << 64:
            digest = hashlib.blake2b(self._key + str(self._refills).encode()).digest()
            self._pool = (self._pool << 512) | int.from_bytes(digest, "big")
            self._refills += 1
        self._pool, value = divmod(self._pool, n)
        return value

    def between(self, low: int, high: int) -> int:
        """Uniform in [low, high]."""
        return low + self.below(high - low + 1)

    def digits(self, count: int) -> str:
        return str(self.below(10**count)).zfill(count)

    def pick(self, items: Sequence[str]) -> str:
        return items[self.below(len(items))]

    def weighted(self, table: Sequence[tuple[str, int]]) -> str:
        point = self.below(sum(w for _, w in table))
        for item, weight in table:
            if point < weight:
                return item
            point -= weight
        raise AssertionError("unreachable: point is below the total weight")


def payout_request(dice: Dice, order_id: str) -> dict[str, Any]:
    length = dice.between(16, 19)
    return {
        "merchant_order_id": order_id,
        "amount": dice.between(MIN_AMOUNT_FEN, MAX_AMOUNT_FEN),
        "currency": "CNY",
        "payee": {
            "account_no": "62" + dice.digits(length - 2),
            "account_name": f"{dice.pick(SURNAMES)} {dice.pick(GIVEN_NAMES)}",
            "bank_code": dice.weighted(PAYEE_BANKS) + dice.digits(9),
            "account_type": "personal",
        },
    }


def b2b_request(dice: Dice, order_id: str, merchant_index: int) -> dict[str, Any]:
    return {
        "merchant_order_id": order_id,
        "amount": dice.between(MIN_B2B_FEN, MAX_B2B_FEN),
        "currency": "CNY",
        "payer_bank": dice.weighted(PAYER_BANKS),
        "payer_account_name": f"Demo Corp {merchant_index + 1}",
    }


def transfer_request(dice: Dice, order_id: str, route: TransferRoute) -> dict[str, Any]:
    return {
        "merchant_order_id": order_id,
        "from_account": route.from_account,
        "to_account": route.to_account,
        "amount": dice.between(MIN_TRANSFER_FEN, MAX_TRANSFER_FEN),
    }


def collection_request(
    dice: Dice, order_id: str, route: TransferRoute, front: bool
) -> dict[str, Any]:
    """代收 into the route's destination, from one of the merchant's payers' cards."""
    card = f"6217{route.merchant_index:04d}{dice.below(PAYERS_PER_MERCHANT):08d}"
    return {
        "merchant_order_id": order_id,
        "account_id": route.to_account,
        "amount": dice.between(MIN_COLLECTION_FEN, MAX_COLLECTION_FEN),
        "currency": "CNY",
        "payer": {
            "account_no": card,
            "account_name": f"{dice.pick(SURNAMES)} {dice.pick(GIVEN_NAMES)}",
            "bank_code": dice.weighted(PAYER_BANKS) + dice.digits(9),
        },
        "advance_on_failure": front and dice.below(2) == 0,
    }


def account_request(
    dice: Dice, order_id: str, route: TransferRoute, front: bool
) -> tuple[str, str, bytes, str]:
    kind = dice.weighted(ACCOUNT_KINDS)
    if kind == "collection":
        body = collection_request(dice, order_id, route, front)
        return "POST", "/v1/collections", orjson.dumps(body), kind
    if kind == "withdrawal":
        body = payout_request(dice, order_id) | {"account_id": route.from_account}
        body["amount"] = dice.between(MIN_TRANSFER_FEN, MAX_TRANSFER_FEN)
        return "POST", "/v1/payouts", orjson.dumps(body), kind
    return "POST", "/v1/transfers", orjson.dumps(transfer_request(dice, order_id, route)), kind


Builder = Callable[[Dice, str, int], tuple[str, str, bytes, str]]


def _noop(dice: Dice, order_id: str, merchant_index: int) -> tuple[str, str, bytes, str]:
    return "POST", "/v1/noop", b"{}", "noop"


def _payout(dice: Dice, order_id: str, merchant_index: int) -> tuple[str, str, bytes, str]:
    return "POST", "/v1/payouts", orjson.dumps(payout_request(dice, order_id)), "payout"


def _mixed(dice: Dice, order_id: str, merchant_index: int) -> tuple[str, str, bytes, str]:
    kind = dice.weighted(MIXED_KINDS)
    if kind == "batch":
        items = [payout_request(dice, f"{order_id}-{j}") for j in range(BATCH_ITEMS)]
        return "POST", "/v1/payout-batches", orjson.dumps({"items": items}), kind
    if kind == "b2b":
        body = orjson.dumps(b2b_request(dice, order_id, merchant_index))
        return "POST", "/v1/b2b-payments", body, kind
    if kind == "balance":
        return "GET", "/v1/balance", b"", kind
    if kind == "list":
        return "GET", "/v1/payouts?limit=5", b"", kind
    return _payout(dice, order_id, merchant_index)


class Workload:
    """Builds request i; pure, so any process given the same spec builds the same requests."""

    def __init__(
        self,
        name: str,
        *,
        seed: int,
        run_id: str,
        merchant_weights: Sequence[float],
        merchant_pick: MerchantPick = "round_robin",
        routes: Sequence[TransferRoute] = (),
        advance_merchants: Sequence[int] = (),
    ) -> None:
        builders: dict[str, Builder] = {"noop": _noop, "payouts": _payout, "mixed": _mixed}
        if name not in WORKLOADS:
            raise ValueError(f"unknown workload {name!r} (one of {', '.join(WORKLOADS)})")
        if name in ROUTED and not routes:
            raise ValueError(f"the {name} workload needs at least one route")
        if not merchant_weights or any(w < 0 for w in merchant_weights):
            raise ValueError("merchant weights must be non-empty and non-negative")
        self.name = name
        self.seed = seed
        self.run_id = run_id
        self.merchant_pick = merchant_pick
        self._builder = builders.get(name)  # None for transfers: built from a route
        self._routes = tuple(routes)
        self._fronting = frozenset(advance_merchants)
        self._count = len(merchant_weights)
        # Integer weights (parts per million) so the draw is exact and reproducible.
        self._cumulative = tuple(accumulate(round(w * 1_000_000) for w in merchant_weights))
        if merchant_pick == "weighted" and not self._cumulative[-1]:
            raise ValueError("at least one merchant weight must be positive")

    def merchant_for(self, i: int, dice: Dice) -> int:
        if self.merchant_pick == "hot":
            return 0
        if self.merchant_pick == "weighted":
            return bisect_right(self._cumulative, dice.below(self._cumulative[-1]))
        return i % self._count

    def build(self, i: int) -> Request:
        dice = Dice(self.seed, i)
        if self.name == "transfers":
            # The route decides the merchant: an account answers only to its own merchant.
            route = self._routes[i % len(self._routes)]
            body = orjson.dumps(transfer_request(dice, f"{self.run_id}-{i}", route))
            return Request("POST", "/v1/transfers", body, route.merchant_index, "transfer")
        if self.name == "accounts":
            route = self._routes[i % len(self._routes)]
            front = route.merchant_index in self._fronting
            method, path, body, kind = account_request(dice, f"{self.run_id}-{i}", route, front)
            return Request(method, path, body, route.merchant_index, kind)
        assert self._builder is not None
        merchant = self.merchant_for(i, dice)
        method, path, body, kind = self._builder(dice, f"{self.run_id}-{i}", merchant)
        return Request(method, path, body, merchant, kind)
