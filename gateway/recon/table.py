"""A reconciliation report as the readable table `paygate reconcile` prints (pure)."""

from __future__ import annotations

from typing import Any

from gateway.recon.compare import KINDS, Kind

HEADERS = ("kind", "bank_ref", "payout_id", "gateway", "bank", "action")
MAX_CELL = 80  # a longer cell is cut (the JSON, `--json`, has it whole)


def yuan(fen: int) -> str:
    """12345 -> "123.45" (integer arithmetic; amounts stay integer fen everywhere else)."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole:,}.{cents:02d}"


def _side(side: dict[str, Any] | None) -> str:
    if not side:
        return "-"
    return f"{side.get('status', '?')} {yuan(int(side.get('amount', 0)))}"


def _cell(value: Any) -> str:
    text = "-" if value is None or value == "" else str(value)
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def render(report: dict[str, Any]) -> str:
    """Summary counts, then one row per item (kind, bank_ref, payout_id, gateway status and
    amount, bank status and amount, action)."""
    applied = " (apply)" if report.get("apply") else ""
    out = [f"reconciliation {report['id']}: bank {report['bank_id']}, {report['date']}{applied}"]
    summary = report["summary"]
    counts = [f"{k.value} {summary.get(k.value, 0)}" for k in KINDS]
    out.append("  ".join([*counts, f"applied {summary.get('applied', 0)}"]))
    items = report.get("items") or []
    if not items:
        matched = summary.get(Kind.MATCHED.value, 0)
        out.append(f"no differences ({matched} matched)")
        return "\n".join(out) + "\n"
    rows = [HEADERS] + [
        (_cell(i["kind"]), _cell(i["bank_ref"]), _cell(i["payout_id"]), _side(i.get("gateway")),
         _side(i.get("bank")), _cell(i["action"]))
        for i in items
    ]  # fmt: skip
    widths = [max(len(r[c]) for r in rows) for c in range(len(HEADERS))]
    out.append("")
    for n, row in enumerate(rows):
        out.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out) + "\n"
