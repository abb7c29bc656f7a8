"""Catalog: loading (records, JSONL, CSV), the CSR/CSC facet matrix, price bands, validation."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest

from decisioner.catalog import Catalog
from decisioner.config import CatalogSpec
from decisioner.errors import SchemaError, UnknownItemError
from wording import Wrapped, full_match

ITEMS: list[dict[str, Any]] = [
    {"id": "a", "category": "shoes", "brand": "acme", "price": 30.0, "tags": ["run", "trail", "run"], "inventory": 5},
    {"id": "b", "category": "bags", "colour": "red", "price": 120, "inventory": 0},
    {"id": "c", "category": "shoes", "brand": "zeta", "tags": "casual"},
    {"id": "d", "category": "hats", "price": 10.0, "tags": ["run", "sun", "beach", "kids"], "inventory": -1},
    {"id": "e", "brand": "acme", "price": 300.0},
]


def dense(cat: Catalog) -> np.ndarray:
    m = np.zeros((cat.n_items, cat.n_fv), np.float64)
    for i in range(cat.n_items):
        fvs, w = cat.item_fvs(i)
        m[i, fvs] = w
    return m


def test_records_build_the_csr() -> None:
    cat = Catalog(ITEMS)
    assert cat.n_items == 5 and cat.ids == ["a", "b", "c", "d", "e"] and cat.index["d"] == 3
    assert cat.facet_names == ["category", "brand", "colour", "tags", "price_band"]
    assert cat.indptr.dtype == np.int64 and cat.indices.dtype == np.int32 and cat.data.dtype == np.float32
    names = {i: sorted(cat.fv_names[f] for f in cat.item_fvs(i)[0]) for i in range(cat.n_items)}
    assert names[0] == ["brand=acme", "category=shoes", "price_band=25-50", "tags=run", "tags=trail"]
    assert names[1] == ["category=bags", "colour=red", "price_band=100-250"]
    assert names[2] == ["brand=zeta", "category=shoes", "tags=casual"]  # no price: no band
    assert names[3] == ["category=hats", "price_band=0-25", "tags=beach", "tags=kids", "tags=run", "tags=sun"]
    assert names[4] == ["brand=acme", "price_band=250+"]
    assert np.array_equal(cat.inventory, [5, 0, -1, -1, -1])
    assert np.array_equal(cat.price[[0, 1, 3, 4]], [30.0, 120.0, 10.0, 300.0]) and np.isnan(cat.price[2])
    assert [cat.fv_facet[cat.fv_index[n]] for n in ("category=shoes", "tags=run", "price_band=0-25")] == [0, 3, 4]


def test_each_facet_weighs_one_per_item() -> None:
    cat = Catalog(ITEMS)
    m = dense(cat)
    for i in range(cat.n_items):
        fvs, w = cat.item_fvs(i)
        per_facet: dict[int, float] = {}
        for f, x in zip(fvs.tolist(), w.tolist()):
            per_facet[cat.fv_facet[f]] = per_facet.get(cat.fv_facet[f], 0.0) + x
        assert all(v == pytest.approx(1.0) for v in per_facet.values())
    # duplicate tags count once: "run" appears twice on item a
    assert m[0, cat.fv_index["tags=run"]] == 0.5 and m[3, cat.fv_index["tags=run"]] == 0.25


def test_csc_is_the_transpose_of_the_csr() -> None:
    cat = Catalog(ITEMS)
    m = dense(cat)
    assert cat.fv_indptr.shape == (cat.n_fv + 1,) and cat.fv_indptr[-1] == cat.indices.shape[0]
    for f in range(cat.n_fv):
        a, b = cat.fv_indptr[f], cat.fv_indptr[f + 1]
        items = cat.fv_items[a:b]
        assert np.array_equal(items, np.flatnonzero(m[:, f]))  # sorted item order
        assert np.array_equal(cat.fv_data[a:b], m[items, f].astype(np.float32))
    assert cat.fv_items.dtype == np.int32 and cat.fv_data.dtype == np.float32


def _deep(n: int) -> list[Any]:
    x: list[Any] = []
    for _ in range(n):
        x = [x]
    return x


INV = "Expected `inventory` to be an int in [-4611686018427387904, 4611686018427387904], got"


@pytest.mark.parametrize(
    ("price", "band"),
    [(0.0, "0-25"), (24.99, "0-25"), (25.0, "25-50"), (99.0, "50-100"), (100.0, "100-250"), (250.0, "250+"), (1e6, "250+")],
)
def test_price_bands(price: float, band: str) -> None:
    cat = Catalog([{"id": "x", "price": price}])
    assert [cat.fv_names[f] for f in cat.item_fvs(0)[0]] == [f"price_band={band}"]


def test_custom_spec_without_bands() -> None:
    spec = CatalogSpec(facets=("category",), price_bands=())
    cat = Catalog(ITEMS, spec)
    assert cat.facet_names == ["category"]
    assert cat.fv_names == ["category=shoes", "category=bags", "category=hats"]
    assert cat.item_fvs(4)[0].shape == (0,)


def test_version_changes_with_content() -> None:
    assert Catalog(ITEMS).version == Catalog(ITEMS).version
    changed = [dict(ITEMS[0], price=31.0), *ITEMS[1:]]
    assert Catalog(changed).version != Catalog(ITEMS).version


def test_jsonl_and_csv_give_the_same_catalog(tmp_path: Path) -> None:
    rows = [
        {"id": "a", "category": "shoes", "brand": "acme", "price": 30.0, "tags": ["run", "trail"], "inventory": 5},
        {"id": "b", "category": "bags", "price": 120.0, "inventory": 0},
        {"id": "c", "category": "shoes", "tags": ["casual"]},
    ]
    jl = tmp_path / "t3_catalog.jsonl"
    jl.write_bytes(b"".join(msgspec.json.encode(r) + b"\n" for r in rows[:2]) + b"\n   \n" + msgspec.json.encode(rows[2]) + b"\n")
    csv_path = tmp_path / "t3_catalog.csv"
    csv_path.write_text(
        "id,category,brand,price,tags,inventory\n"
        "a,shoes,acme,30,run|trail,5\n"
        "b,bags,,120.0,,0\n"
        "c,shoes,,,casual,\n",
        encoding="utf-8",
    )
    from_jsonl = Catalog.load(jl)
    from_csv = Catalog.load(csv_path)
    for cat in (from_jsonl, from_csv, Catalog.from_jsonl(jl), Catalog.from_csv(csv_path)):
        assert cat.ids == ["a", "b", "c"]
        assert cat.fv_names == from_jsonl.fv_names
        assert np.array_equal(cat.indptr, from_jsonl.indptr)
        assert np.array_equal(cat.indices, from_jsonl.indices)
        assert np.array_equal(cat.data, from_jsonl.data)
        assert np.array_equal(cat.inventory, [5, 0, -1])
        assert np.array_equal(cat.price, from_jsonl.price, equal_nan=True)


def test_jsonl_errors(tmp_path: Path) -> None:
    bad = tmp_path / "t3_bad.jsonl"
    bad.write_bytes(b'{"id": "a"}\n{"id": \n')
    with pytest.raises(SchemaError, match=full_match(Wrapped(f"Invalid catalog line 2 of {str(bad)!r}"))):
        Catalog.from_jsonl(bad)
    arr = tmp_path / "t3_array.jsonl"
    arr.write_bytes(b'{"id": "a"}\n[1, 2]\n')
    with pytest.raises(SchemaError, match="^" + re.escape("Expected an object on catalog line 2, got list") + "$"):
        Catalog.from_jsonl(arr)


def test_csv_number_errors(tmp_path: Path) -> None:
    p = tmp_path / "t3_bad.csv"
    p.write_text("id,price\na,1.0\nb,cheap\n")
    with pytest.raises(SchemaError, match="^" + re.escape("Expected a number, got 'cheap' - at CSV row 2 `price`") + "$"):
        Catalog.from_csv(p)
    p.write_text("id,inventory\na,3.5\n")
    with pytest.raises(SchemaError, match="^" + re.escape("Expected a number, got '3.5' - at CSV row 1 `inventory`") + "$"):
        Catalog.from_csv(p)


@pytest.mark.parametrize(
    ("bad", "msg"),
    [
        ({"category": "x"}, "Expected `id` to be a non-empty str, got None - at item 1 `$.id`"),
        ({"id": ""}, "Expected `id` to be a non-empty str, got '' - at item 1 `$.id`"),
        ({"id": 7}, "Expected `id` to be a non-empty str, got 7 - at item 1 `$.id`"),
        ({"id": "a"}, "Expected unique item ids, got duplicate 'a' - at item 1 `$.id`"),
        ({"id": "b", "price": float("nan")}, "Expected `price` to be a finite number >= 0, got nan - at item 1 ('b') `$.price`"),
        ({"id": "b", "price": float("inf")}, "Expected `price` to be a finite number >= 0, got inf - at item 1 ('b') `$.price`"),
        ({"id": "b", "price": -1.0}, "Expected `price` to be a finite number >= 0, got -1.0 - at item 1 ('b') `$.price`"),
        ({"id": "b", "price": "9.99"}, "Expected `price` to be a finite number >= 0, got '9.99' - at item 1 ('b') `$.price`"),
        ({"id": "b", "price": True}, "Expected `price` to be a finite number >= 0, got True - at item 1 ('b') `$.price`"),
        ({"id": "b", "inventory": "many"}, "Expected `inventory` to be an int in [-4611686018427387904, 4611686018427387904], got 'many' - at item 1 ('b') `$.inventory`"),
        ({"id": "b", "inventory": 2.0}, "Expected `inventory` to be an int in [-4611686018427387904, 4611686018427387904], got 2.0 - at item 1 ('b') `$.inventory`"),
        ({"id": "b", "inventory": False}, "Expected `inventory` to be an int in [-4611686018427387904, 4611686018427387904], got False - at item 1 ('b') `$.inventory`"),
        ({"id": "b", "inventory": 2**63}, f"{INV} {2**63} - at item 1 ('b') `$.inventory`"),  # int64 overflowed
        ({"id": "b", "inventory": -(2**63)}, f"{INV} {-(2**63)} - at item 1 ('b') `$.inventory`"),
        ({"id": "b", "tags": ["x", "\ud800"]}, "Expected `tags` to be a str or a list of str (UTF-8 text), got ['x', '\\ud800'] - at item 1 ('b') `$.tags`"),
        ({"id": "b", "category": _deep(5000)}, "Expected `category` to be a str or a list of str (UTF-8 text), got [[[[...]]]] - at item 1 ('b') `$.category`"),  # no RecursionError
        ({"id": "b", "tags": ["x", 1]}, "Expected `tags` to be a str or a list of str (UTF-8 text), got ['x', 1] - at item 1 ('b') `$.tags`"),
        ({"id": "b", "category": {"a": 1}}, "Expected `category` to be a str or a list of str (UTF-8 text), got {'a': 1} - at item 1 ('b') `$.category`"),
        ({"id": "{b}", "price": -2}, "Expected `price` to be a finite number >= 0, got -2 - at item 1 ('{b}') `$.price`"),
    ],
)
def test_bad_rows_name_the_item(bad: dict[str, Any], msg: str) -> None:
    with pytest.raises(SchemaError, match="^" + re.escape(msg) + "$"):
        Catalog([{"id": "a", "category": "x"}, bad])


def test_item_index_and_unknown_item() -> None:
    cat = Catalog(ITEMS)
    assert cat.item_index("c") == 2
    with pytest.raises(UnknownItemError, match="^" + re.escape("Expected an item id in the catalog, got 'zz' - at `$.item`") + "$"):
        cat.item_index("zz")
    with pytest.raises(UnknownItemError, match="^" + re.escape("Expected an item id in the catalog, got 'zz' - at `$.items[3]`") + "$"):
        cat.item_index("zz", where="$.items[3]")


def test_facet_values_mask() -> None:
    cat = Catalog(ITEMS)
    assert cat.facet_values_mask("category", ["shoes"]).tolist() == [True, False, True, False, False]
    assert cat.facet_values_mask("tags", ["run", "casual"]).tolist() == [True, False, True, True, False]
    assert cat.facet_values_mask("brand", ["acme", "nope"]).tolist() == [True, False, False, False, True]
    assert cat.facet_values_mask("price_band", ["0-25", "250+"]).tolist() == [False, False, False, True, True]
    assert not cat.facet_values_mask("colour", ["blue"]).any()
    assert not cat.facet_values_mask("nofacet", ["x"]).any()


def test_inventory_and_in_stock() -> None:
    cat = Catalog(ITEMS)
    assert cat.in_stock().dtype == np.uint8
    assert cat.in_stock().tolist() == [1, 0, 1, 1, 1]  # -1 = not tracked
    cat.set_inventory("a", 0)
    cat.set_inventory("b", 3)
    assert cat.in_stock().tolist() == [0, 1, 1, 1, 1]
    with pytest.raises(UnknownItemError, match="^" + re.escape("Expected an item id in the catalog, got 'zz' - at `inventory`") + "$"):
        cat.set_inventory("zz", 1)


def test_oversold_items_are_out_of_stock() -> None:
    # regression: any non-zero inventory counted as in stock, so oversold (-3) items were shown
    cat = Catalog([{"id": "a", "inventory": -3}, {"id": "b", "inventory": -1}, {"id": "c", "inventory": 2}])
    assert cat.in_stock().tolist() == [0, 1, 1]
    cat.set_inventory("c", -2)
    assert cat.in_stock().tolist() == [0, 1, 0]


def test_empty_catalog() -> None:
    cat = Catalog([])
    assert cat.n_items == 0 and cat.n_fv == 0 and cat.fv_indptr.tolist() == [0]
    assert cat.in_stock().shape == (0,)
