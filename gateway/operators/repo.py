"""The `operators` table: add one, find one by name, the first admin."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

import asyncpg

from gateway.operators.model import ROLES
from gateway.operators.passwords import hash_password, verify_password
from protocol.ids import new_id

NAME_RE: Final = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True, slots=True)
class Operator:
    id: str
    name: str
    role: str


class OperatorExists(Exception):
    pass


async def add(conn: asyncpg.Connection | asyncpg.Pool, name: str, role: str,
              password: str) -> Operator:  # fmt: skip
    if not NAME_RE.match(name):
        raise ValueError("an operator name is 1-64 of A-Z a-z 0-9 _ . -")
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if len(password) < 8:
        raise ValueError("a password has at least 8 characters")
    op = Operator(new_id("op"), name, role)
    try:
        await conn.execute(
            "INSERT INTO operators (id, name, role, password_hash) VALUES ($1, $2, $3, $4)",
            op.id, name, role, hash_password(password),
        )  # fmt: skip
    except asyncpg.UniqueViolationError:
        raise OperatorExists(f"an operator named {name} exists") from None
    return op


async def check_login(pool: asyncpg.Pool, name: str, password: str) -> Operator | None:
    """The operator if the password is theirs; None otherwise (unknown names cost the same)."""
    row = await pool.fetchrow(
        "SELECT id, name, role, password_hash FROM operators WHERE name = $1", name
    )
    # Verify against a throwaway hash for unknown names, so timing does not tell them apart.
    stored = row["password_hash"] if row is not None else hash_password("-not-a-password-")
    if not verify_password(stored, password) or row is None:
        return None
    return Operator(row["id"], row["name"], row["role"])


async def get(pool: asyncpg.Pool | asyncpg.Connection, operator_id: str) -> Operator | None:
    row = await pool.fetchrow("SELECT id, name, role FROM operators WHERE id = $1", operator_id)
    return Operator(row["id"], row["name"], row["role"]) if row is not None else None


async def list_all(pool: asyncpg.Pool) -> list[Operator]:
    rows = await pool.fetch("SELECT id, name, role FROM operators ORDER BY name")
    return [Operator(r["id"], r["name"], r["role"]) for r in rows]


async def any_admin(conn: asyncpg.Connection) -> bool:
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM operators WHERE role = 'admin')"))


async def set_password(conn: asyncpg.Connection, name: str, password: str) -> bool:
    done = await conn.execute(
        "UPDATE operators SET password_hash = $2 WHERE name = $1", name, hash_password(password)
    )
    return bool(done != "UPDATE 0")
