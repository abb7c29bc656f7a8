"""``decisioner report | evaluate | plan`` over the decision log file that ``simulate --log`` and
``replay --log`` write: each failure a new user met (issue 15) has a regression test here."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from decisioner.cli import main
from decisioner.cli_json import EXIT_BROKEN_PIPE

EXPERIMENT = """
[holdout]
fraction = 0.1

[[experiments]]
name = "recs_policy"
placement = "home_recs"
variants = [{ name = "control" }, { name = "popular", policy = { kind = "popular" } }]
"""


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def strict_loads(text: str) -> Any:
    """``json.loads`` that refuses the non-standard NaN and Infinity tokens."""
    def refuse(token: str) -> None:
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def experiment_world(small_world: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small world with an experiment on the recommendations and a 10% global holdout."""
    out = tmp_path_factory.mktemp("xworld")
    for f in Path(small_world).iterdir():
        shutil.copy(f, out / f.name)
    with open(out / "config.toml", "a", encoding="utf-8") as fh:
        fh.write(EXPERIMENT)
    return out


def unit_records(tmp_path: Path, *, propensity: bool, zero_control: bool = False) -> Path:
    g = np.random.default_rng(0)
    path = tmp_path / "units.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(600):
            v = "treatment" if i % 3 else "control"
            reward = 0.0 if zero_control and v == "control" else float(g.random() < 0.2) * 10.0
            rec: dict[str, Any] = {"unit": f"u{i}", "variant": v, "reward": reward}
            if propensity:
                rec["propensity"] = 2 / 3 if v == "treatment" else 1 / 3
            fh.write(json.dumps(rec) + "\n")
    return path


def test_report_ipw_does_not_crash_on_numpy_floats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``report --ipw`` always crashed: the IPW result held a numpy float msgspec cannot encode."""
    path = unit_records(tmp_path, propensity=True)
    code, out, err = run(["report", str(path), "--ipw", "--json"], capsys)
    assert code == 0, err
    ipw = strict_loads(out)["ipw"]
    assert [(x["variant"], x["control"]) for x in ipw] == [("treatment", "control")]
    assert isinstance(ipw[0]["effective_n"], float) and ipw[0]["low"] < ipw[0]["lift"] < ipw[0]["high"]
    code, out, _ = run(["report", str(path), "--ipw"], capsys)
    assert code == 0 and "IPW treatment vs control" in out


def test_report_json_is_strict_without_nan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A control with no value has no relative lift: ``null``, never the bare token ``NaN``."""
    path = unit_records(tmp_path, propensity=False, zero_control=True)
    code, out, _ = run(["report", str(path), "--json"], capsys)
    assert code == 0 and "NaN" not in out
    value = next(c for c in strict_loads(out)["comparisons"] if c["metric"] == "value")
    assert value["rel_lift"] is None and value["rel_low"] is None and value["abs_lift"] > 0


def test_json_into_a_closed_pipe_exits_quietly(tmp_path: Path) -> None:
    """``decisioner ... --json | head`` ended in a BrokenPipeError traceback: now no traceback
    and exit code 141 (128 + SIGPIPE)."""
    path = unit_records(tmp_path, propensity=False)
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader went away before the first byte
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    proc = subprocess.run(
        [sys.executable, "-m", "decisioner.cli", "report", str(path), "--json"], stdout=write_end,
        stderr=subprocess.PIPE, text=True, check=False, env=env,
    )
    os.close(write_end)
    assert proc.returncode == EXIT_BROKEN_PIPE and proc.stderr == ""


