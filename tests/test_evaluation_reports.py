"""Experiment reports end to end: per-variant summaries, comparisons with the correction,
the sample-ratio check and Bayesian summaries in one report, and per-unit aggregation of
decision records."""

from __future__ import annotations

import re

import numpy as np
import pytest

from decisioner.errors import ConfigError
from decisioner.evaluation.reports import experiment_report, units_from_records

# ---------------------------------------------------------------- the report


def test_experiment_report_end_to_end() -> None:
    g = np.random.default_rng(3)
    n = 30_000
    v = g.integers(0, 3, n)
    conv = (g.random(n) < np.array([0.10, 0.10, 0.13])[v]).astype(int)
    value = conv * g.gamma(2.0, 20.0, n)
    rep = experiment_report(v, conv, value, ["control", "same", "better"], correction="holm", seed=2)
    assert [s.name for s in rep.variants] == ["control", "same", "better"]
    comp = {(c.metric, c.variant): c for c in rep.comparisons}
    assert comp[("conversion", "better")].significant and not comp[("conversion", "same")].significant
    assert comp[("conversion", "better")].p_adjusted >= comp[("conversion", "better")].p_value
    assert comp[("conversion", "better")].rel_low < comp[("conversion", "better")].rel_lift < comp[("conversion", "better")].rel_high
    assert not rep.srm.flagged and rep.control == "control" and rep.correction == "holm"
    best = max((b for b in rep.bayes if b.metric == "conversion"), key=lambda b: b.prob_best)
    assert best.variant == "better" and best.prob_best > 0.99
    with pytest.raises(ConfigError, match="^" + re.escape("expected `control` to be one of ['a', 'b'], got 'z'") + "$"):
        experiment_report([0, 1], [0, 1], [0.0, 1.0], ["a", "b"], control="z")
    with pytest.raises(ConfigError, match="^" + re.escape("expected variant indices in [0, 2) - at `variant`") + "$"):
        experiment_report([0, 2], [0, 1], [0.0, 1.0], ["a", "b"])


def test_units_from_records_aggregates_per_unit() -> None:
    recs = [
        {"variant": "a", "unit": "u1", "reward": 0.0, "propensity": 0.5},
        {"variant": "a", "unit": "u1", "reward": 2.0, "propensity": 0.5},
        {"variant": "b", "unit": "u2", "reward": 0.0, "propensity": 0.5},
    ]
    variant, converted, value, names, logged = units_from_records(recs)
    assert names == ["a", "b"] and variant.tolist() == [0, 1] and value.tolist() == [2.0, 0.0]
    assert converted.tolist() == [1, 0] and logged is not None and logged[2].tolist() == [0.5] * 3
    with pytest.raises(ConfigError, match="^" + re.escape("expected a `variant` in every record, got none - at record 0") + "$"):
        units_from_records([{"unit": "x"}])
