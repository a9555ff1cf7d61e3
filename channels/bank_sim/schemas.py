"""Request bodies the simulator accepts, validated strictly (unknown fields refused)."""

from __future__ import annotations

from typing import Annotated, Literal, TypeVar

import msgspec

from channels.bank_sim.errors import SimError
from channels.bank_sim.profile import MAX_BATCH_ITEMS, AccountName

T = TypeVar("T")

Ref = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
AmountFen = Annotated[int, msgspec.Meta(ge=1, le=10**15)]


class Payee(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    account_no: Annotated[str, msgspec.Meta(min_length=1, max_length=34)]
    account_name: AccountName
    bank_code: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{12}$")]  # CNAPS 联行号
    account_type: Literal["personal", "corporate"]


Direction = Literal["credit", "debit"]


class PayoutSubmission(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A payout (`credit`: pay the payee's card) or a collection (`debit`: 代收, debit the
    payer's card, named as `payee`; it needs the payer's debit agreement)."""

    ref: Ref
    amount: AmountFen
    currency: Literal["CNY"]
    payee: Payee
    purpose: Annotated[str, msgspec.Meta(max_length=256)] | None = None
    direction: Direction = "credit"


class PayoutBatch(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`POST /banks/{id}/payout-batches`: items stay raw JSON here and are decoded one by one,
    so one bad item is refused alone instead of failing the whole body."""

    items: Annotated[list[msgspec.Raw], msgspec.Meta(min_length=1, max_length=MAX_BATCH_ITEMS)]


class B2BRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The gateway registers a B2B payment the corporate payer will then pay on the bank page."""

    ref: Ref
    amount: AmountFen
    currency: Literal["CNY"]
    payer_account_name: AccountName | None = None


def decode(body: bytes, type_: type[T]) -> T:
    try:
        return msgspec.json.decode(body, type=type_)
    except msgspec.ValidationError as exc:
        raise SimError(400, "invalid_request", str(exc)) from None
    except msgspec.DecodeError as exc:
        raise SimError(400, "invalid_request", f"malformed JSON: {exc}") from None
