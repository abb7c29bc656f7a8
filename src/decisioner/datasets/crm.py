"""A seeded world of CRM records from three systems (marketing, commerce, service) about the same
people, with the faults real loads carry: typos (a letter dropped, doubled, swapped or
replaced), case and spacing noise, missing fields, day and month swapped in dates, people who
moved (a new street and zip) or changed email, households (two people sharing surname, street,
zip and a landline) and a small pool of zip codes, so most strangers share a zip with
thousands of others. It is built to be hard in the ways that matter, not to flatter a matcher:
the rates below are fixed, not tuned.

:func:`crm_records` returns the columns (``rec_id``, ``source``, ``entity``: the true person,
and the fields); :data:`CRM_SPEC` is a reasonable set of match rules for them.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from ..config.matching import ComparisonSpec, LevelSpec, MatchingSpec

__all__ = ["CRM_SPEC", "CRM_FIELDS", "crm_records", "crm_spec"]

CRM_FIELDS: Final = ("first_name", "last_name", "dob", "street", "zip", "city", "email", "phone")
SOURCES: Final = ("marketing", "commerce", "service")
#: per field: chance a record lacks it, chance of a typo in it
MISSING: Final = {"first_name": 0.02, "last_name": 0.01, "dob": 0.25, "street": 0.15, "zip": 0.1, "city": 0.1,
                  "email": 0.3, "phone": 0.4}
TYPO: Final = {"first_name": 0.08, "last_name": 0.08, "dob": 0.03, "street": 0.1, "zip": 0.02, "city": 0.05,
               "email": 0.03, "phone": 0.02}
_ONSETS: Final = ("b", "br", "c", "ch", "d", "f", "g", "gr", "h", "j", "k", "l", "m", "n", "p", "r", "s", "sh", "st",
                  "t", "th", "v", "w", "z", "")
_VOWELS: Final = ("a", "e", "i", "o", "u", "ai", "ea", "ie", "ou", "y")
_CODAS: Final = ("", "n", "r", "l", "s", "th", "ck", "m", "nd", "tt", "ll", "rt")
_STREETS: Final = ("street", "road", "avenue", "drive", "lane", "place", "court", "boulevard", "way", "terrace")
_DOMAINS: Final = ("gmail.com", "outlook.com", "yahoo.com", "icloud.com", "proton.me", "example.net")
_AREAS: Final = (201, 202, 212, 213, 305, 312, 415, 512, 617, 646, 702, 713, 718, 805, 919)


def _vocab(rng: np.random.Generator, n: int, syllables: tuple[int, int]) -> list[str]:
    out: set[str] = set()
    while len(out) < n:
        k = int(rng.integers(syllables[0], syllables[1] + 1))
        w = "".join(_ONSETS[rng.integers(len(_ONSETS))] + _VOWELS[rng.integers(len(_VOWELS))] for _ in range(k))
        out.add(w + _CODAS[rng.integers(len(_CODAS))])
    return sorted(out)


def _zipf(rng: np.random.Generator, n_vocab: int, size: int, a: float = 1.1) -> np.ndarray:
    p = 1.0 / np.arange(1, n_vocab + 1) ** a
    return rng.choice(n_vocab, size=size, p=p / p.sum())


def _typo(s: str, r: np.random.Generator) -> str:
    if len(s) < 2:
        return s
    i = int(r.integers(len(s) - 1))
    kind = int(r.integers(4))
    if kind == 0:
        return s[:i] + s[i + 1:]
    if kind == 1:
        return s[:i] + s[i] + s[i:]
    if kind == 2:
        return s[:i] + s[i + 1] + s[i] + s[i + 2:]
    c = "0123456789"[int(r.integers(10))] if s[i].isdigit() else "abcdefghijklmnopqrstuvwxyz"[int(r.integers(26))]
    return s[:i] + c + s[i + 1:]


def crm_records(people: int, *, seed: int = 0, records_per_person: float = 2.0) -> dict[str, list[str | None]]:
    """Columns of CRM records about ``people`` people (about ``records_per_person`` each, at least
    one), from the three systems; ``entity`` is the true person. Seeded: equal seeds give equal
    records.

    >>> cols = crm_records(50, seed=1)
    >>> sorted(cols)[:4], len(cols["rec_id"]) >= 50
    (['city', 'dob', 'email', 'entity'], True)
    """
    rng = np.random.default_rng(seed)
    firsts = _vocab(rng, 3000, (1, 3))
    lasts = _vocab(rng, 20000, (2, 3))
    streets = _vocab(rng, 4000, (2, 3))
    cities = [c.title() for c in _vocab(rng, 300, (2, 3))]
    n_zip = 400  # few zips: strangers share them by the thousand
    zips = [f"{z:05d}" for z in rng.choice(np.arange(1000, 99999), n_zip, replace=False).tolist()]
    zip_city = rng.integers(len(cities), size=n_zip)
    fi = _zipf(rng, len(firsts), people)
    la = _zipf(rng, len(lasts), people, 0.9)
    zi = _zipf(rng, n_zip, people, 0.5)
    st = rng.integers(len(streets), size=people)
    stype = rng.integers(len(_STREETS), size=people)
    num = rng.integers(1, 400, size=people)
    year = rng.integers(1935, 2006, size=people)
    month = rng.integers(1, 13, size=people)
    day = rng.integers(1, 29, size=people)
    phone = rng.integers(0, 10_000_000, size=people)
    area = rng.integers(len(_AREAS), size=people)
    # households: every tenth person shares the previous one's surname, address, zip and phone
    home = np.flatnonzero(rng.random(people) < 0.1)
    home = home[home > 0]
    for arr in (la, zi, st, stype, num, phone, area):
        arr[home] = arr[home - 1]
    counts = np.maximum(1, rng.poisson(records_per_person - 1, size=people) + 1)
    owner = np.repeat(np.arange(people), counts)
    n = owner.shape[0]
    r = np.random.default_rng(seed + 1)
    moved = r.random(n) < 0.05
    new_email = r.random(n) < 0.05
    swap = r.random(n) < 0.02
    src = r.integers(len(SOURCES), size=n)
    out: dict[str, list[str | None]] = {k: [] for k in ("rec_id", "source", "entity", *CRM_FIELDS)}
    miss = {f: r.random(n) < MISSING[f] for f in CRM_FIELDS}
    typo = {f: r.random(n) < TYPO[f] for f in CRM_FIELDS}
    noise = r.random(n)
    for i in range(n):
        p = int(owner[i])
        s_i, z_i, num_i = int(st[p]), int(zi[p]), int(num[p])
        if moved[i]:
            s_i, z_i, num_i = int(r.integers(len(streets))), int(r.integers(n_zip)), int(r.integers(1, 400))
        first, last = firsts[fi[p]], lasts[la[p]]
        d, m = int(day[p]), int(month[p])
        if swap[i] and d <= 12:
            d, m = m, d
        mail_tag = f"{p}" if not new_email[i] else f"{p}x{i % 89}"  # one mailbox per person
        vals = {
            "first_name": first, "last_name": last, "dob": f"{int(year[p]):04d}-{m:02d}-{d:02d}",
            "street": f"{num_i} {streets[s_i]} {_STREETS[int(stype[p])]}", "zip": zips[z_i],
            "city": cities[int(zip_city[z_i])], "email": f"{first}.{last}{mail_tag}@{_DOMAINS[p % len(_DOMAINS)]}",
            "phone": f"+1{_AREAS[int(area[p])]}{2000000 + int(phone[p]) % 8000000:07d}",
        }
        rec: dict[str, str | None] = {}
        for f in CRM_FIELDS:
            v = vals[f]
            if typo[f][i]:
                v = _typo(v, r)
            if f in ("first_name", "last_name", "city", "street"):
                v = v.upper() if noise[i] < 0.1 else (v.title() if noise[i] < 0.6 else v)
                if noise[i] > 0.95:
                    v = "  " + v.replace(" ", "  ")
            rec[f] = None if miss[f][i] else v
        out["rec_id"].append(f"{SOURCES[int(src[i])][0]}-{i}")
        out["source"].append(SOURCES[int(src[i])])
        out["entity"].append(str(p))
        for f in CRM_FIELDS:
            out[f].append(rec[f])
    return out


def _name(field: str, *, identifying: bool = False) -> ComparisonSpec:
    levels: tuple[LevelSpec, ...] = (LevelSpec(method="exact"), LevelSpec(method="jaro_winkler", threshold=0.92),
                                     LevelSpec(method="jaro_winkler", threshold=0.8), LevelSpec(method="metaphone"))
    # a typo in a short name ("sa" / "as") is far by Jaro-Winkler: one edit is no conflict. No
    # `initial` level: this world has one-letter first names ("a", "y") and never abbreviates one
    if identifying:
        levels += (LevelSpec(method="damerau", threshold=1),)
    return ComparisonSpec(field=field, kind="name", term_frequency=True, identifying=identifying, levels=levels)


def crm_spec(*, phone_kind: str = "phone", **overrides: object) -> MatchingSpec:
    """Match rules for :func:`crm_records`; ``phone_kind="id"`` compares phone numbers as given
    (they are E.164 already) instead of through libphonenumber (about 30 us a distinct number)."""
    base: dict[str, object] = dict(
        id_field="rec_id", source_field="source", truth_field="entity", link_type="dedupe",
        blocking=(("email",), ("phone",), ("last_name", "dob"), ("first_name", "dob"),
                  ("first_name:metaphone", "last_name:metaphone", "zip"), ("last_name", "street")),
        comparisons=(
            _name("first_name", identifying=True), _name("last_name"),
            ComparisonSpec(field="dob", kind="date", identifying=True, levels=(
                LevelSpec(method="exact"), LevelSpec(method="damerau", threshold=1),
                LevelSpec(method="date_transposed"), LevelSpec(method="date_year"))),
            ComparisonSpec(field="street", kind="address", levels=(
                LevelSpec(method="exact"), LevelSpec(method="jaro_winkler", threshold=0.9),
                LevelSpec(method="jaro_winkler", threshold=0.75))),
            ComparisonSpec(field="zip", kind="zip", levels=(LevelSpec(method="exact"),)),
            ComparisonSpec(field="city", kind="text", levels=(
                LevelSpec(method="exact"), LevelSpec(method="jaro_winkler", threshold=0.9))),
            ComparisonSpec(field="email", kind="email", levels=(
                LevelSpec(method="exact"), LevelSpec(method="damerau", threshold=1))),
            ComparisonSpec(field="phone", kind=phone_kind, levels=(  # type: ignore[arg-type]
                LevelSpec(method="exact"), LevelSpec(method="damerau", threshold=1))),
        ),
    )
    base.update(overrides)
    return MatchingSpec(**base)  # type: ignore[arg-type]


#: match rules for :func:`crm_records`
CRM_SPEC: Final = crm_spec()
