"""What will happen to a payout, drawn once when the bank accepts it (or scripted per payee).

The draws happen in a fixed order and number for every payout, so with a seed the n-th payout
a bank accepts always meets the same fate. A `Script` field left `None` keeps the random draw.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass

from channels.bank_sim.distributions import chance, delay_ms, pick_one, weighted_choice
from channels.bank_sim.profile import (
    INVALID_BANK_CODE,
    SUCCEEDED,
    BankProfile,
    CallbackFault,
    CallbackFaults,
    SyncFault,
)
from channels.bank_sim.schemas import Direction, Payee


@dataclass(frozen=True, slots=True)
class Fate:
    outcome: str  # "succeeded" or a failure code
    callback_fault: CallbackFault | None
    returned: bool  # only ever True with outcome "succeeded"
    # Simulated milliseconds:
    complete_after_ms: float  # from acceptance to the final status (batch wait included)
    return_after_ms: float  # from completion to the return
    very_late_after_ms: float  # from completion to a very late callback
    resend_after_ms: float  # from completion to the delayed copy of an out-of-order callback


def payee_at_other_bank(profile: BankProfile, payee: Payee) -> bool:
    return profile.kind == "bank" and not payee.bank_code.startswith(profile.bank_id)


def batch_wait_ms(profile: BankProfile, accepted_sim_ms: float) -> float:
    """Realtime: 0. Batch: until the next `batch_interval_ms` boundary of simulated time."""
    if profile.payout_mode == "realtime":
        return 0.0
    interval = profile.batch_interval_ms
    return math.ceil(accepted_sim_ms / interval) * interval - accepted_sim_ms


def callback_fault_probs(faults: CallbackFaults) -> dict[CallbackFault, float]:
    return {
        "duplicate": faults.duplicate,
        "out_of_order": faults.out_of_order,
        "lost": faults.lost,
        "very_late": faults.very_late,
    }


def draw_fate(
    profile: BankProfile,
    rng: random.Random,
    payee: Payee,
    accepted_sim_ms: float,
    direction: Direction = "credit",
) -> Fate:
    """A debit (collection) draws from `collection_outcomes` and is never returned."""
    faults = profile.callback_faults
    debit = direction == "debit"
    outcome = weighted_choice(profile.collection_outcomes if debit else profile.outcomes, rng)
    fault = pick_one(callback_fault_probs(faults), rng)
    returned = chance(profile.return_prob, rng)
    callback_ms = delay_ms(profile.callback_delay, rng)
    return_ms = delay_ms(profile.return_delay, rng)
    very_late_ms = delay_ms(faults.very_late_delay, rng)
    resend_ms = delay_ms(profile.callback_delay, rng)

    script = profile.scripted.get(payee.account_no)
    if script is not None:
        outcome = script.outcome if script.outcome is not None else outcome
        fault = script.callback if script.callback is not None else fault
        returned = script.returned if script.returned is not None else returned
    if payee_at_other_bank(profile, payee):
        outcome = INVALID_BANK_CODE
    return Fate(
        outcome=outcome,
        callback_fault=fault,
        returned=returned and outcome == SUCCEEDED and not debit,
        complete_after_ms=batch_wait_ms(profile, accepted_sim_ms) + callback_ms,
        return_after_ms=return_ms,
        very_late_after_ms=very_late_ms,
        resend_after_ms=resend_ms,
    )


def _sync_fault_probs(profile: BankProfile) -> dict[SyncFault, float]:
    return {"timeout": profile.sync_timeout_prob, "reset": profile.connection_reset_prob}


def draw_sync_fault(
    profile: BankProfile, rng: random.Random, payee: Payee, first_submission: bool
) -> SyncFault | None:
    """The fault on one submission's answer; a scripted one hits the first submission only."""
    drawn = pick_one(_sync_fault_probs(profile), rng)
    script = profile.scripted.get(payee.account_no)
    if script is not None and script.sync is not None:
        return script.sync if first_submission else None
    return drawn


def draw_batch_sync_fault(
    profile: BankProfile, rng: random.Random, new_payees: Iterable[Payee]
) -> SyncFault | None:
    """The one fault on a whole batch's answer: a fault scripted for the payee of any payout
    the batch submits for the first time, else one draw for the batch."""
    drawn = pick_one(_sync_fault_probs(profile), rng)
    if profile.scripted:
        for payee in new_payees:
            script = profile.scripted.get(payee.account_no)
            if script is not None and script.sync is not None:
                return script.sync
    return drawn
