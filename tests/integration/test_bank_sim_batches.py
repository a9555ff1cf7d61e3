"""批量代付 at the bank simulator over real HTTP: `POST /banks/{id}/payout-batches` answers each
item on its own, counts capacity in items, and meets maintenance and sync faults as a whole."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.bank_sim import LiveSim, callbacks_for, payout
from tests.harness import Reply
from tests.integration import test_bank_sim_app as live

# The live simulator of the bank simulator's own tests: seeded, `instant` preset, and a
# receiver that verifies every callback's signature.
sim = live.sim


def results(reply: Reply) -> list[tuple[str | None, str, str | None]]:
    """(ref, result, error code) per item, in order."""
    assert reply.status == 200, reply.body
    return [
        (item["ref"], item["result"], item["error"]["code"] if "error" in item else None)
        for item in reply.body["items"]
    ]


async def refs_recorded(sim: LiveSim) -> list[str]:
    return [r["ref"] for r in await sim.records()]


async def test_a_batch_of_good_items_accepts_each_in_order_with_its_record(sim: LiveSim) -> None:
    reply = await sim.submit_batch([payout("po_b1"), payout("po_b2"), payout("po_b3")])
    assert results(reply) == [(f"po_b{i}", "accepted", None) for i in (1, 2, 3)]
    records = [item["record"] for item in reply.body["items"]]
    assert [r["status"] for r in records] == ["processing"] * 3
    assert [r["replayed"] for r in records] == [False] * 3
    assert [r["bank_ref"][-8:] for r in records] == ["00000001", "00000002", "00000003"]
    assert "Retry-After" not in reply.headers
    for i in (1, 2, 3):
        (item,) = await callbacks_for(sim, f"po_b{i}", 1)
        assert item["status"] == "succeeded"
    assert await refs_recorded(sim) == ["po_b1", "po_b2", "po_b3"]


async def test_bad_conflicting_and_replayed_items_change_nothing_for_the_others(
    sim: LiveSim,
) -> None:
    first = await sim.submit(payout("po_a"))
    assert first.status == 200, first.body
    items: list[Any] = [
        payout("po_1"),
        payout("po_bad", amount=0),
        42,
        payout("po_a", amount=1),
        payout("po_a"),
        payout("po_2", extra="field"),
        payout("po_3"),
    ]
    reply = await sim.submit_batch(items)
    assert results(reply) == [
        ("po_1", "accepted", None),
        ("po_bad", "refused", "invalid_request"),
        (None, "refused", "invalid_request"),
        ("po_a", "refused", "ref_conflict"),
        ("po_a", "accepted", None),
        ("po_2", "refused", "invalid_request"),
        ("po_3", "accepted", None),
    ]
    answers = reply.body["items"]
    assert "items[1]" in answers[1]["error"]["message"]
    assert "amount" in answers[1]["error"]["message"]
    assert "extra" in answers[5]["error"]["message"]
    replay = answers[4]["record"]
    assert replay["replayed"] is True
    assert replay["bank_ref"] == first.body["bank_ref"]
    assert replay["submissions"] == 2
    assert sorted(await refs_recorded(sim)) == ["po_1", "po_3", "po_a"]
    await sim.final("po_3")
    await sim.idle()
    assert len(sim.receiver.for_ref("po_a")) == 1  # the replay does not complete it again


async def test_capacity_counts_items_so_the_rest_of_a_batch_is_bank_busy(sim: LiveSim) -> None:
    await sim.put_profile("102", {"tps": 3})
    reply = await sim.submit_batch([payout(f"po_t{i}") for i in range(5)])
    assert results(reply) == [(f"po_t{i}", "accepted", None) for i in range(3)] + [
        (f"po_t{i}", "refused", "bank_busy") for i in (3, 4)
    ]
    assert int(reply.headers["Retry-After"]) >= 1
    assert await refs_recorded(sim) == ["po_t0", "po_t1", "po_t2"]
    assert (await sim.stats())["banks"]["102"]["refused"]["busy"] == 2


async def test_a_bank_without_batches_answers_404_batch_not_supported(sim: LiveSim) -> None:
    assert (await sim.put_profile("102", {"submit_batch_max": 1})).status == 200
    reply = await sim.submit_batch([payout("po_nb")])
    assert (reply.status, reply.code) == (404, "batch_not_supported")
    assert await sim.records() == []
    assert (await sim.submit(payout("po_single"))).status == 200  # singles still go


async def test_more_items_than_the_bank_takes_or_a_bad_envelope_is_400(sim: LiveSim) -> None:
    await sim.put_profile("102", {"submit_batch_max": 2})
    reply = await sim.submit_batch([payout(f"po_l{i}") for i in range(3)])
    assert (reply.status, reply.code) == (400, "batch_too_large")
    await sim.put_profile("102", {"submit_batch_max": None})  # back to 500
    over = await sim.submit_batch([payout(f"po_o{i}") for i in range(501)])
    assert (over.status, over.code) == (400, "invalid_request")
    assert (await sim.submit_batch([])).code == "invalid_request"
    path = "/banks/102/payout-batches"
    for body in (b"not json", b'{"items": [{}], "more": 1}', b"{}", b'{"items": {}}'):
        reply = await sim.signed("POST", path, body)
        assert (reply.status, reply.code) == (400, "invalid_request"), body
    assert await sim.records() == []


async def test_maintenance_refuses_the_whole_batch_and_records_nothing(sim: LiveSim) -> None:
    await sim.put_profile("102", {"maintenance_now": True})
    reply = await sim.submit_batch([payout("po_m1"), payout("po_m2")])
    assert (reply.status, reply.code) == (503, "maintenance")
    assert await sim.records() == []
    assert (await sim.stats())["banks"]["102"]["refused"]["maintenance"] == 2


async def test_a_timeout_on_a_batch_hangs_but_every_item_is_recorded(sim: LiveSim) -> None:
    await sim.put_profile("102", {"sync_timeout_hang_ms": 2_000})
    await sim.script("102", "6222000000000011", sync="timeout")
    items = [payout("po_h1"), payout("po_h2", "6222000000000011"), payout("po_h3")]
    with pytest.raises(TimeoutError):
        await sim.submit_batch(items, timeout_s=0.2)
    for ref in ("po_h1", "po_h2", "po_h3"):
        assert (await sim.final(ref))["submissions"] == 1


async def test_a_reset_on_a_batch_drops_the_line_but_every_item_is_recorded(sim: LiveSim) -> None:
    await sim.put_profile("102", {"connection_reset_prob": 1.0})
    with pytest.raises(aiohttp.ClientConnectionError):
        await sim.submit_batch([payout("po_r1"), payout("po_r2")])
    await sim.put_profile("102", {"connection_reset_prob": 0.0})
    for ref in ("po_r1", "po_r2"):
        assert (await sim.final(ref))["status"] == "succeeded"


async def test_stats_count_requests_by_route_and_the_items_in_batches(sim: LiveSim) -> None:
    await sim.submit(payout("po_s1"))
    await sim.submit_batch([payout("po_s2"), payout("po_s3")])
    await sim.submit_batch([payout("po_s4")])
    await sim.query("po_s1")
    await sim.signed("GET", "/banks/102/statements/2026-01-05")
    b2b = b'{"ref": "b2b_s", "amount": 100, "currency": "CNY"}'
    assert (await sim.signed("POST", "/banks/102/b2b", b2b)).status == 200
    await callbacks_for(sim, "po_s4", 1)
    await sim.idle()
    bank = (await sim.stats())["banks"]["102"]
    assert bank["http"] == {
        "submit": 1,
        "submit_batch": 2,
        "query": 1,
        "statement": 1,
        "b2b": 1,
        "batch_items": 3,
    }
    assert bank["submissions"] == 4
    callbacks = bank["callbacks"]
    assert callbacks["sent"] == 5  # four payouts and the B2B notice
    assert 1 <= callbacks["posts"] == len(sim.receiver.posts) <= 5
