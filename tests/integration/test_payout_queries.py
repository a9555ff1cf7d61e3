"""Reading payouts: by id, by order id, by status with keyset pages; another merchant's is 404."""

from tests.harness import LiveGateway
from tests.payloads import payout_body


async def test_another_merchants_payout_is_404(gateway: LiveGateway) -> None:
    _, alice = await gateway.merchant(credit_fen=10**6)
    _, bob = await gateway.merchant(credit_fen=10**6)
    payout = (await alice.post("/v1/payouts", payout_body(100, order_id="shared-1"))).json()
    assert (await alice.get(f"/v1/payouts/{payout['id']}")).status == 200
    assert (await bob.get(f"/v1/payouts/{payout['id']}")).status == 404
    by_order = (await bob.get("/v1/payouts?merchant_order_id=shared-1")).json()
    assert by_order["data"] == []
    assert (await bob.get("/v1/payouts")).json()["data"] == []
    assert (await bob.get("/v1/ledger")).json()["data"][0]["entry_kind"] == "credit"
    # An id in any other format names nothing either: 404, not a 400 about its shape.
    for other in ("po_does_not_exist", "po-123e4567-e89b-12d3", "1"):
        assert (await bob.get(f"/v1/payouts/{other}")).status == 404, other


async def test_list_by_status_pages_newest_first(gateway: LiveGateway) -> None:
    _, client = await gateway.merchant(credit_fen=10**6)
    ids = [(await client.post("/v1/payouts", payout_body(100))).json()["id"] for _ in range(5)]
    seen: list[str] = []
    path = "/v1/payouts?status=accepted&limit=2"
    while True:
        page = (await client.get(path)).json()
        seen += [p["id"] for p in page["data"]]
        if page["next_cursor"] is None:
            break
        path = f"/v1/payouts?status=accepted&limit=2&cursor={page['next_cursor']}"
    assert seen == list(reversed(ids))
    assert (await client.get("/v1/payouts?status=succeeded")).json()["data"] == []
    found = (await client.get(f"/v1/payouts?merchant_order_id={'o-x'}")).json()
    assert found == {"data": [], "next_cursor": None}


async def test_ledger_lines_show_the_hold(gateway: LiveGateway) -> None:
    _m, client = await gateway.merchant(credit_fen=1_000)
    payout = (await client.post("/v1/payouts", payout_body(400))).json()
    lines = (await client.get("/v1/ledger?limit=10")).json()["data"]
    hold = {(ln["account"], ln["amount"]) for ln in lines if ln["ref_id"] == payout["id"]}
    assert hold == {("available", -400), ("held", 400)}


async def test_bad_query_parameters_are_400(gateway: LiveGateway) -> None:
    _, client = await gateway.merchant()
    for path, field in [
        ("/v1/payouts?status=paid", "status"),
        ("/v1/payouts?limit=0", "limit"),
        ("/v1/payouts?limit=abc", "limit"),
        ("/v1/payouts?cursor=%27%3B--", "cursor"),
        ("/v1/payouts?colour=red", "colour"),
        ("/v1/ledger?cursor=po_1", "cursor"),
    ]:
        resp = await client.get(path)
        assert resp.status == 400, path
        assert resp.json()["error"]["field"] == field
