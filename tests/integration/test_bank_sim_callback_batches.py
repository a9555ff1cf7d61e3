"""批量回盘 from the bank simulator over real HTTP: callbacks due together go in one signed POST of
up to `callback_batch_max` items, and ordering, duplicates and retries keep their meaning."""

from __future__ import annotations

from typing import Any

from tests.bank_sim import LiveSim, callbacks_for, payout
from tests.harness import wait_until
from tests.integration import test_bank_sim_app as live

sim = live.sim

# Long enough that payouts completing in the same moment always share a batch.
GATHER = {"callback_batch_linger_ms": 100}
QUICK_RETURN = {"return_delay": {"median_ms": 50, "p99_ms": 50}}


async def posts_with(sim: LiveSim, ref: str) -> list[list[dict[str, Any]]]:
    return [post for post in sim.receiver.posts if any(item["ref"] == ref for item in post)]


async def callback_stats(sim: LiveSim, bank_id: str = "102") -> dict[str, int]:
    stats: dict[str, int] = (await sim.stats())["banks"][bank_id]["callbacks"]
    return stats


async def test_payouts_completing_together_are_called_back_in_one_post(sim: LiveSim) -> None:
    await sim.put_profile("102", GATHER)
    refs = [f"po_g{i}" for i in range(5)]
    assert (await sim.submit_batch([payout(ref) for ref in refs])).status == 200
    await callbacks_for(sim, refs[-1], 1)
    await sim.idle()
    (post,) = sim.receiver.posts
    assert [item["ref"] for item in post] == refs
    assert {item["status"] for item in post} == {"succeeded"}
    assert sim.receiver.bad_signatures == 0
    stats = await callback_stats(sim)
    assert (stats["posts"], stats["sent"], stats["attempts"]) == (1, 5, 5)


async def test_callback_batch_max_1_posts_one_item_each(sim: LiveSim) -> None:
    await sim.put_profile("102", GATHER | {"callback_batch_max": 1})
    refs = [f"po_one{i}" for i in range(3)]
    await sim.submit_batch([payout(ref) for ref in refs])
    await callbacks_for(sim, refs[-1], 1)
    await sim.idle()
    assert sorted(len(post) for post in sim.receiver.posts) == [1, 1, 1]
    assert sorted(item["ref"] for item in sim.receiver.items) == refs
    assert (await callback_stats(sim))["posts"] == 3


async def test_a_full_batch_is_posted_and_the_rest_waits_for_the_next(sim: LiveSim) -> None:
    await sim.put_profile("102", GATHER | {"callback_batch_max": 2})
    refs = [f"po_full{i}" for i in range(5)]
    await sim.submit_batch([payout(ref) for ref in refs])
    await wait_until(lambda: sim.stats(), lambda s: s["banks"]["102"]["callbacks"]["sent"] == 5)
    await sim.idle()
    assert sorted(len(post) for post in sim.receiver.posts) == [1, 2, 2]
    assert sorted(item["ref"] for item in sim.receiver.items) == refs


async def test_out_of_order_return_keeps_returned_before_succeeded_in_one_post(
    sim: LiveSim,
) -> None:
    await sim.put_profile("102", QUICK_RETURN)
    await sim.script("102", "6222000000000021", returned=True, callback="out_of_order")
    await sim.submit(payout("po_ooo_b", "6222000000000021"))
    first, second = await callbacks_for(sim, "po_ooo_b", 2)
    assert [first["status"], second["status"]] == ["returned", "succeeded"]
    (post,) = await posts_with(sim, "po_ooo_b")
    assert [item["status"] for item in post] == ["returned", "succeeded"]


async def test_out_of_order_return_keeps_its_order_across_single_item_posts(
    sim: LiveSim,
) -> None:
    await sim.put_profile("102", QUICK_RETURN | {"callback_batch_max": 1})
    await sim.script("102", "6222000000000022", returned=True, callback="out_of_order")
    await sim.submit(payout("po_ooo_1", "6222000000000022"))
    first, second = await callbacks_for(sim, "po_ooo_1", 2)
    assert [first["status"], second["status"]] == ["returned", "succeeded"]
    assert [len(post) for post in await posts_with(sim, "po_ooo_1")] == [1, 1]


async def test_a_duplicate_is_the_same_item_twice_in_one_post(sim: LiveSim) -> None:
    await sim.script("102", "6222000000000023", callback="duplicate")
    await sim.submit(payout("po_dup_b", "6222000000000023"))
    first, second = await callbacks_for(sim, "po_dup_b", 2)
    assert first == second
    (post,) = await posts_with(sim, "po_dup_b")
    assert post == [first, second]
    await sim.idle()
    assert (await callback_stats(sim))["sent"] == 2


async def test_a_refused_batch_is_retried_whole(sim: LiveSim) -> None:
    await sim.put_profile("102", GATHER)
    sim.receiver.fail_next = 1
    refs = [f"po_rt{i}" for i in range(3)]
    await sim.submit_batch([payout(ref) for ref in refs])
    await callbacks_for(sim, refs[-1], 1)
    await sim.idle()
    (post,) = sim.receiver.posts  # the refused attempt is not recorded by the receiver
    assert [item["ref"] for item in post] == refs
    stats = await callback_stats(sim)
    assert (stats["posts"], stats["retried"], stats["attempts"], stats["sent"]) == (2, 3, 6, 3)
    assert stats["failed"] == 0


async def test_b2b_notices_share_the_batch_with_payout_callbacks(sim: LiveSim) -> None:
    # The payout is submitted after the B2B payment is paid: a longer linger keeps them together.
    await sim.put_profile("102", {"callback_batch_linger_ms": 1_000})
    b2b = b'{"ref": "b2b_mix", "amount": 100, "currency": "CNY"}'
    assert (await sim.signed("POST", "/banks/102/b2b", b2b)).status == 200
    assert (await sim.submit(payout("po_mix"))).status == 200
    await callbacks_for(sim, "b2b_mix", 1)
    await callbacks_for(sim, "po_mix", 1)
    await sim.idle()
    kinds = [[item["kind"] for item in post] for post in sim.receiver.posts]
    assert kinds == [["b2b", "payout"]]
