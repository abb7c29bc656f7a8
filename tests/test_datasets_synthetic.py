"""Tests of the seeded synthetic world (decisioner.datasets.synthetic)."""

from __future__ import annotations

import re
import tomllib
from collections import Counter, defaultdict
from pathlib import Path

import msgspec
import numpy as np
import pytest

from decisioner.config import EpsilonGreedySpec, IdentitySpec, ThompsonSpec, load_config
from decisioner.datasets import (
    ResponseModel,
    World,
    WorldSpec,
    generate_world,
    load_world,
    write_world,
)
from decisioner.errors import ConfigError
from decisioner.identity import normalise
from decisioner.schemas import EVENT_TYPES, decode_event

FILES = ("catalog.jsonl", "events.jsonl", "truth.npz", "truth.json", "config.toml")


@pytest.fixture(scope="module")
def small() -> World:
    return generate_world(
        WorldSpec(n_people=400, n_items=300, seed=7, shared_device_rate=0.05, placeholder_rate=0.05)
    )


@pytest.fixture(scope="module")
def mid() -> World:
    return generate_world(WorldSpec(n_people=3000, n_items=2000, seed=11))


@pytest.fixture(scope="module")
def wide() -> World:
    """Few people, a full-size catalog: the response model is calibrated at 5,000 items."""
    return generate_world(WorldSpec(n_people=300, n_items=5000, seed=5))


def _canonical(world: World) -> dict[tuple[str, str], tuple[str, str, int]]:
    """(type, spelling) -> (type, canonical value, true person)."""
    return {(t, v): world.identifiers[i] for t, v, i in world.spellings}


# --- determinism ---------------------------------------------------------------------------


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    spec = WorldSpec(n_people=200, n_items=150, seed=3, placeholder_rate=0.05)
    a = write_world(generate_world(spec), tmp_path / "a")
    b = write_world(generate_world(spec), tmp_path / "b")
    for name in FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_different_seed_gives_different_world(tmp_path: Path) -> None:
    a = write_world(generate_world(WorldSpec(n_people=200, n_items=150, seed=3)), tmp_path / "a")
    c = write_world(generate_world(WorldSpec(n_people=200, n_items=150, seed=4)), tmp_path / "c")
    for name in FILES:
        assert (a / name).read_bytes() != (c / name).read_bytes(), name


# --- events --------------------------------------------------------------------------------


def test_every_event_decodes(small: World) -> None:
    for e in small.events:
        decode_event(e)
        decode_event(msgspec.json.encode(e))
    types = {e["type"] for e in small.events}
    # `click` is left to the closed-loop simulator (clicks on what the engine shows), `consent`
    # events to consent platforms (the people of a world consent by default).
    assert types == set(EVENT_TYPES) - {"click", "consent"}


def test_events_sorted_and_aligned_with_truth(small: World) -> None:
    times = np.array([e["time"] for e in small.events])
    assert (np.diff(times) >= 0).all()
    assert small.event_person.dtype == np.int32
    assert small.event_person.shape == (len(small.events),)
    assert set(small.event_person.tolist()) <= set(range(small.spec.n_people))
    spec = small.spec
    assert times.min() >= spec.start_ms
    assert times.max() < spec.start_ms + (spec.days + 1) * 86_400_000


def test_items_and_events_reference_the_catalog(small: World) -> None:
    skus = {r["id"] for r in small.items}
    assert len(skus) == len(small.items) == small.spec.n_items
    for e in small.events:
        for sku in ([e["item"]] if "item" in e else []) + e.get("items", []):
            assert sku in skus
    row = small.items[0]
    assert list(row) == ["id", "title", "category", "brand", "colour", "tags", "price", "inventory"]
    assert row["id"] == "sku-00001"
    prices = np.array([r["price"] for r in small.items])
    assert prices.min() >= 5.0 and prices.max() <= 500.0
    assert all(1 <= len(r["tags"]) <= 3 and len(set(r["tags"])) == len(r["tags"]) for r in small.items)


