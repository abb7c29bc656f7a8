"""Generation of a synthetic world: catalog, preferences, people and their identifiers,
sessions and journeys, drawn from one seed (see the package docstring for the model)."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from ...errors import ConfigError
from .response import ResponseModel
from .spec import DAY_MS, F32, F64, HOUR_MS, I64, PRICE_BANDS, Bool, WorldSpec
from .world import World, gc_paused

__all__ = ["generate_world"]

# --- vocabularies -------------------------------------------------------------------------

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
_FIRST: Final[tuple[str, ...]] = (
    "ada", "alan", "grace", "linus", "barbara", "dennis", "margaret", "ken", "frances", "john",
    "radia", "tim", "hedy", "vint", "katherine", "donald", "anita", "edsger", "sophie", "niklaus",
    "mary", "guido", "shafi", "bjarne", "lynn", "james", "carol", "robert", "joan", "brian",
    "jean", "leslie", "karen", "claude", "ida", "richard", "emma", "noah", "olivia", "liam",
    "mia", "lucas", "zoe", "omar", "yuki", "priya", "diego", "fatima",
)
_LAST: Final[tuple[str, ...]] = (
    "lovelace", "turing", "hopper", "torvalds", "liskov", "ritchie", "hamilton", "thompson",
    "allen", "backus", "perlman", "berners", "lamarr", "cerf", "johnson", "knuth", "borg",
    "dijkstra", "wilson", "wirth", "keller", "rossum", "goldwasser", "stroustrup", "conway",
    "gosling", "shaw", "tarjan", "clarke", "kernighan", "sammet", "lamport", "jones", "shannon",
    "rhodes", "stallman", "smith", "garcia", "muller", "rossi", "novak", "tanaka", "sharma",
    "silva", "khan", "nguyen", "kowalski", "andersen",
)
_DOMAINS: Final[tuple[str, ...]] = ("example.com", "example.org", "example.net", "mail.example.com")
_PLACEHOLDERS: Final[tuple[str, ...]] = (
    "test@test.com", "null", "none@none.com", "noemail@example.com", "n/a", "asdf@asdf.com",
)
_AD_SOURCES: Final[tuple[str, ...]] = ("search", "social", "display", "video")
_CALL_REASONS: Final[tuple[str, ...]] = ("delivery", "billing", "product_question", "return", "account")
_COUPONS: Final[tuple[str, ...]] = ("WELCOME10", "SPRING15", "FREESHIP", "VIP20", "BDAY25")
_ASSETS: Final[tuple[str, ...]] = ("lookbook", "size-guide", "catalogue")
_DEVICES: Final[tuple[str, ...]] = ("desktop", "mobile", "tablet")
_TABLET: Final = 2
_MOBILE: Final = 1
#: Share of sessions starting in each hour of the day (a plain diurnal shape, evening peak).
_HOURLY: Final[tuple[float, ...]] = (
    1, 0.6, 0.4, 0.3, 0.3, 0.5, 1, 2, 3, 3.5, 3.5, 3.5, 4, 4, 3.5, 3.5, 3.5, 4, 5, 6, 6.5, 6, 4, 2,
)

_N_EXPERIENCES: Final = 6

_ENTRY_DIRECT: Final = 0
_ENTRY_AD: Final = 1
_ENTRY_EMAIL: Final = 2


@dataclass
class _Catalog:
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


def _dirichlet(rng: np.random.Generator, alpha: float, shape: tuple[int, int]) -> F64:
    """Rows of Dirichlet(alpha) draws via gamma variates (a row of all-zero draws -> uniform)."""
    g = rng.standard_gamma(alpha, size=shape)
    s = g.sum(axis=1, keepdims=True)
    out: F64 = np.where(s > 0.0, g / np.where(s > 0.0, s, 1.0), 1.0 / shape[1])
    return out


def _topk_mask(rng: np.random.Generator, logw: F64, k: I64) -> Bool:
    """Per row, ``k[row]`` columns drawn without replacement with probability ~ exp(logw)."""
    keys = logw + rng.gumbel(size=logw.shape)
    srt = -np.sort(-keys, axis=1)
    kth = srt[np.arange(keys.shape[0]), np.minimum(k, keys.shape[1]) - 1]
    out: Bool = keys >= kth[:, None]
    return out


def _make_catalog(spec: WorldSpec, rng: np.random.Generator) -> _Catalog:
    K, B, C, T, n = spec.n_categories, spec.n_brands, spec.n_colours, spec.n_tags, spec.n_items
    cats = _names(tuple(c for c, _ in _CATEGORIES), K, "category")
    nouns = _names(tuple(nn for _, nn in _CATEGORIES), K, "Item")
    colours = _names(_COLOURS, C, "colour")
    tags = _names(_TAGS, T, "tag")
    combos = [h + t for h in _BRAND_HEADS for t in _BRAND_TAILS]
    pick = rng.permutation(len(combos))[: min(B, len(combos))]
    brands = [combos[i] for i in pick] + [f"Brand {i + 1}" for i in range(len(combos), B)]

    category_pop = _dirichlet(rng, 2.0, (1, K))[0]
    brand_rank = rng.permutation(B)
    brand_pop: F64 = ((1.0 + brand_rank) ** -0.8).astype(np.float64)
    brand_pop /= brand_pop.sum()
    colour_pop = _dirichlet(rng, 3.0, (1, C))[0]

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
    return _Catalog(
        category_names=cats, category_nouns=nouns, brand_names=brands, colour_names=colours,
        tag_names=tags, category_pop=category_pop, brand_pop=brand_pop, colour_pop=colour_pop,
        brand_category=brand_category, item_category=item_category, item_brand=item_brand,
        item_colour=item_colour, item_tags=item_tags, item_band=item_band, price=price,
        inventory=inventory.astype(np.int64), appeal=appeal, rows=rows,
    )


def _make_preferences(spec: WorldSpec, cat: _Catalog, rng: np.random.Generator) -> dict[str, F32]:
    """Latent log-preferences ``log(K theta)`` of every person over every facet."""
    N, K, B, C, T = spec.n_people, spec.n_categories, spec.n_brands, spec.n_colours, spec.n_tags
    # Category: 2-4 favourites (drawn ~ category popularity) hold 85 % of the mass.
    k = rng.integers(2, 5, size=N)
    fav = _topk_mask(rng, np.broadcast_to(np.log(cat.category_pop), (N, K)).copy(), k)
    w = rng.standard_gamma(2.0, size=(N, K)) * fav
    theta_c = 0.85 * w / w.sum(axis=1, keepdims=True) + 0.15 * cat.category_pop
    # Brand: 2-5 favourites, mostly among brands selling in the favourite categories; the rest
    # of the mass follows brand popularity.
    sells = (fav.astype(np.float64) @ cat.brand_category.T.astype(np.float64)) > 0.0
    logw = np.log(cat.brand_pop)[None, :] + np.where(sells, 0.0, math.log(0.05))
    favb = _topk_mask(rng, logw, rng.integers(2, 6, size=N))
    wb = rng.standard_gamma(1.0, size=(N, B)) * favb
    theta_b = 0.4 * wb / wb.sum(axis=1, keepdims=True) + 0.6 * cat.brand_pop
    # Colour: mild personal taste around colour popularity.
    theta_col = 0.5 * _dirichlet(rng, 1.0, (N, C)) + 0.5 * cat.colour_pop
    # Price band: an ideal band and a sensitivity (Gaussian in band index).
    nb = len(PRICE_BANDS) + 1
    mu = np.clip(rng.normal(1.8, 1.0, size=N), 0.0, nb - 1.0)
    sens = rng.gamma(2.0, 0.4, size=N)
    q = np.exp(-sens[:, None] * (np.arange(nb)[None, :] - mu[:, None]) ** 2)
    theta_pb = 0.8 * q / q.sum(axis=1, keepdims=True) + 0.2 / nb
    # Tags: a sparse taste over tags, half of it uniform.
    theta_t = 0.5 * _dirichlet(rng, 0.2, (N, T)) + 0.5 / T
    return {
        "pref_category": np.log(K * theta_c).astype(np.float32),
        "pref_brand": np.log(B * theta_b).astype(np.float32),
        "pref_colour": np.log(C * theta_col).astype(np.float32),
        "pref_band": np.log(nb * theta_pb).astype(np.float32),
        "pref_tags": np.log(T * theta_t).astype(np.float32),
    }


@dataclass
class _People:
    """Identifiers and devices of every person."""

    slot_cookie: list[list[str]]  # per person: cookie of each usable device slot
    slot_kind: list[list[int]]  # per person: device kind of each slot
    n_slots: I64
    shared_slot: I64  # per person: slot index of the shared tablet, -1 if none
    email: list[str | None]  # canonical (or placeholder) email
    email_spell: list[tuple[str, ...]]  # spellings, [0] canonical
    real_email: Bool
    any_email: Bool
    placeholder: Bool
    user_id: list[str | None]
    crm_id: list[str | None]
    phone_spell: list[tuple[str, ...] | None]
    messy: Bool
    identifiers: list[tuple[str, str, int]]
    shared: dict[tuple[str, str], tuple[int, ...]]
    spellings: list[tuple[str, str, int]]


def _unique_tokens(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` distinct 64-bit hex tokens."""
    vals = rng.integers(0, 2**63 - 1, size=n, dtype=np.int64)
    while np.unique(vals).size < n:  # practically never; kept for exactness
        vals = rng.integers(0, 2**63 - 1, size=n, dtype=np.int64)
    return [f"{v:016x}" for v in vals.tolist()]


