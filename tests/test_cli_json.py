"""The CLI's one JSON writer: strict JSON whatever a command returns."""

from __future__ import annotations

import json
import math

import numpy as np

from decisioner.cli_json import dumps, strict
from decisioner.evaluation.inference import IPWLift


def test_non_finite_numbers_numpy_values_and_results_become_strict_json() -> None:
    lift = IPWLift(variant="b", control="a", variant_mean=np.float64(0.2), control_mean=0.1, lift=math.nan,
                   low=-math.inf, high=math.inf, p_value=1.0, effective_n=np.float64(10.0))  # type: ignore[arg-type]
    out = {"r": lift, "a": np.array([1.0, np.nan]), "n": np.int64(3), "t": (np.bool_(True), None), 4: "x"}
    text = dumps(out)
    assert "NaN" not in text and "Infinity" not in text
    back = json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    assert back == {
        "r": {"variant": "b", "control": "a", "variant_mean": 0.2, "control_mean": 0.1, "lift": None, "low": None,
              "high": None, "p_value": 1.0, "effective_n": 10.0},
        "a": [1.0, None], "n": 3, "t": [True, None], "4": "x",
    }
    assert strict(float("-inf")) is None and strict(True) is True
