"""Bank profiles: defaults, presets, validation, and the merge patch PUT /profile applies."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from channels.bank_sim.presets import (
    DEFAULT_BANKS,
    PRESET_NAMES,
    BankIdentity,
    UnknownPreset,
    preset_profile,
)
from channels.bank_sim.profile import (
    FAILURE_MESSAGES,
    BankProfile,
    Delay,
    Window,
    merge_patch,
    patched,
    profile_from_json,
)

ICBC = BankIdentity("102", "ICBC", "bank")


def test_field_defaults_are_the_default_preset() -> None:
    assert preset_profile("default", ICBC) == BankProfile()
    p = BankProfile()
    assert (p.ack_latency.median_ms, p.ack_latency.p99_ms) == (20.0, 80.0)
    assert (p.callback_delay.median_ms, p.callback_delay.p99_ms) == (300.0, 2_000.0)
    assert p.outcomes["succeeded"] == pytest.approx(0.96)
    assert sum(p.outcomes.values()) == pytest.approx(1.0)
    assert set(p.outcomes) == {"succeeded", *FAILURE_MESSAGES}
    assert p.tps == 500
    assert p.sync_timeout_prob == p.connection_reset_prob == p.return_prob == 0.0
    assert p.callback_faults == msgspec.convert({}, type(p.callback_faults))


def test_every_preset_of_every_bank_round_trips_through_json() -> None:
    for preset in PRESET_NAMES:
        for who in DEFAULT_BANKS:
            profile = preset_profile(preset, who)
            assert (profile.bank_id, profile.name, profile.kind) == (
                who.bank_id,
                who.name,
                who.kind,
            )
            assert profile_from_json(msgspec.json.decode(msgspec.json.encode(profile))) == profile


def test_instant_preset_has_no_latency_no_failures_and_no_faults() -> None:
    p = preset_profile("instant", ICBC)
    assert p.ack_latency == p.callback_delay == Delay(0.0, 0.0)
    assert p.outcomes == {"succeeded": 1.0}
    assert p.tps == 100_000
    faults = p.callback_faults
    assert faults.duplicate == faults.lost == faults.out_of_order == faults.very_late == 0.0
    assert p.sync_timeout_prob == p.connection_reset_prob == p.return_prob == 0.0


def test_fault_heavy_preset_turns_on_every_fault_with_short_delays() -> None:
    p = preset_profile("fault_heavy", ICBC)
    failures = sum(w for code, w in p.outcomes.items() if code != "succeeded")
    assert failures / sum(p.outcomes.values()) == pytest.approx(0.10)
    assert all(p.outcomes[code] > 0 for code in FAILURE_MESSAGES)
    assert (p.sync_timeout_prob, p.connection_reset_prob) == (0.03, 0.02)
    faults = p.callback_faults
    assert (faults.duplicate, faults.out_of_order, faults.lost, faults.very_late) == (
        0.10,
        0.05,
        0.05,
        0.05,
    )
    assert p.return_prob == 0.03
    longest_ms = max(p.callback_delay.p99_ms, p.return_delay.p99_ms, faults.very_late_delay.p99_ms)
    assert longest_ms <= 10_000 and p.sync_timeout_hang_ms <= 5_000


def test_every_preset_takes_and_sends_batches_of_500_with_a_5_ms_linger() -> None:
    for preset in PRESET_NAMES:
        p = preset_profile(preset, ICBC)
        assert (p.submit_batch_max, p.callback_batch_max) == (500, 500)
        assert p.callback_batch_linger_ms == 5.0


def test_batch_fields_patch_and_reset_like_any_other() -> None:
    p = patched(
        BankProfile(),
        {"submit_batch_max": 1, "callback_batch_max": 20, "callback_batch_linger_ms": 0},
    )
    assert (p.submit_batch_max, p.callback_batch_max, p.callback_batch_linger_ms) == (1, 20, 0.0)
    back = patched(p, {"submit_batch_max": None, "callback_batch_linger_ms": 1000})
    assert (back.submit_batch_max, back.callback_batch_linger_ms) == (500, 1000.0)


def test_unknown_preset_is_refused() -> None:
    with pytest.raises(UnknownPreset):
        preset_profile("chaos", ICBC)


def test_patch_merges_nested_objects_and_replaces_the_rest() -> None:
    base = preset_profile("fault_heavy", ICBC)
    p = patched(
        base,
        {"callback_faults": {"lost": 0.2}, "maintenance": [{"start": "23:00", "end": "01:00"}]},
    )
    assert p.callback_faults.lost == 0.2
    assert p.callback_faults.duplicate == base.callback_faults.duplicate
    assert p.maintenance == [Window("23:00", "01:00")]
    assert p.outcomes == base.outcomes


def test_patch_replaces_the_outcome_mix_whole() -> None:
    p = patched(BankProfile(), {"outcomes": {"succeeded": 1, "account_frozen": 1}})
    assert p.outcomes == {"succeeded": 1.0, "account_frozen": 1.0}


def test_patch_null_returns_a_field_to_its_default() -> None:
    base = patched(BankProfile(), {"tps": 3, "scripted": {"acct-1": {"outcome": "account_frozen"}}})
    p = patched(base, {"tps": None, "scripted": {"acct-1": None}})
    assert p.tps == 500
    assert p.scripted == {}


def test_merge_patch_follows_rfc_7396() -> None:
    target: dict[str, Any] = {"a": "b", "c": {"d": "e", "f": "g"}}
    assert merge_patch(target, {"a": "z", "c": {"f": None}}) == {"a": "z", "c": {"d": "e"}}
    assert target == {"a": "b", "c": {"d": "e", "f": "g"}}
    assert merge_patch({"a": [1, 2]}, {"a": [3]}) == {"a": [3]}


@pytest.mark.parametrize(
    "patch",
    [
        {"colour": "red"},
        {"tps": 0},
        {"sync_timeout_prob": 1.5},
        {"sync_timeout_prob": 0.6, "connection_reset_prob": 0.6},
        {"outcomes": {"succeeded": 1, "bank_on_fire": 1}},
        {"outcomes": {"succeeded": 0}},
        {"outcomes": {"succeeded": -1, "account_frozen": 2}},
        {"callback_delay": {"median_ms": 500, "p99_ms": 100}},
        {"callback_delay": {"median_ms": 0, "p99_ms": 100}},
        {"callback_delay": {"median_ms": 1, "p99_ms": 1e12}},
        {"callback_faults": {"duplicate": 0.6, "lost": 0.6}},
        {"callback_faults": {"typo": 0.1}},
        {"maintenance": [{"start": "24:00", "end": "01:00"}]},
        {"maintenance": [{"start": "01:00", "end": "01:00"}]},
        {"clearing_cutoff": "5pm"},
        {"payout_mode": "weekly"},
        {"scripted": {"acct": {"outcome": "bank_on_fire"}}},
        {"scripted": {"acct": {"sync": "explode"}}},
        {"callback_retries": 1000},
        {"submit_batch_max": 0},
        {"submit_batch_max": 501},
        {"callback_batch_max": 0},
        {"callback_batch_max": 501},
        {"callback_batch_max": 2.5},
        {"callback_batch_linger_ms": -1},
        {"callback_batch_linger_ms": 1000.5},
        {"bank_id": "999"},
    ],
)
def test_invalid_patches_are_refused(patch: dict[str, Any]) -> None:
    with pytest.raises((msgspec.ValidationError, ValueError)):
        patched(BankProfile(), patch)


@pytest.mark.parametrize(
    ("start", "end", "minute", "inside"),
    [
        ("02:00", "04:00", 2 * 60, True),
        ("02:00", "04:00", 4 * 60, False),
        ("02:00", "04:00", 1 * 60 + 59, False),
        ("23:30", "00:30", 23 * 60 + 45, True),
        ("23:30", "00:30", 15, True),
        ("23:30", "00:30", 30, False),
        ("23:30", "00:30", 12 * 60, False),
    ],
)
def test_maintenance_window_in_minutes_of_the_business_day(
    start: str, end: str, minute: int, inside: bool
) -> None:
    assert Window(start, end).contains(minute) is inside
    assert BankProfile(maintenance=[Window(start, end)]).in_maintenance(minute) is inside
    assert BankProfile(maintenance_now=True).in_maintenance(minute) is True
