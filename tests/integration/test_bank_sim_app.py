"""The bank simulator over real HTTP: signed submits and queries, faults, and signed callbacks
to a small receiver app that checks each callback's signature."""

import time
from collections.abc import AsyncIterator
from datetime import date

import aiohttp
import orjson
import pytest

from protocol.keys import bank_secret
from tests.bank_sim import CCB_CODE, MASTER, LiveSim, callbacks_for, payout, running_sim


@pytest.fixture
async def sim() -> AsyncIterator[LiveSim]:
    async with running_sim() as live:
        yield live


# --- submit, callback, idempotency ---------------------------------------------------------


async def test_signed_submit_is_processing_then_a_signed_succeeded_callback(sim: LiveSim) -> None:
    await sim.put_profile("102", {"callback_delay": {"median_ms": 50, "p99_ms": 50}})
    reply = await sim.submit(payout("po_ok"))
    assert reply.status == 200, reply.body
    assert reply.body["status"] == "processing"
    assert reply.body["replayed"] is False
    assert reply.body["submissions"] == 1
    assert reply.body["bank_ref"].startswith("ICBC")
    (item,) = await callbacks_for(sim, "po_ok", 1)
    assert item["status"] == "succeeded"
    assert item["bank_id"] == "102"
    assert item["bank_ref"] == reply.body["bank_ref"]
    assert item["amount"] == 10_000
    assert sim.receiver.bad_signatures == 0
    record = (await sim.query("po_ok")).body
    assert record["status"] == "succeeded"
    assert record["completed_at"] is not None


async def test_replay_increments_submissions_and_keeps_the_bank_ref(sim: LiveSim) -> None:
    first = await sim.submit(payout("po_replay"))
    again = await sim.submit(payout("po_replay"))
    assert again.status == 200
    assert again.body["replayed"] is True
    assert again.body["bank_ref"] == first.body["bank_ref"]
    assert again.body["submissions"] == 2
    await callbacks_for(sim, "po_replay", 1)
    await sim.idle()
    assert len(sim.receiver.for_ref("po_replay")) == 1
    assert len(await sim.records(bank_id="102")) == 1


async def test_same_ref_with_different_fields_is_ref_conflict(sim: LiveSim) -> None:
    assert (await sim.submit(payout("po_conflict"))).status == 200
    reply = await sim.submit(payout("po_conflict", amount=10_001))
    assert reply.status == 409
    assert reply.code == "ref_conflict"


async def test_malformed_or_unknown_fields_are_invalid_request(sim: LiveSim) -> None:
    for body in (payout("po_bad", amount=0), payout("po_bad", extra=1), payout("po bad")):
        reply = await sim.submit(body)
        assert reply.status == 400, body
        assert reply.code == "invalid_request"
    assert await sim.records() == []


# --- signatures ----------------------------------------------------------------------------


async def test_wrong_secret_or_missing_headers_is_invalid_signature(sim: LiveSim) -> None:
    reply = await sim.submit(payout("po_sig"), secret=bank_secret(MASTER, "103"))
    assert (reply.status, reply.code) == (401, "invalid_signature")
    reply = await sim.raw("POST", "/banks/102/payouts", orjson.dumps(payout("po_sig")))
    assert (reply.status, reply.code) == (401, "invalid_signature")
    assert await sim.records() == []


async def test_stale_timestamp_is_stale_request(sim: LiveSim) -> None:
    reply = await sim.submit(payout("po_stale"), timestamp=int(time.time()) - 301)
    assert (reply.status, reply.code) == (401, "stale_request")


async def test_reused_nonce_is_replayed_request(sim: LiveSim) -> None:
    nonce = "nonce-reused-0123456789"
    assert (await sim.query("po_none", bank_id="102")).status == 404
    first = await sim.signed("GET", "/banks/102/payouts/po_x", nonce=nonce)
    assert first.status == 404
    second = await sim.signed("GET", "/banks/102/payouts/po_x", nonce=nonce)
    assert (second.status, second.code) == (401, "replayed_request")


# --- refusals ------------------------------------------------------------------------------


async def test_maintenance_refuses_without_recording(sim: LiveSim) -> None:
    await sim.put_profile("102", {"maintenance_now": True})
    reply = await sim.submit(payout("po_maint"))
    assert (reply.status, reply.code) == (503, "maintenance")
    query = await sim.query("po_maint")
    assert (query.status, query.code) == (503, "maintenance")
    assert await sim.records() == []
    assert (await sim.stats())["banks"]["102"]["refused"]["maintenance"] == 1


