"""The Open Bandit Dataset sample: fetched once per machine from the obp 0.4.1 wheel (PyPI) into
the cache, parsed without obp, and the published evaluation-of-OPE protocol reproduced.

These tests need the wheel: the first run downloads it with pip (about 1.3 MB); a failed
download fails the test with the reason, it does not skip."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from decisioner.cli import main
from decisioner.datasets import obd
from decisioner.errors import ConfigError, NotReadyError
from decisioner.evaluation.obd_protocol import ope_benchmark
from decisioner.evaluation.ope import estimate


@pytest.fixture(scope="module")
def wheel() -> Path:
    return obd.fetch_obd()  # downloads on the first run on this machine, then cached


def test_wheel_is_cached_and_verified(wheel: Path) -> None:
    assert wheel.name == obd.OBP_WHEEL and wheel.parent == obd.cache_dir()
    assert obd._sha256(wheel) == obd.OBP_SHA256
    before = wheel.stat().st_mtime_ns
    assert obd.fetch_obd() == wheel and wheel.stat().st_mtime_ns == before  # no second download
    assert not str(wheel).startswith(str(Path(__file__).resolve().parents[1]))  # outside the repo


def test_cache_dir_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DECISIONER_DATA_DIR", str(tmp_path / "d"))
    assert obd.cache_dir() == tmp_path / "d"
    monkeypatch.delenv("DECISIONER_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert obd.cache_dir() == tmp_path / "x" / "decisioner"
    assert obd.cache_dir("/elsewhere") == Path("/elsewhere")


def test_a_failed_download_says_why(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def failing(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        assert cmd[:6] == [sys.executable, "-m", "pip", "download", "obp==0.4.1", "--no-deps"]
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: Could not find a version\nnetwork is unreachable")

    monkeypatch.setattr(obd.subprocess, "run", failing)
    with pytest.raises(NotReadyError, match=re.escape(
        "expected `pip download obp==0.4.1` to fetch obp-0.4.1-py3-none-any.whl, got exit code 1: "
        "ERROR: Could not find a version | network is unreachable - at " + repr(str(tmp_path))
    )):
        obd.fetch_obd(tmp_path)


def test_load_the_random_and_bts_logs(wheel: Path) -> None:
    d = obd.load_obd("random", "all")
    assert (d.n_rounds, d.n_actions, d.len_list) == (10_000, 80, 3)
    assert d.context.shape == (10_000, 20) and d.action_context.shape == (80, 4)
    assert d.affinity.shape == (10_000, 80)
    assert np.all(d.pscore == 1 / 80) and sorted(np.unique(d.position).tolist()) == [0, 1, 2]
    assert d.reward.mean() == pytest.approx(0.0038) and (np.diff(d.timestamp.astype("U40").argsort()) != 0).all()
    b = obd.load_obd("bts", "men")
    assert b.n_actions == 34 and b.reward.mean() > 0
    with pytest.raises(ConfigError, match="^" + re.escape("expected a campaign in ['all', 'men', 'women'], got 'kids' - at `campaign`") + "$"):
        obd.load_obd("random", "kids")


def test_production_bts_priors_and_action_distribution(wheel: Path) -> None:
    """The priors in the wheel, and the integrated top-3 rank probabilities of the production
    Thompson sampler against 300k seeded Monte Carlo rounds (Z = 4 binomial SEs)."""
    alpha, beta = obd.bts_prior("all")
    assert alpha.shape == beta.shape == (80,) and alpha[:4].tolist() == [47.0, 8.0, 62.0, 142.0]
    dist = obd.bts_action_distribution("all")
    assert dist.shape == (80, 3) and np.allclose(dist.sum(axis=0), 1.0)
    g = np.random.default_rng(12345)
    n = 300_000
    counts = np.zeros((80, 3))
    for _ in range(n // 50_000):
        top = np.argsort(-g.beta(alpha, beta, size=(50_000, 80)), axis=1)[:, :3]
        for k in range(3):
            counts[:, k] += np.bincount(top[:, k], minlength=80)
    freq = counts / n
    assert (np.abs(freq - dist) <= 4 * np.sqrt(dist * (1 - dist) / n) + 1e-6).all()


def test_ipw_equals_an_independent_computation(wheel: Path) -> None:
    """IPW of the production Thompson sampler on the uniform-random log: the estimator over the
    loader's arrays equals a plain computation from the raw CSV in the wheel (to 1e-12)."""
    dist = obd.bts_action_distribution("all")
    with zipfile.ZipFile(wheel) as zf:
        text = zf.read("obp/dataset/obd/random/all/all.csv").decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    total = 0.0
    for r in rows:  # positions in the file are 1, 2, 3
        total += float(r["click"]) * dist[int(r["item_id"]), int(r["position"]) - 1] / float(r["propensity_score"])
    plain = total / len(rows)
    d = obd.load_obd("random", "all")
    ipw = estimate(d.bandit_log(), dist, estimators=("ipw",), n_boot=0)["ipw"].estimate
    assert abs(ipw - plain) <= 1e-12 and plain > 0


#: Saito et al. (2021), evaluation of OPE on the small sample, campaign all, random -> bts:
#: mean and standard deviation of the relative estimation error over bootstrap runs
PUBLISHED = {"ipw": (0.311, 0.311), "dr": (0.292, 0.315), "dm": (0.157, 0.110)}


def test_evaluation_of_ope_reproduces_the_published_errors(wheel: Path) -> None:
    """30 bootstrap runs of the published protocol: every estimator's mean relative error lies
    within the published mean +- one standard deviation, and close to the published mean."""
    res = ope_benchmark(campaign="all", behavior="random", evaluation="bts", n_runs=30)
    assert res["ground_truth"] == pytest.approx(0.0042)
    for e, (mean, sd) in PUBLISHED.items():
        got = res["relative_error"][e]
        assert mean - sd <= got <= mean + sd, (e, got)
        assert abs(got - mean) < 0.03, (e, got)
        assert abs(res["relative_error_std"][e] - sd) < 0.05, (e, res["relative_error_std"][e])
    assert set(res["estimates"]) == {"dm", "ipw", "snipw", "dr", "switch_dr", "dr_os"}


def test_cli_evaluate_obd_json(capsys: pytest.CaptureFixture[str], wheel: Path) -> None:
    code = main(["evaluate", "--dataset", "obd", "--campaign", "all", "--behavior", "random",
                 "--evaluation", "bts", "--runs", "2", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert {"ground_truth", "estimates", "relative_error"} <= set(out)
    assert set(out["relative_error"]) == set(out["estimates"]) >= {"ipw", "dr", "dm"}
    assert out["n_runs"] == 2 and out["ground_truth"] == pytest.approx(0.0042)
