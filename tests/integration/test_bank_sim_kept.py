"""What the bank's books keep besides records (issue 22, item 7): the nonces of signed requests
for exactly the signature window, and profiles changed at run time for a bank started the same
way. The process-level proof (kill -9, start, replay) is tests/e2e/test_bank_sim_memory.py."""

from __future__ import annotations

from pathlib import Path

from channels.bank_sim.auth import SIGNATURE_WINDOW_S
from channels.bank_sim.books import Books
from channels.bank_sim.nonce_books import FORGET_EVERY_S, KeptNonces

T0 = 1_800_000_000.0


def test_a_nonce_is_kept_across_a_restart_for_the_window_and_then_forgotten(
    tmp_path: Path,
) -> None:
    path = tmp_path / "books.sqlite3"
    now = [T0]
    books = Books(path)
    nonces = KeptNonces(books, lambda: now[0])
    assert nonces.first_use("paygate", "n-old", int(T0))
    assert nonces.first_use("paygate", "n-new", int(T0) + 200)
    assert not nonces.first_use("paygate", "n-old", int(T0))
    books.close()

    now[0] = T0 + 250  # both still inside the window: a restarted bank refuses both
    again = KeptNonces(Books(path), lambda: now[0])
    assert again.restore() == 2
    assert not again.first_use("paygate", "n-old", int(T0))
    assert not again.first_use("paygate", "n-new", int(T0) + 200)

    # Once n-old's timestamp is out of the window (it would be refused as stale), the books
    # drop it at the next forgetting; n-new is still kept.
    now[0] = T0 + SIGNATURE_WINDOW_S + FORGET_EVERY_S + 1
    books = Books(path)
    later = KeptNonces(books, lambda: now[0])
    assert later.restore() == 1
    now[0] += FORGET_EVERY_S
    assert later.first_use("paygate", "n-trigger", int(now[0]))
    books.flush()
    assert [n for _, n, _ in books.nonces_since(0)] == ["n-new", "n-trigger"]


def test_a_changed_profile_is_kept_only_for_a_bank_started_on_the_same_preset(
    tmp_path: Path,
) -> None:
    books = Books(tmp_path / "books.sqlite3")
    books.save_profile("102", "default", {"bank_id": "102", "maintenance_now": True})
    assert books.profiles("default") == {"102": {"bank_id": "102", "maintenance_now": True}}
    assert books.profiles("fault_heavy") == {}
    assert books.profiles("default") == {}, "a start on another preset forgets older changes"
