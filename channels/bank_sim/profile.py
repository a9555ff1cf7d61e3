"""A simulated bank's profile (SPEC 9): how it answers, fails and calls back.

Profiles are immutable values; `PUT /banks/{id}/profile` builds a new one with `patched`, a
JSON Merge Patch (RFC 7396) over the current profile: objects merge key by key, `null`
removes a key (a field falls back to its default), anything else replaces the value. One
exception: `outcomes` (and `collection_outcomes`) is a single distribution, so a given one
replaces it whole.
Every field has a default, and the defaults are the `default` preset.
"""

from __future__ import annotations

import math
from types import MappingProxyType
from typing import Annotated, Any, Final, Literal

import msgspec

MAX_DELAY_MS: Final = 7 * 24 * 3600 * 1000  # a week of simulated time
MAX_HANG_MS: Final = 120_000
MAX_TPS: Final = 1_000_000
MAX_CALLBACK_RETRIES: Final = 20
MAX_SCRIPTS: Final = 10_000
# The most items one batch carries either way (SPEC 9, 批量代付 / 批量回盘).
MAX_BATCH_ITEMS: Final = 500
MAX_LINGER_MS: Final = 1_000.0

SUCCEEDED: Final = "succeeded"
# Real failure reason codes with the bank's fixed message for each.
FAILURE_MESSAGES: Final = MappingProxyType(
    {
        "account_not_found": "账户不存在",
        "account_name_mismatch": "户名不符",
        "account_frozen": "账户冻结",
        "over_bank_limit": "超过银行单笔限额",
        "account_closed": "账户已销户",
    }
)
OUTCOME_CODES: Final = frozenset({SUCCEEDED, *FAILURE_MESSAGES})
# Why a debit of a payer's card (代收, a collection) fails, with the bank's message for each.
COLLECTION_FAILURE_MESSAGES: Final = MappingProxyType(
    {
        "insufficient_balance": "余额不足",
        "card_frozen": "卡片冻结",
        "no_debit_agreement": "未签订代扣协议",
    }
)
COLLECTION_OUTCOME_CODES: Final = frozenset({SUCCEEDED, *COLLECTION_FAILURE_MESSAGES})
# Not drawn: a single bank refuses a payee whose CNAPS code names another bank.
INVALID_BANK_CODE: Final = "invalid_bank_code"
INVALID_BANK_CODE_MESSAGE: Final = "收款行行号不属于本行"
# The reason a returned (退票) payout carries.
RETURN_CODE: Final = "account_closed"
# Why a corporate payer's B2B payment fails, with the bank's message for each (drawn evenly).
B2B_FAILURE_MESSAGES: Final = MappingProxyType(
    {
        "payer_cancelled": "付款方取消支付",
        "insufficient_balance": "付款账户余额不足",
    }
)

Probability = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
Weight = Annotated[float, msgspec.Meta(ge=0.0, le=1e9)]
DelayMs = Annotated[float, msgspec.Meta(ge=0.0, le=MAX_DELAY_MS)]
ClockTime = Annotated[str, msgspec.Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
BankId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,16}$")]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
AccountNo = Annotated[str, msgspec.Meta(min_length=1, max_length=34)]
AccountName = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]

SyncFault = Literal["timeout", "reset"]
CallbackFault = Literal["lost", "duplicate", "out_of_order", "very_late"]
B2BOutcome = Literal["succeeded", "failed"]
ClearingFate = Literal["cleared", "reversed"]
CLEARING_FATES: Final = ("cleared", "reversed")
B2BCallbackFault = Literal["lost", "duplicate", "very_late"]


def minutes_of_day(hh_mm: str) -> int:
    hours, minutes = hh_mm.split(":")
    return int(hours) * 60 + int(minutes)


