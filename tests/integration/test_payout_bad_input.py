"""Bad payout requests are 400 with the offending field; batches judge each item alone."""

from typing import Any

import pytest

from tests.harness import LiveGateway
from tests.payloads import payout_body


def payee(**over: Any) -> dict[str, Any]:
    return {**payout_body()["payee"], **over}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (payout_body(0), "amount"),
        (payout_body(-5), "amount"),
        (payout_body(10**13 + 1), "amount"),
        ({**payout_body(), "amount": 100.5}, "amount"),
        ({**payout_body(), "amount": "100"}, "amount"),
        ({**payout_body(), "amount": 1e3}, "amount"),
        (payout_body(currency="USD"), "currency"),
        (payout_body(currency="cny"), "currency"),
        (payout_body(payee=payee(bank_code="10210009999")), "payee.bank_code"),
        (payout_body(payee=payee(bank_code="10210009999A")), "payee.bank_code"),
        (payout_body(payee=payee(account_name="")), "payee.account_name"),
        (payout_body(payee=payee(account_name="  ")), "payee.account_name"),
        (payout_body(payee=payee(account_type="business")), "payee.account_type"),
        (payout_body(payee=payee(account_no="12")), "payee.account_no"),
        (payout_body(payee=payee(iban="x")), "payee.iban"),
        (payout_body(metadata={f"k{i}": "v" for i in range(21)}), "metadata"),
        (payout_body(metadata={"k": 1}), "metadata"),
        (payout_body(order_id="x" * 65), "merchant_order_id"),
        ({**payout_body(), "merchant_order_id": ""}, "merchant_order_id"),
        ({**payout_body(), "tip": 1}, "tip"),
        ({k: v for k, v in payout_body().items() if k != "payee"}, "payee"),
    ],
)
async def test_bad_payout_is_400_with_field(
    gateway: LiveGateway, body: dict[str, Any], field: str
) -> None:
    _, client = await gateway.merchant(credit_fen=10**6)
    resp = await client.post("/v1/payouts", body)
    assert resp.status == 400, resp.body
    assert resp.json()["error"]["code"] == "invalid_request"
    assert resp.json()["error"]["field"] == field
    assert (await client.get("/v1/balance")).json()["held"] == 0


async def test_metadata_of_twenty_keys_is_fine(gateway: LiveGateway) -> None:
    _, client = await gateway.merchant(credit_fen=10**6)
    resp = await client.post("/v1/payouts", payout_body(metadata={f"k{i}": "v" for i in range(20)}))
    assert resp.status == 201


async def test_batch_of_1000_with_mixed_items_judges_each_alone(gateway: LiveGateway) -> None:
    # Funds for 600 payouts of 1_000 (no fee); 100 invalid items; 300 refused for funds.
    _, client = await gateway.merchant(credit_fen=600 * 1_000)
    items: list[dict[str, Any]] = []
    for i in range(1000):
        if i % 10 == 3:
            items.append(payout_body(0))  # invalid: amount 0
        else:
            items.append(payout_body(1_000))
    resp = await client.post("/v1/payout-batches", {"items": items})
    assert resp.status == 200, resp.body
    data = resp.json()
    results = data["items"]
    assert [r["index"] for r in results] == list(range(1000))
    invalid = [r for r in results if r["status"] == 400]
    assert len(invalid) == 100
    assert all(r["error"]["field"] == f"items[{r['index']}].amount" for r in invalid)
    assert sum(1 for r in results if r["status"] == 201) == 600
    refused = [r for r in results if r["status"] == 422]
    assert len(refused) == 300
    assert {r["error"]["code"] for r in refused} == {"insufficient_funds"}
    assert (data["accepted"], data["refused"]) == (600, 400)
    # Item order is funds order: the first 600 valid items are the accepted ones.
    valid = [r for r in results if r["status"] != 400]
    assert all(r["status"] == 201 for r in valid[:600])
    assert (await client.get("/v1/balance")).json()["available"] == 0
    assert (await gateway.ledger_ok())["ok"]


async def test_batch_over_1000_items_or_empty_is_400(gateway: LiveGateway) -> None:
    _, client = await gateway.merchant()
    too_many = await client.post("/v1/payout-batches", {"items": [payout_body()] * 1001})
    assert too_many.status == 400
    assert too_many.json()["error"]["field"] == "items"
    empty = await client.post("/v1/payout-batches", {"items": []})
    assert empty.status == 400
