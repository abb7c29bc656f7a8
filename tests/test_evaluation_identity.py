"""Identity resolution quality on a synthetic world with shared devices and placeholder values,
and the ``decisioner identity evaluate`` command."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from decisioner.cli import main
from decisioner.datasets.synthetic import World, WorldSpec, generate_world, write_world
from decisioner.evaluation.identity import evaluate_world, pair_count


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world(WorldSpec(n_people=3000, n_items=200, seed=11, shared_device_rate=0.03, placeholder_rate=0.02))


def test_pair_count_matches_brute_force(make_rng) -> None:  # type: ignore[no-untyped-def]
    g = make_rng()
    a, b = g.integers(0, 5, size=40), g.integers(0, 3, size=40)
    brute = sum(1 for i, j in itertools.combinations(range(40), 2) if a[i] == a[j])
    both = sum(1 for i, j in itertools.combinations(range(40), 2) if a[i] == a[j] and b[i] == b[j])
    assert pair_count(a) == brute and pair_count(a, b) == both
    assert pair_count(np.zeros(1, np.int64)) == 0


def test_rules_meet_the_targets_and_beat_rules_off(world: World) -> None:
    on = evaluate_world(world, rules=True)
    off = evaluate_world(world, rules=False)
    assert on["precision"] >= 0.99 and on["recall"] >= 0.95, on
    assert off["precision"] < 0.95 < on["precision"]  # placeholders glue people together
    assert on["over_merged_people"] < off["over_merged_people"]
    assert on["refused"]["blocked"] > 0 and on["refused"]["unique"] > 0
    assert on["normalisation_splits"] == 0 and on["rejected_events"] == 0
    assert on["recall_all_pairs"] < on["recall"]  # unlinkable pairs exist in the data
    assert on["precision_excluding_shared_devices"] >= on["precision"]


def test_cli_identity_evaluate_json(world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_world(world, tmp_path / "w")
    assert main(["identity", "evaluate", "--world", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"precision", "recall", "f1", "over_merged_people", "under_merged_people", "rules_off"} <= set(out)
    assert out["rules"] == "on" and out["world"]["placeholder_rate"] == 0.02
    assert out["precision"] == evaluate_world(world)["precision"]
    assert main(["identity", "evaluate", "--world", str(path), "--rules", "off", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rules"] == "off"
    assert main(["identity", "evaluate"]) == 2
    assert "identity evaluate needs --world DIR" in capsys.readouterr().err
