"""Payout risk rules (SPEC 8), pure: the accept transaction brings the counters, these decide.

Each refusal carries its API error code. Daily budgets are per merchant and business day;
velocity is per payee account and hour of simulated time, across all merchants.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from protocol.errors import ApiError, BusinessRefusal


@dataclass(frozen=True, slots=True)
class RiskRules:
    payee_velocity_per_hour: int  # K payouts per payee account per simulated hour


@dataclass(slots=True)
class DailyUsage:
    amount_fen: int = 0
    count: int = 0


def hour_start(sim_now: datetime) -> datetime:
    return sim_now.replace(minute=0, second=0, microsecond=0)


def check_amount(amount_fen: int, max_amount_fen: int) -> ApiError | None:
    if amount_fen > max_amount_fen:
        return BusinessRefusal(
            f"amount {amount_fen} is over the per-payout limit {max_amount_fen}",
            field="amount",
            code="amount_limit_exceeded",
        )
    return None


def check_daily(
    used: DailyUsage, amount_fen: int, daily_amount_fen: int, daily_count: int
) -> ApiError | None:
    if used.count + 1 > daily_count:
        return BusinessRefusal(
            f"daily count limit {daily_count} reached", field="amount", code="daily_limit_exceeded"
        )
    if used.amount_fen + amount_fen > daily_amount_fen:
        return BusinessRefusal(
            f"amount would take today's total over the daily limit {daily_amount_fen}",
            field="amount",
            code="daily_limit_exceeded",
        )
    return None


def check_payee(blocked: bool, velocity_count: int, rules: RiskRules) -> ApiError | None:
    if blocked:
        return BusinessRefusal("payee account is blocked", field="payee.account_no",
                               code="payee_blocked")  # fmt: skip
    if velocity_count + 1 > rules.payee_velocity_per_hour:
        return BusinessRefusal(
            f"payee account already received {velocity_count} payouts this hour",
            field="payee.account_no",
            code="velocity_limit_exceeded",
        )
    return None
