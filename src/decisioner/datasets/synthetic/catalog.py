"""The catalog of a synthetic world: facet vocabularies, brands that sell in a few categories,
items with facets, a log-normal price, stock and a Zipf-like appeal."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from .draws import dirichlet
from .spec import F64, I64, PRICE_BANDS, Bool, WorldSpec

__all__ = ["SyntheticCatalog", "make_catalog"]

_CATEGORIES: Final[tuple[tuple[str, str], ...]] = (
    ("shoes", "Shoe"), ("sneakers", "Sneaker"), ("boots", "Boot"), ("dresses", "Dress"),
    ("tops", "Top"), ("shirts", "Shirt"), ("t-shirts", "T-Shirt"), ("knitwear", "Sweater"),
    ("jeans", "Jeans"), ("trousers", "Trousers"), ("skirts", "Skirt"), ("shorts", "Shorts"),
    ("jackets", "Jacket"), ("coats", "Coat"), ("suits", "Suit"), ("swimwear", "Swimsuit"),
    ("sportswear", "Training Top"), ("underwear", "Brief"), ("socks", "Socks"),
    ("sleepwear", "Pyjamas"), ("bags", "Bag"), ("backpacks", "Backpack"), ("wallets", "Wallet"),
    ("belts", "Belt"), ("hats", "Hat"), ("scarves", "Scarf"), ("gloves", "Gloves"),
    ("sunglasses", "Sunglasses"), ("watches", "Watch"), ("jewellery", "Necklace"),
    ("beauty", "Serum"), ("fragrance", "Eau de Parfum"), ("home", "Cushion"),
    ("kitchen", "Pan"), ("bedding", "Duvet Cover"), ("electronics", "Headphones"),
    ("toys", "Toy"), ("books", "Book"), ("outdoor", "Tent"), ("kids", "Kids Tee"),
)
_COLOURS: Final[tuple[str, ...]] = (
    "black", "white", "grey", "navy", "blue", "red", "green", "beige", "brown", "pink",
    "yellow", "purple", "orange", "khaki", "silver", "gold",
)
_TAGS: Final[tuple[str, ...]] = (
    "organic", "recycled", "vegan", "waterproof", "lightweight", "slim-fit", "oversized",
    "stretch", "cotton", "linen", "wool", "leather", "denim", "silk", "cashmere", "summer",
    "winter", "spring", "autumn", "festival", "party", "office", "casual", "formal", "sporty",
    "running", "hiking", "yoga", "travel", "beach", "vintage", "retro", "minimalist", "classic",
    "limited-edition", "bestseller", "new-in", "sale", "gift", "premium", "handmade", "local",
    "fair-trade", "unisex", "kids", "plus-size", "petite", "maternity", "wide-fit",
    "breathable", "quick-dry", "insulated", "reflective", "machine-washable", "non-iron",
    "patterned", "striped", "floral", "plain", "embroidered", "sequin", "logo", "monogram",
    "sustainable",
)
_BRAND_HEADS: Final[tuple[str, ...]] = (
    "Nord", "Vel", "Astra", "Bel", "Cor", "Del", "Fen", "Gal", "Hal", "Ivo", "Jun", "Kal",
    "Lum", "Mar", "Nov", "Or", "Pal", "Quin", "Ros", "Sol", "Tav", "Ul", "Ver", "Wil", "Xan",
    "Yel", "Zen", "Bri", "Cal", "Dru",
)
_BRAND_TAILS: Final[tuple[str, ...]] = (
    "a", "io", "ex", "ix", "ora", "vik", "ton", "ette", "um", "is", "en", "ar", "ello", "ine",
    "sen", "ford", "well", "more", "by", "ana",
)
_STYLES: Final[tuple[str, ...]] = (
    "Classic", "Essential", "Studio", "Urban", "Heritage", "Everyday", "Signature", "Pro",
    "Lite", "Premium", "Relaxed", "Slim", "Original", "Sport", "Weekend", "Tailored",
)


@dataclass
class SyntheticCatalog:
    """The drawn catalog: facet vocabularies and popularities, which brands sell in which
    category, each item's facet indices, price, stock and appeal, and the catalog rows."""

    category_names: list[str]
    category_nouns: list[str]
    brand_names: list[str]
    colour_names: list[str]
    tag_names: list[str]
    category_pop: F64
    brand_pop: F64
    colour_pop: F64
    brand_category: Bool  # (n_brands, n_categories)
    item_category: I64
    item_brand: I64
    item_colour: I64
    item_tags: I64  # (n_items, 3), -1 padded
    item_band: I64
    price: F64
    inventory: I64
    appeal: F64
    rows: list[dict[str, Any]]


def _names(base: tuple[str, ...], n: int, stem: str) -> list[str]:
    return [base[i] if i < len(base) else f"{stem}-{i + 1}" for i in range(n)]


