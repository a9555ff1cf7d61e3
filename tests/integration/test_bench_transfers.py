"""The bench's transfers phase against a live gateway (real PostgreSQL and Redis, the load
generator in its own process): accounts opened and funded over the API, both shapes run with
nothing refused, money conserved per merchant, the ledger check clean, and the figures in the
summary table and the HTML report."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from loadtest.bench.ledger_check import ledger_check, ledger_line
from loadtest.bench.run import BenchPlan, transfers_phase
from loadtest.bench.transfers import FUND_FEN, open_accounts, transfer_rows
from loadtest.generator.spec import MerchantCred
from loadtest.reports.report import result_section, write_report
from loadtest.reports.run_reports import transfers_section
from tests.harness import LiveGateway

CREDIT_FEN = 10**10


async def bench_merchants(gw: LiveGateway, n: int) -> list[MerchantCred]:
    out = []
    for k in range(n):
        m, _ = await gw.merchant(CREDIT_FEN, name=f"Bench {k}")
        out.append(MerchantCred(m["id"], m["secret"]))
    return out


async def test_accounts_are_opened_and_funded_once(gateway: LiveGateway) -> None:
    (merchant,) = await bench_merchants(gateway, 1)
    (book,) = await open_accounts(gateway.url, [merchant], 3)
    assert len(set(book.personal)) == 3 and book.settlement not in book.personal
    client = gateway.clients[0]
    for acc in book.personal:
        resp = await client.get(f"/v1/accounts/{acc}")
        assert resp.status == 200, resp.body
        assert (resp.json()["kind"], resp.json()["available"]) == ("personal", FUND_FEN)
    # Run again (a retried set-up): the same accounts, funded once.
    (again,) = await open_accounts(gateway.url, [merchant], 3)
    assert again == book
    settlement = (await client.get(f"/v1/accounts/{book.settlement}")).json()
    assert settlement["available"] == CREDIT_FEN - 3 * FUND_FEN


async def test_transfers_phase_measures_both_shapes_and_keeps_the_ledger_clean(
    gateway: LiveGateway, tmp_path: Path
) -> None:
    merchants = await bench_merchants(gateway, 3)
    plan = replace(BenchPlan.quick(), phase_s=1.0, offered_transfer_per_s=150,
                   transfer_merchants=2, transfer_accounts=3)  # fmt: skip
    info = {"gateway_url": gateway.url, "admin_token": gateway.settings.admin_token}

    phase, results = await transfers_phase(info, merchants, plan)

    assert phase["accounts"] == 2 * 3
    assert (phase["hot"]["routes"], phase["hot"]["merchants"]) == (3, 1)
    assert (phase["spread"]["routes"], phase["spread"]["merchants"]) == (6, 2)
    for shape in ("hot", "spread"):
        r = results[f"transfers_{shape}"]
        assert r.totals.scheduled > 50 and r.by_kind == {"transfer": r.totals.sent}
        counts = phase[shape]["outcome"]
        assert counts == {"created": r.totals.scheduled, "replayed": 0, "refused": {},
                          "no_answer": {}}  # fmt: skip
        assert phase[shape]["transfers_per_s"] > 0
    # Transfers stay within a merchant: its accounts still hold exactly its credit.
    for client in gateway.clients[:2]:
        resp = await client.get("/v1/accounts?limit=100")
        assert resp.status == 200, resp.body
        assert sum(a["available"] for a in resp.json()["data"]) == CREDIT_FEN
    ledger = await ledger_check(info["gateway_url"], info["admin_token"])
    assert ledger["ok"] is True, [c for c in ledger["checks"] if not c["ok"]]
    assert ledger_line(ledger).startswith("PASS")

    rows = dict(transfer_rows(phase))
    hot_rate = f"{phase['hot']['transfers_per_s']:,} transfers/s"
    assert rows["internal transfers, hot account"].startswith(hot_rate)
    spread_rate = f"{phase['spread']['transfers_per_s']:,} transfers/s"
    assert rows["internal transfers, spread"].startswith(spread_rate)
    assert rows["  spread: outcomes"].endswith("refused 0; no answer 0")
    section = transfers_section(phase)
    assert section.table is not None
    assert [row[0] for row in section.table[1:]] == ["hot", "spread"]
    path = write_report(tmp_path / "bench.html", "Paygate bench", [
        section, *(result_section(r, name) for name, r in results.items())])  # fmt: skip
    html = path.read_text(encoding="utf-8")
    assert "Internal transfers: hot account and spread" in html
    assert html.count("<svg") == 2 * 3  # latency, throughput, status mix per shape
