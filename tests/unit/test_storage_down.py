"""Which errors mean "a store is down" (503, connections replaced) rather than a bug (500)."""

import asyncpg

from gateway.storage.pools import storage_down


def _raised_during(exc: BaseException, context: BaseException) -> BaseException:
    exc.__context__ = context
    return exc


def test_a_transaction_exit_on_a_connection_broken_mid_operation_is_storage_down() -> None:
    # A SIGKILLed PostgreSQL left the protocol mid-operation; leaving the transaction then
    # finds the connection closed (seen in tests/e2e/test_crash_safety.py).
    broken = asyncpg.InternalClientError("cannot switch to state 12; another operation (2)")
    closed = asyncpg.InterfaceError("cannot call Transaction.__aexit__(): connection closed")
    assert storage_down(broken)
    assert storage_down(_raised_during(closed, broken))
    assert storage_down(_raised_during(closed, ConnectionResetError()))


def test_other_errors_are_bugs() -> None:
    assert not storage_down(asyncpg.InterfaceError("cannot use a closed pool"))
    assert not storage_down(_raised_during(asyncpg.InterfaceError("x"), KeyError("y")))
    assert not storage_down(AssertionError("unbalanced"))
