"""Prefixed, time-ordered ids."""

from __future__ import annotations

import os
import time

from protocol import ids


def test_each_random_byte_maps_to_a_character_uniformly() -> None:
    # A byte's 256 values fall on the 32 characters 8 times each: a uniform byte gives a
    # uniform character, 5 random bits.
    assert sorted(ids._CHARS.decode()) == sorted(ids._ALPHABET * 8)
    assert all(ids._CHARS[b] == ord(ids._ALPHABET[b & 31]) for b in range(256))
    parts = [ids.new_id("po")[-16:] for _ in range(2000)]
    assert set("".join(parts)) == set(ids._ALPHABET)


def test_ids_sort_like_their_creation_time_and_floor_id_bounds_them() -> None:
    before = time.time()
    made = [ids.new_id("po") for _ in range(200)]
    assert all(len(i) == len("po_") + 26 and i.startswith("po_") for i in made)
    assert ids.floor_id("po", before - 0.002) <= min(made)
    assert max(made) < ids.floor_id("po", time.time() + 0.002)
    times = [i[3:13] for i in made]  # the time part leads, in creation order
    assert times == sorted(times)


def test_random_parts_do_not_repeat_across_buffer_refills_and_forks() -> None:
    made = {ids.new_id("req")[-16:] for _ in range(3 * ids._RANDOM_IDS + 7)}
    assert len(made) == 3 * ids._RANDOM_IDS + 7
    ids.new_id("req")  # the buffer now holds parts a forked child must not reuse
    assert ids._random
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id's random part, to the parent
        os.write(write, ids.new_id("req")[-16:].encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    assert child != ids.new_id("req")[-16:]