class Delay(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A lognormal delay given by its median and 99th percentile; fixed when they are equal."""

    median_ms: DelayMs = 0.0
    p99_ms: DelayMs = 0.0

    def __post_init__(self) -> None:
        if self.p99_ms < self.median_ms:
            raise ValueError("p99_ms must be >= median_ms")
        if self.median_ms == 0 and self.p99_ms > 0:
            raise ValueError("median_ms 0 (instant) needs p99_ms 0")


class Window(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A daily maintenance window in business time (UTC+8); wraps midnight when end < start."""

    start: ClockTime
    end: ClockTime

    def __post_init__(self) -> None:
        if self.start == self.end:
            raise ValueError("a maintenance window needs start != end")

    def contains(self, minute_of_day: int) -> bool:
        start, end = minutes_of_day(self.start), minutes_of_day(self.end)
        if start < end:
            return start <= minute_of_day < end
        return minute_of_day >= start or minute_of_day < end


def _very_late_default() -> Delay:
    return Delay(median_ms=60_000.0, p99_ms=300_000.0)


class CallbackFaults(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Probabilities of each callback fault; at most one fault hits a payout."""

    duplicate: Probability = 0.0
    out_of_order: Probability = 0.0
    lost: Probability = 0.0
    very_late: Probability = 0.0
    very_late_delay: Delay = msgspec.field(default_factory=_very_late_default)

    def __post_init__(self) -> None:
        if self.duplicate + self.out_of_order + self.lost + self.very_late > 1.0:
            raise ValueError("callback fault probabilities must sum to at most 1")


class AnswerFaults(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Lies in the bank's synchronous answers (its records stay true): a batch's items
    answered in another order, an answer stating another amount than the bank holds."""

    shuffle_batch: Probability = 0.0  # per batch answer
    wrong_amount_submit: Probability = 0.0  # per submission's answer (alone or a batch item)
    wrong_amount_query: Probability = 0.0  # per status query's answer


class Script(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What happens to payouts to one payee account, overriding the random draws."""

    outcome: str | None = None
    sync: SyncFault | None = None
    callback: CallbackFault | None = None
    returned: bool | None = None

    def __post_init__(self) -> None:
        known = OUTCOME_CODES | COLLECTION_OUTCOME_CODES | {INVALID_BANK_CODE}
        if self.outcome is not None and self.outcome not in known:
            raise ValueError(f"unknown outcome {self.outcome!r}")


class B2BScript(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What happens to B2B payments from one payer account name, overriding the random draws."""

    outcome: B2BOutcome | None = None
    clearing: ClearingFate | None = None
    callback: B2BCallbackFault | None = None


def _default_outcomes() -> dict[str, float]:
    return {
        SUCCEEDED: 0.96,
        "account_not_found": 0.012,
        "account_name_mismatch": 0.012,
        "account_frozen": 0.006,
        "over_bank_limit": 0.005,
        "account_closed": 0.005,
    }


def _default_collection_outcomes() -> dict[str, float]:
    return {
        SUCCEEDED: 0.93,
        "insufficient_balance": 0.04,
        "card_frozen": 0.015,
        "no_debit_agreement": 0.015,
    }


def _default_ack() -> Delay:
    return Delay(median_ms=20.0, p99_ms=80.0)


def _default_callback_delay() -> Delay:
    return Delay(median_ms=300.0, p99_ms=2_000.0)


def _default_return_delay() -> Delay:
    return Delay(median_ms=3_600_000.0, p99_ms=86_400_000.0)


def _default_b2b_pay_delay() -> Delay:
    return Delay(median_ms=1_000.0, p99_ms=5_000.0)


class BankProfile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    bank_id: BankId = "102"
    name: Name = "ICBC"
    kind: Literal["bank", "interbank"] = "bank"
    payout_mode: Literal["realtime", "batch"] = "realtime"
    batch_interval_ms: Annotated[int, msgspec.Meta(ge=1, le=MAX_DELAY_MS)] = 60_000
    ack_latency: Delay = msgspec.field(default_factory=_default_ack)  # wall time
    callback_delay: Delay = msgspec.field(default_factory=_default_callback_delay)
    outcomes: dict[str, Weight] = msgspec.field(default_factory=_default_outcomes)
    # Debits of payers' cards (collections): their own distribution.
    collection_outcomes: dict[str, Weight] = msgspec.field(
        default_factory=_default_collection_outcomes
    )
    sync_timeout_prob: Probability = 0.0
    sync_timeout_hang_ms: Annotated[int, msgspec.Meta(ge=0, le=MAX_HANG_MS)] = 30_000  # wall
    connection_reset_prob: Probability = 0.0
    tps: Annotated[int, msgspec.Meta(ge=1, le=MAX_TPS)] = 500
    maintenance: Annotated[list[Window], msgspec.Meta(max_length=48)] = []
    maintenance_now: bool = False
    callback_faults: CallbackFaults = msgspec.field(default_factory=CallbackFaults)
    answer_faults: AnswerFaults = msgspec.field(default_factory=AnswerFaults)
    return_prob: Probability = 0.0
    return_delay: Delay = msgspec.field(default_factory=_default_return_delay)
    callback_retries: Annotated[int, msgspec.Meta(ge=0, le=MAX_CALLBACK_RETRIES)] = 5
    # Batches both ways: 1 means single submissions only / one item per callback POST.
    submit_batch_max: Annotated[int, msgspec.Meta(ge=1, le=MAX_BATCH_ITEMS)] = MAX_BATCH_ITEMS
    callback_batch_max: Annotated[int, msgspec.Meta(ge=1, le=MAX_BATCH_ITEMS)] = MAX_BATCH_ITEMS
    # Wall time the sender waits to gather more of a bank's callbacks before posting a partial
    # batch (0: whatever was queued in the same loop iteration).
    callback_batch_linger_ms: Annotated[float, msgspec.Meta(ge=0.0, le=MAX_LINGER_MS)] = 5.0
    b2b_pay_delay: Delay = msgspec.field(default_factory=_default_b2b_pay_delay)  # simulated
    b2b_success_prob: Probability = 0.98
    clearing: Literal["realtime", "t+1"] = "realtime"
    clearing_cutoff: ClockTime = "17:00"
    clearing_failure_prob: Probability = 0.0
    scripted: Annotated[dict[AccountNo, Script], msgspec.Meta(max_length=MAX_SCRIPTS)] = {}
    # Keyed by the B2B payer's account name.
    b2b_scripted: Annotated[dict[AccountName, B2BScript], msgspec.Meta(max_length=MAX_SCRIPTS)] = {}

    def __post_init__(self) -> None:
        for name, weights, codes in (
            ("outcome", self.outcomes, OUTCOME_CODES),
            ("collection outcome", self.collection_outcomes, COLLECTION_OUTCOME_CODES),
        ):
            unknown = set(weights) - codes
            if unknown:
                raise ValueError(f"unknown {name} codes {sorted(unknown)}")
            total = sum(weights.values())
            if not (total > 0 and math.isfinite(total)):
                raise ValueError(f"{name} weights must sum to a positive number")
        if self.sync_timeout_prob + self.connection_reset_prob > 1.0:
            raise ValueError("sync_timeout_prob + connection_reset_prob must be at most 1")

    def in_maintenance(self, minute_of_day: int) -> bool:
        return self.maintenance_now or any(w.contains(minute_of_day) for w in self.maintenance)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = msgspec.to_builtins(self)
        return data


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396: merge `patch` over `target` (neither is modified)."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def profile_from_json(data: Any) -> BankProfile:
    """Validate builtins into a profile; raises msgspec.ValidationError naming the field."""
    return msgspec.convert(data, BankProfile)


def patched(current: BankProfile, patch: dict[str, Any]) -> BankProfile:
    """`current` with `patch` merged over it; the bank id cannot change."""
    merged = merge_patch(current.to_json(), patch)
    for whole in ("outcomes", "collection_outcomes"):
        if isinstance(patch.get(whole), dict):
            merged[whole] = patch[whole]
    profile = profile_from_json(merged)
    if profile.bank_id != current.bank_id:
        raise ValueError("bank_id cannot be changed")
    return profile
