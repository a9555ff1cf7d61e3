"""B2B payments at the bank simulator over real HTTP: signed registration and queries, the
payer's payment and its signed `b2b` callback, clearing fates, refusals and the bank page."""

from __future__ import annotations

from typing import Any

import orjson

from tests.bank_sim import LiveSim, callbacks_for, payout
from tests.harness import Reply, wait_until
from tests.integration import test_bank_sim_app as live

# The live simulator of the bank simulator's own tests: seeded, `instant` preset, and a
# receiver that verifies every callback's signature.
sim = live.sim

SLOW_PAYER = {"b2b_pay_delay": {"median_ms": 600_000, "p99_ms": 600_000}}


def b2b(ref: str, amount: int = 123_456, payer: str | None = "Acme Ltd") -> dict[str, Any]:
    return {"ref": ref, "amount": amount, "currency": "CNY", "payer_account_name": payer}


async def register(sim: LiveSim, body: dict[str, Any], bank_id: str = "102") -> Reply:
    path = f"/banks/{bank_id}/b2b"
    return await sim.signed("POST", path, orjson.dumps(body), bank_id=bank_id)


async def query(sim: LiveSim, ref: str, bank_id: str = "102") -> Reply:
    return await sim.signed("GET", f"/banks/{bank_id}/b2b/{ref}", bank_id=bank_id)


async def paid(sim: LiveSim, ref: str, bank_id: str = "102") -> dict[str, Any]:
    """The record once the payer has paid or failed to."""

    async def done() -> dict[str, Any] | None:
        reply = await query(sim, ref, bank_id)
        record: dict[str, Any] = reply.body
        return record if reply.status == 200 and record["status"] != "pending" else None

    return await wait_until(done, bool, timeout_s=5.0)


async def listed(sim: LiveSim, **filters: str) -> list[dict[str, Any]]:
    qs = "&".join(f"{k}={v}" for k, v in filters.items())
    reply = await sim.raw("GET", f"/sim/b2b?{qs}")
    assert reply.status == 200, reply.body
    data: list[dict[str, Any]] = reply.body["data"]
    return data


async def script(sim: LiveSim, payer: str, bank_id: str = "102", **fields: Any) -> None:
    reply = await sim.put_profile(bank_id, {"b2b_scripted": {payer: fields}})
    assert reply.status == 200, reply.body


# --- registration ----------------------------------------------------------------------------


async def test_registration_is_pending_with_the_bank_page_url_and_clearing_terms(
    sim: LiveSim,
) -> None:
    reply = await sim.put_profile("103", {"preset": "default"} | SLOW_PAYER)
    assert reply.status == 200, reply.body
    reply = await register(sim, b2b("b2b_pending"), bank_id="103")
    assert reply.status == 200, reply.body
    body = reply.body
    assert set(body) == {
        "ref",
        "bank_id",
        "bank_ref",
        "amount",
        "currency",
        "payer_account_name",
        "status",
        "clearing_status",
        "clearing",
        "clearing_cutoff",
        "bank_page_url",
        "failure_code",
        "failure_message",
        "created_at",
        "paid_at",
        "completed_at",
        "business_date",
        "requests",
        "replayed",
    }
    assert (body["ref"], body["bank_id"], body["amount"]) == ("b2b_pending", "103", 123_456)
    assert (body["status"], body["clearing_status"], body["paid_at"]) == ("pending", None, None)
    assert (body["clearing"], body["clearing_cutoff"]) == ("t+1", "17:00")
    assert body["bank_page_url"] == f"{sim.url}/banks/103/b2b/b2b_pending/page"
    assert body["bank_ref"].startswith("ABCB2B")
    assert body["replayed"] is False
    queried = await query(sim, "b2b_pending", bank_id="103")
    assert queried.status == 200
    assert queried.body == {k: v for k, v in body.items() if k != "replayed"}
    assert [r["ref"] for r in await listed(sim, bank_id="103", status="pending")] == ["b2b_pending"]
    stats = (await sim.stats())["banks"]["103"]["b2b"]
    assert stats["records"] == {"pending": 1, "succeeded": 0, "failed": 0}
    assert sim.receiver.for_ref("b2b_pending") == []