def _make_people(spec: WorldSpec, rng: np.random.Generator) -> _People:
    N = spec.n_people
    n_dev = rng.choice(np.array([1, 2, 3]), size=N, p=[0.4, 0.42, 0.18])
    has_dev = _topk_mask(rng, np.broadcast_to(np.log([0.35, 0.5, 0.15]), (N, 3)).copy(), n_dev)
    u = rng.random((N, 4))
    has_email = u[:, 0] < 0.85
    has_uid = u[:, 1] < 0.55
    has_crm = u[:, 2] < 0.35
    has_phone = u[:, 3] < np.where(has_crm, 0.6, 0.15)
    placeholder = np.zeros(N, dtype=np.bool_)
    n_ph = round(spec.placeholder_rate * N)
    if n_ph:
        # Placeholder people typed junk into a form; they can log in, which is how it spreads.
        placeholder[rng.choice(N, size=n_ph, replace=False)] = True
        has_email |= placeholder
        has_uid |= placeholder
    # 2-6 identifiers per person (placeholders do not count: they are nobody's).
    count = n_dev + has_email + has_uid + has_crm + has_phone - placeholder
    has_email |= count < 2
    count = n_dev + has_email + has_uid + has_crm + has_phone
    has_phone &= count <= 6
    real_email = has_email & ~placeholder
    messy = (rng.random(N) < 0.2) & ~placeholder  # a placeholder has one spelling only

    # Households: an owner lends their tablet to one other person without a tablet.
    n_pairs = round(spec.shared_device_rate * N / 2.0)
    owners_c = np.nonzero(has_dev[:, _TABLET])[0]
    borrowers_c = np.nonzero(~has_dev[:, _TABLET])[0]
    n_pairs = min(n_pairs, owners_c.size, borrowers_c.size)
    owners = rng.choice(owners_c, size=n_pairs, replace=False) if n_pairs else np.zeros(0, np.int64)
    borrowers = rng.choice(borrowers_c, size=n_pairs, replace=False) if n_pairs else np.zeros(0, np.int64)

    first = rng.integers(0, len(_FIRST), size=N)
    last = rng.integers(0, len(_LAST), size=N)
    last[borrowers] = last[owners]  # same household, same surname
    email_no = rng.permutation(10 * N)[:N]
    style = rng.integers(0, 4, size=N)
    domain = rng.integers(0, len(_DOMAINS), size=N)
    ph_value = rng.integers(0, len(_PLACEHOLDERS), size=N)
    area = rng.integers(201, 990, size=N)
    sub = rng.choice(8_000_000, size=N, replace=False)
    uid_no = rng.choice(90_000_000, size=N, replace=False) + 10_000_000
    crm_no = rng.choice(9_000_000, size=N, replace=False) + 1_000_000
    cookies = _unique_tokens(rng, int(n_dev.sum()))

    identifiers: list[tuple[str, str, int]] = []
    spellings: list[tuple[str, str, int]] = []
    shared: dict[tuple[str, str], tuple[int, ...]] = {}
    placeholder_index: dict[str, int] = {}

    def add(t: str, v: str, person: int, spells: tuple[str, ...] = ()) -> None:
        i = len(identifiers)
        identifiers.append((t, v, person))
        for s in dict.fromkeys((v, *spells)):
            spellings.append((t, s, i))

    slot_cookie: list[list[str]] = []
    slot_kind: list[list[int]] = []
    email: list[str | None] = []
    email_spell: list[tuple[str, ...]] = []
    user_id: list[str | None] = []
    crm_id: list[str | None] = []
    phone_spell: list[tuple[str, ...] | None] = []
    ck = 0
    has_dev_l = has_dev.tolist()
    for p in range(N):
        sc: list[str] = []
        sk: list[int] = []
        for d in range(3):
            if has_dev_l[p][d]:
                c = "ck-" + cookies[ck]
                ck += 1
                sc.append(c)
                sk.append(d)
                add("cookie", c, p)
        slot_cookie.append(sc)
        slot_kind.append(sk)
        if placeholder[p]:
            e = _PLACEHOLDERS[int(ph_value[p])]
            if e not in placeholder_index:
                placeholder_index[e] = len(identifiers)
                add("email", e, -1)
            email.append(e)
            email_spell.append((e,))
        elif has_email[p]:
            f, la, n = _FIRST[int(first[p])], _LAST[int(last[p])], int(email_no[p])
            local = (f"{f}.{la}{n}", f"{f}{n}", f"{f[0]}.{la}{n}", f"{f}_{la}{n}")[int(style[p])]
            e = f"{local}@{_DOMAINS[int(domain[p])]}"
            spells = (e, f"{local.title()}@{_DOMAINS[int(domain[p])]}", f" {e.upper()} ")
            add("email", e, p, spells)
            email.append(e)
            email_spell.append(spells)
        else:
            email.append(None)
            email_spell.append(())
        if has_uid[p]:
            user_id.append(f"u-{int(uid_no[p])}")
            add("user_id", f"u-{int(uid_no[p])}", p)
        else:
            user_id.append(None)
        if has_crm[p]:
            crm_id.append(f"crm-{int(crm_no[p])}")
            add("crm_id", f"crm-{int(crm_no[p])}", p)
        else:
            crm_id.append(None)
        if has_phone[p]:
            a, x, line = int(area[p]), 200 + int(sub[p]) // 10_000, int(sub[p]) % 10_000
            canon = f"+1{a}{x:03d}{line:04d}"
            pspells = (canon, f"({a}) {x:03d}-{line:04d}", f"{a}-{x:03d}-{line:04d}", f"+1 {a} {x:03d} {line:04d}")
            add("phone", canon, p, pspells)
            phone_spell.append(pspells)
        else:
            phone_spell.append(None)

    shared_slot = np.full(N, -1, dtype=np.int64)
    for o, b in zip(owners.tolist(), borrowers.tolist()):
        s = slot_kind[o].index(_TABLET)
        c = slot_cookie[o][s]
        shared_slot[o] = s
        slot_cookie[b].append(c)
        slot_kind[b].append(_TABLET)
        shared_slot[b] = len(slot_cookie[b]) - 1
        shared[("cookie", c)] = (o, b)
    return _People(
        slot_cookie=slot_cookie, slot_kind=slot_kind,
        n_slots=np.array([len(s) for s in slot_cookie], dtype=np.int64), shared_slot=shared_slot,
        email=email, email_spell=email_spell, real_email=real_email, any_email=has_email,
        placeholder=placeholder, user_id=user_id, crm_id=crm_id, phone_spell=phone_spell,
        messy=messy, identifiers=identifiers, shared=shared, spellings=spellings,
    )


