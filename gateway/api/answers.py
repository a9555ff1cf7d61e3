"""The shapes of the API's answers (SPEC 11), as msgspec structs for `/openapi.json`.

Handlers build answers as dicts (`payouts/model.py`, `b2b/model.py`, ...); these structs say
what those dicts hold, and the fuzz test (`tests/integration/test_fuzz.py`) checks the answers
it gets against them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from msgspec import Struct

from gateway.contract.requests import Payee


class ErrorDetail(Struct):
    code: str
    message: str
    field: str | None
    request_id: str


class ErrorBody(Struct):
    """Every 4xx and 5xx answer."""

    error: ErrorDetail


class Funding(Struct):
    balance: int
    advance: int


class Failure(Struct):
    code: str
    message: str | None


class Payout(Struct):
    id: str
    merchant_order_id: str
    amount: int
    fee: int
    currency: str
    status: Literal[
        "review_pending", "accepted", "processing", "succeeded", "failed", "rejected", "returned"
    ]
    payee: Payee
    purpose: str | None
    metadata: dict[str, str] | None
    bank_id: str | None
    bank_ref: str | None
    funding: Funding
    failure: Failure | None
    account_id: str | None  # a withdrawal's personal account (提现)
    created_at: datetime
    updated_at: datetime


class BatchItem(Struct):
    index: int
    status: int  # 201 new, 200 replay, else the refusal's status
    payout: Payout | None = None
    error: ErrorDetail | None = None


class PayoutBatchResult(Struct):
    items: list[BatchItem]
    accepted: int
    refused: int


class B2BPayment(Struct):
    id: str
    merchant_order_id: str
    amount: int
    currency: str
    payer_bank: str
    payer_account_name: str | None
    status: Literal["pending", "notified", "cleared", "failed", "reversed"]
    bank_ref: str | None
    bank_page_url: str | None
    clearing: Literal["realtime", "t+1"]
    expected_clear_at: datetime | None
    notified_at: datetime | None
    cleared_at: datetime | None
    failure: Failure | None
    created_at: datetime
    updated_at: datetime


class Balance(Struct):
    available: int
    held: int
    pending_in: int
    advance_limit: int
    advance_used: int
    spendable: int
    currency: str


class Delivery(Struct):
    status: Literal["pending", "delivered", "failed", "skipped"]
    attempts: int
    delivered_at: datetime | None
    last_error: str | None
    history: list[dict[str, Any]] | None = None  # one event: every attempt


class Event(Struct):
    id: str
    type: str
    object_id: str
    sequence: int
    data: dict[str, Any]
    created_at: datetime
    delivery: Delivery


class Customer(Struct):
    id: str
    external_id: str | None  # None for the merchant itself (kind merchant)
    name: str
    kind: Literal["personal", "merchant"]
    created_at: datetime


class Figures(Struct):
    available: int
    frozen: int
    total: int  # available + frozen


class Account(Struct):
    """A personal account (金账户) or sub-account, or the merchant's settlement account (its
    balance: available, and held for payouts as frozen). `rollup`: the account's subtree."""

    id: str
    customer_id: str
    parent_id: str | None
    kind: Literal["personal", "merchant"]
    purpose: str
    currency: str
    available: int
    frozen: int
    total: int
    rollup: Figures
    created_at: datetime


class Transfer(Struct):
    id: str
    merchant_order_id: str
    kind: Literal["personal_to_personal", "personal_to_merchant", "merchant_to_personal"]
    from_account: str
    to_account: str
    amount: int
    currency: str
    from_freeze: str | None
    status: Literal["completed"]
    created_at: datetime


class Freeze(Struct):
    id: str
    merchant_order_id: str
    account_id: str
    amount: int
    released: int  # given back to available by unfreezes
    transferred: int  # consumed by claim transfers (from_freeze)
    remaining: int  # still frozen
    currency: str
    reason: str
    status: Literal["active", "released", "transferred"]
    created_at: datetime
    updated_at: datetime


class Payer(Struct):
    account_no: str
    account_name: str
    bank_code: str


class CollectionFailure(Struct):
    code: str
    message: str


class Collection(Struct):
    id: str
    merchant_order_id: str
    account_id: str
    amount: int
    currency: str
    payer: Payer
    advance_on_failure: bool
    status: Literal["pending", "succeeded", "failed"]
    bank_id: str | None
    bank_ref: str | None
    failure: CollectionFailure | None
    advanced: int  # fronted from the advance line when the debit failed (公司垫付)
    repaid: int  # of this success, what repaid earlier advances for the same payer
    created_at: datetime
    updated_at: datetime


class CollectionPage(Struct):
    data: list[Collection]
    next_cursor: str | None


class CustomerPage(Struct):
    data: list[Customer]
    next_cursor: str | None


class AccountPage(Struct):
    data: list[Account]
    next_cursor: str | None


class TransferPage(Struct):
    data: list[Transfer]
    next_cursor: str | None


class FreezePage(Struct):
    data: list[Freeze]
    next_cursor: str | None


class PayoutPage(Struct):
    data: list[Payout]
    next_cursor: str | None


class B2BPage(Struct):
    data: list[B2BPayment]
    next_cursor: str | None


class EventPage(Struct):
    data: list[Event]
    next_cursor: str | None


class Page(Struct):
    """A list: `data` and the cursor of the next page."""

    data: list[dict[str, Any]]
    next_cursor: str | None


class Ok(Struct):
    ok: bool