async def test_unknown_ref_is_not_found_and_a_bad_body_is_invalid_request(sim: LiveSim) -> None:
    reply = await query(sim, "b2b_nowhere")
    assert (reply.status, reply.code) == (404, "not_found")
    for body in (b2b("b2b_bad", amount=0), b2b("b2b_bad") | {"extra": 1}, b2b("b2b bad")):
        reply = await register(sim, body)
        assert (reply.status, reply.code) == (400, "invalid_request"), body
    unsigned = await sim.raw("POST", "/banks/102/b2b", orjson.dumps(b2b("b2b_unsigned")))
    assert (unsigned.status, unsigned.code) == (401, "invalid_signature")
    assert await listed(sim) == []


# --- the payer pays: callbacks and clearing fates ----------------------------------------------


async def test_scripted_success_sends_a_signed_b2b_callback_and_shows_the_clearing_fate(
    sim: LiveSim,
) -> None:
    await script(sim, "Acme Ltd", outcome="succeeded", clearing="cleared")
    await script(sim, "Bad Debt Co", outcome="succeeded", clearing="reversed")
    cleared = await register(sim, b2b("b2b_cleared", payer="Acme Ltd"))
    reversed_ = await register(sim, b2b("b2b_reversed", payer="Bad Debt Co"))
    assert cleared.status == reversed_.status == 200

    (item,) = await callbacks_for(sim, "b2b_cleared", 1)
    assert item == {
        "kind": "b2b",
        "event_id": f"evt_{cleared.body['bank_ref']}_succeeded",
        "ref": "b2b_cleared",
        "bank_ref": cleared.body["bank_ref"],
        "status": "succeeded",
        "amount": 123_456,
        "failure_code": None,
        "failure_message": None,
        "occurred_at": item["occurred_at"],
        "bank_id": "102",
    }
    assert sim.receiver.bad_signatures == 0
    record = (await query(sim, "b2b_cleared")).body
    assert (record["status"], record["clearing_status"]) == ("succeeded", "cleared")
    assert record["paid_at"] == item["occurred_at"] is not None

    (item,) = await callbacks_for(sim, "b2b_reversed", 1)
    assert item["status"] == "succeeded"
    record = (await query(sim, "b2b_reversed")).body
    assert (record["status"], record["clearing_status"]) == ("succeeded", "reversed")
    stats = (await sim.stats())["banks"]["102"]["b2b"]
    assert stats["records"]["succeeded"] == 2
    assert stats["clearing"] == {"cleared": 1, "reversed": 1}


async def test_scripted_failure_sends_a_failed_callback_and_no_clearing(sim: LiveSim) -> None:
    await script(sim, "Broke Co", outcome="failed", clearing="reversed")
    await register(sim, b2b("b2b_failed", payer="Broke Co"))
    (item,) = await callbacks_for(sim, "b2b_failed", 1)
    assert (item["kind"], item["status"]) == ("b2b", "failed")
    assert item["failure_code"] in {"payer_cancelled", "insufficient_balance"}
    assert item["failure_message"]
    record = await paid(sim, "b2b_failed")
    assert record["status"] == "failed"
    assert (record["clearing_status"], record["paid_at"]) == (None, None)
    assert record["failure_code"] == item["failure_code"]
    assert [r["ref"] for r in await listed(sim, status="failed")] == ["b2b_failed"]


