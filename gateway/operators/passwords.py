"""Operator passwords: argon2id hashes (argon2-cffi), and new random ones."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# Interactive-login cost (argon2-cffi's RFC 9106 low-memory profile is its default).
_HASHER = PasswordHasher()


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def new_password() -> str:
    """A one-time password to hand to a new operator (about 120 bits)."""
    return secrets.token_urlsafe(15)