async def test_over_tps_is_bank_busy_with_retry_after(sim: LiveSim) -> None:
    await sim.put_profile("102", {"tps": 1})
    assert (await sim.submit(payout("po_tps_1"))).status == 200
    reply = await sim.submit(payout("po_tps_2"))
    assert (reply.status, reply.code) == (503, "bank_busy")
    assert int(reply.headers["Retry-After"]) >= 1
    assert [r["ref"] for r in await sim.records()] == ["po_tps_1"]


# --- outcomes and faults -------------------------------------------------------------------


async def test_scripted_failure_code_arrives_in_the_callback(sim: LiveSim) -> None:
    await sim.script("102", "6222000000000001", outcome="account_frozen")
    await sim.submit(payout("po_frozen", "6222000000000001"))
    (item,) = await callbacks_for(sim, "po_frozen", 1)
    assert item["status"] == "failed"
    assert item["failure_code"] == "account_frozen"
    assert item["failure_message"] == "账户冻结"


async def test_single_bank_fails_payee_of_another_bank_but_interbank_pays_it(
    sim: LiveSim,
) -> None:
    other = payout("po_other", payee=payout("x")["payee"] | {"bank_code": CCB_CODE})
    await sim.submit(other, bank_id="102")
    (item,) = await callbacks_for(sim, "po_other", 1)
    assert (item["status"], item["failure_code"]) == ("failed", "invalid_bank_code")
    await sim.submit(other | {"ref": "po_ibps"}, bank_id="ibps")
    (item,) = await callbacks_for(sim, "po_ibps", 1)
    assert (item["status"], item["bank_id"]) == ("succeeded", "ibps")


async def test_scripted_reset_drops_the_connection_but_the_record_exists(sim: LiveSim) -> None:
    await sim.script("102", "6222000000000002", sync="reset")
    with pytest.raises(aiohttp.ClientConnectionError):
        await sim.submit(payout("po_reset", "6222000000000002"))
    record = await sim.final("po_reset")
    assert record["status"] == "succeeded"
    assert record["submissions"] == 1
    retried = await sim.submit(payout("po_reset", "6222000000000002"))
    assert retried.status == 200 and retried.body["replayed"] is True


async def test_scripted_timeout_hangs_past_the_client_but_the_record_exists(
    sim: LiveSim,
) -> None:
    await sim.put_profile("102", {"sync_timeout_hang_ms": 2_000})
    await sim.script("102", "6222000000000003", sync="timeout")
    with pytest.raises(TimeoutError):
        await sim.submit(payout("po_hang", "6222000000000003"), timeout_s=0.2)
    assert (await sim.final("po_hang"))["status"] == "succeeded"


async def test_scripted_lost_callback_is_never_sent_but_query_is_final(sim: LiveSim) -> None:
    await sim.script("102", "6222000000000004", callback="lost")
    await sim.submit(payout("po_lost", "6222000000000004"))
    assert (await sim.final("po_lost"))["status"] == "succeeded"
    await sim.idle()
    assert sim.receiver.for_ref("po_lost") == []


async def test_scripted_duplicate_sends_the_same_event_twice(sim: LiveSim) -> None:
    await sim.script("102", "6222000000000005", callback="duplicate")
    await sim.submit(payout("po_dup", "6222000000000005"))
    first, second = await callbacks_for(sim, "po_dup", 2)
    assert first == second
    assert first["status"] == "succeeded"
    await sim.idle()
    assert len(sim.receiver.for_ref("po_dup")) == 2


async def test_scripted_very_late_callback_comes_after_the_status_is_final(
    sim: LiveSim,
) -> None:
    await sim.put_profile(
        "102", {"callback_faults": {"very_late_delay": {"median_ms": 400, "p99_ms": 400}}}
    )
    await sim.script("102", "6222000000000006", callback="very_late")
    await sim.submit(payout("po_late", "6222000000000006"))
    await sim.final("po_late")
    assert sim.receiver.for_ref("po_late") == []
    (item,) = await callbacks_for(sim, "po_late", 1)
    assert item["status"] == "succeeded"


async def test_return_sends_returned_after_succeeded(sim: LiveSim) -> None:
    await sim.put_profile("102", {"return_delay": {"median_ms": 50, "p99_ms": 50}})
    await sim.script("102", "6222000000000007", returned=True)
    await sim.submit(payout("po_ret", "6222000000000007"))
    first, second = await callbacks_for(sim, "po_ret", 2)
    assert first["status"] == "succeeded"
    assert (second["status"], second["failure_code"]) == ("returned", "account_closed")
    assert first["event_id"] != second["event_id"]
    record = (await sim.query("po_ret")).body
    assert record["status"] == "returned"
    assert record["returned_at"] is not None


