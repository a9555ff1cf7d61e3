"""The merchant as the domain sees it, and the documented defaults for new merchants."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.notifications.event_types import DEFAULT_NOTIFY_EVENTS

# Defaults for fields omitted at creation (README "Merchant defaults" repeats them).
DEFAULT_MAX_AMOUNT_FEN = 5_000_000_00  # 5,000,000.00 CNY per payout
DEFAULT_DAILY_AMOUNT_FEN = 100_000_000_00  # 100,000,000.00 CNY per business day
DEFAULT_DAILY_COUNT = 1_000_000
DEFAULT_RATE_LIMIT_RPS = 100
DEFAULT_RATE_LIMIT_BURST = 200


@dataclass(frozen=True, slots=True)
class Merchant:
    id: str
    name: str
    secret: str
    status: str
    funding_mode: str
    currency: str
    advance_limit_fen: int
    fee_fixed_fen: int
    fee_bps: int
    max_amount_fen: int
    daily_amount_fen: int
    daily_count: int
    rate_limit_rps: int
    rate_limit_burst: int
    review_threshold_fen: int | None
    notify_url: str | None
    notify_events: tuple[str, ...] = DEFAULT_NOTIFY_EVENTS  # event types sent, or ("*",)
    created_at: Any = None
    updated_at: Any = None

    @property
    def active(self) -> bool:
        return self.status == "active"

    def public(self, *, with_secret: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "funding_mode": self.funding_mode,
            "currency": self.currency,
            "advance_limit": self.advance_limit_fen,
            "fee_fixed": self.fee_fixed_fen,
            "fee_bps": self.fee_bps,
            "max_amount": self.max_amount_fen,
            "daily_amount": self.daily_amount_fen,
            "daily_count": self.daily_count,
            "rate_limit": {"rps": self.rate_limit_rps, "burst": self.rate_limit_burst},
            "review_threshold": self.review_threshold_fen,
            "notify_url": self.notify_url,
            "notify_events": list(self.notify_events),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }
        if with_secret:
            out["secret"] = self.secret
        return out
