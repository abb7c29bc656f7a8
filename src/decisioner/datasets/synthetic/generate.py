"""Generation of a synthetic world from one seed: six random streams spawned from it draw the
catalog (:mod:`.catalog`), preferences and people (:mod:`.people`), sessions (:mod:`.sessions`)
and events outside them (:mod:`.touchpoints`); the items people view or buy are drawn from the
utility of the response model, and the world gets an engine configuration (see the package
docstring for the model)."""

from __future__ import annotations

import hashlib
import math
from typing import Any, Final

import numpy as np

from ...errors import ConfigError
from .catalog import make_catalog
from .events import EventBuffer
from .geography import add_geography, add_opinion_events, make_geography
from .people import make_people, make_preferences
from .response import ResponseModel
from .sessions import add_session_events, draw_sessions
from .spec import DAY_MS, F64, I64, PRICE_BANDS, WorldSpec
from .touchpoints import add_touchpoint_events, draw_touchpoints
from .world import World, gc_paused

__all__ = ["generate_world"]

_N_EXPERIENCES: Final = 6


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
        # people's region and zip code come with their identify events; opinions feed the pulse
        "attributes": {"region": {"type": "category"}, "zip": {"type": "category", "max_values": 100_000}},
        "engagement": {"enabled": True},
        "activity": {"types": ["purchase", "email_open", "email_click", "view"]},  # recency and frequency
        "pulse": {"enabled": True, "region_attribute": "region"},
    }


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
    # a seventh stream for the geography and opinions: the first six draw what they drew before it
    r_cat, r_pref, r_people, r_sess, r_view, r_extra, r_geo = (np.random.default_rng(s) for s in ss.spawn(7))

    cat = make_catalog(spec, r_cat)
    prefs = make_preferences(spec, cat, r_pref)
    people = make_people(spec, r_people)
    n_exp = min(_N_EXPERIENCES, spec.n_categories)
    exp_cats = np.argsort(-cat.category_pop, kind="stable")[:n_exp]
    exp_names = [cat.category_names[c] for c in exp_cats.tolist()]
    exp_ids = [f"promo-{c}" for c in exp_names]

    sessions = draw_sessions(spec, people=people, n_campaigns=n_exp, rng=r_sess)
    counts = draw_touchpoints(people, rng=r_extra)

    # --- item draws: views and store purchases, ~ exp(u) --------------------------------
    views_pp = sessions.views_per_person
    draws = views_pp + counts.n_store

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
    person_off = np.concatenate([[0], np.cumsum(draws)])  # person p's items start here

    ev = EventBuffer()
    add_session_events(
        ev, sessions=sessions, people=people, catalog=cat, model=model, drawn=drawn, drawn_u=drawn_u,
        person_off=person_off, campaigns=exp_ids, start_ms=spec.start_ms, rng=r_view,
    )
    add_touchpoint_events(
        ev, counts=counts, people=people, catalog=cat, drawn=drawn, store_off=person_off[:-1] + views_pp,
        campaigns=exp_ids, start_ms=spec.start_ms, horizon=spec.days * DAY_MS, rng=r_extra,
    )
    geo = make_geography(spec.n_people, r_geo)
    add_geography(ev, geo)
    add_opinion_events(ev, people=people, geo=geo, start_ms=spec.start_ms, horizon=spec.days * DAY_MS, rng=r_geo)
    events, event_person = ev.in_time_order()

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