def test_catalog_shape_on_a_full_size_catalog(wide: World) -> None:
    inv = np.array([r["inventory"] for r in wide.items])
    assert 0.015 <= (inv == 0).mean() <= 0.045  # ~3 % out of stock
    brand_cats: defaultdict[str, set[str]] = defaultdict(set)
    for r in wide.items:
        brand_cats[r["brand"]].add(r["category"])
    assert max(len(c) for c in brand_cats.values()) <= 3
    # Zipf-like appeal: the most viewed 10 % of items take a large share of the views.
    views = Counter(e["item"] for e in wide.events if e["type"] == "view")
    counts = np.sort(np.array(list(views.values())))[::-1]
    assert counts[: len(wide.items) // 10].sum() / counts.sum() > 0.4


def test_event_volume_per_person(mid: World) -> None:
    # 20,000 people should give 200k-400k events: 10-20 per person.
    per_person = len(mid.events) / mid.spec.n_people
    assert 10.0 <= per_person <= 20.0
    assert set(np.unique(mid.event_person).tolist()) == set(range(mid.spec.n_people))


def test_views_reveal_preferences(mid: World) -> None:
    cat_of = {r["id"]: i for i, r in enumerate(mid.items)}
    item_cat = mid.response.item_category
    top3 = np.argsort(-mid.response.pref_category, axis=1)[:, :3]
    hits = total = 0
    for e, p in zip(mid.events, mid.event_person.tolist()):
        if e["type"] == "view":
            total += 1
            hits += int(item_cat[cat_of[e["item"]]] in top3[p])
    # A uniform browser would put 3/24 = 12.5 % of views in any 3 categories.
    assert hits / total > 0.6


# --- identity truth ------------------------------------------------------------------------


def test_truth_covers_every_identifier_in_events(small: World) -> None:
    canon = _canonical(small)
    shared = small.shared_identifiers
    for e, p in zip(small.events, small.event_person.tolist()):
        for t, v in e["ids"].items():
            ct, cv, owner = canon[(t, v)]
            assert small.owner(t, v) == owner
            if (ct, cv) in shared:
                assert p in shared[(ct, cv)] and owner == shared[(ct, cv)][0]
            elif owner == -1:
                assert t == "email"  # a placeholder: nobody's
            else:
                assert owner == p


def test_spellings_exercise_normalisation(small: World) -> None:
    canon = _canonical(small)
    seen = [(t, v) for e in small.events for t, v in e["ids"].items()]
    noisy_email = [v for t, v in seen if t == "email" and v != canon[(t, v)][1]]
    assert noisy_email
    assert all(v.strip().lower() == canon[("email", v)][1] for v in noisy_email)
    phones = [v for t, v in seen if t == "phone"]
    assert any(v.startswith("+1") and v[1:].isdigit() for v in phones)
    assert any(v.startswith("(") for v in phones)
    for t, v, _ in small.identifiers:
        if t == "phone":
            assert re.fullmatch(r"\+1\d{10}", v)
        if t == "cookie":
            assert re.fullmatch(r"ck-[0-9a-f]{16}", v)


def test_phone_numbers_are_valid_and_each_spelling_is_one_e164(mid: World) -> None:
    """Every synthetic number is one libphonenumber holds valid, and every spelling of it (as
    events carry them) normalises, with the default region, to the canonical E.164 value."""
    import phonenumbers

    phones = [(v, mid.identifiers[i][1]) for t, v, i in mid.spellings if t == "phone"]
    assert len({c for _, c in phones}) > 100
    for spelling, canonical in phones:
        assert phonenumbers.is_valid_number(phonenumbers.parse(canonical))
        assert normalise("phone", spelling, default_region=IdentitySpec().default_phone_region) == canonical


def test_identifiers_per_person_between_2_and_6(mid: World) -> None:
    per_person = Counter(p for _, _, p in mid.identifiers if p >= 0)
    assert set(per_person) == set(range(mid.spec.n_people))
    assert min(per_person.values()) >= 2 and max(per_person.values()) <= 6
    keys = [(t, v) for t, v, _ in mid.identifiers]
    assert len(keys) == len(set(keys))
    types = Counter(t for t, _ in keys)
    assert set(types) == {"cookie", "email", "user_id", "crm_id", "phone"}


def test_shared_devices_at_configured_rate(mid: World) -> None:
    # 3 % of 3,000 people = 45 pairs; the count is exact (pairs = round(rate * n / 2)).
    users = [u for us in mid.shared_identifiers.values() for u in us]
    assert len(users) == len(set(users)) == 90
    canon = _canonical(mid)
    seen: defaultdict[tuple[str, str], set[int]] = defaultdict(set)
    for e, p in zip(mid.events, mid.event_person.tolist()):
        if "cookie" in e["ids"]:
            seen[canon[("cookie", e["ids"]["cookie"])][:2]].add(p)
    owner = {(t, v): p for t, v, p in mid.identifiers}
    for key, us in mid.shared_identifiers.items():
        assert key[0] == "cookie" and len(us) == 2
        assert seen[key] == set(us)  # both household members use it
        assert owner[key] == us[0]  # the truth maps it to its owner
    # No other cookie is used by two people.
    assert all(len(ps) == 1 for k, ps in seen.items() if k not in mid.shared_identifiers)


def test_placeholder_emails(small: World) -> None:
    junk = {v for t, v, p in small.identifiers if p == -1}
    assert junk and junk <= {"test@test.com", "null", "none@none.com", "noemail@example.com", "n/a", "asdf@asdf.com"}
    users: defaultdict[str, set[int]] = defaultdict(set)
    for e, p in zip(small.events, small.event_person.tolist()):
        v = e["ids"].get("email")
        if v in junk:
            users[v].add(p)
    everyone = set().union(*users.values())
    assert 0 < len(everyone) <= round(0.05 * small.spec.n_people)
    assert max(len(u) for u in users.values()) >= 2  # a placeholder spans several people


def test_no_placeholders_by_default(mid: World) -> None:
    assert all(p >= 0 for _, _, p in mid.identifiers)


# --- response model ------------------------------------------------------------------------


def test_click_rates_random_vs_preferred(wide: World) -> None:
    r = wide.response
    rng = np.random.default_rng(0)
    random_ctr, top_ctr = [], []
    for p in range(200):
        items = rng.integers(0, r.n_items, size=100)
        random_ctr.append(r.click_prob(p, items, np.zeros(100, dtype=np.int64)).mean())
        top = np.argsort(-r.utility(p, np.arange(r.n_items)))[:4]
        top_ctr.append(r.click_prob(p, top, np.zeros(4, dtype=np.int64)).mean())
    rand, best = float(np.mean(random_ctr)), float(np.mean(top_ctr))
    # Stated bands (seed 0 draws, 200 people): random 1-3 %, each person's top 4 items 10-25 %.
    assert 0.01 <= rand <= 0.03
    assert 0.10 <= best <= 0.25
    assert best >= 5.0 * rand


def test_position_bias_decreasing(wide: World) -> None:
    bias = ResponseModel.position_bias(np.arange(10))
    assert bias[0] == 1.0 and (np.diff(bias) < 0).all()
    p = wide.response.click_prob(0, np.full(10, 7), np.arange(10))
    assert (np.diff(p) < 0).all()


def test_purchase_prob_band_and_monotone(wide: World) -> None:
    r = wide.response
    items = np.arange(r.n_items)
    u = r.utility(3, items)
    pp = r.purchase_prob(3, items)
    stock = r.item_inventory > 0
    assert (pp[~stock] == 0.0).all()
    assert 0.05 <= pp[stock].min() and pp[stock].max() <= 0.15
    order = np.argsort(u[stock])
    assert (np.diff(pp[stock][order]) >= 0).all()


def test_experience_click_prob_follows_category_preference(wide: World) -> None:
    r = wide.response
    assert r.n_experiences == 6
    best, other = [], []
    for p in range(r.n_people):
        probs = np.array([r.experience_click_prob(p, e) for e in range(6)])
        assert ((probs > 0) & (probs < 1)).all()
        prefs = r.pref_category[p, r.experience_category]
        assert int(np.argmax(probs)) == int(np.argmax(prefs))
        best.append(probs.max())
        other.append(np.median(probs))
    assert np.mean(best) >= 2.0 * np.mean(other)


def test_utility_rows_match_single_person_utility(wide: World) -> None:
    r = wide.response
    rows = r.utility_rows(np.array([0, 5, 9]))
    for k, p in enumerate([0, 5, 9]):
        assert np.array_equal(rows[k], r.utility(p, np.arange(r.n_items)))


def test_response_model_errors(wide: World) -> None:
    r = wide.response
    with pytest.raises(ConfigError, match=re.escape("expected `person` in [0, 300), got 300")):
        r.click_prob(300, np.array([1]), np.array([0]))
    with pytest.raises(ConfigError, match=re.escape("expected `items` in [0, 5000), got [5000, 5000]")):
        r.purchase_prob(0, np.array([5000]))
    with pytest.raises(ConfigError, match=re.escape("expected `positions` of shape (2,), got (3,)")):
        r.click_prob(0, np.array([1, 2]), np.array([0, 1, 2]))
    with pytest.raises(ConfigError, match=re.escape("expected `experience_index` in [0, 6), got 6")):
        r.experience_click_prob(0, 6)


# --- files ---------------------------------------------------------------------------------


def test_write_load_round_trip(small: World, tmp_path: Path) -> None:
    out = write_world(small, tmp_path / "w")
    back = load_world(out)
    assert back.spec == small.spec
    assert back.items == small.items
    assert back.events == small.events
    assert np.array_equal(back.event_person, small.event_person)
    assert back.identifiers == small.identifiers
    assert back.spellings == small.spellings
    assert back.shared_identifiers == small.shared_identifiers
    assert back.config == small.config
    assert back.config_path == out / "config.toml"
    a, b = small.response.to_arrays(), back.response.to_arrays()
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), k
    items = np.arange(small.response.n_items)
    for p in (0, 17, 399):
        assert np.array_equal(small.response.click_prob(p, items, items % 4), back.response.click_prob(p, items, items % 4))
        assert np.array_equal(small.response.purchase_prob(p, items), back.response.purchase_prob(p, items))
        assert small.response.experience_click_prob(p, 2) == back.response.experience_click_prob(p, 2)
    # The files written from the loaded world are the same bytes.
    again = write_world(back, tmp_path / "again")
    for name in FILES:
        assert (out / name).read_bytes() == (again / name).read_bytes(), name


