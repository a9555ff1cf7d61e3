"""`paygate demo` (what `make run` runs): scenarios/demo.yaml through the scenario runner
(run.py), then the demo's summary table, its report and its data.

The story is in the YAML: three merchants, the banks' realism, mixed load with a spike that
the reviewed merchant's rate limit refuses, two payouts through review, the advance merchant
paying out on its 垫资 line until the jump past the T+1 cut-off repays it. The runner creates
the merchants each run, so a second run on the same state directory tells the same story
(merchants kept from a run before would hold its cleared B2B funds and never borrow).

`--duration` (wall seconds) and `--time-scale` give the story's simulated length (their
product); its timeline is resized to it. `--rate` sets the base rate, the spike in proportion.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import orjson

from gateway.client import MerchantClient
from gateway.demo_merchants import DEMO_MERCHANTS
from loadtest.scenarios.model import Scenario, load_scenario, resized
from loadtest.scenarios.run import Outcome, yuan
from loadtest.scenarios.timeline import REVIEW_PAYEE

DEMO_SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "demo.yaml"


def say(text: str) -> None:
    print(f"demo: {text}", flush=True)


def demo_scenario(path: Path, duration_s: float, rate: float, time_scale: float) -> Scenario:
    """The demo's scenario for these options (ScenarioError: the file is bad)."""
    sc = load_scenario(path)
    sc = resized(sc, duration_s * time_scale / 60)
    load = sc.load
    if load is not None:
        factor = rate / load.rate_per_s
        load = msgspec.structs.replace(load, rate_per_s=rate,
                                       spike_rate_per_s=load.spike_rate_per_s * factor)  # fmt: skip
    return msgspec.structs.replace(sc, time_scale=time_scale, load=load)


def summary_rows(o: Outcome) -> list[tuple[str, str]]:
    t = o.load.totals
    lat = o.load.latency_ms
    status = o.totals["status"]
    rows = [
        ("requests sent / completed / no answer", f"{t.sent} / {t.completed} / {t.errors}"),
        ("achieved rate", f"{t.achieved_rate_per_s:.0f}/s (offered {t.offered_rate_per_s:.0f}/s)"),
        (
            "request latency p50 / p99 / p99.9",
            f"{lat.p50_ms:.1f} / {lat.p99_ms:.1f} / {lat.p999_ms:.1f} ms",
        ),
        ("HTTP status mix", ", ".join(f"{k}: {v}" for k, v in sorted(o.load.by_status.items()))),
        (
            "refused by reason",
            ", ".join(f"{k}: {v}" for k, v in sorted(o.load.by_code.items())) or "none",
        ),
        ("payouts accepted (created)", str(sum(status.values()))),
    ]
    for s in ("succeeded", "failed", "returned", "rejected", "processing", "accepted",
              "review_pending"):  # fmt: skip
        rows.append((f"  {s}", str(status.get(s, 0))))
    final = o.totals["accept_to_final_ms"]
    rows.append(("accept -> final p50 / p99", f"{final['p50']} / {final['p99']} ms"))
    n = o.totals["notifications"]
    # skipped: recorded, not sent (a type the merchant's notify_events leaves out), not owed
    kinds = ("delivered", "pending", "failed", "skipped")
    counts = " / ".join(str(n.get(k, 0)) for k in kinds)
    rows.append(("notifications delivered / pending / failed / skipped", counts))
    lag = o.totals["notification_lag_ms"]
    rows.append(("notification lag p50 / p99", f"{lag['p50']} / {lag['p99']} ms"))
    a = o.answers
    peak = f"{yuan(a['peak_advance_used_fen'])} at {a['peak_advance_at']} China time"
    rows.append(("peak advance used (垫资) and when", peak))
    e = o.exposure
    money = " / ".join(yuan(e[k]) for k in ("advance_used", "pending_in", "uncovered"))
    rows.append(("advance exposure (used / pending_in / uncovered)", money))
    failing = [c["name"] for c in o.ledger["checks"] if not c["ok"]]
    rows.append(("ledger check", "PASS" if o.ledger["ok"] else f"FAIL: {', '.join(failing)}"))
    rows.append(("timeline", "; ".join(f"{e['at']}: {e['what']}" for e in o.timeline) or "-"))
    return rows


def print_table(rows: list[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in rows)
    print()
    for k, v in rows:
        print(f"  {k.ljust(width)}  {v}")
    print(flush=True)


def save_json(o: Outcome, out_dir: Path, stamp: str) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"demo-{stamp}.json"
    path.write_bytes(orjson.dumps({
        "load": o.load.to_dict(), "samples": o.samples, "totals": o.totals,
        "exposure": o.exposure, "ledger": o.ledger, "answers": o.answers,
        "timeline": o.timeline, "failures": o.failures,
    }, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))  # fmt: skip
    return path


FOUR_EYES_ORDER = "console-four-eyes-demo"  # one per state directory: a rerun finds it again
FOUR_EYES_FEN = 6_000_000  # ¥60,000.00: above the default four-eyes line (¥50,000.00)


async def leave_for_review(info: dict[str, Any]) -> dict[str, Any]:
    """One large payout of the reviewed demo merchant left under review, so the console's
    four-eyes approval can be tried by hand (two approvers); the payout as the API answers."""
    reviewed = next(m["id"] for m in DEMO_MERCHANTS if m["review_threshold_fen"])
    merchant = next(m for m in info["merchants"] if m["id"] == reviewed)
    body = {"merchant_order_id": FOUR_EYES_ORDER, "amount": FOUR_EYES_FEN, "currency": "CNY",
            "payee": REVIEW_PAYEE, "purpose": "four-eyes example for the console"}  # fmt: skip
    async with MerchantClient(info["gateway_url"], merchant["id"], merchant["secret"]) as client:
        resp = await client.post("/v1/payouts", body)
    if resp.status not in (200, 201):
        raise RuntimeError(f"payout for review: {resp.status} {resp.body!r}")
    payout: dict[str, Any] = resp.json()
    return payout


def console_lines(info: dict[str, Any], payout: dict[str, Any] | None) -> list[str]:
    """What the demo says about the operator console (运营后台)."""
    password = info.get("console_password") or "(changed since; not shown)"
    lines = [f"console: {info['console_url']}  sign in as {info['console_user']} / {password}"]
    if payout is not None:
        lines.append(
            f"console: {payout['id']} ({yuan(payout['amount'])}) is {payout['status']} in "
            "财务审核: two different approvers must approve it (add them with `paygate "
            "operator add NAME --role approver`); `paygate up` brings this system back"
        )
    return lines
