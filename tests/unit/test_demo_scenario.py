"""`paygate demo` as a scenario (scenarios/demo.yaml): its options resize the story, a review
event needs a class with a review threshold below its amount."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtest.scenarios.demo import DEMO_SCENARIO, demo_scenario
from loadtest.scenarios.model import ScenarioError, load_scenario


def test_the_default_options_run_the_file_as_written() -> None:
    sc = demo_scenario(DEMO_SCENARIO, duration_s=30, rate=120, time_scale=60)
    assert sc == load_scenario(DEMO_SCENARIO)
    assert [e.at for e in sc.timeline] == ["day 1 10:00", "day 1 10:20"]


def test_a_shorter_demo_keeps_the_storys_shape_and_the_jumps_target() -> None:
    sc = demo_scenario(DEMO_SCENARIO, duration_s=6, rate=60, time_scale=60)
    assert sc.duration_min == 6 and sc.time_scale == 60
    review, jump = sc.timeline
    assert review.at == "day 1 10:00" and review.review is not None
    assert (jump.at, jump.jump_to) == ("day 1 10:04", "day 2 17:01")  # two thirds in
    assert sc.load is not None
    assert (sc.load.spike_at, sc.load.spike_min) == ("day 1 10:03", 1.0)
    assert (sc.load.rate_per_s, round(sc.load.spike_rate_per_s)) == (60, 200)


def test_a_faster_clock_lengthens_the_simulated_story() -> None:
    sc = demo_scenario(DEMO_SCENARIO, duration_s=30, rate=120, time_scale=120)
    assert sc.duration_min == 60 and sc.time_scale == 120
    assert sc.timeline[1].at == "day 1 10:40"


def test_a_review_needs_a_class_whose_threshold_the_amount_passes(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        """name: no-review
description: the class has no review threshold
duration_min: 10
merchants: [{name: shop}]
load: {workload: payouts}
timeline:
  - {at: "day 1 10:00", review: {merchant: shop, amount_fen: 6000000, decisions: [approve]}}
""",
        encoding="utf-8",
    )
    with pytest.raises(ScenarioError, match="review_threshold_fen"):
        load_scenario(path)