def test_load_world_rejects_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=re.escape("expected a world directory with `catalog.jsonl`")):
        load_world(tmp_path)


def test_config_loads_and_matches_world(small: World, tmp_path: Path) -> None:
    out = write_world(small, tmp_path / "w")
    text = (out / "config.toml").read_text()
    assert "DECISIONER_HASH_KEY" in text and "derive" in text
    assert tomllib.loads(text) == small.config
    cfg = load_config(out / "config.toml")
    assert re.fullmatch(r"[0-9a-f]{32}", cfg.identity.hash_key or "")
    assert cfg.catalog.facets == ("category", "brand", "colour", "tags")
    assert cfg.catalog.price_bands == (25.0, 50.0, 100.0, 250.0)
    home, hero = cfg.placements
    assert (home.name, home.kind, home.slots) == ("home_recs", "recommendation", 4)
    assert home.policy == EpsilonGreedySpec(epsilon=0.1, pool=50)
    assert (hero.name, hero.kind) == ("email_hero", "campaign")
    assert isinstance(hero.policy, ThompsonSpec)
    names = small.vocabularies["category"]
    assert len(hero.experiences) == 6
    for e, c in zip(hero.experiences, small.response.experience_category.tolist()):
        assert e.id == f"promo-{names[c]}" and e.facets == {"category": names[c]}
    for r, c in zip(small.items, small.response.item_category.tolist()):
        assert r["category"] == names[c]


