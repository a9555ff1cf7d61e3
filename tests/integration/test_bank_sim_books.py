"""The bank's books (SPEC 9): records survive a restart and carry on their lives; statements
show returns as lines of their own, planted faults change the statement only, and the same
lines come as CSV."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import orjson

from channels.bank_sim.config import BankSimConfig
from channels.bank_sim.sim import BankSim
from protocol import signing
from protocol.keys import GATEWAY_KEY_ID, bank_secret
from tests.bank_sim import MASTER, LiveSim, callbacks_for, payout, running_sim
from tests.harness import Reply, wait_until
from tests.integration import test_bank_sim_app as live
from tests.integration.test_bank_sim_b2b import b2b, query, register

sim = live.sim

SLOW_CALLBACK = {"callback_delay": {"median_ms": 1_500, "p99_ms": 1_500}}


async def test_records_and_their_lives_survive_a_restart(tmp_path: Path) -> None:
    books = tmp_path / "books.sqlite3"
    async with running_sim(books) as first:
        await first.submit(payout("po_keep_1"))
        done = await first.final("po_keep_1")
        assert (await first.put_profile("102", SLOW_CALLBACK)).status == 200
        slow = await first.submit(payout("po_keep_2", "6222000000000021"))
        assert slow.body["status"] == "processing"
        registered = await register(first, b2b("b2b_keep"))
        assert registered.status == 200, registered.body
    async with running_sim(books) as again:
        kept = await again.query("po_keep_1")
        assert kept.status == 200
        assert {k: kept.body[k] for k in ("bank_ref", "status", "amount")} == {
            k: done[k] for k in ("bank_ref", "status", "amount")
        }
        # Still due: the restarted bank completes it on its drawn fate and calls back.
        finished = await again.final("po_keep_2")
        assert (finished["status"], finished["bank_ref"]) == ("succeeded", slow.body["bank_ref"])
        (item,) = await callbacks_for(again, "po_keep_2", 1)
        assert item["business_date"] == slow.body["business_date"]
        fresh = await again.submit(payout("po_keep_3", "6222000000000022"))
        assert fresh.body["bank_ref"] not in (done["bank_ref"], slow.body["bank_ref"])
        replay = await again.submit(payout("po_keep_1"))
        assert (replay.body["replayed"], replay.body["submissions"]) == (True, 2)
        assert replay.body["bank_ref"] == done["bank_ref"]
        b2b_kept = await query(again, "b2b_keep")
        assert (b2b_kept.status, b2b_kept.body["bank_ref"]) == (200, registered.body["bank_ref"])
        stats = await again.stats()
        assert stats["books_writes"] >= 1


async def statement(sim: LiveSim, day: str, bank_id: str = "102") -> dict[str, dict[str, Any]]:
    reply = await sim.signed("GET", f"/banks/{bank_id}/statements/{day}", bank_id=bank_id)
    assert reply.status == 200, reply.body
    return {line["bank_ref"]: line for line in reply.body["items"]}


async def plant(sim: LiveSim, fault: dict[str, Any], bank_id: str = "102") -> Reply:
    path = f"/sim/banks/{bank_id}/statement-faults"
    return await sim.raw("POST", path, orjson.dumps(fault))


async def test_statement_shows_returns_and_planted_faults(sim: LiveSim) -> None:
    await sim.put_profile("102", {"return_delay": {"median_ms": 50, "p99_ms": 50}})
    await sim.script("102", "6222000000000031", returned=True)
    returned = await sim.submit(payout("po_ret", "6222000000000031"))
    plain = await sim.submit(payout("po_plain", "6222000000000032"))
    dropped = await sim.submit(payout("po_drop", "6222000000000033"))
    day = returned.body["business_date"]

    async def status_of_return() -> str:
        status: str = (await sim.query("po_ret")).body["status"]
        return status

    await wait_until(status_of_return, lambda s: s == "returned", timeout_s=5)
    ret_ref, plain_ref = returned.body["bank_ref"], plain.body["bank_ref"]
    lines = await statement(sim, day)
    assert lines[ret_ref]["status"] == "succeeded"  # the day it was paid
    assert lines[ret_ref + "R"] | {"booked_at": None} == {
        "bank_ref": ret_ref + "R", "merchant_ref": "po_ret", "amount": 10_000,
        "status": "returned", "booked_at": None, "return_of": ret_ref,
    }  # fmt: skip

    extra = await plant(sim, {"kind": "extra_line", "amount": 4_321})
    assert extra.status == 201, extra.body
    assert (
        await plant(sim, {"kind": "drop_line", "bank_ref": dropped.body["bank_ref"]})
    ).status == 201
    changed = await plant(sim, {"kind": "amount_change", "bank_ref": plain_ref, "amount": 9_999})
    assert changed.status == 201
    lines = await statement(sim, day)
    assert dropped.body["bank_ref"] not in lines
    assert lines[plain_ref]["amount"] == 9_999
    ext = lines[extra.body["bank_ref"]]
    assert (ext["amount"], ext["status"]) == (4_321, "succeeded")
    assert ext["merchant_ref"].startswith("ext_")
    # The records themselves stay true.
    assert (await sim.query("po_plain")).body["amount"] == 10_000
    assert (await sim.query("po_drop")).status == 200

    unknown = await plant(sim, {"kind": "drop_line", "bank_ref": "NOPE123"})
    assert (unknown.status, unknown.code) == (404, "not_found")
    for bad in ({"kind": "amount_change", "bank_ref": plain_ref}, {"kind": "shuffle"},
                {"kind": "extra_line", "amount": 0}):  # fmt: skip
        reply = await plant(sim, bad)
        assert (reply.status, reply.code) == (400, "invalid_request"), bad
    assert (await plant(sim, {"kind": "extra_line", "amount": 1}, bank_id="999")).status == 404
    listed = await sim.raw("GET", "/sim/banks/102/statement-faults")
    assert [f["kind"] for f in listed.body["data"]] == ["extra_line", "drop_line", "amount_change"]

    path = f"/banks/102/statements/{day}"
    headers = signing.sign_request(GATEWAY_KEY_ID, bank_secret(MASTER, "102"), "GET", path, b"")
    async with sim.http.get(sim.url + path, headers=headers | {"Accept": "text/csv"}) as resp:
        assert resp.status == 200
        assert resp.content_type == "text/csv"
        rows = list(csv.reader(io.StringIO(await resp.text())))
    assert rows[0] == ["bank_ref", "merchant_ref", "amount", "status", "booked_at", "return_of"]
    by_ref = {row[0]: row for row in rows[1:]}
    assert set(by_ref) == set(lines)
    assert by_ref[ret_ref + "R"][5] == ret_ref and by_ref[plain_ref][2] == "9999"


async def test_simulated_time_goes_on_across_a_restart(tmp_path: Path) -> None:
    """At 3,600× a restarted bank would otherwise start its clock again from wall time, an
    hour of simulated time back per wall second it ran."""
    config = BankSimConfig(seed=7, time_scale=3_600, callback_url="", master_secret=MASTER,
                           preset="instant", books_path=tmp_path / "books.sqlite3")  # fmt: skip
    first = BankSim(config)
    await first.start()
    await wait_until(lambda: _now_s(first), lambda s: s > first.clock.anchor.sim_s + 60)
    before_s = first.clock.now_s()
    await first.close()
    again = BankSim(config)
    await again.start()
    try:
        assert again.clock.now_s() >= before_s
    finally:
        await again.close()


async def _now_s(sim: BankSim) -> float:
    return sim.clock.now_s()
