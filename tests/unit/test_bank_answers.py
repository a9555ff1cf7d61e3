"""Bank answers matched to orders by ref, bank and amount (channels/answers.py), the bank's
signed "no such order", and the simulator's lying answers (channels/bank_sim/answer_lies.py),
without HTTP."""

from __future__ import annotations

import random
from typing import Any

import aiohttp
import orjson
import pytest

from channels import answers
from channels.answers import SubmitOutcome
from channels.bank_sim.answer_lies import AnswerLies
from channels.bank_sim.profile import AnswerFaults, BankProfile
from channels.client import BankClient
from protocol import signing

SECRET = "bank-102-secret"
PATH = "/banks/102/payouts/po_1"
NONCE = "query-nonce-0123456789"


def record(ref: str, amount: int = 100, bank_id: str = "102") -> dict[str, Any]:
    return {"ref": ref, "bank_id": bank_id, "bank_ref": f"B-{ref}", "status": "succeeded",
            "amount": amount, "failure_code": None, "failure_message": None}  # fmt: skip


def accepted(ref: str, **rec: Any) -> dict[str, Any]:
    return {"ref": ref, "result": "accepted", "record": record(ref, **rec)}


@pytest.mark.parametrize(
    ("said", "reason"),
    [
        ({"said_bank": "102", "said_ref": "po_1", "said_amount": 100}, None),
        ({"said_bank": "102", "said_ref": "po_2", "said_amount": 100}, "wrong_ref"),
        ({"said_bank": "103", "said_ref": "po_1", "said_amount": 100}, "wrong_bank"),
        ({"said_bank": None, "said_ref": "po_1", "said_amount": 100}, "wrong_bank"),
        ({"said_bank": "102", "said_ref": "po_1", "said_amount": 101}, "wrong_amount"),
    ],
)
def test_an_answer_is_its_orders_only_for_its_ref_bank_and_amount(
    said: dict[str, Any], reason: str | None
) -> None:
    assert answers.mismatch("102", "po_1", 100, **said) == reason


def test_a_ref_named_twice_answers_for_nothing() -> None:
    said = answers.by_ref([accepted("po_1"), accepted("po_2"), accepted("po_1"), {"x": 1}, 7])
    assert set(said.by_ref) == {"po_2"}
    assert said.duplicated == {"po_1"}
    assert said.unnamed == 2


async def test_batch_answers_reach_their_orders_by_ref_and_the_rest_are_unknown() -> None:
    orders = [{"ref": f"po_{n}", "amount": 100} for n in range(1, 6)]
    items = [
        accepted("po_3"),  # out of order
        accepted("po_2", amount=999),  # another amount
        accepted("po_1"),
        accepted("po_4"),
        accepted("po_4"),  # twice
        accepted("po_9"),  # never sent
        {"ref": "po_6", "result": "refused", "error": {"code": "bank_busy"}},  # never sent
    ]  # po_5 is missing
    async with aiohttp.ClientSession() as session:
        client = BankClient(session, "http://127.0.0.1:9", "m", submit_timeout_s=1,
                            query_timeout_s=1)  # fmt: skip
        results = client._matched("102", orders, items, None)
    assert [r.outcome for r in results] == [
        SubmitOutcome.ACKED,
        SubmitOutcome.UNKNOWN,
        SubmitOutcome.ACKED,
    ] + [SubmitOutcome.UNKNOWN] * 2
    assert [r.record.ref if r.record else r.code for r in results] == [
        "po_1", "answer_wrong_amount", "po_3", "answer_duplicate", "answer_missing"]  # fmt: skip


def no_such_order(**over: Any) -> tuple[dict[str, str], bytes]:
    body = orjson.dumps({"code": "no_such_order", "bank_id": "102", "ref": "po_1",
                         "request_nonce": NONCE} | over)  # fmt: skip
    return signing.sign_request("102", SECRET, "GET", PATH, body), body


def says(status: int, headers: dict[str, str], body: bytes, secret: str = SECRET) -> bool:
    return answers.says_no_such_order(secret, "102", "po_1", PATH, NONCE, status, headers, body,
                                      orjson.loads(body))  # fmt: skip


def test_no_such_order_counts_only_as_the_banks_signed_answer_to_this_query() -> None:
    headers, body = no_such_order()
    assert says(404, headers, body)
    assert not says(200, headers, body)
    assert not says(404, headers, body, secret="another-bank-secret")
    assert not says(404, {}, body)  # unsigned: a proxy's or another service's 404
    assert not says(404, headers, body.replace(b"102", b"103"))  # changed on the way
    for over in ({"ref": "po_2"}, {"bank_id": "103"}, {"request_nonce": "an-older-query-nonce"},
                 {"code": "not_found"}):  # fmt: skip
        assert not says(404, *no_such_order(**over)), over
    other_key = signing.sign_request("103", SECRET, "GET", PATH, body)
    assert not says(404, other_key, body)


def lies(**faults: float) -> tuple[AnswerLies, BankProfile]:
    return AnswerLies(random.Random(3)), BankProfile(answer_faults=AnswerFaults(**faults))


def test_a_shuffled_batch_answer_is_never_in_the_order_sent() -> None:
    liar, profile = lies(shuffle_batch=1.0)
    for n in range(2, 8):
        items = [{"ref": f"po_{k}"} for k in range(n)]
        shuffled = liar.order(profile, items)
        assert shuffled != items and sorted(shuffled, key=lambda i: i["ref"]) == items
    honest, profile = lies()
    items = [{"ref": "a"}, {"ref": "b"}]
    assert honest.order(profile, items) == items


def test_a_wrong_amount_is_one_fen_off_and_only_on_its_hop() -> None:
    liar, profile = lies(wrong_amount_query=1.0)
    assert liar.record(profile, "query", {"amount": 100})["amount"] == 101
    assert liar.record(profile, "submit", {"amount": 100})["amount"] == 100