def _sample_items(
    model: ResponseModel, draws: I64, rng: np.random.Generator
) -> tuple[I64, F64, float, float]:
    """Draw ``draws[p]`` items for each person with ``P(i) ~ exp(u(p, i))``.

    Returns the items (grouped by person, in person order), their utilities, and the mean and
    standard deviation of the utility over all (person, item) pairs.
    """
    N, n = model.n_people, model.n_items
    total = int(draws.sum())
    items = np.zeros(total, dtype=np.int64)
    utils = np.zeros(total, dtype=np.float64)
    off = np.concatenate([[0], np.cumsum(draws)])
    chunk = max(1, 2_000_000 // max(n, 1))
    s1 = 0.0
    s2 = 0.0
    for a in range(0, N, chunk):
        b = min(N, a + chunk)
        U = model.utility_rows(np.arange(a, b))
        s1 += float(U.sum())
        s2 += float(np.square(U).sum())
        d = draws[a:b]
        m = int(d.sum())
        if m == 0:
            continue
        # One searchsorted over all rows: row r's normalised CDF is shifted into (r, r + 1].
        cdf = np.exp(U - U.max(axis=1, keepdims=True))
        np.cumsum(cdf, axis=1, out=cdf)
        cdf /= cdf[:, -1:]
        rows = np.arange(b - a)
        cdf += rows[:, None]
        row_of = np.repeat(rows, d)
        pos = np.searchsorted(cdf.ravel(), row_of + rng.random(m), side="right")
        it = np.minimum(pos - row_of * n, n - 1)
        items[off[a]:off[b]] = it
        utils[off[a]:off[b]] = U[row_of, it]
    cnt = float(N) * float(n)
    mean = s1 / cnt
    sd = math.sqrt(max(s2 / cnt - mean * mean, 1e-12))
    return items, utils, mean, sd


def _hash_key(seed: int) -> str:
    return hashlib.blake2b(f"decisioner-synthetic-world:{seed}".encode(), digest_size=16).hexdigest()


def _make_config(seed: int, experiences: list[str], categories: list[str]) -> dict[str, Any]:
    return {
        "identity": {"hash_key": _hash_key(seed)},
        "catalog": {"facets": ["category", "brand", "colour", "tags"], "price_bands": list(PRICE_BANDS)},
        "placements": [
            {
                "name": "home_recs",
                "kind": "recommendation",
                "slots": 4,
                "policy": {"kind": "epsilon_greedy", "epsilon": 0.1, "pool": 50},
            },
            {
                "name": "email_hero",
                "kind": "campaign",
                "policy": {"kind": "thompson"},
                "experiences": [
                    {"id": e, "facets": {"category": c}} for e, c in zip(experiences, categories)
                ],
            },
        ],
    }



class _Events:
    """Append-only event buffer: payloads, times and true people in generation order."""

    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []
        self.times: list[int] = []
        self.people: list[int] = []

    def add(self, payload: dict[str, Any], person: int) -> None:
        self.payloads.append(payload)
        self.times.append(payload["time"])
        self.people.append(person)


def generate_world(spec: WorldSpec) -> World:
    """Generate a synthetic world (catalog, people, identifiers, journeys, truth).

    Parameters
    ----------
    spec
        Sizes, seed and rates.

    Returns
    -------
    World
        The world in memory; :func:`write_world` persists it.

    Examples
    --------
    >>> w = generate_world(WorldSpec(n_people=20, n_items=30, seed=3))
    >>> len(w.event_person) == len(w.events)
    True
    """
    if not isinstance(spec, WorldSpec):
        raise ConfigError(f"expected a `WorldSpec`, got `{type(spec).__name__}`")
    with gc_paused():
        return _generate(spec)


def _generate(spec: WorldSpec) -> World:
    ss = np.random.SeedSequence(spec.seed)
    r_cat, r_pref, r_people, r_sess, r_view, r_extra = (np.random.default_rng(s) for s in ss.spawn(6))

    cat = _make_catalog(spec, r_cat)
    prefs = _make_preferences(spec, cat, r_pref)
    people = _make_people(spec, r_people)
    n_exp = min(_N_EXPERIENCES, spec.n_categories)
    exp_cats = np.argsort(-cat.category_pop, kind="stable")[:n_exp]
    exp_names = [cat.category_names[c] for c in exp_cats.tolist()]
    exp_ids = [f"promo-{c}" for c in exp_names]

    N = spec.n_people
    horizon = spec.days * DAY_MS

    # --- sessions (vectorised draws) -----------------------------------------------------
    rs = r_sess
    n_sess = 1 + rs.poisson(3.0, size=N)
    S = int(n_sess.sum())
    sp = np.repeat(np.arange(N), n_sess)
    slot = (rs.random(S) * people.n_slots[sp]).astype(np.int64)
    # Every member of a sharing pair uses the shared tablet at least once.
    sess_start = np.concatenate([[0], np.cumsum(n_sess)[:-1]])
    for p in np.nonzero(people.shared_slot >= 0)[0].tolist():
        sl = slot[sess_start[p]: sess_start[p] + n_sess[p]]
        if not (sl == people.shared_slot[p]).any():
            slot[sess_start[p]] = people.shared_slot[p]
    hourly = np.array(_HOURLY) / np.sum(_HOURLY)
    t0 = (
        spec.start_ms
        + rs.integers(0, spec.days, size=S) * DAY_MS
        + rs.choice(24, size=S, p=hourly) * HOUR_MS
        + rs.integers(0, HOUR_MS, size=S)
    )
    u_entry = rs.random(S)
    p_email = np.where(people.real_email[sp], 0.2, 0.0)
    entry = np.where(u_entry < 0.25, _ENTRY_AD, np.where(u_entry < 0.25 + p_email, _ENTRY_EMAIL, _ENTRY_DIRECT))
    n_views = np.minimum(rs.geometric(0.42, size=S), 8)
    app_u = rs.random(S)
    ad_src = rs.integers(0, len(_AD_SOURCES), size=S)
    ad_no = rs.integers(1, 6, size=S)
    camp = rs.integers(0, n_exp + 4, size=S)
    email_var = np.where(people.messy[sp] & (rs.random(S) < 0.5), rs.integers(1, 3, size=S), 0)
    login_u = rs.random(S)
    login_pos = rs.integers(0, n_views + 1)
    id_email = rs.random(S) < 0.3
    download = rs.random(S) < 0.03
    asset = rs.integers(0, len(_ASSETS), size=S)
    entry_gap = rs.integers(2_000, 90_000, size=(S, 2))
    end_gap = rs.integers(5_000, 120_000, size=(S, 2))

    # --- extra (non-session) events per person -------------------------------------------
    rx = r_extra
    n_store = np.where([c is not None for c in people.crm_id], rx.poisson(0.6, size=N), 0)
    n_opens = np.where(people.real_email, rx.poisson(1.0, size=N), 0)
    has_phone = np.array([s is not None for s in people.phone_spell])
    has_crm = np.array([c is not None for c in people.crm_id])
    has_uid = np.array([u is not None for u in people.user_id])
    n_calls = np.where(has_crm | has_phone, rx.poisson(0.25, size=N), 0)
    n_coupons = np.where(people.any_email | has_uid, rx.poisson(0.12, size=N), 0)

    # --- item draws: views and store purchases, ~ exp(u) --------------------------------
    views_pp = np.bincount(sp, weights=n_views, minlength=N).astype(np.int64)
    draws = views_pp + n_store

    def response(u_mean: float, u_sd: float) -> ResponseModel:
        return ResponseModel(
            item_category=cat.item_category, item_brand=cat.item_brand, item_colour=cat.item_colour,
            item_band=cat.item_band, item_tags=cat.item_tags, item_appeal=cat.appeal,
            item_inventory=cat.inventory, pref_category=prefs["pref_category"],
            pref_brand=prefs["pref_brand"], pref_colour=prefs["pref_colour"],
            pref_band=prefs["pref_band"], pref_tags=prefs["pref_tags"],
            experience_category=exp_cats, u_mean=u_mean, u_sd=u_sd,
        )

    # Utilities do not depend on the standardisation, so sample first, then fix mean and sd.
    drawn, drawn_u, u_mean, u_sd = _sample_items(response(0.0, 1.0), draws, r_view)
    model = response(u_mean, u_sd)

    person_off = np.concatenate([[0], np.cumsum(draws)])
    V = int(n_views.sum())
    view_sess = np.repeat(np.arange(S), n_views)
    view_first = np.concatenate([[0], np.cumsum(n_views)[:-1]])  # first view of each session
    views_before = np.concatenate([[0], np.cumsum(views_pp)[:-1]])
    local = np.arange(V) - views_before[sp[view_sess]]
    vidx = person_off[sp[view_sess]] + local
    view_item = drawn[vidx]
    pp = model.purchase_prob_from_utility(drawn_u[vidx], view_item)
    # An organic view is browsing, not a click on a recommendation: it is carted with the
    # purchase probability and 30 % of carts are bought (about 10 % of sessions convert).
    cart = r_view.random(V) < pp
    buy = cart & (r_view.random(V) < 0.3)
    view_gap = 2_000 + r_view.exponential(40_000.0, size=V).astype(np.int64)
    cart_gap = r_view.integers(3_000, 60_000, size=V)
    sess_buys = np.bincount(view_sess, weights=buy, minlength=S) > 0
    login = has_uid[sp] & (login_u < np.where(sess_buys, 0.85, 0.3))
    app = (entry == _ENTRY_DIRECT) & (app_u < 0.5)

    ev = _Events()
    skus = [r["id"] for r in cat.rows]
    prices = [float(r["price"]) for r in cat.rows]
    order_no = 0
    purchases: list[tuple[int, int, int]] = []  # (person, item, time) for returns

    sp_l, slot_l, t0_l, entry_l = sp.tolist(), slot.tolist(), t0.tolist(), entry.tolist()
    nv_l, vf_l = n_views.tolist(), view_first.tolist()
    app_l, src_l, adn_l, camp_l = app.tolist(), ad_src.tolist(), ad_no.tolist(), camp.tolist()
    evar_l, login_l, lpos_l, idem_l = email_var.tolist(), login.tolist(), login_pos.tolist(), id_email.tolist()
    dl_l, asset_l, eg_l, endg_l = download.tolist(), asset.tolist(), entry_gap.tolist(), end_gap.tolist()
    vi_l, cart_l, buy_l = view_item.tolist(), cart.tolist(), buy.tolist()
    vg_l, cg_l = view_gap.tolist(), cart_gap.tolist()
    day0 = spec.start_ms

    for s in range(S):
        p = sp_l[s]
        t = t0_l[s]
        ck = people.slot_cookie[p][slot_l[s]]
        kind = people.slot_kind[p][slot_l[s]]
        dev = _DEVICES[kind]
        ch = "app" if (app_l[s] and kind == _MOBILE) else "web"
        e = entry_l[s]
        if e == _ENTRY_AD:
            src = _AD_SOURCES[src_l[s]]
            ev.add({"type": "ad_click", "time": t, "ids": {"cookie": ck}, "channel": "ads",
                    "device": dev, "attrs": {"source": src}, "campaign": f"ads-{src}-{adn_l[s]:02d}"}, p)
            t += eg_l[s][0]
        elif e == _ENTRY_EMAIL:
            em = people.email_spell[p][evar_l[s]]
            c = camp_l[s]
            campaign = exp_ids[c] if c < n_exp else f"newsletter-w{(t - day0) // (7 * DAY_MS) + 1:02d}"
            ev.add({"type": "email_open", "time": t, "ids": {"email": em}, "channel": "email",
                    "device": dev, "campaign": campaign}, p)
            t += eg_l[s][0]
            ev.add({"type": "email_click", "time": t, "ids": {"email": em}, "channel": "email",
                    "device": dev, "campaign": campaign}, p)
            t += eg_l[s][1]
        uid = people.user_id[p]
        logged = False
        lp = lpos_l[s] if login_l[s] else -1
        n = nv_l[s]
        basket: list[int] = []

        def identify(t: int) -> None:
            ids = {"cookie": ck, "user_id": uid}
            if idem_l[s] and people.email[p] is not None:
                ids["email"] = people.email_spell[p][evar_l[s]]
            ev.add({"type": "identify", "time": t, "ids": ids, "channel": ch, "device": dev}, p)

        v0 = vf_l[s]
        for j in range(n):
            if j == lp:
                identify(t)
                logged = True
                t += 1_000
            v = v0 + j
            it = vi_l[v]
            ids: dict[str, str] = {"cookie": ck, "user_id": uid} if logged and uid else {"cookie": ck}
            ev.add({"type": "view", "time": t, "ids": ids, "channel": ch, "device": dev, "item": skus[it]}, p)
            if cart_l[v]:
                t += cg_l[v]
                ev.add({"type": "add_to_cart", "time": t, "ids": dict(ids), "channel": ch, "device": dev,
                        "item": skus[it], "value": prices[it]}, p)
            if buy_l[v]:
                basket.append(it)
            t += vg_l[v]
        if lp == n:
            identify(t)
            logged = True
            t += 1_000
        if basket:
            t += endg_l[s][0]
            basket = list(dict.fromkeys(basket))
            if logged and uid:
                ids = {"cookie": ck, "user_id": uid}
            elif people.email[p] is not None:  # guest checkout asks for an email
                ids = {"cookie": ck, "email": people.email_spell[p][evar_l[s]]}
            else:
                ids = {"cookie": ck}
            order_no += 1
            payload: dict[str, Any] = {"type": "purchase", "time": t, "ids": ids, "channel": ch, "device": dev}
            if len(basket) == 1:
                payload["item"] = skus[basket[0]]
            else:
                payload["items"] = [skus[i] for i in basket]
            payload["value"] = round(sum(prices[i] for i in basket), 2)
            payload["order_id"] = f"o-{order_no:07d}"
            ev.add(payload, p)
            purchases.extend((p, i, t) for i in basket)
        if dl_l[s]:
            t += endg_l[s][1]
            a = "app" if kind == _MOBILE else _ASSETS[asset_l[s]]
            ids = {"cookie": ck, "user_id": uid} if logged and uid else {"cookie": ck}
            ev.add({"type": "download", "time": t, "ids": ids, "channel": ch, "device": dev,
                    "attrs": {"asset": a}}, p)

    # --- store, CRM, call centre, coupons, newsletter opens ------------------------------
    def times(k: int) -> list[int]:
        out: list[int] = (day0 + rx.integers(0, horizon, size=k)).tolist()
        return out

    store_people = np.nonzero(has_crm)[0]
    enrol_t = times(store_people.size)
    enrol_u = rx.random((store_people.size, 3)).tolist()
    for p, t, (ue, uph, uu) in zip(store_people.tolist(), enrol_t, enrol_u):
        # A loyalty enrolment synced from the CRM: joins the CRM id to the person's contacts.
        ids = {"crm_id": people.crm_id[p] or ""}
        if people.email[p] is not None and ue < 0.7:
            ids["email"] = people.email_spell[p][0]
        ph = people.phone_spell[p]
        if ph is not None and uph < 0.6:
            ids["phone"] = ph[1] if people.messy[p] else ph[0]
        uid = people.user_id[p]
        if uid is not None and uu < 0.3:
            ids["user_id"] = uid
        if len(ids) > 1:
            ev.add({"type": "identify", "time": t, "ids": ids, "channel": "store"}, p)

    store_t = times(int(n_store.sum()))
    store_ph = rx.random(len(store_t)).tolist()
    k = 0
    for p in np.nonzero(n_store)[0].tolist():
        base = int(person_off[p] + views_pp[p])
        for j in range(int(n_store[p])):
            it = int(drawn[base + j])
            t = store_t[k]
            ids = {"crm_id": people.crm_id[p] or ""}
            ph = people.phone_spell[p]
            if ph is not None and store_ph[k] < 0.3:
                ids["phone"] = ph[0]
            k += 1
            if cat.inventory[it] == 0:
                continue
            order_no += 1
            ev.add({"type": "purchase", "time": t, "ids": ids, "channel": "store", "item": skus[it],
                    "value": prices[it], "order_id": f"o-{order_no:07d}"}, p)
            purchases.append((p, it, t))

    ret_u = rx.random(len(purchases)).tolist()
    ret_gap = rx.integers(DAY_MS, 10 * DAY_MS, size=len(purchases)).tolist()
    ret_ph = rx.random(len(purchases)).tolist()
    for (p, it, t), ur, g, uph in zip(purchases, ret_u, ret_gap, ret_ph):
        if ur >= 0.07 or t + g >= day0 + horizon:
            continue
        crm = people.crm_id[p]
        ph = people.phone_spell[p]
        uid = people.user_id[p]
        if crm is not None:
            ids = {"crm_id": crm}
            if ph is not None and uph < 0.3:
                ids["phone"] = ph[0]
            ch = "store"
        elif uid is not None:
            ids, ch = {"user_id": uid}, "web"
        elif people.email[p] is not None:
            ids, ch = {"email": people.email_spell[p][0]}, "web"
        else:
            continue
        ev.add({"type": "return", "time": t + g, "ids": ids, "channel": ch, "item": skus[it], "value": prices[it]}, p)

    call_t = times(int(n_calls.sum()))
    call_u = rx.random((len(call_t), 2)).tolist()
    call_reason = rx.integers(0, len(_CALL_REASONS), size=len(call_t)).tolist()
    k = 0
    for p in np.nonzero(n_calls)[0].tolist():
        crm = people.crm_id[p]
        ph = people.phone_spell[p]
        for _ in range(int(n_calls[p])):
            u1, u2 = call_u[k]
            if crm is not None and ph is not None:
                # The agent finds the account from the caller's number 40 % of the time.
                one = {"crm_id": crm} if u2 < 0.5 else {"phone": ph[0]}
                ids = {"crm_id": crm, "phone": ph[0]} if u1 < 0.4 else one
            elif crm is not None:
                ids = {"crm_id": crm}
            else:
                assert ph is not None
                ids = {"phone": ph[int(u2 * len(ph)) if people.messy[p] else 0]}
            ev.add({"type": "service_call", "time": call_t[k], "ids": ids, "channel": "call_center",
                    "reason": _CALL_REASONS[call_reason[k]]}, p)
            k += 1

    coup_t = times(int(n_coupons.sum()))
    coup_u = rx.random((len(coup_t), 2)).tolist()
    coup_code = rx.integers(0, len(_COUPONS), size=len(coup_t)).tolist()
    k = 0
    for p in np.nonzero(n_coupons)[0].tolist():
        for _ in range(int(n_coupons[p])):
            u1, u2 = coup_u[k]
            uid = people.user_id[p]
            if people.email[p] is not None and (uid is None or u1 < 0.5):
                ids = {"email": people.email_spell[p][0]}
            else:
                ids = {"user_id": uid or ""}
            ev.add({"type": "coupon_redeem", "time": coup_t[k], "ids": ids,
                    "channel": "store" if u2 < 0.3 else "web", "coupon": _COUPONS[coup_code[k]]}, p)
            k += 1

    open_t = times(int(n_opens.sum()))
    open_c = rx.integers(0, n_exp + 4, size=len(open_t)).tolist()
    k = 0
    for p in np.nonzero(n_opens)[0].tolist():
        for _ in range(int(n_opens[p])):
            t = open_t[k]
            c = open_c[k]
            campaign = exp_ids[c] if c < n_exp else f"newsletter-w{(t - day0) // (7 * DAY_MS) + 1:02d}"
            ev.add({"type": "email_open", "time": t, "ids": {"email": people.email_spell[p][0]},
                    "channel": "email", "campaign": campaign}, p)
            k += 1

    order = np.argsort(np.array(ev.times, dtype=np.int64), kind="stable")
    events = [ev.payloads[i] for i in order.tolist()]
    event_person = np.array(ev.people, dtype=np.int32)[order]

    return World(
        spec=spec,
        items=cat.rows,
        events=events,
        event_person=event_person,
        identifiers=people.identifiers,
        shared_identifiers=people.shared,
        spellings=people.spellings,
        vocabularies={"category": cat.category_names, "brand": cat.brand_names,
                      "colour": cat.colour_names, "tags": cat.tag_names},
        response=model,
        config=_make_config(spec.seed, exp_ids, exp_names),
    )
