"""A callback storm from the bank simulator (POST /sim/callback-storm): each bank sends the
callbacks of its latest final payouts again, signed, the same event ids, as many copies as
asked; its books do not change."""

from __future__ import annotations

from collections import Counter

import orjson

from tests.bank_sim import LiveSim, callbacks_for, payout
from tests.harness import wait_until
from tests.integration import test_bank_sim_app as live

sim = live.sim


async def test_a_storm_replays_final_callbacks_as_signed_copies(sim: LiveSim) -> None:
    refs = [f"po_storm{i}" for i in range(3)]
    for ref in refs:
        assert (await sim.submit(payout(ref))).status == 200
    first = {ref: (await callbacks_for(sim, ref, 1))[0] for ref in refs}
    await sim.idle()
    before = await sim.records(bank_id="102")

    reply = await sim.raw(
        "POST", "/sim/callback-storm", orjson.dumps({"copies": 2, "bank_id": "102"})
    )
    assert reply.status == 200, reply.body
    assert reply.body == {"copies": 2, "items": 6, "banks": {"102": 6}}

    await wait_until(lambda: sim.stats(),
                     lambda s: s["banks"]["102"]["callbacks"]["sent"] == 9)  # fmt: skip
    by_event = Counter(item["event_id"] for item in sim.receiver.items)
    assert by_event == Counter({first[ref]["event_id"]: 3 for ref in refs})
    assert sim.receiver.bad_signatures == 0
    assert await sim.records(bank_id="102") == before


async def test_a_storm_is_bounded_and_names_a_known_bank(sim: LiveSim) -> None:
    too_many = await sim.raw("POST", "/sim/callback-storm", orjson.dumps({"copies": 11}))
    assert too_many.status == 400
    unknown = await sim.raw("POST", "/sim/callback-storm", orjson.dumps({"bank_id": "999"}))
    assert unknown.status == 404
    nothing_yet = await sim.raw("POST", "/sim/callback-storm", b"")
    assert nothing_yet.status == 200 and nothing_yet.body["items"] == 0