def test_replay_log_is_a_decision_log_report_reads(
    experiment_world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``report`` on the file ``replay --log`` wrote crashed with a UnicodeDecodeError (it was
    the write-ahead event log, and the format was guessed from the suffix): ``--log`` is now the
    decision log, named by content, with variants and experiments by name."""
    log = tmp_path / "decisions.log"  # the suffix says nothing: the content does
    code, out, err = run(["replay", str(experiment_world / "events.jsonl"), "--world", str(experiment_world),
                          "--max-events", "3000", "--log", str(log), "--json"], capsys)
    assert code == 0, err
    written = strict_loads(out)["decision_log"]
    assert written["rows"] > 0 and written["dropped_rows"] == 0
    code, out, err = run(["report", str(log), "--json"], capsys)
    assert code == 0, err
    rep = strict_loads(out)
    assert rep["experiment"] == "recs_policy" and rep["control"] == "control"
    assert [v["name"] for v in rep["variants"]] == ["control", "popular"]
    code, out, err = run(["report", str(log), "--holdout", "--json"], capsys)
    assert code == 0, err
    assert [v["name"] for v in strict_loads(out)["variants"]] == ["holdout", "personalized"]


def test_report_refuses_the_event_log_with_a_pointer(
    experiment_world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wal = tmp_path / "events.jsonl"  # a misleading suffix
    code, _, err = run(["replay", str(experiment_world / "events.jsonl"), "--world", str(experiment_world),
                        "--max-events", "200", "--event-log", str(wal), "--json"], capsys)
    assert code == 0, err
    code, _, err = run(["report", str(wal)], capsys)
    assert code == 1
    assert err.strip() == (
        f"error: Expected a decision log (JSON Lines) or CSV records, got a write-ahead event log - at {str(wal)!r} "
        "(`replay --event-log` and durable engines write that one; `replay --log` and `simulate --log` write the "
        "decision log)"
    )
    binary = tmp_path / "x.bin"
    binary.write_bytes(b"\x00\xff\xfe")
    code, _, err = run(["report", str(binary)], capsys)
    assert code == 1 and err.strip() == (
        f"error: Expected a decision log (JSON Lines) or CSV records in UTF-8, got binary data (byte 1) - at {str(binary)!r}"
    )


def test_simulate_writes_the_decision_log_with_rewards(
    experiment_world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``simulate --log``: the engine policy's decisions with the rewards the loop joined; the
    report names the experiment and variants, and carries CUPED, ratios and winsorised value."""
    log = tmp_path / "sim.jsonl"
    code, out, err = run(["simulate", "--world", str(experiment_world), "--max-events", "6000", "--log", str(log),
                          "--json"], capsys)
    assert code == 0, err
    sim = strict_loads(out)
    recs = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert sim["decision_log"]["rows"] == len(recs)
    assert len({r["seq"] for r in recs if r["placement"] == "home_recs"}) == sim["decisions"]["engine"]
    assert sum(r["reward"] > 0 for r in recs) > 0
    assert {r["variant"] for r in recs} >= {"control", "popular", "holdout"}
    times = sorted(r["time"] for r in recs)
    start = times[len(times) // 2]
    code, out, err = run(["report", str(log), "--experiment", "recs_policy", "--start", str(start), "--cuped",
                          "decisions", "--winsorize", "99", "--json"], capsys)
    assert code == 0, err
    rep = strict_loads(out)
    assert {(c["metric"], c["variant"]) for c in rep["cuped"]} == {("conversion", "popular"), ("value", "popular")}
    assert [c["metric"] for c in rep["ratios"]] == ["value_per_decision"]
    assert rep["winsor_percentile"] == 99 and rep["winsorized"][0]["metric"] == "value_winsorized"
    code, out, _ = run(["report", str(log), "--experiment", "recs_policy", "--start", str(start), "--cuped",
                        "decisions"], capsys)
    assert code == 0 and "CUPED value (pre_period_decisions" in out and "value_per_decision popular" in out


@pytest.mark.parametrize(("args", "msg"), [
    (["--experiment", "nope"], "error: --experiment 'nope' is not in the log; experiments: ['x']"),
    (["--control", "nope"], "error: --control 'nope' is not a variant; variants: ['a', 'b']"),
    (["--cuped", "decisions"], "error: --cuped needs --start (the pre-period is the time before it)"),
    (["--holdout"], "error: --holdout: the log has no decision in the global holdout - at '{log}'"),
    (["--ipw"], "error: --ipw needs per-unit records with their variant's propensity; a decision log's "
                "propensities are of the content chosen (evaluate --log scores policies with them)"),
])
def test_report_usage_errors_on_a_decision_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], msg: str
) -> None:
    log = tmp_path / "d.jsonl"
    rows = [{"seq": i, "time": i, "person": i, "placement": "p", "slot": 0, "content": "c", "score": 0.0,
             "propensity": 1.0, "candidates": 1, "reward": 0.0, "experiment": "x", "variant": "ab"[i % 2]}
            for i in range(10)]
    log.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    code, _, err = run(["report", str(log), *args], capsys)
    assert code == 2 and err.strip() == msg.format(log=log)


def test_plan_gives_sample_size_and_mde(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["plan", "--baseline-rate", "0.1", "--mde", "0.01", "--json"], capsys)
    assert code == 0
    p = strict_loads(out)
    assert math.ceil(p["n1"]) == 14745 and p["metric"] == "proportion"
    code, out, _ = run(["plan", "--baseline-rate", "0.1", "--n", str(p["n1"]), "--json"], capsys)
    assert code == 0 and strict_loads(out)["mde"] == pytest.approx(0.01, rel=1e-9)
    code, out, _ = run(["plan", "--sd", "20", "--baseline-mean", "15", "--mde", "1"], capsys)
    assert code == 0 and out.startswith("plan for a mean (two-sided, alpha 0.05, power 0.8): 6279 + 6279 units")
    code, _, err = run(["plan", "--sd", "20"], capsys)
    assert code == 1 and err.strip() == (
        "error: expected exactly one of `mde` (gives the sample size) and `n1` (gives the mde), got neither")


