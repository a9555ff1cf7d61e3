"""The bank invariant run (SPEC 14, issue 4): thousands of payouts against the fault-heavy
profile — sync timeouts, resets, duplicate, reordered, lost and late callbacks, returns — end
with every payout final, the bank's paid set equal to the gateway's, nothing paid twice, and
the ledger's invariants all holding."""

from __future__ import annotations

from gateway.settings import Settings
from tests.banks import assert_bank_agrees, bank_world, submit_spread_run, wait_all_final

PAYOUTS_PER_MERCHANT = 500


async def test_fault_heavy_run_ends_final_paid_once_and_balanced(settings: Settings) -> None:
    async with bank_world(settings, preset="fault_heavy", seed=20261125) as world:
        accepted = await submit_spread_run(world, PAYOUTS_PER_MERCHANT)
        assert len(accepted) >= 2_000
        gateway = await wait_all_final(world, timeout_s=240)
        await assert_bank_agrees(world, accepted, gateway)
        stats = await world.sim_get("/sim/stats")
        print("bank stats:", stats)  # shown with -s: the faults this run went through
