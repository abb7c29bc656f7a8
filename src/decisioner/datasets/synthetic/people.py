"""The people of a synthetic world: latent preferences over every facet of the catalog, and
their identifiers (cookies per device, email with spellings, user id, CRM id, phone), including
placeholder emails and household tablets shared by two people."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np

from .catalog import SyntheticCatalog
from .draws import dirichlet, topk_mask
from .spec import F32, I64, PRICE_BANDS, Bool, WorldSpec

__all__ = ["DEVICES", "MOBILE", "TABLET", "People", "make_preferences", "make_people"]

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
#: US area codes in service (libphonenumber holds every exchange 200-999 of each valid), so
#: every synthetic phone number is a valid one; a person's draw in 201..989 picks one by index.
_AREA_CODES: Final[tuple[int, ...]] = (
    201, 202, 206, 212, 213, 214, 215, 216, 217, 303, 305, 310, 312, 313, 314, 315, 404, 405,
    406, 407, 408, 412, 414, 415, 503, 504, 505, 512, 513, 515, 602, 603, 608, 612, 615, 617,
    702, 703, 704, 706, 713, 718, 801, 802, 804, 808, 901, 904, 907, 913, 916, 919,
)
#: Device kinds of a person's device slots, by index; a household tablet can be shared.
DEVICES: Final[tuple[str, ...]] = ("desktop", "mobile", "tablet")
MOBILE: Final = 1
TABLET: Final = 2


def make_preferences(spec: WorldSpec, cat: SyntheticCatalog, rng: np.random.Generator) -> dict[str, F32]:
    """Latent log-preferences ``log(K theta)`` of every person over every facet."""
    N, K, B, C, T = spec.n_people, spec.n_categories, spec.n_brands, spec.n_colours, spec.n_tags
    # Category: 2-4 favourites (drawn ~ category popularity) hold 85 % of the mass.
    k = rng.integers(2, 5, size=N)
    fav = topk_mask(rng, np.broadcast_to(np.log(cat.category_pop), (N, K)).copy(), k)
    w = rng.standard_gamma(2.0, size=(N, K)) * fav
    theta_c = 0.85 * w / w.sum(axis=1, keepdims=True) + 0.15 * cat.category_pop
    # Brand: 2-5 favourites, mostly among brands selling in the favourite categories; the rest
    # of the mass follows brand popularity.
    sells = (fav.astype(np.float64) @ cat.brand_category.T.astype(np.float64)) > 0.0
    logw = np.log(cat.brand_pop)[None, :] + np.where(sells, 0.0, math.log(0.05))
    favb = topk_mask(rng, logw, rng.integers(2, 6, size=N))
    wb = rng.standard_gamma(1.0, size=(N, B)) * favb
    theta_b = 0.4 * wb / wb.sum(axis=1, keepdims=True) + 0.6 * cat.brand_pop
    # Colour: mild personal taste around colour popularity.
    theta_col = 0.5 * dirichlet(rng, 1.0, (N, C)) + 0.5 * cat.colour_pop
    # Price band: an ideal band and a sensitivity (Gaussian in band index).
    nb = len(PRICE_BANDS) + 1
    mu = np.clip(rng.normal(1.8, 1.0, size=N), 0.0, nb - 1.0)
    sens = rng.gamma(2.0, 0.4, size=N)
    q = np.exp(-sens[:, None] * (np.arange(nb)[None, :] - mu[:, None]) ** 2)
    theta_pb = 0.8 * q / q.sum(axis=1, keepdims=True) + 0.2 / nb
    # Tags: a sparse taste over tags, half of it uniform.
    theta_t = 0.5 * dirichlet(rng, 0.2, (N, T)) + 0.5 / T
    return {
        "pref_category": np.log(K * theta_c).astype(np.float32),
        "pref_brand": np.log(B * theta_b).astype(np.float32),
        "pref_colour": np.log(C * theta_col).astype(np.float32),
        "pref_band": np.log(nb * theta_pb).astype(np.float32),
        "pref_tags": np.log(T * theta_t).astype(np.float32),
    }


@dataclass
class People:
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


def make_people(spec: WorldSpec, rng: np.random.Generator) -> People:
    """Draw every person's devices, email, user id, CRM id and phone, their spellings, and the
    household tablets that pairs of people share."""
    N = spec.n_people
    n_dev = rng.choice(np.array([1, 2, 3]), size=N, p=[0.4, 0.42, 0.18])
    has_dev = topk_mask(rng, np.broadcast_to(np.log([0.35, 0.5, 0.15]), (N, 3)).copy(), n_dev)
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
    owners_c = np.nonzero(has_dev[:, TABLET])[0]
    borrowers_c = np.nonzero(~has_dev[:, TABLET])[0]
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
            a = _AREA_CODES[(int(area[p]) - 201) % len(_AREA_CODES)]
            x, line = 200 + int(sub[p]) // 10_000, int(sub[p]) % 10_000
            canon = f"+1{a}{x:03d}{line:04d}"
            pspells = (canon, f"({a}) {x:03d}-{line:04d}", f"{a}-{x:03d}-{line:04d}", f"+1 {a} {x:03d} {line:04d}")
            add("phone", canon, p, pspells)
            phone_spell.append(pspells)
        else:
            phone_spell.append(None)

    shared_slot = np.full(N, -1, dtype=np.int64)
    for o, b in zip(owners.tolist(), borrowers.tolist()):
        s = slot_kind[o].index(TABLET)
        c = slot_cookie[o][s]
        shared_slot[o] = s
        slot_cookie[b].append(c)
        slot_kind[b].append(TABLET)
        shared_slot[b] = len(slot_cookie[b]) - 1
        shared[("cookie", c)] = (o, b)
    return People(
        slot_cookie=slot_cookie, slot_kind=slot_kind,
        n_slots=np.array([len(s) for s in slot_cookie], dtype=np.int64), shared_slot=shared_slot,
        email=email, email_spell=email_spell, real_email=real_email, any_email=has_email,
        placeholder=placeholder, user_id=user_id, crm_id=crm_id, phone_spell=phone_spell,
        messy=messy, identifiers=identifiers, shared=shared, spellings=spellings,
    )