def test_hash_key_is_derived_from_the_seed() -> None:
    a = generate_world(WorldSpec(n_people=5, n_items=10, seed=1))
    b = generate_world(WorldSpec(n_people=5, n_items=10, seed=1))
    c = generate_world(WorldSpec(n_people=5, n_items=10, seed=2))
    assert a.hash_key == b.hash_key != c.hash_key
    assert re.fullmatch(r"[0-9a-f]{32}", a.hash_key)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_people": 0}, "`n_people` must be an int in [1, 50000000], got 0 - at `WorldSpec`"),
        ({"seed": -1}, "`seed` must be an int in [0, 9223372036854775807], got -1 - at `WorldSpec`"),
        ({"n_items": 2.5}, "`n_items` must be an int in [1, 10000000], got 2.5 - at `WorldSpec`"),
        ({"shared_device_rate": 0.3}, "`shared_device_rate` must be in [0, 0.2], got 0.3 - at `WorldSpec`"),
        ({"placeholder_rate": -0.1}, "`placeholder_rate` must be in [0, 0.5], got -0.1 - at `WorldSpec`"),
        ({"visit_shape": 0.0}, "`visit_shape` must be None or in (0, 100], got 0.0 - at `WorldSpec`"),
        # regression: a category without a brand crashed the catalog step
        ({"n_brands": 2, "n_categories": 3}, "expected `n_brands` >= `n_categories` (3), got 2 - at `WorldSpec`"),
    ],
)
def test_worldspec_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        WorldSpec(**kwargs)  # type: ignore[arg-type]


