"""Catalog: items with facets as a CSR matrix (item x facet value) and numeric columns.

Facet values are global ids over ``"facet=value"`` strings (``category=shoes``); a multi-valued
facet (tags) spreads a weight of 1 over its values so every facet counts once per item. When
``price_bands`` are configured, a ``price_band`` facet is derived from ``price``.
"""

from __future__ import annotations

import csv
import hashlib
import math
import reprlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from . import arguments
from .arguments import INVENTORY_MAX
from .config import CatalogSpec
from .errors import SchemaError, UnknownItemError
from .snapshot import ComponentState

__all__ = ["Catalog"]


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 3, 80, 80


def _shown(v: Any) -> str:
    """``repr(v)`` shortened and depth-limited for a message (deeply nested input must not
    recurse)."""
    return _REPR.repr(v)


def _utf8(v: str) -> bool:
    """Whether ``v`` has a UTF-8 form (no lone surrogates): a snapshot writes it back out."""
    if v.isascii():
        return True
    try:
        v.encode()
    except UnicodeEncodeError:
        return False
    return True


def _band_label(edges: tuple[float, ...], price: float) -> str:
    lo = 0.0
    for e in edges:
        if price < e:
            return f"{lo:g}-{e:g}"
        lo = e
    return f"{lo:g}+"


