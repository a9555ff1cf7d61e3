"""The SLO per phase of a scenario: phases start at day 1, at each timeline event and at a
spike's start and end; a payout counts in the phase it was accepted in, open ones are not
within the SLO."""

from __future__ import annotations

from datetime import datetime

import msgspec

from gateway.clock import BUSINESS_TZ
from loadtest.phases import phases, row, slo_per_phase
from loadtest.scenario import Scenario

START = datetime(2026, 11, 27, 10, 0, tzinfo=BUSINESS_TZ)


def scenario(**fields: object) -> Scenario:
    base = {"name": "s", "description": "d", "duration_min": 40,
            "merchants": [{"name": "shop"}], "load": {}}  # fmt: skip
    return msgspec.convert(base | fields, Scenario)


def test_an_outage_makes_three_phases_named_by_the_timeline() -> None:
    sc = scenario(timeline=[
        {"at": "day 1 10:10", "bank": "102", "profile": {"maintenance_now": True},
         "note": "ICBC down"},
        {"at": "day 1 10:30", "bank": "102", "profile": {"maintenance_now": False}},
    ])  # fmt: skip
    found = phases(sc, START)
    assert [(p.name, p.at) for p in found] == [
        ("start", "day 1 10:00"),
        ("ICBC down", "day 1 10:10"),
        ("bank 102 profile changed", "day 1 10:30"),
    ]


def test_a_spike_has_a_phase_of_its_own_and_one_after() -> None:
    sc = scenario(load={"shape": "spike", "rate_per_s": 30, "spike_rate_per_s": 300,
                        "spike_at": "day 1 10:10", "spike_min": 10})  # fmt: skip
    assert [p.name for p in phases(sc, START)] == ["start", "spike ×10", "after the spike"]


def test_events_at_one_moment_make_one_phase() -> None:
    sc = scenario(timeline=[{"at": "day 1 10:00", "kill": "worker"},
                            {"at": "day 1 10:00", "jump_to": "day 2 17:01"}])  # fmt: skip
    assert [p.name for p in phases(sc, START)] == ["worker killed; clock jumped to day 2 17:01"]


def test_slo_per_phase_counts_by_acceptance_and_open_is_not_within() -> None:
    sc = scenario(timeline=[{"at": "day 1 10:10", "kill": "gateway", "note": "down"}])
    t0 = START.timestamp()
    times = [
        (t0 + 60, t0 + 70, "succeeded"),  # start: 10 s
        (t0 + 120, t0 + 400, "failed"),  # start: 280 s, past a 100 s SLO
        (t0 + 700, t0 + 705, "succeeded"),  # down: 5 s
        (t0 + 800, None, "processing"),  # down: still open
    ]
    got = slo_per_phase(phases(sc, START), times, lambda wall: wall, slo_s=100)
    assert [(p["phase"], p["payouts"], p["within_slo"], p["open"]) for p in got] == [
        ("start", 2, 0.5, 0), ("down", 2, 0.5, 1)]  # fmt: skip
    assert got[0]["p99_final_s"] == 280.0
    question, answer = row(100, got[1])
    assert question == "SLO from day 1 10:10 (down): final within 100 s"
    assert answer == "50.00% of 2; p99 accept→final 5.0 s; 1 open"
