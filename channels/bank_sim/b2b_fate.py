"""What will happen to a B2B payment, drawn once when the bank registers it (or scripted per
payer account name): whether the payer pays, when, the clearing fate and the callback fault.

Like payouts, every B2B payment takes the same draws in the same order, so with a seed the n-th
B2B payment a bank registers always meets the same fate. B2B draws come from their own seeded
stream, so B2B traffic does not change the fates of a seeded run's payouts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Final

from channels.bank_sim.distributions import chance, delay_ms, pick_one
from channels.bank_sim.fate import callback_fault_probs
from channels.bank_sim.profile import (
    B2B_FAILURE_MESSAGES,
    B2BOutcome,
    BankProfile,
    CallbackFault,
    ClearingFate,
)

B2B_FAILURE_CODES: Final = tuple(B2B_FAILURE_MESSAGES)


@dataclass(frozen=True, slots=True)
class B2BFate:
    outcome: B2BOutcome
    failure_code: str | None  # set iff the outcome is "failed"
    clearing: ClearingFate  # shown once the payment has succeeded
    callback_fault: CallbackFault | None  # out_of_order: the callback again after a delay
    # Simulated milliseconds:
    pay_after_ms: float  # from registration to the payer's payment (or failure)
    very_late_after_ms: float  # from payment to a very late callback
    resend_after_ms: float  # from payment to the delayed copy of an out-of-order callback


def draw_b2b_fate(
    profile: BankProfile, rng: random.Random, payer_account_name: str | None
) -> B2BFate:
    faults = profile.callback_faults
    succeeded = chance(profile.b2b_success_prob, rng)
    failure_code = rng.choice(B2B_FAILURE_CODES)
    reversed_ = chance(profile.clearing_failure_prob, rng)
    fault = pick_one(callback_fault_probs(faults), rng)
    pay_ms = delay_ms(profile.b2b_pay_delay, rng)
    very_late_ms = delay_ms(faults.very_late_delay, rng)
    resend_ms = delay_ms(profile.callback_delay, rng)

    outcome: B2BOutcome = "succeeded" if succeeded else "failed"
    clearing: ClearingFate = "reversed" if reversed_ else "cleared"
    script = None if payer_account_name is None else profile.b2b_scripted.get(payer_account_name)
    if script is not None:
        outcome = script.outcome if script.outcome is not None else outcome
        clearing = script.clearing if script.clearing is not None else clearing
        fault = script.callback if script.callback is not None else fault
    return B2BFate(
        outcome=outcome,
        failure_code=None if outcome == "succeeded" else failure_code,
        clearing=clearing,
        callback_fault=fault,
        pay_after_ms=pay_ms,
        very_late_after_ms=very_late_ms,
        resend_after_ms=resend_ms,
    )