async def test_scripted_callback_faults_apply_to_b2b(sim: LiveSim) -> None:
    await script(sim, "Twice Co", callback="duplicate")
    await script(sim, "Silent Co", callback="lost")
    await register(sim, b2b("b2b_dup", payer="Twice Co"))
    await register(sim, b2b("b2b_lost", payer="Silent Co"))
    first, second = await callbacks_for(sim, "b2b_dup", 2)
    assert first == second
    assert (await paid(sim, "b2b_lost"))["status"] == "succeeded"
    await sim.idle()
    assert len(sim.receiver.for_ref("b2b_dup")) == 2
    assert sim.receiver.for_ref("b2b_lost") == []


async def test_payout_callbacks_are_kind_payout(sim: LiveSim) -> None:
    await sim.submit(payout("po_kind"))
    (item,) = await callbacks_for(sim, "po_kind", 1)
    assert (item["kind"], item["status"]) == ("payout", "succeeded")


# --- idempotency and refusals ----------------------------------------------------------------


async def test_replay_is_idempotent_and_changed_fields_are_ref_conflict(sim: LiveSim) -> None:
    await sim.put_profile("102", SLOW_PAYER)
    first = await register(sim, b2b("b2b_replay"))
    again = await register(sim, b2b("b2b_replay"))
    assert again.status == 200
    assert again.body["replayed"] is True
    assert again.body["bank_ref"] == first.body["bank_ref"]
    assert again.body["requests"] == 2
    for changed in (b2b("b2b_replay", amount=1), b2b("b2b_replay", payer="Someone Else")):
        reply = await register(sim, changed)
        assert (reply.status, reply.code) == (409, "ref_conflict")
    assert len(await listed(sim, bank_id="102")) == 1


async def test_maintenance_refuses_with_503_and_records_nothing(sim: LiveSim) -> None:
    await sim.put_profile("102", {"maintenance_now": True})
    reply = await register(sim, b2b("b2b_maint"))
    assert (reply.status, reply.code) == (503, "maintenance")
    assert await listed(sim) == []
    stats = (await sim.stats())["banks"]["102"]["b2b"]
    assert stats["refused"] == {"maintenance": 1}
    assert stats["requests"] == 0


async def test_interbank_channel_refuses_b2b(sim: LiveSim) -> None:
    reply = await register(sim, b2b("b2b_ibps"), bank_id="ibps")
    assert (reply.status, reply.code) == (400, "b2b_not_supported")
    assert await listed(sim) == []


async def test_sim_b2b_list_filters_and_refuses_bad_filters(sim: LiveSim) -> None:
    await register(sim, b2b("b2b_icbc"))
    await register(sim, b2b("b2b_cmb"), bank_id="308")
    await paid(sim, "b2b_icbc")
    await paid(sim, "b2b_cmb", bank_id="308")
    assert {r["ref"] for r in await listed(sim)} == {"b2b_icbc", "b2b_cmb"}
    assert [r["ref"] for r in await listed(sim, bank_id="308")] == ["b2b_cmb"]
    assert await listed(sim, status="pending") == []
    bad_status = await sim.raw("GET", "/sim/b2b?status=cleared")
    assert (bad_status.status, bad_status.code) == (400, "invalid_request")
    assert (await sim.raw("GET", "/sim/b2b?bank_id=999")).status == 404


# --- the bank page ---------------------------------------------------------------------------


async def test_bank_page_shows_bank_amount_in_yuan_and_status(sim: LiveSim) -> None:
    await sim.put_profile("102", SLOW_PAYER)
    created = await register(sim, b2b("b2b_page", amount=123_456, payer="<Acme & Co>"))
    async with sim.http.get(created.body["bank_page_url"]) as resp:
        assert resp.status == 200
        assert resp.content_type == "text/html"
        page = await resp.text()
    assert "ICBC" in page
    assert "¥1,234.56" in page
    assert '<span class="status">pending</span>' in page
    assert "&lt;Acme &amp; Co&gt;" in page and "<Acme" not in page
    async with sim.http.get(f"{sim.url}/banks/102/b2b/b2b_nowhere/page") as resp:
        assert resp.status == 404
