"""``decisioner report`` and ``decisioner evaluate --log``: thin layers over the library, with
one-line errors (exit 2 for usage, 1 for bad data)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from decisioner import Engine
from decisioner.catalog import Catalog
from decisioner.cli import main
from decisioner.config import load_config_dict
from decisioner.decisionfile import write_decisions
from wording import Wrapped, full_match

T0 = 1_700_000_000_000


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def units_csv(tmp_path: Path, counts: tuple[int, int]) -> Path:
    g = np.random.default_rng(0)
    rows = ["unit,variant,reward"]
    for v, (name, n) in enumerate(zip(("control", "treatment"), counts)):
        conv = g.random(n) < (0.10 if v == 0 else 0.12)
        rows += [f"{name}-{i},{name},{20.0 if c else 0.0}" for i, c in enumerate(conv)]
    p = tmp_path / "units.csv"
    p.write_text("\n".join(rows) + "\n")
    return p


def test_report_from_a_unit_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = units_csv(tmp_path, (52_000, 48_000))
    code, out, _ = run(["report", str(path), "--json", "--weights", "control=0.5,treatment=0.5"], capsys)
    assert code == 0
    rep = json.loads(out)
    assert [v["name"] for v in rep["variants"]] == ["control", "treatment"]
    assert [v["units"] for v in rep["variants"]] == [52_000, 48_000]
    assert rep["srm"]["flagged"] and rep["srm"]["chi2"] == pytest.approx(160.0)
    conv = next(c for c in rep["comparisons"] if c["metric"] == "conversion")
    assert conv["significant"] and conv["abs_low"] < conv["abs_lift"] < conv["abs_high"]
    code, out, _ = run(["report", str(path)], capsys)
    assert code == 0 and "SRM: chi2 160.00" in out and "FLAGGED" in out and "treatment vs control" in out


@pytest.mark.parametrize(("args", "msg"), [
    (["--control", "nope"], "error: --control 'nope' is not a variant; variants: ['control', 'treatment']"),
    (["--weights", "a=1,b=1"], "error: --weights names ['a', 'b'] do not match the variants ['control', 'treatment']"),
])
def test_report_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], msg: str) -> None:
    path = units_csv(tmp_path, (100, 100))
    code, _, err = run(["report", str(path), *args], capsys)
    assert code == 2 and err.strip() == msg


def test_report_and_evaluate_the_engines_decision_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An engine runs an experiment (uniform random control vs a Thompson bandit) and writes its
    decision log; ``report`` reads the variants from it and ``evaluate`` scores a greedy
    candidate against the control's random decisions."""
    cfg = load_config_dict({
        "identity": {"hash_key": "cd" * 16},
        "placements": [{"name": "hero", "kind": "campaign", "experiences": [{"id": f"e{i}"} for i in range(3)]}],
        "experiments": [{"name": "x", "placement": "hero", "variants": [
            {"name": "control", "policy": {"kind": "random"}}, {"name": "bandit", "policy": {"kind": "thompson"}}]}],
    })
    eng = Engine(cfg, Catalog([{"id": "i", "category": "c"}], cfg.catalog), seed=1)
    g = np.random.default_rng(2)
    rates = [0.05, 0.1, 0.3]
    for t in range(2000):
        d = eng.decide({"type": "view", "time": T0 + t, "ids": {"cookie": f"p{t % 300}"}}, placement="hero")
        if g.random() < rates[int(d.slots[0].content[1:])]:
            eng.observe({"decision_id": d.decision_id, "kind": "click", "time": T0 + t})
    log = tmp_path / "decisions.jsonl"
    write_decisions(eng, log)
    code, out, _ = run(["report", str(log), "--json", "--experiment", "x"], capsys)
    assert code == 0
    rep = json.loads(out)
    assert rep["experiment"] == "x" and rep["control"] == "control"
    assert [v["name"] for v in rep["variants"]] == ["control", "bandit"]
    assert sum(v["units"] for v in rep["variants"]) == 300
    # the control's decisions alone: a uniform-random log to evaluate a candidate on
    recs = [json.loads(line) for line in log.read_text().splitlines()]
    assert {(r["experiment"], r["variant"]) for r in recs} == {("x", "control"), ("x", "bandit")}
    control = tmp_path / "control.jsonl"
    control.write_text("\n".join(json.dumps(r) for r in recs if r["variant"] == "control") + "\n")
    code, out, _ = run(["evaluate", "--log", str(control), "--policy", '{"kind": "greedy"}', "--json", "--boot", "200"], capsys)
    assert code == 0
    res: dict[str, Any] = json.loads(out)
    assert res["arms"] == ["e0", "e1", "e2"] and res["action_distribution"] == [0.0, 0.0, 1.0]
    assert abs(res["estimates"]["dr"]["estimate"] - 0.3) < 0.08
    assert res["logging_value"] < res["estimates"]["dr"]["estimate"]


def test_evaluate_usage_and_data_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["evaluate"], capsys)
    assert code == 2 and err.strip() == "error: evaluate needs --dataset obd, or both --log FILE and --policy SPEC"
    bad = tmp_path / "d.jsonl"
    bad.write_text('{"content": "a", "reward": 1.0}\n')
    code, _, err = run(["evaluate", "--log", str(bad), "--policy", '{"kind": "greedy"}'], capsys)
    assert code == 1 and err.strip() == f"error: Expected `propensity` in every decision - at {str(bad)!r}"
    code, _, err = run(["evaluate", "--log", str(bad), "--policy", '{"kind": "nope"}'], capsys)
    assert code == 1 and re.match(full_match(Wrapped("error: Invalid policy", at="$.kind", mentions=("nope",))), err.strip())