def make_catalog(spec: WorldSpec, rng: np.random.Generator) -> SyntheticCatalog:
    """Draw the vocabularies, popularities, brands per category and every item."""
    K, B, C, T, n = spec.n_categories, spec.n_brands, spec.n_colours, spec.n_tags, spec.n_items
    cats = _names(tuple(c for c, _ in _CATEGORIES), K, "category")
    nouns = _names(tuple(nn for _, nn in _CATEGORIES), K, "Item")
    colours = _names(_COLOURS, C, "colour")
    tags = _names(_TAGS, T, "tag")
    combos = [h + t for h in _BRAND_HEADS for t in _BRAND_TAILS]
    pick = rng.permutation(len(combos))[: min(B, len(combos))]
    brands = [combos[i] for i in pick] + [f"Brand {i + 1}" for i in range(len(combos), B)]

    category_pop = dirichlet(rng, 2.0, (1, K))[0]
    brand_rank = rng.permutation(B)
    brand_pop: F64 = ((1.0 + brand_rank) ** -0.8).astype(np.float64)
    brand_pop /= brand_pop.sum()
    colour_pop = dirichlet(rng, 3.0, (1, C))[0]

    # Each brand sells in 1-3 categories; the first K brands (in a random order) cover every
    # category once so no category is without a brand.
    brand_category = np.zeros((B, K), dtype=np.bool_)
    order = rng.permutation(B)
    first = rng.choice(K, size=B, p=category_pop)
    cover = min(B, K)
    first[order[:cover]] = np.arange(cover)
    brand_category[np.arange(B), first] = True
    n_extra = rng.choice(3, size=B, p=[0.5, 0.35, 0.15])
    extra = rng.choice(K, size=(B, 2), p=category_pop)
    for j in range(2):
        sel = n_extra > j
        brand_category[np.nonzero(sel)[0], extra[sel, j]] = True

    item_category = rng.choice(K, size=n, p=category_pop).astype(np.int64)
    item_brand = np.zeros(n, dtype=np.int64)
    for c in range(K):
        idx = np.nonzero(item_category == c)[0]
        if idx.size == 0:
            continue
        sellers = np.nonzero(brand_category[:, c])[0]
        w = brand_pop[sellers] / brand_pop[sellers].sum()
        item_brand[idx] = rng.choice(sellers, size=idx.size, p=w)
    item_colour = rng.choice(C, size=n, p=colour_pop).astype(np.int64)

    # Tags: 1-3 per item, mostly from a handful of tags typical of the item's category.
    n_typical = min(6, T)
    cat_tags = np.stack([rng.choice(T, size=n_typical, replace=False) for _ in range(K)])
    typical = rng.random((n, 3)) < 0.7
    cand = np.where(
        typical,
        cat_tags[item_category[:, None], rng.integers(0, n_typical, size=(n, 3))],
        rng.integers(0, T, size=(n, 3)),
    )
    n_tags = rng.choice(np.array([1, 2, 3]), size=n, p=[0.35, 0.4, 0.25])
    item_tags = np.full((n, 3), -1, dtype=np.int64)
    cand_l = cand.tolist()
    for i, (row, m) in enumerate(zip(cand_l, n_tags.tolist())):
        uniq = list(dict.fromkeys(row[:m]))
        item_tags[i, : len(uniq)] = uniq

    cat_mu = rng.normal(math.log(45.0), 0.6, size=K)
    raw_price = np.exp(rng.normal(cat_mu[item_category], 0.55))
    price = np.floor(np.clip(raw_price, 5.0, 499.0)) + 0.99
    out_of_stock = rng.random(n) < 0.03
    inventory = 1 + rng.negative_binomial(2, 0.05, size=n)
    inventory[out_of_stock] = 0
    appeal = -0.8 * np.log1p(rng.permutation(n).astype(np.float64))
    item_band = np.searchsorted(np.array(PRICE_BANDS), price, side="right").astype(np.int64)
    style = rng.integers(0, len(_STYLES), size=n)

    width = max(5, len(str(n)))
    rows: list[dict[str, Any]] = []
    for i, (c, b, col, st, pr, inv) in enumerate(
        zip(item_category.tolist(), item_brand.tolist(), item_colour.tolist(), style.tolist(),
            price.tolist(), inventory.tolist())
    ):
        rows.append({
            "id": f"sku-{i + 1:0{width}d}",
            "title": f"{brands[b]} {colours[col].capitalize()} {nouns[c]} {_STYLES[st]}",
            "category": cats[c],
            "brand": brands[b],
            "colour": colours[col],
            "tags": [tags[t] for t in item_tags[i].tolist() if t >= 0],
            "price": round(pr, 2),
            "inventory": inv,
        })
    return SyntheticCatalog(
        category_names=cats, category_nouns=nouns, brand_names=brands, colour_names=colours,
        tag_names=tags, category_pop=category_pop, brand_pop=brand_pop, colour_pop=colour_pop,
        brand_category=brand_category, item_category=item_category, item_brand=item_brand,
        item_colour=item_colour, item_tags=item_tags, item_band=item_band, price=price,
        inventory=inventory.astype(np.int64), appeal=appeal, rows=rows,
    )
