"""`GET /openapi.json` (SPEC 11): OpenAPI 3.1, generated from the msgspec structs that decode
the requests (`gateway/contract/requests.py`) and describe the answers (`answers.py`), and
from the table of operations below, which names every route of the app (a test holds the two
together).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal

import msgspec

from gateway.api import answers
from gateway.api.paging import DEFAULT_PAGE, MAX_PAGE
from gateway.api.params import INT64_MAX, Param
from gateway.b2b.state import B2BStatus
from gateway.contract import requests as schemas
from gateway.payouts.state import Status
from gateway.recon.exceptions import STATUSES

Auth = Literal["merchant", "admin", "bank", "none"]
REF: Final = "#/components/schemas/{name}"


@dataclass(frozen=True, slots=True)
class Op:
    method: str
    path: str
    summary: str
    auth: Auth
    ok: dict[int, type | None]  # success status -> answer struct (None: any JSON object)
    body: type | None = None
    params: tuple[Param, ...] = ()
    errors: tuple[int, ...] = ()  # beyond those every operation of its kind may answer
    example: dict[str, Any] | None = None  # a request body that decodes with `body`
    tags: tuple[str, ...] = field(default_factory=tuple)


def schema_of(type_: Any) -> dict[str, Any]:
    """The JSON schema of a constrained type of `contract/requests.py`: a parameter is read by
    the same rule that decodes the body field it names."""
    schema: dict[str, Any] = msgspec.json.schema(type_)
    return schema


# An object id in a path: any printable ASCII up to 64 characters reaches the handler, so an
# id that names nothing (ours, another merchant's, or one in another format) is a plain 404;
# only what no id can be (too long, NUL, not UTF-8) is a 400.
PATH_ID = {"type": "string", "minLength": 1, "maxLength": 64, "pattern": r"^[\x21-\x7e]+$"}


def _id(name: str, schema: dict[str, Any] | None = None) -> Param:
    return Param(name, schema or PATH_ID, "path")


LIMIT = Param("limit", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE,
                        "default": DEFAULT_PAGE}, description=f"1-{MAX_PAGE}")  # fmt: skip
NEXT_CURSOR = "next_cursor of the previous page"
CURSOR = Param("cursor", schema_of(schemas.ObjectId), description=NEXT_CURSOR)
ORDER_ID = Param("merchant_order_id", schema_of(schemas.OrderId))
PAYOUT_STATUS = Param("status", {"type": "string", "enum": [s.value for s in Status]})
# Journal lines are keyed by a bigint: any id up to int64, given as its decimal digits.
LEDGER_CURSOR = Param("cursor", {"type": "integer", "minimum": 1, "maximum": INT64_MAX},
                      description=NEXT_CURSOR)  # fmt: skip
B2B_STATUS = Param("status", {"type": "string", "enum": [s.value for s in B2BStatus]})
BANK_ID = {**schema_of(schemas.BankId), "maxLength": 4}
RECON_STATUS = Param("status", {"type": "string", "enum": [*STATUSES, "all"], "default": "open"})
BLOCKED = Param("account_no", schema_of(schemas.BlockedAccountNo), "path")
BLOCKLIST_CURSOR = Param("cursor", schema_of(schemas.BlockedAccountNo), description=NEXT_CURSOR)

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
    # Merchants (signed, SPEC 11).
    Op(
        "post",
        "/v1/payouts",
        "Create a payout (代付)",
        "merchant",
        {201: answers.Payout, 200: answers.Payout},
        schemas.PayoutRequest,
        errors=(409, 422),
        example=PAYOUT_EXAMPLE,
    ),
    Op(
        "post",
        "/v1/payout-batches",
        "Create up to 1,000 payouts, each answered on its own",
        "merchant",
        {200: answers.PayoutBatchResult},
        schemas.PayoutBatchRequest,
        example={"items": [PAYOUT_EXAMPLE]},
    ),
    Op(
        "get",
        "/v1/payouts/{payout_id}",
        "One payout",
        "merchant",
        {200: answers.Payout},
        params=(_id("payout_id"),),
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
    Op(
        "post",
        "/v1/b2b-payments",
        "Fund the account by a B2B payment",
        "merchant",
        {201: answers.B2BPayment, 200: answers.B2BPayment},
        schemas.B2BRequest,
        errors=(409,),
        example={
            "merchant_order_id": "b-1",
            "amount": 100000,
            "currency": "CNY",
            "payer_bank": "102",
        },
    ),
    Op(
        "get",
        "/v1/b2b-payments/{b2b_id}",
        "One B2B payment",
        "merchant",
        {200: answers.B2BPayment},
        params=(_id("b2b_id"),),
        errors=(404,),
    ),
    Op(
        "get",
        "/v1/b2b-payments",
        "B2B payments: by merchant_order_id, or a page by status",
        "merchant",
        {200: answers.B2BPage},
        params=(ORDER_ID, B2B_STATUS, LIMIT, CURSOR),
    ),
    Op(
        "get",
        "/v1/balance",
        "Balance: available, held, pending_in, advance",
        "merchant",
        {200: answers.Balance},
    ),
    Op(
        "get",
        "/v1/events",
        "Notification events",
        "merchant",
        {200: answers.EventPage},
        params=(LIMIT, CURSOR),
    ),
    Op(
        "get",
        "/v1/events/{event_id}",
        "One event with its delivery history",
        "merchant",
        {200: answers.Event},
        params=(_id("event_id"),),
        errors=(404,),
    ),
    Op(
        "post",
        "/v1/events/{event_id}/redeliver",
        "Deliver an event again",
        "merchant",
        {202: answers.Event},
        params=(_id("event_id"),),
        errors=(404,),
    ),
    # Accounts (三户, SPEC 16).
    Op(
        "post",
        "/v1/customers",
        "Create a personal customer (客户), idempotent by external_id",
        "merchant",
        {201: answers.Customer, 200: answers.Customer},
        schemas.CustomerCreate,
        errors=(409,),
        example={"external_id": "user-42", "name": "Zhang San"},
    ),
    Op(
        "get",
        "/v1/customers",
        "Customers: by external_id, or a page",
        "merchant",
        {200: answers.CustomerPage},
        params=(
            Param("external_id", schema_of(schemas.OrderId)),
            LIMIT,
            CURSOR,
        ),
    ),
    Op(
        "get",
        "/v1/customers/{customer_id}",
        "One customer",
        "merchant",
        {200: answers.Customer},
        params=(_id("customer_id"),),
        errors=(404,),
    ),
    Op(
        "post",
        "/v1/accounts",
        "Open a personal account (金账户) or a sub-account (parent_id)",
        "merchant",
        {201: answers.Account, 200: answers.Account},
        schemas.AccountOpen,
        errors=(404, 409),
        example={
            "customer_id": "cus_0123456789abcdefghjkmnpqrs",
            "purpose": "wallet",
            "currency": "CNY",
        },
    ),
    Op(
        "get",
        "/v1/accounts",
        "Accounts (the settlement account too), optionally one customer's",
        "merchant",
        {200: answers.AccountPage},
        params=(
            Param("customer_id", schema_of(schemas.ObjectId)),
            LIMIT,
            CURSOR,
        ),
    ),
    Op(
        "get",
        "/v1/accounts/{account_id}",
        "One account with its balance and its subtree's rollup",
        "merchant",
        {200: answers.Account},
        params=(_id("account_id"),),
        errors=(404,),
    ),
    Op(
        "post",
        "/v1/transfers",
        "Internal transfer (个转个 / 个转商 / 商转个; from_freeze: 债权转让)",
        "merchant",
        {201: answers.Transfer, 200: answers.Transfer},
        schemas.TransferRequest,
        errors=(404, 409, 422),
        example={
            "merchant_order_id": "t-1",
            "from_account": "acc_0123456789abcdefghjkmnpqrs",
            "to_account": "acc_0123456789abcdefghjkmnpqrt",
            "amount": 5000,
        },
    ),
    Op(
        "get",
        "/v1/transfers",
        "Transfers: by merchant_order_id, or a page",
        "merchant",
        {200: answers.TransferPage},
        params=(ORDER_ID, LIMIT, CURSOR),
    ),
    Op(
        "get",
        "/v1/transfers/{transfer_id}",
        "One transfer",
        "merchant",
        {200: answers.Transfer},
        params=(_id("transfer_id"),),
        errors=(404,),
    ),
    Op(
        "post",
        "/v1/freezes",
        "Freeze money of a personal account (冻结)",
        "merchant",
        {201: answers.Freeze, 200: answers.Freeze},
        schemas.FreezeRequest,
        errors=(404, 409, 422),
        example={
            "merchant_order_id": "f-1",
            "account_id": "acc_0123456789abcdefghjkmnpqrs",
            "amount": 3000,
            "reason": "loan collateral",
        },
    ),
    Op(
        "get",
        "/v1/freezes",
        "Freezes: by merchant_order_id, or a page",
        "merchant",
        {200: answers.FreezePage},
        params=(ORDER_ID, LIMIT, CURSOR),
    ),
    Op(
        "get",
        "/v1/freezes/{freeze_id}",
        "One freeze",
        "merchant",
        {200: answers.Freeze},
        params=(_id("freeze_id"),),
        errors=(404,),
    ),
    Op(
        "post",
        "/v1/freezes/{freeze_id}/unfreeze",
        "Give frozen money back (解冻), whole or part; once per merchant_order_id (a replay"
        " answers 200 with the first answer, other fields 409)",
        "merchant",
        {200: answers.Freeze},
        schemas.UnfreezeRequest,
        params=(_id("freeze_id"),),
        errors=(404, 409, 422),
        example={"merchant_order_id": "u-1", "amount": 1000},
    ),
    Op(
        "post",
        "/v1/collections",
        "Collection (代收) from a payer's card into an account; advance_on_failure: 公司垫付",
        "merchant",
        {201: answers.Collection, 200: answers.Collection},
        schemas.CollectionRequest,
        errors=(404, 409, 422),
        example={
            "merchant_order_id": "c-1",
            "account_id": "acc_0123456789abcdefghjkmnpqrs",
            "amount": 20000,
            "currency": "CNY",
            "payer": {
                "account_no": "6222020200112233445",
                "account_name": "张三",
                "bank_code": "102100099996",
            },
            "advance_on_failure": True,
        },
    ),
    Op(
        "get",
        "/v1/collections",
        "Collections: by merchant_order_id, or a page",
        "merchant",
        {200: answers.CollectionPage},
        params=(ORDER_ID, LIMIT, CURSOR),
    ),
    Op(
        "get",
        "/v1/collections/{collection_id}",
        "One collection",
        "merchant",
        {200: answers.Collection},
        params=(_id("collection_id"),),
        errors=(404,),
    ),
    Op(
        "post",
        "/v1/noop",
        "A signed no-op (the benchmark's ceiling)",
        "merchant",
        {200: answers.Ok},
    ),
    # Banks (signed with the bank's key).
    Op(
        "post",
        "/callbacks/{bank_id}",
        "Bank results (批量回盘), each item applied on its own",
        "bank",
        {200: None},
        schemas.BankCallback,
        params=(_id("bank_id", BANK_ID),),
        errors=(404,),
    ),
    # Operators (bearer token).
    Op(
        "post",
        "/admin/merchants",
        "Create a merchant (returns its secret); with `reference`, a retry answers 200 with"
        " the same merchant",
        "admin",
        {201: None, 200: None},
        schemas.MerchantCreate,
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
        params=(_id("merchant_id"),),
        errors=(404,),
    ),
    Op(
        "patch",
        "/admin/merchants/{merchant_id}",
        "Change a merchant",
        "admin",
        {200: None},
        schemas.MerchantPatch,
        params=(_id("merchant_id"),),
        errors=(404,),
    ),
    Op(
        "post",
        "/admin/merchants/{merchant_id}/credits",
        "Manual deposit (journaled)",
        "admin",
        {201: None, 200: None},
        schemas.CreditRequest,
        params=(_id("merchant_id"),),
        errors=(404, 409),
    ),
    Op("get", "/admin/ledger/check", "The ledger invariants (SPEC 4)", "admin", {200: None}),
    Op("get", "/admin/exposure", "Advance (垫资) exposure", "admin", {200: None}),
    Op(
        "get",
        "/admin/reviews",
        "Payouts waiting for review",
        "admin",
        {200: answers.Page},
        params=(LIMIT, CURSOR),
    ),
    Op(
        "post",
        "/admin/payouts/{payout_id}/approve",
        "Approve a reviewed payout",
        "admin",
        {200: answers.Payout},
        schemas.ReviewDecision,
        params=(_id("payout_id"),),
        errors=(404, 409),
    ),
    Op(
        "post",
        "/admin/payouts/{payout_id}/reject",
        "Reject a reviewed payout",
        "admin",
        {200: answers.Payout},
        schemas.ReviewDecision,
        params=(_id("payout_id"),),
        errors=(404, 409),
    ),
    Op("get", "/admin/channels", "Bank channels and their breakers", "admin", {200: None}),
    Op(
        "patch",
        "/admin/channels/{channel_id}",
        "Change a channel",
        "admin",
        {200: None},
        schemas.ChannelPatch,
        params=(_id("channel_id"),),
        errors=(404,),
    ),
    Op("get", "/admin/dispatch", "Whether dispatch to banks is paused", "admin", {200: None}),
    Op(
        "patch",
        "/admin/dispatch",
        "Pause or resume dispatch to banks",
        "admin",
        {200: None},
        schemas.DispatchPatch,
    ),
    Op("get", "/admin/clock", "The simulated clock", "admin", {200: None}),
    Op(
        "post",
        "/admin/clock/advance",
        "Move simulated time forward: by advance_s, or to a time (retry-safe: lands once)",
        "admin",
        {200: None},
        schemas.ClockAdvance,
    ),
    Op(
        "post",
        "/admin/blocklist",
        "Block a payee account",
        "admin",
        {201: None, 200: None},
        schemas.BlocklistEntry,
    ),
    Op(
        "get",
        "/admin/blocklist",
        "Blocked payee accounts",
        "admin",
        {200: answers.Page},
        params=(LIMIT, BLOCKLIST_CURSOR),
    ),
    Op(
        "delete",
        "/admin/blocklist/{account_no}",
        "Unblock a payee account",
        "admin",
        {200: None, 204: None},
        params=(BLOCKED,),
        errors=(404,),
    ),
    Op(
        "post",
        "/admin/reconcile",
        "Reconcile one bank's statement for one date (对账)",
        "admin",
        {200: None},
        schemas.ReconcileRequest,
        errors=(404, 503),
        example={"bank_id": "102", "date": "2026-11-25", "apply": False},
    ),
    Op(
        "get",
        "/admin/recon-exceptions",
        "Reconciliation exceptions",
        "admin",
        {200: answers.Page},
        params=(RECON_STATUS, Param("bank_id", BANK_ID), LIMIT, CURSOR),
    ),
    Op(
        "post",
        "/admin/recon-exceptions/{exception_id}/resolve",
        "Resolve an exception with a note (and a journaled adjustment)",
        "admin",
        {200: None},
        schemas.ReconResolve,
        params=(_id("exception_id"),),
        errors=(404, 409),
    ),
    # Service.
    Op("get", "/healthz", "Liveness", "none", {200: None}),
    Op(
        "get",
        "/readyz",
        "Readiness (PostgreSQL and Redis answer)",
        "none",
        {200: None},
        errors=(503,),
    ),
    Op("get", "/metrics", "Prometheus metrics (text)", "none", {200: None}),
    Op("get", "/openapi.json", "This document", "none", {200: None}),
)

# What any operation of a kind may answer besides its own errors.
_COMMON_ERRORS: Final[dict[Auth, tuple[int, ...]]] = {
    "merchant": (400, 401, 403, 413, 429, 503),
    "admin": (400, 401, 413),
    "bank": (400, 401, 413),
    "none": (),
}

SIGNING: Final = (
    "paygate-hmac-v1: X-Paygate-Signature = 'v1=' + hex HMAC-SHA256(secret, timestamp + '\\n' "
    "+ nonce + '\\n' + METHOD + '\\n' + path_with_query + '\\n' + hex(sha256(body))); "
    "timestamps older than 300 s or replayed nonces are refused (401)."
)
_SIGNED: Final = ("X-Paygate-Key", "X-Paygate-Timestamp", "X-Paygate-Nonce", "X-Paygate-Signature")


def _security_schemes() -> dict[str, Any]:
    schemes: dict[str, Any] = {
        header.removeprefix("X-Paygate-").lower(): {
            "type": "apiKey", "in": "header", "name": header, "description": SIGNING,
        }
        for header in _SIGNED
    }  # fmt: skip
    schemes["admin"] = {"type": "http", "scheme": "bearer"}
    return schemes


def _responses(op: Op, refs: dict[type, dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for status, shape in op.ok.items():
        schema = refs[shape] if shape is not None else {"type": "object"}
        media = "application/json"
        if op.path == "/metrics":
            media, schema = "text/plain", {"type": "string"}
        out[str(status)] = {"description": "OK", "content": {media: {"schema": schema}}}
    error = {"content": {"application/json": {"schema": refs[answers.ErrorBody]}}}
    for status in sorted(set(_COMMON_ERRORS[op.auth]) | set(op.errors)):
        out[str(status)] = {"description": "error (SPEC 11 error body)"} | error
    return out


def _operation(op: Op, refs: dict[type, dict[str, Any]]) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "operationId": f"{op.method}_{op.path.strip('/').replace('/', '_').replace('{', '')}"
        .replace("}", "").replace("-", "_").replace(".", "_"),
        "summary": op.summary,
        "tags": [op.path.split("/")[1]],
        "responses": _responses(op, refs),
    }  # fmt: skip
    if op.params:
        doc["parameters"] = [
            {"name": p.name, "in": p.where, "required": p.where == "path", "schema": p.schema}
            | ({"description": p.description} if p.description else {})
            for p in op.params
        ]
    if op.body is not None:
        content: dict[str, Any] = {"schema": refs[op.body]}
        if op.example is not None:
            content["example"] = op.example
        doc["requestBody"] = {"required": True, "content": {"application/json": content}}
    if op.auth in ("merchant", "bank"):
        doc["security"] = [{h.removeprefix("X-Paygate-").lower(): [] for h in _SIGNED}]
    elif op.auth == "admin":
        doc["security"] = [{"admin": []}]
    else:
        doc["security"] = []
    return doc


def build_document() -> dict[str, Any]:
    shapes: list[type] = [answers.ErrorBody]
    for op in OPERATIONS:
        shapes += [s for s in op.ok.values() if s is not None]
        if op.body is not None:
            shapes.append(op.body)
    unique = list(dict.fromkeys(shapes))
    schema_list, components = msgspec.json.schema_components(unique, ref_template=REF)
    refs = dict(zip(unique, schema_list, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op, refs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Paygate",
            "version": "1",
            "description": "Payouts (代付), B2B funding and reconciliation in front of "
            "simulated banks. Amounts are integer fen. " + SIGNING,
        },
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": _security_schemes()},
    }
