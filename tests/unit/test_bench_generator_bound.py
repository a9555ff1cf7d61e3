"""The bench table says when the load generator, not the server, was the limit (issue 25)."""

from __future__ import annotations

from loadtest.bench.run import generator_bound_note as note


def test_a_busy_generator_process_marks_its_figure() -> None:
    assert "LOAD GENERATOR BOUND: 0.95 cores in 1" in note(
        {"processes": 1, "noop": {"cores": 0.95}}, "noop"
    )
    assert "LOAD GENERATOR BOUND" in note({"processes": 2, "spread": {"cores": 1.8}}, "spread")


def test_a_generator_with_room_or_unmeasured_marks_nothing() -> None:
    assert note({"processes": 1, "noop": {"cores": 0.5}}, "noop") == ""
    assert note({"processes": 2, "noop": {"cores": 1.2}}, "noop") == ""  # 0.6 each
    assert note({"processes": 1, "noop": {"cores": None}}, "noop") == ""