class Catalog:
    """Items as arrays: ``indptr``/``indices``/``data`` (CSR over facet values), ``price``,
    ``inventory`` (-1 = not tracked), and the vocabularies.

    Parameters
    ----------
    records
        Item mappings with an ``id`` and facet fields (strings or lists of strings), optional
        ``price`` and ``inventory``.
    spec
        Which fields are facets, and the price-band edges.

    Examples
    --------
    >>> cat = Catalog([{"id": "a", "category": "shoes", "price": 30.0},
    ...                {"id": "b", "category": "bags", "tags": ["x", "y"]}])
    >>> cat.n_items, cat.fv_names[:3]
    (2, ['category=shoes', 'price_band=25-50', 'category=bags'])
    """

    def __init__(self, records: Iterable[Mapping[str, Any]], spec: CatalogSpec = CatalogSpec()) -> None:
        self.spec = spec
        facets = list(spec.facets)
        if spec.price_bands:
            facets.append("price_band")
        self.facet_names: list[str] = facets
        self.ids: list[str] = []
        #: the item records as given (a snapshot writes them back out)
        self.records: list[dict[str, Any]] = []
        self.index: dict[str, int] = {}
        self.fv_names: list[str] = []
        self.fv_index: dict[str, int] = {}
        fv_facet: list[int] = []
        indptr = [0]
        indices: list[int] = []
        data: list[float] = []
        prices: list[float] = []
        inventory: list[int] = []
        digest = hashlib.blake2b(digest_size=8)
        for line, rec in enumerate(records):
            where = f" - at item {line}"
            item_id = rec.get("id")
            if not isinstance(item_id, str) or not item_id or len(item_id) > 256 or not _utf8(item_id):
                raise SchemaError(f"Expected `id` to be a non-empty str, got {_shown(item_id)}" + where + " `$.id`")
            if item_id in self.index:
                raise SchemaError(f"Expected unique item ids, got duplicate {item_id!r}" + where + " `$.id`")
            where += f" ({item_id[:64]!r})"  # later errors name the item by its id too
            price = rec.get("price")
            if price is not None and (
                isinstance(price, bool) or not isinstance(price, (int, float)) or not math.isfinite(price) or price < 0
            ):
                expected = "Expected `price` to be a finite number >= 0"
                raise SchemaError(f"{expected}, got {_shown(price)}" + where + " `$.price`")
            inv = rec.get("inventory")
            if inv is not None and (
                isinstance(inv, bool) or not isinstance(inv, int) or not -INVENTORY_MAX <= inv <= INVENTORY_MAX
            ):
                expected = f"Expected `inventory` to be an int in [-{INVENTORY_MAX}, {INVENTORY_MAX}]"
                raise SchemaError(f"{expected}, got {_shown(inv)}" + where + " `$.inventory`")
            values: list[tuple[int, str]] = []
            for f_i, facet in enumerate(spec.facets):
                v = rec.get(facet)
                if v is None:
                    continue
                vs = [v] if isinstance(v, str) else v
                if not isinstance(vs, list) or not all(isinstance(x, str) and _utf8(x) for x in vs):
                    expected = f"Expected `{facet}` to be a str or a list of str (UTF-8 text)"
                    raise SchemaError(f"{expected}, got {_shown(v)}" + where + f" `$.{facet}`")
                for x in dict.fromkeys(vs):
                    values.append((f_i, x))
            if price is not None and spec.price_bands:
                values.append((len(facets) - 1, _band_label(spec.price_bands, float(price))))
            per_facet: dict[int, int] = {}
            for f_i, _ in values:
                per_facet[f_i] = per_facet.get(f_i, 0) + 1
            for f_i, x in values:
                name = f"{facets[f_i]}={x}"
                fv = self.fv_index.get(name)
                if fv is None:
                    fv = len(self.fv_names)
                    self.fv_index[name] = fv
                    self.fv_names.append(name)
                    fv_facet.append(f_i)
                indices.append(fv)
                data.append(1.0 / per_facet[f_i])
            indptr.append(len(indices))
            self.index[item_id] = len(self.ids)
            self.records.append(dict(rec))
            self.ids.append(item_id)
            prices.append(float(price) if price is not None else math.nan)
            inventory.append(int(inv) if inv is not None else -1)
            digest.update(msgspec.json.encode(rec))
        self.indptr = np.asarray(indptr, dtype=np.int64)
        self.indices = np.asarray(indices, dtype=np.int32)
        self.data = np.asarray(data, dtype=np.float32)
        self._data64 = self.data.astype(np.float64)  # interest updates multiply in float64
        self.fv_facet = np.asarray(fv_facet, dtype=np.int32)
        self.price = np.asarray(prices, dtype=np.float64)
        self.inventory = np.asarray(inventory, dtype=np.int64)
        self.version = digest.hexdigest()
        # column-wise copy (facet value -> items) for scoring from the profile's side
        order = np.argsort(self.indices, kind="stable")
        rows = np.repeat(np.arange(self.n_items, dtype=np.int32), np.diff(self.indptr))
        self.fv_items = np.ascontiguousarray(rows[order], dtype=np.int32)
        self.fv_data = np.ascontiguousarray(self.data[order], dtype=np.float32)
        self.fv_indptr = np.zeros(self.n_fv + 1, dtype=np.int64)
        np.cumsum(np.bincount(self.indices, minlength=self.n_fv), out=self.fv_indptr[1:])

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_jsonl(cls, path: str | Path, spec: CatalogSpec = CatalogSpec()) -> Catalog:
        """Load items from a JSON-lines file (one object per line)."""
        def rows() -> Iterable[Mapping[str, Any]]:
            with open(path, "rb") as fh:
                for n, line in enumerate(fh):
                    if not line.strip():
                        continue
                    try:
                        obj = msgspec.json.decode(line)
                    except msgspec.DecodeError as exc:
                        raise SchemaError(f"Invalid catalog line {n + 1} of {str(path)!r}: {exc}") from None
                    except RecursionError:
                        raise SchemaError(
                            f"Invalid catalog line {n + 1} of {str(path)!r}: nested too deeply"
                        ) from None
                    if not isinstance(obj, dict):
                        raise SchemaError(f"Expected an object on catalog line {n + 1}, got {type(obj).__name__}")
                    yield obj
        return cls(rows(), spec)

    @classmethod
    def from_csv(cls, path: str | Path, spec: CatalogSpec = CatalogSpec(), *, list_sep: str = "|") -> Catalog:
        """Load items from a CSV file with a header; list facets are ``|``-separated; ``price``
        is parsed as float and ``inventory`` as int."""
        def rows() -> Iterable[Mapping[str, Any]]:
            with open(path, newline="", encoding="utf-8") as fh:
                for n, raw in enumerate(csv.DictReader(fh)):
                    rec: dict[str, Any] = {}
                    for k, v in raw.items():
                        if v is None or v == "":
                            continue
                        try:
                            if k == "price":
                                rec[k] = float(v)
                            elif k == "inventory":
                                rec[k] = int(v)
                            elif list_sep in v:
                                rec[k] = v.split(list_sep)
                            else:
                                rec[k] = v
                        except ValueError:
                            raise SchemaError(f"Expected a number, got {v!r} - at CSV row {n + 1} `{k}`") from None
                    yield rec
        return cls(rows(), spec)

    @classmethod
    def load(cls, path: str | Path, spec: CatalogSpec = CatalogSpec()) -> Catalog:
        """Load ``.jsonl``/``.json`` (JSON lines) or ``.csv`` by suffix."""
        return cls.from_csv(path, spec) if str(path).endswith(".csv") else cls.from_jsonl(path, spec)

    # ------------------------------------------------------------------ access
    @property
    def n_items(self) -> int:
        return len(self.ids)

    @property
    def n_fv(self) -> int:
        return len(self.fv_names)

    def item_index(self, item_id: str, *, where: str = "$.item") -> int:
        """Index of ``item_id``; raises :class:`UnknownItemError` naming the path."""
        i = self.index.get(item_id)
        if i is None:
            raise UnknownItemError(f"Expected an item id in the catalog, got {item_id[:64]!r} - at `{where}`")
        return i

    def item_fvs(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Facet-value ids (int32) and weights (float32) of item ``i``."""
        a, b = self.indptr[i], self.indptr[i + 1]
        return self.indices[a:b], self.data[a:b]

    def items_fvs(self, items: list[int], weight: float) -> tuple[np.ndarray, np.ndarray]:
        """Facet-value ids (int32) and their weights times ``weight`` (float64) of ``items``."""
        ptr, d64 = self.indptr, self._data64
        if len(items) == 1:  # every view, click and cart: two slices and one product
            a, b = ptr[items[0]], ptr[items[0] + 1]
            return self.indices[a:b], d64[a:b] * float(weight)
        return (np.concatenate([self.indices[ptr[i] : ptr[i + 1]] for i in items]),
                np.concatenate([d64[ptr[i] : ptr[i + 1]] for i in items]) * float(weight))

    def facet_values_mask(self, facet: str, values: Iterable[str]) -> np.ndarray:
        """Boolean mask of items having any of ``values`` for ``facet``."""
        fvs = [self.fv_index[f"{facet}={v}"] for v in values if f"{facet}={v}" in self.fv_index]
        mask = np.zeros(self.n_items, dtype=bool)
        if not fvs:
            return mask
        hit = np.isin(self.indices, np.asarray(fvs, dtype=np.int32))
        rows = np.repeat(np.arange(self.n_items), np.diff(self.indptr))
        mask[rows[hit]] = True
        return mask

    def set_inventory(self, item_id: str, inventory: int) -> None:
        """Update one item's stock level (-1: not tracked).

        Raises
        ------
        SchemaError, UnknownItemError
            Before anything changes.
        """
        i = self.item_index(arguments.text(item_id, "item_id"), where="inventory")
        self.inventory[i] = arguments.inventory(inventory)

    def to_state(self) -> ComponentState:
        """What changes after loading: the stock levels (with the catalog version they belong to)."""
        return {"inventory": self.inventory}, {"version": self.version}

    def load_state(self, state: ComponentState) -> None:
        self.inventory[:] = state[0]["inventory"]

    def in_stock(self) -> np.ndarray:
        """uint8 mask: 1 where inventory is untracked (-1) or positive."""
        # negative stock other than -1 (oversold, back-ordered) is out of stock, not untracked
        mask: np.ndarray = ((self.inventory > 0) | (self.inventory == -1)).astype(np.uint8)
        return mask
