"""``arguments``: public-call arguments are refused in our words, before anything moves."""

from __future__ import annotations

import re
from typing import Any

import pytest

from decisioner import arguments as A
from decisioner.errors import SchemaError

T = 1_700_000_000_000


@pytest.mark.parametrize(
    ("call", "msg"),
    [
        (lambda: A.epoch_ms("x", "now"), "Expected `now` to be epoch milliseconds (an int), got `str` 'x'"),
        (lambda: A.epoch_ms(True, "now"), "Expected `now` to be epoch milliseconds (an int), got `bool` True"),
        (lambda: A.epoch_ms(float("nan"), "now"), "Expected `now` to be epoch milliseconds (an int), got `float` nan"),
        (lambda: A.epoch_ms(2**70, "now"), f"Expected `now` in [946684800000, 4102444800000] (epoch ms, 2000-2100), got {2**70}"),
        (lambda: A.epoch_ms_list([T], 2, "now"), "Expected `now` to hold 2 times (one per request), got 1"),
        (lambda: A.epoch_ms_list("soon", 2, "now"), "Expected `now` to be an int or a list of 2 ints, got `str` 'soon'"),
        (lambda: A.epoch_ms_list([T, "x"], 2, "now"), "Expected `now[1]` to be epoch milliseconds (an int), got `str` 'x'"),
        (lambda: A.text(5, "item_id"), "Expected `item_id` to be a str, got `int` 5"),
        (lambda: A.text("", "item_id"), "Expected `item_id` to be a str of length 1 to 256, got length 0"),
        (lambda: A.text("a\ud800", "item_id"), "Expected `item_id` to be UTF-8 text, got an unencodable character '\\ud800' at position 1"),
        (lambda: A.identifiers(["cookie"]), "Expected `ids` to be a mapping of identifier type to value, got `list` ['cookie']"),
        (lambda: A.identifiers({"cookie": 3}), "Expected `ids.cookie` to be a str, got `int` 3"),
        (lambda: A.identifiers({3: "x"}), "Expected `ids key` to be a str, got `int` 3"),
        (lambda: A.identifiers({f"t{j}": "x" for j in range(65)}), "Expected at most 64 identifiers in `ids`, got 65"),
        (lambda: A.id_maps({"cookie": "c"}), "Expected `ids` to be a list of identifier mappings, got `dict` {'cookie': 'c'}"),
        (lambda: A.id_maps([{"cookie": "c"}, {"cookie": 1}]), "Expected `ids[1].cookie` to be a str, got `int` 1"),
        (lambda: A.row("3", 10), "Expected `row` to be a profile row (an int), got `str` '3'"),
        (lambda: A.row(10, 10), "Expected `row` in [0, 10) (a profile row), got 10"),
        (lambda: A.row(-1, 10), "Expected `row` in [0, 10) (a profile row), got -1"),
        (lambda: A.inventory(2**63), f"Expected `inventory` in [-{2**62}, {2**62}], got {2**63}"),
        (lambda: A.inventory(2.0), "Expected `inventory` to be an int (-1: not tracked), got `float` 2.0"),
    ],
)
def test_bad_arguments_are_refused_in_our_words(call: Any, msg: str) -> None:
    with pytest.raises(SchemaError, match="^" + re.escape(msg) + "$"):
        call()


def test_good_arguments_pass_through() -> None:
    assert A.epoch_ms(T, "now") == T and A.epoch_ms_list(T, 3, "now") == [T] * 3
    assert A.epoch_ms_list((T, T + 1), 2, "now") == [T, T + 1]
    assert A.text("café", "x") == "café" and A.identifiers({"email": "é@x.io"}) == {"email": "é@x.io"}
    assert A.row(0, 1) == 0 and A.inventory(-3) == -3 and A.inventory(-1) == -1
