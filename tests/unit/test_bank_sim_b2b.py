"""B2B payments at one simulated bank: profile fields, presets, reproducible fates, scripts,
idempotent registration, the record's status table and the page's yuan formatting."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from channels.bank_sim.b2b_desk import B2BDesk, B2BNotSupported
from channels.bank_sim.b2b_fate import B2BFate, draw_b2b_fate
from channels.bank_sim.b2b_lifecycle import b2b_callback_item
from channels.bank_sim.b2b_records import move_b2b
from channels.bank_sim.bank import Bank, InMaintenance, RefConflict, bank_rng
from channels.bank_sim.presets import DEFAULT_BANKS, BankIdentity, preset_profile
from channels.bank_sim.profile import (
    B2B_FAILURE_MESSAGES,
    B2BScript,
    BankProfile,
    Delay,
    patched,
    profile_from_json,
)
from channels.bank_sim.records import IllegalTransition
from channels.bank_sim.routes_b2b import yuan
from channels.bank_sim.schemas import B2BRequest

ICBC = BankIdentity("102", "ICBC", "bank")
IBPS = BankIdentity("ibps", "IBPS", "interbank")
NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)  # 16:00 business time
BASE_URL = "http://sim.test:8001"


def request(ref: str, amount: int = 123_456, payer: str | None = "Acme Ltd") -> B2BRequest:
    return B2BRequest(ref=ref, amount=amount, currency="CNY", payer_account_name=payer)


def desk(profile: BankProfile, seed: int | None = 1) -> B2BDesk:
    bank = Bank(profile, bank_rng(seed, profile.bank_id))
    return B2BDesk(bank, bank_rng(seed, profile.bank_id, "b2b"))


def b2b_fates(seed: int | None, preset: str = "fault_heavy", n: int = 300) -> list[B2BFate]:
    d = desk(preset_profile(preset, ICBC), seed)
    out = []
    for i in range(n):
        fate = d.register(request(f"b2b_{i}", payer=None), NOW, BASE_URL).fate
        assert fate is not None
        out.append(fate)
    return out


# --- profile and presets -------------------------------------------------------------------


def test_b2b_field_defaults() -> None:
    p = BankProfile()
    assert p.b2b_pay_delay == Delay(median_ms=1_000.0, p99_ms=5_000.0)
    assert p.b2b_success_prob == 0.98
    assert (p.clearing, p.clearing_cutoff, p.clearing_failure_prob) == ("realtime", "17:00", 0.0)
    assert p.b2b_scripted == {}


def test_default_preset_clears_icbc_and_cmb_realtime_and_abc_boc_ccb_t_plus_1() -> None:
    profiles = {who.bank_id: preset_profile("default", who) for who in DEFAULT_BANKS}
    assert {bank_id: p.clearing for bank_id, p in profiles.items()} == {
        "102": "realtime",
        "103": "t+1",
        "104": "t+1",
        "105": "t+1",
        "308": "realtime",
        "ibps": "realtime",
    }
    assert {p.clearing_cutoff for p in profiles.values()} == {"17:00"}


def test_instant_preset_pays_at_once_and_always_succeeds() -> None:
    for who in DEFAULT_BANKS:
        p = preset_profile("instant", who)
        assert p.b2b_pay_delay == Delay(0.0, 0.0)
        assert p.b2b_success_prob == 1.0
        assert p.clearing_failure_prob == 0.0


def test_fault_heavy_preset_fails_and_reverses_some_b2b_and_keeps_the_bank_clearing() -> None:
    p = preset_profile("fault_heavy", BankIdentity("105", "CCB", "bank"))
    assert p.clearing == "t+1"
    assert p.b2b_success_prob < 1.0 and p.clearing_failure_prob > 0.0
    assert p.b2b_pay_delay.p99_ms <= 1_000


def test_patch_merges_b2b_scripts_per_payer_and_null_removes_one() -> None:
    base = patched(
        BankProfile(),
        {
            "b2b_pay_delay": {"median_ms": 10, "p99_ms": 20},
            "b2b_scripted": {"Acme Ltd": {"outcome": "succeeded", "clearing": "reversed"}},
        },
    )
    assert base.b2b_pay_delay == Delay(10.0, 20.0)
    assert base.b2b_scripted == {"Acme Ltd": B2BScript(outcome="succeeded", clearing="reversed")}
    p = patched(
        base,
        {"b2b_scripted": {"Acme Ltd": {"callback": "lost"}, "Other Co": {"outcome": "failed"}}},
    )
    assert p.b2b_scripted == {
        "Acme Ltd": B2BScript(outcome="succeeded", clearing="reversed", callback="lost"),
        "Other Co": B2BScript(outcome="failed"),
    }
    assert patched(p, {"b2b_scripted": {"Acme Ltd": None}}).b2b_scripted.keys() == {"Other Co"}
    assert patched(p, {"b2b_pay_delay": None}).b2b_pay_delay == BankProfile().b2b_pay_delay
    assert profile_from_json(msgspec.json.decode(msgspec.json.encode(p))) == p


@pytest.mark.parametrize(
    "patch",
    [
        {"b2b_pay_delay": {"median_ms": 500, "p99_ms": 100}},
        {"b2b_pay_delay": {"median_ms": -1, "p99_ms": 100}},
        {"b2b_pay_delay": {"median_ms": 1, "p99_ms": 1e12}},
        {"b2b_pay_delay": {"mean_ms": 1}},
        {"b2b_success_prob": 1.01},
        {"clearing": "t+2"},
        {"b2b_scripted": {"Acme": {"outcome": "maybe"}}},
        {"b2b_scripted": {"Acme": {"clearing": "bounced"}}},
        {"b2b_scripted": {"Acme": {"callback": "out_of_order"}}},
        {"b2b_scripted": {"Acme": {"returned": True}}},
        {"b2b_scripted": {"": {"outcome": "failed"}}},
    ],
)
def test_invalid_b2b_patches_are_refused(patch: dict[str, Any]) -> None:
    with pytest.raises((msgspec.ValidationError, ValueError)):
        patched(BankProfile(), patch)


# --- fates ---------------------------------------------------------------------------------


def test_same_seed_gives_the_same_b2b_fates_and_another_seed_does_not() -> None:
    assert b2b_fates(7) == b2b_fates(7)
    assert b2b_fates(7) != b2b_fates(8)


def test_b2b_draws_do_not_disturb_the_payout_sequence() -> None:
    assert bank_rng(7, "102").random() != bank_rng(7, "102", "b2b").random()
    assert bank_rng(7, "102", "b2b").random() == bank_rng(7, "102", "b2b").random()


def test_fault_heavy_draws_every_kind_of_b2b_fate() -> None:
    drawn = b2b_fates(11, n=2_000)
    assert {f.outcome for f in drawn} == {"succeeded", "failed"}
    assert {f.failure_code for f in drawn if f.outcome == "failed"} == set(B2B_FAILURE_MESSAGES)
    assert all(f.failure_code is None for f in drawn if f.outcome == "succeeded")
    assert {f.clearing for f in drawn} == {"cleared", "reversed"}
    assert {f.callback_fault for f in drawn} == {
        None,
        "duplicate",
        "out_of_order",
        "lost",
        "very_late",
    }
    assert all(f.pay_after_ms > 0 for f in drawn)


def test_instant_b2b_fate_pays_at_once_and_clears() -> None:
    (fate,) = b2b_fates(3, preset="instant", n=1)
    assert (fate.outcome, fate.clearing, fate.callback_fault) == ("succeeded", "cleared", None)
    assert fate.pay_after_ms == 0.0


def test_b2b_scripts_override_the_draws_for_their_payer_only() -> None:
    script = B2BScript(outcome="failed", clearing="reversed", callback="very_late")
    profile = msgspec.structs.replace(
        preset_profile("instant", ICBC), b2b_scripted={"Acme Ltd": script}
    )
    rng = random.Random(1)
    fate = draw_b2b_fate(profile, rng, "Acme Ltd")
    assert (fate.outcome, fate.clearing, fate.callback_fault) == ("failed", "reversed", "very_late")
    assert fate.failure_code in B2B_FAILURE_MESSAGES
    for payer in ("Other Co", None):
        other = draw_b2b_fate(profile, rng, payer)
        assert (other.outcome, other.clearing, other.callback_fault) == (
            "succeeded",
            "cleared",
            None,
        )


def test_a_script_leaving_fields_none_keeps_the_draws() -> None:
    profile = BankProfile(
        b2b_success_prob=0.0,
        clearing_failure_prob=1.0,
        b2b_scripted={"Acme Ltd": B2BScript(outcome="succeeded")},
    )
    fate = draw_b2b_fate(profile, random.Random(1), "Acme Ltd")
    assert (fate.outcome, fate.clearing) == ("succeeded", "reversed")


# --- the desk: registration, idempotency, refusals -----------------------------------------


def test_registration_is_pending_with_the_bank_clearing_terms_and_page_url() -> None:
    profile = preset_profile("default", BankIdentity("103", "ABC", "bank"))
    registration = desk(profile).register(request("b2b_1"), NOW, BASE_URL)
    assert not registration.replayed and registration.fate is not None
    body = registration.record.to_json()
    assert body == {
        "ref": "b2b_1",
        "bank_id": "103",
        "bank_ref": "ABCB2B2026112500000001",
        "amount": 123_456,
        "currency": "CNY",
        "payer_account_name": "Acme Ltd",
        "status": "pending",
        "clearing_status": None,
        "clearing": "t+1",
        "clearing_cutoff": "17:00",
        "bank_page_url": f"{BASE_URL}/banks/103/b2b/b2b_1/page",
        "failure_code": None,
        "failure_message": None,
        "created_at": "2026-11-25T08:00:00+00:00",
        "paid_at": None,
        "completed_at": None,
        "business_date": "2026-11-25",
        "requests": 1,
    }


def test_replay_returns_the_same_record_and_changed_fields_conflict() -> None:
    d = desk(preset_profile("instant", ICBC))
    first = d.register(request("b2b_1"), NOW, BASE_URL)
    again = d.register(request("b2b_1"), NOW, BASE_URL)
    assert again.replayed and again.fate is None
    assert again.record is first.record
    assert first.record.requests == 2
    for changed in (request("b2b_1", amount=1), request("b2b_1", payer=None)):
        with pytest.raises(RefConflict):
            d.register(changed, NOW, BASE_URL)
    assert [r.ref for r in d.records()] == ["b2b_1"]


def test_maintenance_refuses_and_records_nothing() -> None:
    d = desk(BankProfile(maintenance_now=True))
    with pytest.raises(InMaintenance):
        d.register(request("b2b_1"), NOW, BASE_URL)
    assert list(d.records()) == []
    assert d.stats()["refused"] == {"maintenance": 1}


def test_interbank_channel_takes_no_b2b() -> None:
    d = desk(preset_profile("default", IBPS))
    with pytest.raises(B2BNotSupported):
        d.register(request("b2b_1"), NOW, BASE_URL)
    assert list(d.records()) == []


# --- the record's status and callback ------------------------------------------------------


def test_b2b_status_moves_only_along_the_table_and_clearing_shows_once_succeeded() -> None:
    d = desk(preset_profile("instant", ICBC))
    record = d.register(request("b2b_1"), NOW, BASE_URL).record
    move_b2b(record, "succeeded", NOW, clearing_status="reversed")
    body = record.to_json()
    assert (body["status"], body["clearing_status"]) == ("succeeded", "reversed")
    assert body["paid_at"] == body["completed_at"] == "2026-11-25T08:00:00+00:00"
    with pytest.raises(IllegalTransition):
        move_b2b(record, "failed", NOW, failure_code="payer_cancelled", failure_message="x")
    failed = d.register(request("b2b_2"), NOW, BASE_URL).record
    move_b2b(
        failed, "failed", NOW, failure_code="payer_cancelled", failure_message="付款方取消支付"
    )
    assert (failed.clearing_status, failed.paid_at) == (None, None)
    assert d.stats()["records"] == {"pending": 0, "succeeded": 1, "failed": 1}
    assert d.stats()["clearing"] == {"cleared": 0, "reversed": 1}


def test_b2b_callback_item_is_kind_b2b_with_a_stable_event_id() -> None:
    d = desk(preset_profile("instant", ICBC))
    record = d.register(request("b2b_1"), NOW, BASE_URL).record
    move_b2b(record, "failed", NOW, failure_code="insufficient_balance", failure_message="余额不足")
    assert b2b_callback_item(record) == {
        "kind": "b2b",
        "event_id": "evt_ICBCB2B2026112500000001_failed",
        "ref": "b2b_1",
        "bank_ref": "ICBCB2B2026112500000001",
        "status": "failed",
        "amount": 123_456,
        "failure_code": "insufficient_balance",
        "failure_message": "余额不足",
        "occurred_at": "2026-11-25T08:00:00+00:00",
    }


@pytest.mark.parametrize(
    ("fen", "shown"),
    [
        (1, "¥0.01"),
        (10, "¥0.10"),
        (100, "¥1.00"),
        (123_456, "¥1,234.56"),
        (100_000_000_05, "¥100,000,000.05"),
        (10**15, "¥10,000,000,000,000.00"),
    ],
)
def test_yuan_formats_fen_with_integer_math(fen: int, shown: str) -> None:
    assert yuan(fen) == shown
