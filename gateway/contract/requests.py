"""Request bodies as msgspec structs: types, ranges and unknown fields checked on decode.

The domain takes them and the API decodes them (and describes them in /openapi.json), so they
live below both."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

MAX_AMOUNT_FEN = 10**13
# How many event types a merchant may choose (notifications/event_types.py checks the choice).
MAX_NOTIFY_EVENTS = 32

AmountFen = Annotated[int, Meta(ge=1, le=MAX_AMOUNT_FEN)]
NonNegFen = Annotated[int, Meta(ge=0, le=MAX_AMOUNT_FEN)]
Currency = Annotated[str, Meta(pattern=r"^[A-Z]{3}$")]
OrderId = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$")]
ObjectId = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_]+$")]
Name = Annotated[str, Meta(min_length=1, max_length=200, pattern=r"\S")]
Url = Annotated[str, Meta(max_length=2000, pattern=r"^https?://\S+$")]
Reference = Annotated[str, Meta(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")]
BankId = Annotated[str, Meta(pattern=r"^[0-9]{3}$|^ibps$")]
# Event types, or ["*"]; which types exist is checked by the handler (one field for the error).
NotifyEvents = Annotated[list[str], Meta(min_length=1, max_length=MAX_NOTIFY_EVENTS)]


class RateLimit(Struct, forbid_unknown_fields=True):
    rps: Annotated[int, Meta(ge=1, le=1_000_000)]
    burst: Annotated[int, Meta(ge=1, le=1_000_000)]


class MerchantCreate(Struct, forbid_unknown_fields=True):
    name: Name
    # The operator's key for this creation: a retry with the same reference and fields
    # answers the merchant it made (with its secret); other fields are a 409.
    reference: Reference | None = None
    funding_mode: Literal["prefunded", "advance"] = "prefunded"
    status: Literal["active", "suspended"] = "active"
    currency: Currency = "CNY"
    advance_limit: NonNegFen = 0
    fee_fixed: NonNegFen = 0
    fee_bps: Annotated[int, Meta(ge=0, le=10_000)] = 0
    max_amount: AmountFen | None = None
    daily_amount: AmountFen | None = None
    daily_count: Annotated[int, Meta(ge=1, le=100_000_000)] | None = None
    rate_limit: RateLimit | None = None
    review_threshold: AmountFen | None = None
    notify_url: Url | None = None
    notify_events: NotifyEvents | None = None


class MerchantPatch(Struct, forbid_unknown_fields=True):
    name: Name | UnsetType = UNSET
    status: Literal["active", "suspended"] | UnsetType = UNSET
    funding_mode: Literal["prefunded", "advance"] | UnsetType = UNSET
    advance_limit: NonNegFen | UnsetType = UNSET
    fee_fixed: NonNegFen | UnsetType = UNSET
    fee_bps: Annotated[int, Meta(ge=0, le=10_000)] | UnsetType = UNSET
    max_amount: AmountFen | UnsetType = UNSET
    daily_amount: AmountFen | UnsetType = UNSET
    daily_count: Annotated[int, Meta(ge=1, le=100_000_000)] | UnsetType = UNSET
    rate_limit: RateLimit | UnsetType = UNSET
    review_threshold: AmountFen | UnsetType | None = UNSET
    notify_url: Url | UnsetType | None = UNSET
    notify_events: NotifyEvents | UnsetType = UNSET


class CreditRequest(Struct, forbid_unknown_fields=True):
    amount: AmountFen
    currency: Currency
    reference: Reference


class Payee(Struct, forbid_unknown_fields=True):
    account_no: Annotated[str, Meta(pattern=r"^[0-9]{6,32}$")]
    account_name: Annotated[str, Meta(min_length=1, max_length=100, pattern=r"\S")]
    bank_code: Annotated[str, Meta(pattern=r"^[0-9]{12}$")]
    account_type: Literal["personal", "corporate"]


MetaKey = Annotated[str, Meta(min_length=1, max_length=40)]
MetaValue = Annotated[str, Meta(max_length=500)]


class PayoutRequest(Struct, forbid_unknown_fields=True):
    merchant_order_id: OrderId
    amount: AmountFen
    currency: Currency
    payee: Payee
    purpose: Annotated[str, Meta(max_length=140)] | None = None
    metadata: Annotated[dict[MetaKey, MetaValue], Meta(max_length=20)] | None = None
    # 提现 (SPEC 16): drawn from this personal account instead of the settlement account.
    # UNSET when absent, so a plain payout's fingerprint is what it always was.
    account_id: ObjectId | UnsetType = UNSET


class PayoutBatchRequest(Struct, forbid_unknown_fields=True):
    # Items are validated one by one (each refused on its own), so they stay raw here.
    items: Annotated[list[msgspec.Raw], Meta(min_length=1, max_length=1000)]


# Accounts (SPEC 16).


class CustomerCreate(Struct, forbid_unknown_fields=True):
    """A personal customer (客户) of the merchant; `external_id` (the merchant's own id for
    its user) makes the call idempotent."""

    external_id: OrderId
    name: Name


class AccountOpen(Struct, forbid_unknown_fields=True):
    """A personal account (金账户), or a sub-account (子账户) under `parent_id`. One account
    per (customer, parent, purpose): opening it again answers the same account."""

    customer_id: ObjectId
    purpose: Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^\S(.*\S)?$")]
    currency: Currency
    parent_id: ObjectId | None = None


class TransferRequest(Struct, forbid_unknown_fields=True):
    """个转个 / 个转商 / 商转个; `from_freeze` names a freeze of `from_account` whose frozen
    money the transfer consumes (债权转让)."""

    merchant_order_id: OrderId
    from_account: ObjectId
    to_account: ObjectId
    amount: AmountFen
    from_freeze: ObjectId | None = None


class Payer(Struct, forbid_unknown_fields=True):
    """The person whose card a collection debits (代收)."""

    account_no: Annotated[str, Meta(pattern=r"^[0-9]{6,32}$")]
    account_name: Annotated[str, Meta(min_length=1, max_length=100, pattern=r"\S")]
    bank_code: Annotated[str, Meta(pattern=r"^[0-9]{12}$")]


class CollectionRequest(Struct, forbid_unknown_fields=True):
    """代收 into `account_id`; `advance_on_failure` (还款划扣 with 公司垫付): a failed debit is
    fronted from the merchant's advance line, repaid by the payer's next successful one."""

    merchant_order_id: OrderId
    account_id: ObjectId
    amount: AmountFen
    currency: Currency
    payer: Payer
    advance_on_failure: bool = False


class FreezeRequest(Struct, forbid_unknown_fields=True):
    merchant_order_id: OrderId
    account_id: ObjectId
    amount: AmountFen
    reason: Annotated[str, Meta(min_length=1, max_length=200, pattern=r"\S")]


class UnfreezeRequest(Struct, forbid_unknown_fields=True):
    """Without `amount`: everything the freeze still holds. `merchant_order_id` makes a
    retry answer the first unfreeze again instead of releasing twice."""

    merchant_order_id: OrderId
    amount: AmountFen | None = None


class ReviewDecision(Struct, forbid_unknown_fields=True):
    reason: Annotated[str, Meta(max_length=500)] | None = None


class B2BRequest(Struct, forbid_unknown_fields=True):
    merchant_order_id: OrderId
    amount: AmountFen
    currency: Currency
    payer_bank: BankId
    payer_account_name: Annotated[str, Meta(min_length=1, max_length=200)] | None = None


class ChannelPatch(Struct, forbid_unknown_fields=True):
    enabled: bool | UnsetType = UNSET
    tps: Annotated[int, Meta(ge=1, le=1_000_000)] | UnsetType = UNSET
    cost_fen: Annotated[int, Meta(ge=0, le=1_000_000)] | UnsetType = UNSET
    expected_ms: Annotated[int, Meta(ge=1, le=86_400_000 * 7)] | UnsetType = UNSET
    failure_threshold: Annotated[int, Meta(ge=1, le=10_000)] | UnsetType = UNSET
    open_ms: Annotated[int, Meta(ge=0, le=86_400_000)] | UnsetType = UNSET
    submit_batch_max: Annotated[int, Meta(ge=1, le=500)] | UnsetType = UNSET
    breaker: Literal["open", "closed"] | UnsetType = UNSET


class DispatchPatch(Struct, forbid_unknown_fields=True):
    paused: bool


BankRef = Annotated[str, Meta(min_length=1, max_length=128)]
Text = Annotated[str, Meta(max_length=500)]


class BankCallbackItem(Struct, forbid_unknown_fields=True):
    """One status word from a bank (SPEC 10, callbacks in)."""

    event_id: BankRef
    ref: BankRef
    status: Literal["processing", "succeeded", "failed", "returned"]
    amount: AmountFen
    kind: Literal["payout", "b2b", "collection"] = "payout"
    bank_ref: BankRef | None = None
    failure_code: Annotated[str, Meta(max_length=64)] | None = None
    failure_message: Text | None = None
    occurred_at: Annotated[str, Meta(max_length=64)] | None = None
    # The bank's business date for the payment (its statement's date), when the bank says.
    business_date: Annotated[str, Meta(pattern=r"^\d{4}-\d{2}-\d{2}$")] | None = None


class BankCallback(Struct, forbid_unknown_fields=True):
    """Up to 500 words in one POST (批量回盘); each item is decoded on its own, so a bad one
    is refused alone and never sinks the others (SPEC 9)."""

    items: Annotated[list[msgspec.Raw], Meta(min_length=1, max_length=500)]


# A payee account as blocked (SPEC 8): also the key of the blocklist's pages and its DELETE.
BlockedAccountNo = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$")]


class BlocklistEntry(Struct, forbid_unknown_fields=True):
    account_no: BlockedAccountNo
    reason: Text = ""


MAX_CLOCK_JUMP_S = 86_400 * 366


class ClockAdvance(Struct, forbid_unknown_fields=True):
    """Exactly one: `advance_s` jumps by that much each time it is sent; `to` jumps to that
    time once (sent again, or already passed, it moves nothing: safe to retry)."""

    advance_s: Annotated[float, Meta(gt=0, le=MAX_CLOCK_JUMP_S)] | UnsetType = UNSET
    to: Annotated[datetime, Meta(tz=True)] | UnsetType = UNSET


class ReconcileRequest(Struct, forbid_unknown_fields=True):
    """`POST /admin/reconcile` (SPEC 10): one bank's statement for one business date."""

    bank_id: BankId
    day: date = msgspec.field(name="date")
    apply: bool = False


class ReconAdjustment(Struct, forbid_unknown_fields=True):
    merchant_id: Annotated[str, Meta(min_length=1, max_length=64)]
    # Non-zero fen: positive credits the merchant's available, negative debits it.
    amount: Annotated[int, Meta(ge=-MAX_AMOUNT_FEN, le=MAX_AMOUNT_FEN)]


class ReconResolve(Struct, forbid_unknown_fields=True):
    note: Annotated[str, Meta(min_length=1, max_length=2000, pattern=r"\S")]
    adjustment: ReconAdjustment | None = None
