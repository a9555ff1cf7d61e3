"""The default set of banks and the named profile presets (`default`, `instant`, `fault_heavy`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

import msgspec

from channels.bank_sim.profile import (
    SUCCEEDED,
    BankProfile,
    CallbackFaults,
    Delay,
)

BankKind = Literal["bank", "interbank"]


@dataclass(frozen=True, slots=True)
class BankIdentity:
    bank_id: str
    name: str
    kind: BankKind


# Single banks pay payees whose CNAPS code starts with their id; IBPS clears to any bank.
DEFAULT_BANKS: Final = (
    BankIdentity("102", "ICBC", "bank"),
    BankIdentity("103", "ABC", "bank"),
    BankIdentity("104", "BOC", "bank"),
    BankIdentity("105", "CCB", "bank"),
    BankIdentity("308", "CMB", "bank"),
    BankIdentity("ibps", "IBPS", "interbank"),
)

# B2B clearing as the big banks do it: ICBC and CMB clear in real time, ABC, BOC and CCB at
# the next business day's cut-off. Banks not named here (and IBPS, which takes no B2B) keep the
# profile default, `realtime`.
T_PLUS_1_BANKS: Final = frozenset({"103", "104", "105"})
T_PLUS_1_CUTOFF: Final = "17:00"

PRESET_NAMES: Final = ("default", "instant", "fault_heavy")

INSTANT: Final = Delay(median_ms=0.0, p99_ms=0.0)


class UnknownPreset(ValueError):
    pass


def _default(who: BankIdentity) -> BankProfile:
    # BankProfile's field defaults are the default preset, apart from each bank's clearing.
    profile = BankProfile(bank_id=who.bank_id, name=who.name, kind=who.kind)
    if who.bank_id in T_PLUS_1_BANKS:
        profile = msgspec.structs.replace(profile, clearing="t+1", clearing_cutoff=T_PLUS_1_CUTOFF)
    return profile


def _instant(who: BankIdentity) -> BankProfile:
    """Zero latency, every payout and B2B payment succeeds and clears in real time, no faults:
    for benchmarks."""
    return BankProfile(
        bank_id=who.bank_id,
        name=who.name,
        kind=who.kind,
        ack_latency=INSTANT,
        callback_delay=INSTANT,
        outcomes={SUCCEEDED: 1.0},
        collection_outcomes={SUCCEEDED: 1.0},
        tps=100_000,
        b2b_pay_delay=INSTANT,
        b2b_success_prob=1.0,
    )


def _fault_heavy(who: BankIdentity) -> BankProfile:
    """Every fault at once, with delays short enough for 2,000 payouts in seconds."""
    return msgspec.structs.replace(
        _default(who),
        ack_latency=Delay(median_ms=5.0, p99_ms=40.0),
        callback_delay=Delay(median_ms=50.0, p99_ms=400.0),
        outcomes={
            SUCCEEDED: 0.90,
            "account_not_found": 0.02,
            "account_name_mismatch": 0.02,
            "account_frozen": 0.02,
            "over_bank_limit": 0.02,
            "account_closed": 0.02,
        },
        collection_outcomes={
            SUCCEEDED: 0.85,
            "insufficient_balance": 0.09,
            "card_frozen": 0.03,
            "no_debit_agreement": 0.03,
        },
        sync_timeout_prob=0.03,
        sync_timeout_hang_ms=2_000,
        connection_reset_prob=0.02,
        tps=1_000,
        callback_faults=CallbackFaults(
            duplicate=0.10,
            out_of_order=0.05,
            lost=0.05,
            very_late=0.05,
            very_late_delay=Delay(median_ms=2_000.0, p99_ms=5_000.0),
        ),
        return_prob=0.03,
        return_delay=Delay(median_ms=300.0, p99_ms=1_500.0),
        callback_retries=5,
        b2b_pay_delay=Delay(median_ms=50.0, p99_ms=400.0),
        b2b_success_prob=0.90,
        clearing_failure_prob=0.05,
    )


def preset_profile(preset: str, who: BankIdentity) -> BankProfile:
    if preset == "default":
        return _default(who)
    if preset == "instant":
        return _instant(who)
    if preset == "fault_heavy":
        return _fault_heavy(who)
    raise UnknownPreset(f"unknown preset {preset!r}; known: {', '.join(PRESET_NAMES)}")


def identity_of(profile: BankProfile) -> BankIdentity:
    return BankIdentity(profile.bank_id, profile.name, profile.kind)