def test_visit_shape_gives_people_their_own_visit_rates(tmp_path: Path) -> None:
    """``visit_shape``: sessions per person are negative binomial (same mean, variance 3 + 9 / k
    instead of Poisson's 3), so a person's first half predicts the second; written and loaded
    back, and absent from ``truth.json`` when unset (default worlds unchanged)."""
    def halves(w: World) -> tuple[np.ndarray, np.ndarray]:
        t = np.array([e["time"] for e in w.events])
        views = np.array([e["type"] == "view" for e in w.events])
        mid = w.spec.start_ms + w.spec.days * 43_200_000
        n = w.spec.n_people
        return (np.bincount(w.event_person[views & (t < mid)], minlength=n),
                np.bincount(w.event_person[views & (t >= mid)], minlength=n))

    flat = generate_world(WorldSpec(n_people=3000, n_items=200, seed=1))
    nbd = generate_world(WorldSpec(n_people=3000, n_items=200, seed=1, visit_shape=1.0))
    r_flat = np.corrcoef(*halves(flat))[0, 1]
    r_nbd = np.corrcoef(*halves(nbd))[0, 1]
    assert r_flat < 0.1 < 0.3 < r_nbd  # measured -0.11 (a fixed total split in two) and 0.39
    write_world(nbd, tmp_path / "nbd")
    assert load_world(tmp_path / "nbd").spec == nbd.spec
    write_world(flat, tmp_path / "flat")
    assert "visit_shape" not in msgspec.json.decode((tmp_path / "flat" / "truth.json").read_bytes())["spec"]


def test_tiny_worlds_are_valid() -> None:
    for spec in (
        WorldSpec(n_people=1, n_items=1, seed=0, n_categories=1, n_brands=1, n_colours=1, n_tags=1),
        WorldSpec(n_people=2, n_items=3, seed=9, n_categories=3, shared_device_rate=0.2, placeholder_rate=0.5),
    ):
        w = generate_world(spec)
        for e in w.events:
            decode_event(e)
        assert len(w.config["placements"][1]["experiences"]) == min(6, spec.n_categories)
