"""Merchant payout endpoints: create (group-committed), batches, queries, ledger lines."""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from gateway.api import answers
from gateway.api.auth import current_merchant
from gateway.api.jsonio import decode, json_response, read_json
from gateway.api.middleware import REQUEST_ID_KEY
from gateway.api.operations import CURSOR, LIMIT, NEXT_CURSOR, ORDER_ID, Op, path_id
from gateway.api.paging import cursor, found_page, int_cursor, page, page_limit
from gateway.api.params import INT64_MAX, Param, query
from gateway.api.services import SERVICES, Services
from gateway.contract.requests import PayoutBatchRequest, PayoutRequest
from gateway.payouts import queries
from gateway.payouts.accept import AcceptResult, accept_batch
from gateway.payouts.model import PAYOUTS, AcceptItem, request_hash
from gateway.payouts.state import Status
from gateway.storage import owned
from protocol.errors import ApiError, InvalidRequest, NotFound

routes = web.RouteTableDef()
ENABLED_CURRENCIES = frozenset({"CNY"})
BATCH_CHUNK = 250  # items per transaction for a payout batch

PAYOUT_STATUS = Param("status", {"type": "string", "enum": [s.value for s in Status]})
# Journal lines are keyed by a bigint: any id up to int64, given as its decimal digits.
LEDGER_CURSOR = Param("cursor", {"type": "integer", "minimum": 1, "maximum": INT64_MAX},
                      description=NEXT_CURSOR)  # fmt: skip
PAYOUT_EXAMPLE: Final = {
    "merchant_order_id": "o-1",
    "amount": 10000,
    "currency": "CNY",
    "payee": {
        "account_no": "6222020200112233445",
        "account_name": "Zhang San",
        "bank_code": "102100099996",
        "account_type": "personal",
    },
}

OPERATIONS: Final[tuple[Op, ...]] = (
    Op(
        "post",
        "/v1/payouts",
        "Create a payout (代付)",
        "merchant",
        {201: answers.Payout, 200: answers.Payout},
        PayoutRequest,
        errors=(409, 422),
        example=PAYOUT_EXAMPLE,
    ),
    Op(
        "post",
        "/v1/payout-batches",
        "Create up to 1,000 payouts, each answered on its own",
        "merchant",
        {200: answers.PayoutBatchResult},
        PayoutBatchRequest,
        example={"items": [PAYOUT_EXAMPLE]},
    ),
    Op(
        "get",
        "/v1/payouts/{payout_id}",
        "One payout",
        "merchant",
        {200: answers.Payout},
        params=(path_id("payout_id"),),
        errors=(404,),
    ),
    Op(
        "get",
        "/v1/payouts",
        "Payouts: by merchant_order_id, or a page by status",
        "merchant",
        {200: answers.PayoutPage},
        params=(ORDER_ID, PAYOUT_STATUS, LIMIT, CURSOR),
    ),
    Op(
        "get",
        "/v1/ledger",
        "The merchant's journal lines",
        "merchant",
        {200: answers.Page},
        params=(LIMIT, LEDGER_CURSOR),
    ),
)


def _check_currency(req: PayoutRequest) -> None:
    if req.currency not in ENABLED_CURRENCIES:
        raise InvalidRequest(f"currency {req.currency} is not enabled", field="currency")


async def accept_payout(services: Services, merchant_id: str, req: PayoutRequest) -> AcceptResult:
    """One payout through the accepts' group commit (also the lean front's, lean_front.py)."""
    _check_currency(req)
    return await services.accepts.submit(AcceptItem(merchant_id, req, request_hash(req)))


@routes.post("/v1/payouts")
async def create_payout(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    req = await read_json(request, PayoutRequest)
    result = await accept_payout(services, current_merchant(request).id, req)
    if result.error is not None:
        raise result.error
    return json_response(result.payout, result.http_status)


@routes.post("/v1/payout-batches")
async def create_payout_batch(request: web.Request) -> web.Response:
    """Up to 1,000 payouts; each item is accepted or refused on its own."""
    services = request.app[SERVICES]
    merchant = current_merchant(request)
    request_id = request[REQUEST_ID_KEY]
    batch = await read_json(request, PayoutBatchRequest)

    def refused(index: int, exc: ApiError) -> dict[str, Any]:
        field = f"items[{index}].{exc.field}" if exc.field else f"items[{index}]"
        error = {"code": exc.code, "message": exc.message, "field": field,
                 "request_id": request_id}  # fmt: skip
        return {"index": index, "status": exc.status, "error": error}

    results: list[dict[str, Any]] = [{} for _ in batch.items]
    valid: list[tuple[int, AcceptItem]] = []
    for index, raw in enumerate(batch.items):
        try:
            req = decode(bytes(raw), PayoutRequest)
            _check_currency(req)
            valid.append((index, AcceptItem(merchant.id, req, request_hash(req))))
        except ApiError as exc:
            results[index] = refused(index, exc)
    # Funds go to items in their order: chunks are decided one after another.
    async with services.pool.acquire() as conn:
        for start in range(0, len(valid), BATCH_CHUNK):
            chunk = valid[start : start + BATCH_CHUNK]
            outcomes = await accept_batch(
                conn, [item for _, item in chunk], services.clock.now(), services.risk_rules
            )
            for (index, _), result in zip(chunk, outcomes, strict=True):
                if result.error is not None:
                    results[index] = refused(index, result.error)
                else:
                    results[index] = {"index": index, "status": result.http_status,
                                      "payout": result.payout}  # fmt: skip
    accepted = sum(1 for r in results if r["status"] in (200, 201))
    return json_response(
        {"items": results, "accepted": accepted, "refused": len(results) - accepted}
    )


@routes.get("/v1/payouts/{payout_id}")
async def get_payout(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    payout = await owned.get(
        services.pool, PAYOUTS, current_merchant(request).id, request.match_info["payout_id"]
    )
    if payout is None:
        raise NotFound("no such payout")
    return json_response(payout)


@routes.get("/v1/payouts")
async def list_payouts(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    merchant = current_merchant(request)
    params = query(request)
    order_id = params.text("merchant_order_id")
    if order_id is not None:
        found = await owned.by_order_id(services.pool, PAYOUTS, merchant.id, order_id)
        return found_page(found)
    limit, status, before = page_limit(request), params.text("status"), cursor(request)
    rows = await services.reads.read_list(
        merchant.id,
        lambda pool: owned.list_newest_first(pool, PAYOUTS, merchant.id, status, before, limit + 1),
    )
    return page(rows, limit)


@routes.get("/v1/ledger")
async def ledger(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    merchant_id, limit, before = (
        current_merchant(request).id,
        page_limit(request),
        int_cursor(request),
    )
    lines = await services.reads.read_list(
        merchant_id, lambda pool: queries.ledger_lines(pool, merchant_id, before, limit + 1)
    )
    return page(lines, limit)
