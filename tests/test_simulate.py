"""Closed-loop simulation: the engine beats the random baseline on a seeded world; results do
not depend on how many worker processes ran the policies; runs are reproducible."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from decisioner.errors import ConfigError, ModelError
from decisioner.simulate import POLICIES, simulate

MODELS = Path(__file__).resolve().parents[1] / "models"


@pytest.fixture(scope="module")
def result(small_world: str) -> dict[str, object]:
    return simulate(small_world, seed=0).to_dict()


def test_engine_beats_random_and_reports_every_policy(result: dict[str, object]) -> None:
    ctr = result["ctr"]
    assert isinstance(ctr, dict)
    assert set(ctr) == set(POLICIES)
    # on this 1,500-person world seeds 0-2 give lifts of 4-6x; 1.5x is the product promise
    lift = result["lift_vs_random"]
    assert isinstance(lift, float) and lift >= 1.5
    assert ctr["engine"] > ctr["popular"] > ctr["random"] > 0.0
    assert result["decisions"]["engine"] == result["decisions"]["random"] == result["decisions"]["popular"]  # type: ignore[index]


def test_same_seed_same_result_whatever_the_worker_count(small_world: str, result: dict[str, object]) -> None:
    serial = simulate(small_world, seed=0, workers=1).to_dict()
    for key in ("ctr", "clicks", "impressions", "conversion", "campaign_ctr"):
        assert serial[key] == result[key]


def test_max_events_and_a_different_seed(small_world: str) -> None:
    a = simulate(small_world, seed=1, policies=("engine",), max_events=3000, workers=1).to_dict()
    b = simulate(small_world, seed=1, policies=("engine",), max_events=3000, workers=1).to_dict()
    assert a["events"] == 3000
    assert a["clicks"] == b["clicks"]
    assert "lift_vs_random" not in a  # no baseline ran
    assert a["latency_us"]["count"] == a["decisions"]["engine"]  # type: ignore[index]


def test_the_ranker_runs_as_a_policy_with_a_paired_interval(small_world: str) -> None:
    """``model=``: the engine's policy with the fixture model re-ranking its retrieval, on the
    same decisions as ``engine``, and the click-through difference with its interval."""
    out = simulate(small_world, seed=0, policies=("engine",), max_events=4000, workers=1,
                   model=str(MODELS / "fixture")).to_dict()
    assert set(out["ctr"]) == {"engine", "ranker"}  # type: ignore[arg-type]
    assert out["decisions"]["ranker"] == out["decisions"]["engine"] > 0  # type: ignore[index]
    diff = out["ranker_vs_engine"]
    assert isinstance(diff, dict)
    assert diff["low"] <= diff["difference"] <= diff["high"] and diff["low"] < diff["high"]
    ctr = out["ctr"]
    assert diff["difference"] == pytest.approx(ctr["ranker"] - ctr["engine"], abs=1e-5)  # type: ignore[index]


def test_the_ranker_policy_needs_a_servable_model(small_world: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="a model directory for the policy `ranker`"):
        simulate(small_world, policies=("engine", "ranker"), max_events=10)
    with pytest.raises(ModelError, match="Expected a model directory"):
        simulate(small_world, max_events=10, model=str(tmp_path / "absent"))


def test_decision_log_is_checked_before_any_run(small_world: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="^" + re.escape(
            "expected the policy `engine` for a decision log, got ['random'] - at `policies`") + "$"):
        simulate(small_world, policies=("random",), decision_log=tmp_path / "d.jsonl")
    missing = tmp_path / "nope" / "d.jsonl"
    with pytest.raises(ConfigError, match="^" + re.escape(
            f"expected a decision log path in an existing directory, got {str(missing)!r} - at `decision_log`") + "$"):
        simulate(small_world, decision_log=missing)
