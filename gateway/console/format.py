"""Jinja filters for the console: money in yuan from fen, masked account numbers, times."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

import orjson


def yuan(fen: int | None) -> str:
    """¥1,234.56 from 123456 fen (integer arithmetic; no float touches the amount)."""
    if fen is None:
        return "—"
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(int(fen)), 100)
    return f"{sign}¥{whole:,}.{cents:02d}"


def masked(account_no: str | None) -> str:
    """All but the last 4 digits hidden."""
    if not account_no:
        return "—"
    return "••••" + account_no[-4:]


def when(value: datetime | str | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def age(value: datetime | None) -> str:
    if value is None:
        return "—"
    seconds = int((datetime.now(UTC) - value).total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"


def as_json(value: Any) -> str:
    """A JSON value for the audit's before/after (escaped by the template, like all text)."""
    if value is None:
        return "—"
    return orjson.dumps(value, default=str, option=orjson.OPT_SORT_KEYS).decode()


FILTERS: Final[dict[str, Callable[..., str]]] = {
    "yuan": yuan, "masked": masked, "when": when, "age": age, "as_json": as_json,
}  # fmt: skip