async def test_out_of_order_return_sends_returned_before_succeeded(sim: LiveSim) -> None:
    await sim.put_profile("102", {"return_delay": {"median_ms": 50, "p99_ms": 50}})
    await sim.script("102", "6222000000000008", returned=True, callback="out_of_order")
    await sim.submit(payout("po_ooo", "6222000000000008"))
    first, second = await callbacks_for(sim, "po_ooo", 2)
    assert [first["status"], second["status"]] == ["returned", "succeeded"]


async def test_refused_callback_is_retried_until_delivered(sim: LiveSim) -> None:
    sim.receiver.fail_next = 2
    await sim.submit(payout("po_retry"))
    (item,) = await callbacks_for(sim, "po_retry", 1)
    assert item["status"] == "succeeded"
    callbacks = (await sim.stats())["banks"]["102"]["callbacks"]
    assert callbacks["retried"] == 2
    assert callbacks["sent"] == 1


# --- statements, profiles, records ---------------------------------------------------------


async def test_statement_lists_the_records_of_the_business_date(sim: LiveSim) -> None:
    first = await sim.submit(payout("po_stmt_1"))
    await sim.submit(payout("po_stmt_2"))
    await sim.submit(
        payout("po_stmt_3", payee=payout("x")["payee"] | {"bank_code": CCB_CODE}), bank_id="105"
    )
    day = first.body["business_date"]
    reply = await sim.signed("GET", f"/banks/102/statements/{day}")
    assert reply.status == 200
    assert (reply.body["bank_id"], reply.body["date"]) == ("102", day)
    assert [item["merchant_ref"] for item in reply.body["items"]] == ["po_stmt_1", "po_stmt_2"]
    assert set(reply.body["items"][0]) == {
        "bank_ref", "merchant_ref", "amount", "status", "booked_at", "return_of"}  # fmt: skip
    other_day = date.fromisoformat(day).replace(year=2001).isoformat()
    empty = await sim.signed("GET", f"/banks/102/statements/{other_day}")
    assert empty.body["items"] == []
    bad = await sim.signed("GET", "/banks/102/statements/2026-13-01")
    assert (bad.status, bad.code) == (400, "invalid_request")


async def test_profile_put_merges_validates_and_resets_to_a_preset(sim: LiveSim) -> None:
    listed = await sim.raw("GET", "/banks")
    assert [p["bank_id"] for p in listed.body["data"]] == [
        "102",
        "103",
        "104",
        "105",
        "308",
        "ibps",
    ]
    merged = await sim.put_profile("103", {"callback_faults": {"lost": 0.5}, "tps": 7})
    assert merged.status == 200
    assert merged.body["callback_faults"]["lost"] == 0.5
    assert merged.body["callback_faults"]["duplicate"] == 0.0
    assert merged.body["tps"] == 7
    assert merged.body["outcomes"] == {"succeeded": 1.0}  # kept from the instant preset
    bad = await sim.put_profile("103", {"tps": 0})
    assert (bad.status, bad.code) == (400, "invalid_request")
    assert (await sim.put_profile("103", {"colour": "red"})).status == 400
    reset = await sim.put_profile("103", {"preset": "fault_heavy", "tps": 9})
    assert reset.body["callback_faults"]["duplicate"] == 0.10
    assert reset.body["tps"] == 9
    assert (await sim.raw("GET", "/banks/103/profile")).body == reset.body
    assert (await sim.put_profile("999", {"tps": 1})).status == 404
    applied = await sim.raw("PUT", "/sim/preset/default")
    assert {p["tps"] for p in applied.body["data"]} == {500}
    assert (await sim.raw("PUT", "/sim/preset/nope")).status == 404


async def test_sim_records_filter_by_bank_and_status(sim: LiveSim) -> None:
    await sim.script("102", "6222000000000009", outcome="account_not_found")
    await sim.submit(payout("po_f", "6222000000000009"))
    await sim.submit(payout("po_s"))
    await sim.final("po_f")
    await sim.final("po_s")
    failed = await sim.records(bank_id="102", status="failed")
    assert [r["ref"] for r in failed] == ["po_f"]
    assert [r["ref"] for r in await sim.records(status="succeeded")] == ["po_s"]
    assert await sim.records(bank_id="103") == []
    stats = await sim.stats()
    assert stats["banks"]["102"]["records"]["failed"] == 1
    assert stats["banks"]["102"]["submissions"] == 2
