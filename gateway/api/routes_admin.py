"""Operator endpoints (`Authorization: Bearer <admin token>`)."""

from __future__ import annotations

from typing import Any, Final

import msgspec
from aiohttp import web

from gateway.api import answers
from gateway.api.jsonio import json_response, read_json
from gateway.api.operations import CURSOR, LIMIT, Op, path_id
from gateway.api.paging import cursor, page_limit
from gateway.api.services import SERVICES
from gateway.contract.requests import CreditRequest, MerchantCreate, MerchantPatch
from gateway.fingerprint import request_fingerprint
from gateway.ledger.check import run_checks
from gateway.ledger.exposure import advance_exposure
from gateway.merchants import model
from gateway.merchants import repo as merchants_repo
from gateway.notifications.event_types import DEFAULT_NOTIFY_EVENTS, check_notify_events
from gateway.operators import actions, audit
from gateway.operators.model import API_ACTOR
from protocol.errors import InvalidRequest, NotFound, idempotency_conflict
from protocol.ids import new_id, new_secret

routes = web.RouteTableDef()

OPERATIONS: Final[tuple[Op, ...]] = (
    Op(
        "post",
        "/admin/merchants",
        "Create a merchant (returns its secret); with `reference`, a retry answers 200 with"
        " the same merchant",
        "admin",
        {201: None, 200: None},
        MerchantCreate,
        example={"name": "Acme", "reference": "onboarding-acme-1"},
        errors=(409,),
    ),
    Op(
        "get", "/admin/merchants", "Merchants", "admin", {200: answers.Page}, params=(LIMIT, CURSOR)
    ),
    Op(
        "get",
        "/admin/merchants/{merchant_id}",
        "One merchant",
        "admin",
        {200: None},
        params=(path_id("merchant_id"),),
        errors=(404,),
    ),
    Op(
        "patch",
        "/admin/merchants/{merchant_id}",
        "Change a merchant",
        "admin",
        {200: None},
        MerchantPatch,
        params=(path_id("merchant_id"),),
        errors=(404,),
    ),
    Op(
        "post",
        "/admin/merchants/{merchant_id}/credits",
        "Manual deposit (journaled)",
        "admin",
        {201: None, 200: None},
        CreditRequest,
        params=(path_id("merchant_id"),),
        errors=(404, 409),
    ),
    Op("get", "/admin/ledger/check", "The ledger invariants (SPEC 4)", "admin", {200: None}),
    Op("get", "/admin/exposure", "Advance (垫资) exposure", "admin", {200: None}),
)


def _notify_events(types: list[str]) -> tuple[str, ...]:
    try:
        return check_notify_events(types)
    except ValueError as exc:
        raise InvalidRequest(str(exc), field="notify_events") from None


async def _audit_created(conn: Any, merchant: model.Merchant, sim_at: Any) -> None:
    await audit.record(conn, API_ACTOR, "merchant.create", "merchant", merchant.id,
                       after=merchant.public(), sim_at=sim_at)  # fmt: skip


