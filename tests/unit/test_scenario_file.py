"""Scenario files (SPEC 12): every shipped one parses; a merchant class may bring a load of its
own (its own generator), the others share the scenario's by weight."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtest.scenarios.model import ScenarioError, list_scenarios, load_scenario

ROOT = Path(__file__).resolve().parents[2]


def test_every_shipped_scenario_parses() -> None:
    names = {name for name, _, _ in list_scenarios(ROOT / "scenarios")}
    assert {"steady-day", "singles-day", "bank-outage", "t1-exposure", "callback-chaos",
            "p2p-lender", "demo"} <= names  # fmt: skip


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_classes_with_a_load_of_their_own_get_their_own_generator(tmp_path: Path) -> None:
    sc = load_scenario(
        write(
            tmp_path,
            """name: mix
description: two shared classes, one on its own
duration_min: 10
merchants:
  - {name: a, weight: 2}
  - {name: lender, funding_mode: advance, advance_limit_fen: 100, accounts: 4,
     load: {workload: accounts, rate_per_s: 5}}
  - {name: b}
load: {workload: payouts, rate_per_s: 20}
""",
        )
    )
    groups = [(load.workload, classes) for load, classes in sc.loads()]
    assert groups == [("payouts", [0, 2]), ("accounts", [1])]


def test_a_class_without_a_load_needs_the_scenarios(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="load"):
        load_scenario(
            write(
                tmp_path,
                """name: gap
description: nobody drives b
duration_min: 10
merchants:
  - {name: a, load: {workload: payouts}}
  - {name: b}
""",
            )
        )
    with pytest.raises(ScenarioError, match="spike"):
        load_scenario(
            write(
                tmp_path,
                """name: bad-spike
description: a class spike without its time
duration_min: 10
merchants:
  - {name: a, load: {workload: payouts, shape: spike, spike_rate_per_s: 9}}
""",
            )
        )
