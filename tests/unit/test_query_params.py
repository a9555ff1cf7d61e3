"""Reading a query string against an operation's declared parameters (gateway/api/params.py):
what a route may use comes through typed, anything else is refused naming the parameter."""

from __future__ import annotations

import pytest

from gateway.api.openapi import OPERATIONS
from gateway.api.params import Param, Value, read_query
from protocol.errors import InvalidRequest


def declared(method: str, path: str) -> dict[str, Param]:
    (op,) = [op for op in OPERATIONS if (op.method, op.path) == (method, path)]
    return {p.name: p for p in op.params if p.where == "query"}


PAYOUTS = declared("get", "/v1/payouts")
LEDGER = declared("get", "/v1/ledger")


@pytest.mark.parametrize(
    ("params", "raw", "values"),
    [
        (PAYOUTS, "", {"limit": 50}),
        (PAYOUTS, "limit=200&status=succeeded", {"limit": 200, "status": "succeeded"}),
        (PAYOUTS, "cursor=po_01abc&", {"limit": 50, "cursor": "po_01abc"}),
        (PAYOUTS, "merchant_order_id=a%2Bb%21", {"limit": 50, "merchant_order_id": "a+b!"}),
        (LEDGER, f"cursor={2**63 - 1}", {"limit": 50, "cursor": 2**63 - 1}),
    ],
)
def test_usable_values_come_through_typed(
    params: dict[str, Param], raw: str, values: dict[str, Value]
) -> None:
    assert read_query(raw, params) == values


@pytest.mark.parametrize(
    ("params", "raw", "field", "says"),
    [
        (PAYOUTS, "limit=%C2%B2", "limit", "integer"),  # '²': str.isdigit() is True
        (PAYOUTS, "limit=%D9%A3", "limit", "integer"),  # '٣': int() reads it as 3
        (PAYOUTS, "limit=%EF%BC%91%EF%BC%92", "limit", "integer"),  # fullwidth '１２'
        (PAYOUTS, "limit=0", "limit", "1..200"),
        (PAYOUTS, "limit=201", "limit", "1..200"),
        (PAYOUTS, "limit=-1", "limit", "integer"),
        (PAYOUTS, "limit=+5", "limit", "integer"),
        (PAYOUTS, "limit=", "limit", "integer"),
        (PAYOUTS, "limit", "limit", "integer"),
        (PAYOUTS, "limit=5&limit=5", "limit", "more than once"),
        (PAYOUTS, "status=paid", "status", "one of"),
        (PAYOUTS, "cursor=a%0A", "cursor", "malformed"),  # `$` alone would let "\n" pass
        (PAYOUTS, "cursor=" + "a" * 65, "cursor", "characters"),
        (PAYOUTS, "merchant_order_id=1%002", "merchant_order_id", "NUL"),
        (PAYOUTS, "merchant_order_id=%FF", "merchant_order_id", "UTF-8"),
        (PAYOUTS, "colour=red", "colour", "unknown"),
        (LEDGER, "cursor=99999999999999999999", "cursor", "integer"),
        (LEDGER, f"cursor={2**63}", "cursor", "integer"),
        (LEDGER, "cursor=po_1", "cursor", "integer"),
    ],
)
def test_what_a_route_cannot_use_is_refused_naming_the_parameter(
    params: dict[str, Param], raw: str, field: str, says: str
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        read_query(raw, params)
    assert refused.value.field == field
    assert says in refused.value.message


def test_a_string_parameter_without_a_length_cap_cannot_be_declared() -> None:
    with pytest.raises(AssertionError):
        Param("free_text", {"type": "string", "pattern": "^.+$"})
