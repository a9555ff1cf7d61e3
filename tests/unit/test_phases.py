"""The SLO per phase of a scenario: phases start at day 1, at each timeline event and at a
spike's start and end; a payout counts in the phase it was accepted in, open ones are not
within the SLO."""

from __future__ import annotations

from datetime import datetime

import msgspec

from loadtest.scenarios.model import Scenario
from loadtest.scenarios.phases import phases, row, slo_per_phase
from loadtest.scenarios.simtime import Anchor, ClockMap
from protocol.clock import BUSINESS_TZ

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
    wall_is_sim = ClockMap([Anchor(0.0, 0.0, 1.0)], START)
    got = slo_per_phase(phases(sc, START), times, wall_is_sim, slo_s=100)
    assert [(p["phase"], p["payouts"], p["within_slo"], p["open"]) for p in got] == [
        ("start", 2, 0.5, 0), ("down", 2, 0.5, 1)]  # fmt: skip
    assert got[0]["p99_final_s"] == 280.0
    question, answer = row(100, got[1])
    assert question == "SLO from day 1 10:10 (down): final within 100 s"
    assert answer == "50.00% of 2; p99 accept→final 5.0 s; 1 open"


def test_a_clock_jump_while_payouts_are_in_flight_is_not_counted_as_their_latency() -> None:
    """The clock jumps 24 h at day 1 10:20 (20 wall s in, at 60x). A payout accepted 6
    simulated s before the jump and final 3 simulated s after it took 9 s, not 86,409 s."""
    sc = scenario(timeline=[{"at": "day 1 10:20", "jump_to": "day 2 10:20"}])
    wall0, scale = 1_000_000.0, 60.0
    jump_wall = wall0 + 20.0
    landed = START.timestamp() + 1_200 + 86_400
    clock = ClockMap([Anchor(wall0, START.timestamp(), scale), Anchor(jump_wall, landed, scale)],
                     START)  # fmt: skip
    times = [
        (wall0 + 5.0, wall0 + 5.1, "succeeded"),  # 6 s, far from the jump
        (jump_wall - 6 / scale, jump_wall + 3 / scale, "succeeded"),  # across the jump
    ]
    got = slo_per_phase(phases(sc, START), times, clock, slo_s=60)
    assert [(p["phase"], p["payouts"], p["within_slo"]) for p in got] == [
        ("start", 2, 1.0), ("clock jumped to day 2 10:20", 0, None)]  # fmt: skip
    assert got[0]["p99_final_s"] == 9.0