def test_every_deciding_command_can_write_the_decision_log(
    experiment_world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``outbound --log`` and ``bench --log`` write the same file ``report`` and ``evaluate`` read."""
    from decisioner.decisionfile import is_decision_log, read_records

    out_log = tmp_path / "outbound.jsonl"
    code, out, err = run(["outbound", "--world", str(experiment_world), "--max-events", "3000", "--segment",
                          'consent("marketing", "email")', "--placement", "email_hero", "--channel", "email",
                          "--log", str(out_log), "--json"], capsys)
    assert code == 0, err
    res = strict_loads(out)
    recs = read_records(out_log)
    assert is_decision_log(recs) and res["decision_log"]["rows"] == len(recs)
    assert {r["placement"] for r in recs} >= {"email_hero"}
    bench_log = tmp_path / "bench.jsonl"
    code, out, err = run(["bench", "--profiles", "500", "--items", "100", "--decisions", "200", "--churn", "0",
                          "--log", str(bench_log), "--json"], capsys)
    assert code == 0, err
    recs = read_records(bench_log)
    assert is_decision_log(recs) and len({r["seq"] for r in recs}) == strict_loads(out)["decision_log"]["decisions"]


def test_evaluate_reads_the_decision_log_file(
    experiment_world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "d.jsonl"
    code, _, err = run(["replay", str(experiment_world / "events.jsonl"), "--world", str(experiment_world),
                        "--max-events", "1500", "--log", str(log), "--json"], capsys)
    assert code == 0, err
    code, _, err = run(["evaluate", "--log", str(log), "--policy", '{"kind": "greedy"}'], capsys)
    assert code == 2 and err.strip() == "error: --placement: the log has placements ['email_hero', 'home_recs']; name one"
    code, out, err = run(["evaluate", "--log", str(log), "--placement", "email_hero", "--policy", '{"kind": "greedy"}',
                          "--boot", "50", "--json"], capsys)
    assert code == 0, err
    assert strict_loads(out)["arms"][0].startswith("promo-")


@pytest.mark.parametrize(("args", "code", "msg"), [
    (["--weights", "a=x"], 2, "error: --weights expects NAME=WEIGHT,... or numbers, got 'a=x'"),
    (["--cuped", "decisions", "--covariate", "{cov}"], 2, "error: --cuped and --covariate are two covariates; give one"),
    (["--start", "5"], 2, "error: --holdout, --start and --cuped read a decision log; this file holds per-unit records"),
    (["--ipw"], 2, "error: --ipw needs a `propensity` in every record"),
    (["--covariate", "{bad}"], 1, "error: Expected `unit` (or `person`) and `value` in every covariate record, got "
                                  "['unit', 'x'] - at record 1 of '{bad}'"),
])
def test_report_usage_errors_on_unit_records(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], code: int, msg: str
) -> None:
    path = unit_records(tmp_path, propensity=False)
    cov, bad = tmp_path / "cov.csv", tmp_path / "bad.csv"
    cov.write_text("unit,value\nu1,3\n", encoding="utf-8")
    bad.write_text("unit,x\nu1,3\n", encoding="utf-8")
    got, _, err = run(["report", str(path), *[a.format(cov=cov, bad=bad) for a in args]], capsys)
    assert got == code and err.strip() == msg.format(bad=bad)


def test_report_with_a_covariate_file_of_units(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Per-unit records and a covariate file keyed by unit: the pre-period value predicts the
    outcome, so CUPED's interval is narrower."""
    g = np.random.default_rng(3)
    pre = g.gamma(2.0, 5.0, 2000)
    rows, covs = ["unit,variant,reward"], ["unit,value"]
    for i, x in enumerate(pre):
        v = "treatment" if i % 2 else "control"
        rows.append(f"u{i},{v},{max(0.0, x + g.normal(0, 3) + (1.0 if v == 'treatment' else 0.0)):.6f}")
        covs.append(f"u{i},{x:.6f}")
    (tmp_path / "u.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (tmp_path / "pre.csv").write_text("\n".join(covs) + "\n", encoding="utf-8")
    code, out, err = run(["report", str(tmp_path / "u.csv"), "--covariate", str(tmp_path / "pre.csv"), "--json"], capsys)
    assert code == 0, err
    value = next(c for c in strict_loads(out)["cuped"] if c["metric"] == "value")
    assert value["covariate"] == "pre" and value["rho"] > 0.8 and value["variance_reduction"] > 0.6
    assert value["abs_high"] - value["abs_low"] < 0.7 * (value["raw_high"] - value["raw_low"])
