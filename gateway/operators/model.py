"""Roles and the actor every audited action names (a console operator or the API's token)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

ROLES: Final = ("viewer", "operator", "approver", "admin")  # each may do what those before may
Role = Literal["viewer", "operator", "approver", "admin"]
API_TOKEN_NAME: Final = "admin-token"  # who the `/admin` API's bearer token acts as


def may(role: str, needed: str) -> bool:
    """Whether `role` includes what `needed` may do (viewer < operator < approver < admin)."""
    return ROLES.index(role) >= ROLES.index(needed)


@dataclass(frozen=True, slots=True)
class Actor:
    operator_id: str | None  # None: the API's token
    name: str
    role: str
    via: Literal["console", "api"]


API_ACTOR: Final = Actor(None, API_TOKEN_NAME, "admin", "api")