@routes.post("/admin/merchants")
async def create_merchant(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    body = await read_json(request, MerchantCreate)
    if body.currency != "CNY":
        raise InvalidRequest("only CNY is enabled", field="currency")
    rate = body.rate_limit
    notify_events = DEFAULT_NOTIFY_EVENTS
    if body.notify_events is not None:
        notify_events = _notify_events(body.notify_events)
    merchant = model.Merchant(
        id=new_id("m"),
        name=body.name,
        secret=new_secret(),
        status=body.status,
        funding_mode=body.funding_mode,
        currency=body.currency,
        advance_limit_fen=body.advance_limit,
        fee_fixed_fen=body.fee_fixed,
        fee_bps=body.fee_bps,
        max_amount_fen=body.max_amount or model.DEFAULT_MAX_AMOUNT_FEN,
        daily_amount_fen=body.daily_amount or model.DEFAULT_DAILY_AMOUNT_FEN,
        daily_count=body.daily_count or model.DEFAULT_DAILY_COUNT,
        rate_limit_rps=rate.rps if rate else model.DEFAULT_RATE_LIMIT_RPS,
        rate_limit_burst=rate.burst if rate else model.DEFAULT_RATE_LIMIT_BURST,
        review_threshold_fen=body.review_threshold,
        notify_url=body.notify_url,
        notify_events=notify_events,
    )
    if body.reference is None:
        async with services.pool.acquire() as conn, conn.transaction():
            made_now = await merchants_repo.insert(conn, merchant)
            await _audit_created(conn, made_now, services.clock.now())
        return json_response(made_now.public(with_secret=True), 201)
    request_hash = request_fingerprint(body)
    async with services.pool.acquire() as conn:
        async with conn.transaction():
            created = await merchants_repo.insert_once(conn, merchant, body.reference, request_hash)
            if created is not None:
                await _audit_created(conn, created, services.clock.now())
        if created is not None:
            return json_response(created.public(with_secret=True), 201)
        # A retry: the first answer may have been lost, so it carries the secret again.
        made = await merchants_repo.made_under(conn, body.reference)
    assert made is not None  # the unique key refused the insert, and references stay
    prior, prior_hash = made
    if prior_hash != request_hash:
        raise idempotency_conflict("reference")
    return json_response(prior.public(with_secret=True), 200)


@routes.get("/admin/merchants")
async def list_merchants(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    limit = page_limit(request)
    items = await merchants_repo.list_page(services.pool, cursor(request), limit + 1)
    more = len(items) > limit
    items = items[:limit]
    return json_response(
        {
            "data": [m.public() for m in items],
            "next_cursor": items[-1].id if more and items else None,
        }
    )


@routes.get("/admin/merchants/{merchant_id}")
async def get_merchant(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    merchant = await merchants_repo.get(services.pool, request.match_info["merchant_id"])
    if merchant is None:
        raise NotFound("no such merchant")
    return json_response(merchant.public())


_PATCH_COLUMNS = {
    "name": "name",
    "status": "status",
    "funding_mode": "funding_mode",
    "advance_limit": "advance_limit_fen",
    "fee_fixed": "fee_fixed_fen",
    "fee_bps": "fee_bps",
    "max_amount": "max_amount_fen",
    "daily_amount": "daily_amount_fen",
    "daily_count": "daily_count",
    "review_threshold": "review_threshold_fen",
    "notify_url": "notify_url",
}


@routes.patch("/admin/merchants/{merchant_id}")
async def patch_merchant(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    merchant_id = request.match_info["merchant_id"]
    body = await read_json(request, MerchantPatch)
    changes: dict[str, Any] = {}
    for field, column in _PATCH_COLUMNS.items():
        value = getattr(body, field)
        if value is not msgspec.UNSET:
            changes[column] = value
    if body.rate_limit is not msgspec.UNSET:
        changes["rate_limit_rps"] = body.rate_limit.rps
        changes["rate_limit_burst"] = body.rate_limit.burst
    if body.notify_events is not msgspec.UNSET:
        # Events written from now on follow the new choice; recorded ones keep their status.
        changes["notify_events"] = list(_notify_events(body.notify_events))
    async with services.pool.acquire() as conn:
        merchant = await actions.change_merchant(conn, merchant_id, changes, API_ACTOR, None,
                                                 services.clock.now())  # fmt: skip
    assert merchant is not None
    services.merchants.forget(merchant_id)
    return json_response(merchant.public())


@routes.post("/admin/merchants/{merchant_id}/credits")
async def credit_merchant(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    body = await read_json(request, CreditRequest)
    async with services.pool.acquire() as conn:
        credit, created = await actions.credit(
            conn, request.match_info["merchant_id"], body.amount, body.currency, body.reference,
            API_ACTOR, services.clock.now(),
        )  # fmt: skip
    return json_response(credit, 201 if created else 200)


@routes.get("/admin/ledger/check")
async def ledger_check(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    async with services.pool.acquire() as conn:
        results = await run_checks(conn)
    return json_response(
        {
            "ok": all(r.ok for r in results),
            "checks": [{"name": r.name, "ok": r.ok, "violations": r.violations} for r in results],
        }
    )


@routes.get("/admin/exposure")
async def exposure(request: web.Request) -> web.Response:
    """Advance exposure per merchant and platform-wide (SPEC 5, 7)."""
    services = request.app[SERVICES]
    return json_response(await advance_exposure(services.pool))
