"""What a route module declares of its operations (SPEC 11): each `routes_*.py` exports an
`OPERATIONS` table of `Op`s beside its handlers; `openapi.py` gathers the tables into
`/openapi.json` and `params.py` reads every request against them. Here: the `Op` type and
the parameters several modules share.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

from gateway.api.paging import DEFAULT_PAGE, MAX_PAGE
from gateway.api.params import Param
from gateway.contract import requests as schemas

Auth = Literal["merchant", "admin", "bank", "none"]


@dataclass(frozen=True, slots=True)
class Op:
    method: str
    path: str
    summary: str
    auth: Auth
    ok: dict[int, type | None]  # success status -> answer struct (None: any JSON object)
    body: type | None = None
    params: tuple[Param, ...] = ()
    errors: tuple[int, ...] = ()  # beyond those every operation of its kind may answer
    example: dict[str, Any] | None = None  # a request body that decodes with `body`
    tags: tuple[str, ...] = field(default_factory=tuple)


def schema_of(type_: Any) -> dict[str, Any]:
    """The JSON schema of a constrained type of `contract/requests.py`: a parameter is read by
    the same rule that decodes the body field it names."""
    schema: dict[str, Any] = msgspec.json.schema(type_)
    return schema


# An object id in a path: any printable ASCII up to 64 characters reaches the handler, so an
# id that names nothing (ours, another merchant's, or one in another format) is a plain 404;
# only what no id can be (too long, NUL, not UTF-8) is a 400.
PATH_ID = {"type": "string", "minLength": 1, "maxLength": 64, "pattern": r"^[\x21-\x7e]+$"}


def path_id(name: str, schema: dict[str, Any] | None = None) -> Param:
    return Param(name, schema or PATH_ID, "path")


LIMIT = Param("limit", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE,
                        "default": DEFAULT_PAGE}, description=f"1-{MAX_PAGE}")  # fmt: skip
NEXT_CURSOR = "next_cursor of the previous page"
CURSOR = Param("cursor", schema_of(schemas.ObjectId), description=NEXT_CURSOR)
ORDER_ID = Param("merchant_order_id", schema_of(schemas.OrderId))
BANK_ID = {**schema_of(schemas.BankId), "maxLength": 4}
