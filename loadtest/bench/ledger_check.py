"""The ledger check (SPEC 4 and 16 invariants) as a run reads it at its end: over the admin
API, with how long it took, and one line for a summary table."""

from __future__ import annotations

import time
from typing import Any

from gateway.client import AdminClient

# It scans every posting the run wrote: after a full bench, many more than a test's.
LEDGER_CHECK_TIMEOUT_S = 600.0


async def ledger_check(gateway_url: str, admin_token: str) -> dict[str, Any]:
    """GET /admin/ledger/check: `{ok, checks: [{name, ok, violations}], took_s}`."""
    started = time.monotonic()
    async with AdminClient(gateway_url, admin_token, timeout_s=LEDGER_CHECK_TIMEOUT_S) as admin:
        resp = await admin.get("/admin/ledger/check")
    if resp.status != 200:
        raise RuntimeError(f"ledger check answered {resp.status}: {resp.body!r}")
    data: dict[str, Any] = resp.json()
    return {**data, "took_s": round(time.monotonic() - started, 1)}


def ledger_line(ledger: dict[str, Any]) -> str:
    """`PASS (n invariants, 1.2s)` or `FAIL: name (violations), ...`."""
    if ledger["ok"]:
        return f"PASS ({len(ledger['checks'])} invariants, {ledger['took_s']}s)"
    failing = [f"{c['name']} ({c['violations']})" for c in ledger["checks"] if not c["ok"]]
    return "FAIL: " + ", ".join(failing)
