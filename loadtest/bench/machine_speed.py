"""How fast this machine runs our kind of Python right now, so two bench runs can be compared.

On a shared 2-core machine the same code has measured a third slower from one full run to the
next (README, "Where it stands now": the untouched bare ceiling 10,293/s, then 6,815/s), with
no steal time to show for it, so a run's rates say as much about the minute as about the code.
The bench times a fixed workload in its own process before the system starts and after it
stops, on an idle machine: HMAC-SHA256 over a request-sized body, orjson out and back of a
payout-shaped object and a little dict and string work (what the gateway, the worker and the
simulators spend their time on, beside the kernel and PostgreSQL). Two runs whose speeds
differ by more than a few per cent are not a before/after pair; one whose start and end differ
changed speed during the run.
"""

from __future__ import annotations

import hashlib
import hmac
import statistics
import time
from collections.abc import Callable
from typing import Any

import orjson

WINDOWS = 5
WINDOW_S = 0.4
_KEY = b"k" * 32
_OBJECT: dict[str, Any] = {
    "id": "po_01JD5Z8Q4V2M7X3K9R6T1B0NCE",
    "merchant_order_id": "order-000123456",
    "amount": 123_456,
    "fee": 200,
    "currency": "CNY",
    "status": "succeeded",
    "payee": {
        "account_no": "6222020200012345678",
        "account_name": "张三",
        "bank_code": "102",
        "account_type": "personal",
    },
    "metadata": {f"k{i}": f"value-{i}" for i in range(8)},
}
_BODY = orjson.dumps(_OBJECT)


def _unit() -> int:
    signature = hmac.new(_KEY, _BODY, hashlib.sha256).hexdigest()
    again = orjson.loads(orjson.dumps(_OBJECT))
    fields = {k.upper(): str(v) for k, v in again.items()}
    return len(signature) + len(fields)


def units_per_s(
    window_s: float = WINDOW_S, clock: Callable[[], float] = time.perf_counter
) -> float:
    """Workload units per second of wall time (`clock`) over one window: what the process got
    of the machine, not its CPU time, so a busy neighbour lowers it."""
    done = 0
    start = clock()
    deadline = start + window_s
    while True:
        for _ in range(200):
            _unit()
        done += 200
        now = clock()
        if now >= deadline:
            return done / (now - start)


def machine_speed(
    windows: int = WINDOWS,
    window_s: float = WINDOW_S,
    clock: Callable[[], float] = time.perf_counter,
) -> int:
    """The median of `windows` windows (a short hiccup moves one window, not the figure)."""
    return round(statistics.median(units_per_s(window_s, clock) for _ in range(windows)))


def speed_summary(start: int, end: int) -> dict[str, Any]:
    return {"start_units_per_s": start, "end_units_per_s": end,
            "end_over_start": round(end / start, 3) if start else None}  # fmt: skip


def speed_line(m: dict[str, Any] | None) -> tuple[str, str]:
    label = "machine speed start / end"
    if not m:
        return (label, "n/a")
    figures = f"{m['start_units_per_s']:,} / {m['end_units_per_s']:,} units/s"
    return (label, f"{figures} (end/start {m['end_over_start']}; compare runs at like speeds)")
