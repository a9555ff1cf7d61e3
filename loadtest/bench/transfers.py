"""The internal-transfers phase of `paygate bench` (SPEC 13, SPEC 16): transfers per second in
two shapes, through the same open-loop generator as payouts.

- hot account: 商转个, every transfer from one merchant's settlement account (its balance
  row) to one of its many personal accounts: every transfer locks that one row;
- spread: 个转个 between many distinct pairs of personal accounts (a ring per merchant, over
  several merchants): no row is touched by more than two routes.

Set-up goes over the merchant API as a merchant's own code would: a customer and a personal
account per user, funded from the settlement account (商转个) with far more than a phase can
move, so `insufficient_funds` is not what gets measured. Whatever is refused anyway (and any
request without an answer) is counted per code and shown next to the rate.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gateway.client import ApiResponse, MerchantClient
from loadtest.generator.result import LoadResult
from loadtest.generator.spec import MerchantCred, TransferRoute
from loadtest.generator.workloads import MAX_TRANSFER_FEN

# Per personal account: 1,000,000 CNY, i.e. 10,000 of the largest transfers the workload
# draws, where a phase moves a few dozen out of any one account.
FUND_FEN = 10_000 * MAX_TRANSFER_FEN
SETUP_CONCURRENCY = 32


@dataclass(frozen=True, slots=True)
class MerchantAccounts:
    """One merchant's accounts for the phase: its settlement account and funded personal ones."""

    merchant: MerchantCred
    settlement: str
    personal: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TransferLoad:
    """What one shape hands to the generator: the merchants and the routes over them."""

    merchants: tuple[MerchantCred, ...]
    routes: tuple[TransferRoute, ...]


def _body(resp: ApiResponse, what: str, *ok: int) -> dict[str, Any]:
    if resp.status not in ok:
        raise RuntimeError(f"bench set-up: {what} answered {resp.status}: {resp.body!r}")
    data: dict[str, Any] = resp.json()
    return data


async def open_accounts(
    gateway_url: str,
    merchants: Sequence[MerchantCred],
    per_merchant: int,
    fund_fen: int = FUND_FEN,
) -> list[MerchantAccounts]:
    """`per_merchant` personal customers with one account each, for every merchant, each
    account funded with `fund_fen` from the merchant's settlement account. Idempotent: the
    customers' external ids and the funding transfers' order ids are fixed."""
    sem = asyncio.Semaphore(SETUP_CONCURRENCY)

    async def user(client: MerchantClient, settlement: str, j: int) -> str:
        async with sem:
            cus = _body(await client.post("/v1/customers", {"external_id": f"bench-u{j}",
                                                            "name": f"Bench User {j}"}),
                        "POST /v1/customers", 200, 201)  # fmt: skip
            acc = _body(await client.post("/v1/accounts", {"customer_id": cus["id"],
                                                           "purpose": "wallet",
                                                           "currency": "CNY"}),
                        "POST /v1/accounts", 200, 201)  # fmt: skip
            fund = {"merchant_order_id": f"bench-fund-{j}", "from_account": settlement,
                    "to_account": acc["id"], "amount": fund_fen}  # fmt: skip
            _body(await client.post("/v1/transfers", fund), "funding 商转个", 200, 201)
            return str(acc["id"])

    async def one(m: MerchantCred) -> MerchantAccounts:
        async with MerchantClient(gateway_url, m.id, m.secret) as client:
            page = _body(await client.get("/v1/accounts"), "GET /v1/accounts", 200)
            (settlement,) = [str(a["id"]) for a in page["data"] if a["kind"] == "merchant"]
            personal = await asyncio.gather(*(user(client, settlement, j)
                                              for j in range(per_merchant)))  # fmt: skip
        return MerchantAccounts(m, settlement, tuple(personal))

    return list(await asyncio.gather(*(one(m) for m in merchants)))


def hot_load(accounts: MerchantAccounts) -> TransferLoad:
    """商转个: the settlement account to each personal account in turn."""
    routes = tuple(TransferRoute(0, accounts.settlement, p) for p in accounts.personal)
    return TransferLoad((accounts.merchant,), routes)


def spread_load(books: Sequence[MerchantAccounts]) -> TransferLoad:
    """个转个 around a ring of each merchant's personal accounts (a_j -> a_j+1), the merchants
    interleaved so that consecutive requests touch different merchants' accounts. Every
    account sends and receives once per round, so none drains."""
    routes = []
    for j in range(max(len(b.personal) for b in books)):
        for index, b in enumerate(books):
            if len(b.personal) >= 2 and j < len(b.personal):
                nxt = b.personal[(j + 1) % len(b.personal)]
                routes.append(TransferRoute(index, b.personal[j], nxt))
    if not routes:
        raise ValueError("the spread shape needs a merchant with at least two personal accounts")
    return TransferLoad(tuple(b.merchant for b in books), tuple(routes))


def outcome(r: LoadResult) -> dict[str, Any]:
    """What the transfers came to: created, replayed, refused (by error code, or by status
    when an answer had none) and no answer at all (by kind: timeout, reset ...)."""
    refused: dict[str, int] = dict(r.by_code)
    coded = sum(refused.values())
    uncoded = sum(n for s, n in r.by_status.items() if not s.startswith("2")) - coded
    if uncoded > 0:
        refused["no error code"] = uncoded
    return {
        "created": r.by_status.get("201", 0),
        "replayed": r.by_status.get("200", 0),
        "refused": refused,
        "no_answer": dict(r.by_error),
    }


def counts_text(by: dict[str, int]) -> str:
    """`insufficient_funds 3, timeout 1`, the largest first; `0` when there are none."""
    if not by:
        return "0"
    return ", ".join(f"{k} {v:,}" for k, v in sorted(by.items(), key=lambda kv: -kv[1]))


def describe(counts: dict[str, Any]) -> str:
    """`1,234 created; refused 3 (insufficient_funds 3); no answer 0` for the summary."""

    def part(name: str, by: dict[str, int]) -> str:
        total = sum(by.values())
        return f"{name} {total:,}" + (f" ({counts_text(by)})" if by else "")

    refused, no_answer = part("refused", counts["refused"]), part("no answer", counts["no_answer"])
    return f"{counts['created']:,} created; {refused}; {no_answer}"


def transfer_rows(tr: dict[str, Any]) -> list[tuple[str, str]]:
    """The summary table's lines for the phase's figures (`phases.transfers` of the bench)."""
    hot, spread = tr["hot"], tr["spread"]
    return [
        ("internal transfers, hot account", f"{hot['transfers_per_s']:,} transfers/s  (商转个 "
                                            f"from one settlement account to {hot['routes']} "
                                            "personal accounts)"),
        ("  hot: outcomes", describe(hot["outcome"])),
        ("internal transfers, spread", f"{spread['transfers_per_s']:,} transfers/s  (个转个, "
                                       f"{spread['routes']} pairs of personal accounts, "
                                       f"{spread['merchants']} merchants)"),
        ("  spread: outcomes", describe(spread["outcome"])),
    ]  # fmt: skip
