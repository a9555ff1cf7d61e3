"""Bank callbacks in (SPEC 10): `POST /callbacks/{bank_id}`, signed with that bank's key.

A POST carries up to 500 items (批量回盘), each decoded and answered on its own, in order (a
malformed item is `invalid` and the others still apply). Payout items are applied through
the payout transition table in one transaction with their ledger moves and outbox events, so
duplicates and reordered words never change a final state or move money twice. A word from
a bank that is not the payout's bank, or with another amount, is refused (`mismatch`, checked
on the locked row; a `processing` word too), logged and counted like every bank answer that
does not match its order (channels/answers.py), and the order is queried (its queue state
`unknown`); an unknown reference is `not_found` (a 404 when it is the POST's only item).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import asyncpg
from aiohttp import web

from channels import answers
from channels.answers import business_date
from gateway.api.auth import verify_signed
from gateway.api.jsonio import decode, json_response, read_json
from gateway.api.operations import BANK_ID, Op, path_id
from gateway.api.services import SERVICES, Services
from gateway.b2b.state import B2BEvent
from gateway.b2b.transitions import B2BWord, apply_b2b_events
from gateway.collection.orders import CollectionOrders
from gateway.collection.state import event_for as collection_event
from gateway.collection.transitions import CollectionWord, apply_words
from gateway.contract.requests import BankCallback, BankCallbackItem
from gateway.metrics import in_hop
from gateway.payouts import queue
from gateway.payouts.bank_orders import BankOrders
from gateway.payouts.bank_status import events_for
from gateway.payouts.orders import PayoutOrders
from gateway.payouts.queue import DispatchChange
from gateway.payouts.transitions import PayoutEvent
from protocol.errors import ApiError, NotFound
from protocol.keys import bank_secret

log = logging.getLogger("paygate.callbacks")
routes = web.RouteTableDef()

OPERATIONS: Final[tuple[Op, ...]] = (
    Op(
        "post",
        "/callbacks/{bank_id}",
        "Bank results (批量回盘), each item applied on its own",
        "bank",
        {200: None},
        BankCallback,
        params=(path_id("bank_id", BANK_ID),),
        errors=(404,),
    ),
)


@routes.post("/callbacks/{bank_id}")
async def bank_callback(request: web.Request) -> web.Response:
    in_hop("callback")
    services = request.app[SERVICES]
    bank_id = request.match_info["bank_id"]
    if bank_id not in await services.channel_ids():
        raise NotFound(f"no bank channel {bank_id}")
    secret = bank_secret(services.settings.bank_master_secret, bank_id)

    async def secret_for(key: str) -> str | None:
        return secret if key == bank_id else None

    await verify_signed(request, secret_for, services.nonces, services.settings.signature_window_s)
    body = await read_json(request, BankCallback)
    results: list[dict[str, Any]] = [{} for _ in body.items]
    payouts: list[tuple[int, BankCallbackItem]] = []
    b2bs: list[tuple[int, BankCallbackItem]] = []
    collections: list[tuple[int, BankCallbackItem]] = []
    for index, raw in enumerate(body.items):
        try:
            item = decode(bytes(raw), BankCallbackItem)
        except ApiError as exc:
            log.warning("bank callback item refused", extra={
                "bank_id": bank_id, "index": index, "error": exc.message})  # fmt: skip
            results[index] = {"result": "invalid", "error": exc.message}
            continue
        {"payout": payouts, "b2b": b2bs, "collection": collections}[item.kind].append((index, item))
    if payouts:
        said = await _payout_words(services, bank_id, [i for _, i in payouts])
        for (index, _), answer in zip(payouts, said, strict=True):
            results[index] = answer
        await _unmatched(services, PayoutOrders(), bank_id, [i for _, i in payouts], said)
    if b2bs:
        async with services.pool.acquire() as conn:
            said = await _b2b_words(conn, bank_id, [i for _, i in b2bs], services.clock.now(),
                                    services.settings.realtime_clear_delay_s)  # fmt: skip
        for (index, _), answer in zip(b2bs, said, strict=True):
            results[index] = answer
    if collections:
        async with services.pool.acquire() as conn:
            said = await _collection_words(conn, bank_id, [i for _, i in collections])
        for (index, _), answer in zip(collections, said, strict=True):
            results[index] = answer
        await _unmatched(services, CollectionOrders(), bank_id, [i for _, i in collections],
                         said)  # fmt: skip
    if len(results) == 1 and results[0]["result"] == "not_found":
        raise NotFound(f"no payment {results[0]['ref']}")
    return json_response({"results": results})


async def _unmatched(
    services: Services,
    orders: BankOrders,
    bank_id: str,
    items: list[BankCallbackItem],
    results: list[dict[str, Any]],
) -> None:
    """Words that matched no order (or not their order's bank and amount) were not applied:
    each is logged and counted, and an order one of them names is asked about soon (queue
    state `unknown`), whatever it was waiting for."""
    unknown: dict[str, DispatchChange] = {}
    soon = datetime.now(UTC) + timedelta(milliseconds=services.settings.unknown_first_query_ms)
    for item, result in zip(items, results, strict=True):
        if result["result"] not in ("not_found", "mismatch"):
            continue
        reason = "unknown_ref" if result["result"] == "not_found" else "wrong_bank_or_amount"
        answers.report(services.metrics, bank_id, "callback", item.ref, reason,
                       kind=item.kind, event_id=item.event_id, said_amount=item.amount,
                       bank_status=item.status)  # fmt: skip
        if reason != "unknown_ref":
            # The bank speaks of it: a "no such order" streak starts again.
            unknown[item.ref] = DispatchChange(state="unknown", poll_at=soon, no_record_streak=0)
    if unknown:
        await orders.record(services.pool, [], unknown, only_in=queue.WAITING_FOR_BANK)


def _verdict(bank_id: str, item: BankCallbackItem, row: Any, bank_col: str) -> str:
    if row is None:
        verdict = "not_found"
    elif row[bank_col] != bank_id or row["amount_fen"] != item.amount:
        verdict = "mismatch"
    else:
        return "accepted"
    log.warning("bank callback refused", extra={
        "bank_id": bank_id, "ref": item.ref, "event_id": item.event_id, "kind": item.kind,
        "verdict": verdict, "bank_status": item.status})  # fmt: skip
    return verdict


def _settle_results(
    results: list[dict[str, Any]], changed: set[str], status: dict[str, Any]
) -> None:
    for r in results:
        if r["result"] == "accepted":
            r["result"] = "applied" if r["ref"] in changed else "no_change"
            r["status"] = status.get(r["ref"])


async def _payout_words(
    services: Services, bank_id: str, items: list[BankCallbackItem]
) -> list[dict[str, Any]]:
    """Payout words of concurrent callbacks are group-committed (one transaction per batch);
    the bank and amount are checked against the locked row in that transaction."""
    events: list[PayoutEvent] = []
    spans: list[tuple[int, int]] = []  # each item's events: events[start:end]
    for item in items:
        start = len(events)
        events += events_for(item.ref, item.status, bank_id=bank_id, bank_ref=item.bank_ref,
                             failure_code=item.failure_code,
                             failure_message=item.failure_message,
                             expect_bank_id=bank_id, expect_amount_fen=item.amount,
                             bank_date=business_date(item.business_date))  # fmt: skip
        spans.append((start, len(events)))
    applied = await services.payout_events.submit(events) if events else []
    silent = [item.ref for item, (a, b) in zip(items, spans, strict=True) if a == b]
    known = await _known(services.pool, "payouts", silent) if silent else {}
    results: list[dict[str, Any]] = []
    for item, (a, b) in zip(items, spans, strict=True):
        mine = applied[a:b]
        if a == b:
            verdict = _silent_verdict(bank_id, item, known.get(item.ref))
        elif any(x.status is None for x in mine):
            verdict = "not_found"
        elif any(x.reason == "mismatch" for x in mine):
            verdict = "mismatch"
        else:
            verdict = "applied" if any(x.applied for x in mine) else "no_change"
        result: dict[str, Any] = {"event_id": item.event_id, "ref": item.ref, "result": verdict}
        if verdict in ("applied", "no_change"):
            result["status"] = mine[-1].status if mine else None
        results.append(result)
    return results


async def _known(
    conn: asyncpg.Pool | asyncpg.Connection, table: str, refs: list[str]
) -> dict[str, tuple[str | None, int]]:
    """The bank and amount of those of `refs` that are orders (`payouts`, `collections`) at
    all, for words that change nothing (e.g. `processing`)."""
    rows = await conn.fetch(
        f"SELECT id, bank_id, amount_fen FROM {table} WHERE id = ANY($1::text[])", refs
    )
    return {r["id"]: (r["bank_id"], r["amount_fen"]) for r in rows}


def _silent_verdict(
    bank_id: str, item: BankCallbackItem, order: tuple[str | None, int] | None
) -> str:
    """A word that changes nothing still has to be about its order's bank and amount."""
    if order is None:
        return "not_found"
    return "no_change" if order == (bank_id, item.amount) else "mismatch"


_B2B_EVENTS = {"succeeded": B2BEvent.NOTIFY, "failed": B2BEvent.FAIL}


async def _b2b_words(
    conn: asyncpg.Connection,
    bank_id: str,
    items: list[BankCallbackItem],
    sim_now: datetime,
    realtime_clear_delay_s: float,
) -> list[dict[str, Any]]:
    known = {
        r["id"]: r
        for r in await conn.fetch(
            "SELECT id, payer_bank, amount_fen FROM b2b_payments WHERE id = ANY($1::text[])",
            [i.ref for i in items],
        )
    }
    results: list[dict[str, Any]] = []
    words: list[B2BWord] = []
    for item in items:
        verdict = _verdict(bank_id, item, known.get(item.ref), "payer_bank")
        event = _B2B_EVENTS.get(item.status)
        if verdict == "accepted" and event is not None:
            words.append(B2BWord(item.ref, event, bank_ref=item.bank_ref,
                                 failure_code=item.failure_code,
                                 failure_message=item.failure_message))  # fmt: skip
        results.append({"event_id": item.event_id, "ref": item.ref, "result": verdict})
    applied = await apply_b2b_events(conn, words, sim_now, realtime_clear_delay_s) if words else []
    _settle_results(results, {a.b2b_id for a in applied if a.applied},
                    {a.b2b_id: a.status for a in applied})  # fmt: skip
    return results


async def _collection_words(
    conn: asyncpg.Connection, bank_id: str, items: list[BankCallbackItem]
) -> list[dict[str, Any]]:
    """Debits' words (代收), applied through the collection transition table in one
    transaction; the bank and amount are checked against the locked rows there."""
    words: list[CollectionWord] = []
    word_of: list[int | None] = []  # each item's word (None: it says nothing new)
    for item in items:
        event = collection_event(item.status) if item.status != "returned" else None
        word_of.append(len(words) if event is not None else None)
        if event is not None:
            words.append(CollectionWord(item.ref, event, bank_id, item.bank_ref,
                                        item.failure_code, item.failure_message,
                                        expect_bank_id=bank_id,
                                        expect_amount_fen=item.amount,
                                        bank_date=business_date(item.business_date)))  # fmt: skip
    applied = await apply_words(conn, words) if words else []
    silent = [item.ref for item, k in zip(items, word_of, strict=True) if k is None]
    known = await _known(conn, "collections", silent) if silent else {}
    results: list[dict[str, Any]] = []
    for item, k in zip(items, word_of, strict=True):
        a = applied[k] if k is not None else None
        if a is None:
            verdict = _silent_verdict(bank_id, item, known.get(item.ref))
        elif a.status is None:
            verdict = "not_found"
        elif a.reason == "mismatch":
            verdict = "mismatch"
        else:
            verdict = "applied" if a.applied else "no_change"
        result: dict[str, Any] = {"event_id": item.event_id, "ref": item.ref, "result": verdict}
        if a is not None and verdict in ("applied", "no_change"):
            result["status"] = a.status
        results.append(result)
    return results
