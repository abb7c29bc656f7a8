"""The learned ranker's features: one schema with a version, filled by one kernel call.

Per (person, candidate item, context), all as of the event time ``now`` and read from the
engine's state at call time, so a feature of an event computed before the event is applied sees
only earlier events (point-in-time correct in a replay):

* ``affinity_score``: what the affinity scorer ranks by, ``affinity_weight * affinity +
  popularity_weight * popularity`` (no placement boosts or click-through term);
* ``affinity``: the person's interest in the item: decayed affinity mass, normalised to sum 1
  over the person's live slots as the scorer does, dotted with the item's facet weights;
  ``affinity_facet_0..5``: the same split by catalog facet (in ``Catalog.facet_names`` order:
  the configured facets, then ``price_band``; NaN past the catalog's facets);
* ``popularity``: the scorer's prior (decayed popularity over the largest);
* ``log_interactions``: log(1 + decayed interactions with the item by anyone);
* ``engagement_rate``: decayed engagements (click, add to cart, purchase) per interaction, with
  a prior of 5 interactions at the rate over every item;
* ``item_recency_days``: days since the person last touched the item (NaN: not among their
  last ``profiles.recent_slots`` items); ``purchased``: 1 if among their recent purchases;
* ``facet_recency_days_0..5``: days since the person last touched an item sharing this item's
  value of each facet (over the same recent items);
* ``log_price``, ``price_band`` (band index) and ``price_band_delta`` (the item's band minus the
  person's affinity-weighted mean band: price against the person's usual);
* ``log_events``, ``idle_days`` (since the person's previous event), ``interest_mass`` (sum of
  decayed interest);
* context: ``channel`` (index in :data:`CHANNELS`, unknown ones one past it), ``device`` (index
  in :data:`DEVICES`, unknown ones one past it, NaN when none), ``hour`` of day and ``weekday``
  (UTC, 0 = Monday).

Missing is NaN. A person unknown or outside the profile store (a profile loaded in bulk has a
row past the store until its first event) has no interest and NaN person features.

Not included: item age (the catalog has no date column); attributes and segment flags (the
attributes are deployment-specific and a segment flag costs a predicate per candidate).
"""

from __future__ import annotations

import copy
import math
from typing import Any, Final

import numpy as np

from .._kernels import features as K
from ..catalog import Catalog, _band_label
from ..errors import SchemaError
from ..profiles import ProfileStore
from ..scoring import AffinityScorer

__all__ = ["SCHEMA_VERSION", "FEATURE_NAMES", "CHANNELS", "DEVICES", "Featurizer", "schema"]

#: version of :data:`FEATURE_NAMES` and their meaning: bump on any change of either
SCHEMA_VERSION: Final = 1

#: event channels with a fixed code (others share the code ``len(CHANNELS)``)
CHANNELS: Final[tuple[str, ...]] = (
    "web", "app", "email", "sms", "push", "phone", "ads", "store", "call_center", "survey",
)
#: devices with a fixed code (others share the code ``len(DEVICES)``)
DEVICES: Final[tuple[str, ...]] = ("desktop", "mobile", "tablet")

#: the feature columns, in order
FEATURE_NAMES: Final[tuple[str, ...]] = (
    "affinity_score", "affinity", *(f"affinity_facet_{f}" for f in range(K.MAX_FACETS)),
    "popularity", "log_interactions", "engagement_rate", "item_recency_days", "purchased",
    *(f"facet_recency_days_{f}" for f in range(K.MAX_FACETS)),
    "log_price", "price_band", "price_band_delta", "log_events", "idle_days", "interest_mass",
    "channel", "device", "hour", "weekday",
)
assert len(FEATURE_NAMES) == K.N_FEATURES

#: prior strength (interactions) of the engagement rate
RATE_PRIOR_STRENGTH: Final = 5.0
_CHANNEL_CODE: Final = {c: i for i, c in enumerate(CHANNELS)}
_DEVICE_CODE: Final = {d: i for i, d in enumerate(DEVICES)}
_HOUR_MS: Final = 3_600_000
_EPOCH_THURSDAY: Final = 3  # 1970-01-01 was a Thursday (Monday = 0)


def schema() -> dict[str, Any]:
    """The feature schema as written to a model's ``features.json``: version and names."""
    return {"version": SCHEMA_VERSION, "names": list(FEATURE_NAMES)}


def band_of_values(catalog: Catalog) -> np.ndarray:
    """The price band index of each facet value of ``catalog`` (int32[n_fv], -1 for values of
    other facets)."""
    out = np.full(catalog.n_fv, -1, dtype=np.int32)
    edges = tuple(catalog.spec.price_bands)
    if not edges:
        return out
    lo = [0.0, *edges]
    for b, x in enumerate(lo):
        fv = catalog.fv_index.get(f"price_band={_band_label(edges, x)}")
        if fv is not None:
            out[fv] = b
    return out


class Featurizer:
    """Fills the ranking features of one person against candidate items.

    Parameters
    ----------
    profiles
        The profile store (read at call time: its arrays are replaced when they grow or load).
    catalog
        The catalog the items index.
    scorer
        The affinity scorer: its weights, popularity and item counters (read at call time).
    half_lives
        Decay half-life of each facet value (ms, float64[n_fv]).

    Notes
    -----
    :meth:`fill` uses one scratch per featurizer: one call at a time (under the engine's lock,
    or one featurizer per thread).

    Examples
    --------
    >>> import numpy as np
    >>> from decisioner.profiles import ProfileStore, half_lives
    >>> from decisioner.config import ProfileSpec
    >>> cat = Catalog([{"id": "a", "category": "x"}, {"id": "b", "category": "y"}])
    >>> store = ProfileStore(slots=4, capacity=2)
    >>> fz = Featurizer(store, cat, AffinityScorer(cat), half_lives=half_lives(ProfileSpec(), cat))
    >>> store.update(0, np.array([0], np.int32), np.array([1.0]), 1_700_000_000_000, fz.half_lives)
    >>> out = np.empty((2, len(FEATURE_NAMES)))
    >>> fz.fill(0, 1_700_000_000_000, np.array([0, 1]), 2, fz.context("web", "mobile", 1_700_000_000_000), out)
    >>> out[:, FEATURE_NAMES.index("affinity")].tolist()
    [1.0, 0.0]
    """

    def __init__(
        self, profiles: ProfileStore, catalog: Catalog, scorer: AffinityScorer, *, half_lives: np.ndarray
    ) -> None:
        self.profiles = profiles
        self.catalog = catalog
        self.scorer = scorer
        self.half_lives = np.ascontiguousarray(half_lives, dtype=np.float64)
        self.n_facets = min(len(catalog.facet_names), K.MAX_FACETS)
        #: the catalog facet behind each ``affinity_facet_<f>`` / ``facet_recency_days_<f>``
        self.facets = tuple(catalog.facet_names[: self.n_facets])
        c = catalog
        self._cat = (c.indptr, c.indices, c.data, c.fv_facet, band_of_values(c),
                     np.ascontiguousarray(c.price, dtype=np.float64))
        n_fv = max(1, c.n_fv)
        self._work = (np.zeros(n_fv, dtype=np.float64), np.zeros(n_fv, dtype=np.int64))
        self._params = np.zeros(K.N_PARAMS, dtype=np.float64)

    @classmethod
    def of(cls, engine: Any) -> Featurizer:
        """The featurizer of an :class:`~decisioner.engine.Engine` (its profiles, catalog, scorer
        and half-lives)."""
        return cls(engine.profiles, engine.catalog, engine.scorer, half_lives=engine.half_lives_)

    def reader(self) -> Featurizer:
        """A featurizer over the same stores with scratch of its own, for a reader beside the
        writer (:meth:`fill` is one call at a time per featurizer)."""
        twin = copy.copy(self)
        twin._work = (np.zeros_like(self._work[0]), np.zeros_like(self._work[1]))
        twin._params = np.zeros_like(self._params)
        return twin

    @property
    def n_features(self) -> int:
        return K.N_FEATURES

    def context(self, channel: str | int, device: str | None, now: int) -> np.ndarray:
        """The encoded context (float64[4]: channel, device, hour, weekday) of a request on
        ``channel`` (a name or a code >= 0) from ``device`` at event time ``now`` (epoch ms).

        Raises
        ------
        SchemaError
            If ``channel`` is a negative code or not a str or int.
        """
        if isinstance(channel, str):
            ch = float(_CHANNEL_CODE.get(channel, len(CHANNELS)))
        elif isinstance(channel, (int, np.integer)) and not isinstance(channel, bool) and channel >= 0:
            ch = float(channel)
        else:
            raise SchemaError(f"Expected `channel` to be a str or an int >= 0, got {channel!r:.60} - at `context`")
        dev = math.nan if device is None else float(_DEVICE_CODE.get(device, len(DEVICES)))
        hours = int(now) // _HOUR_MS
        return np.array([ch, dev, float(hours % 24), float((hours // 24 + _EPOCH_THURSDAY) % 7)], dtype=np.float64)

    def fill(self, row: int, now: int, items: np.ndarray, m: int, context: np.ndarray, out: np.ndarray) -> None:
        """Write the features of person ``row`` at event time ``now`` against ``items[:m]``
        (int64 item indices) in ``context`` (from :meth:`context`) into ``out[:m]``
        (float64[>= m, len(FEATURE_NAMES)], C-contiguous). One kernel call, no allocation.
        """
        p = self.profiles  # arrays are replaced when they grow or load: bundle them per call
        prof = (p.fid_, p.score_, p.t_, p.recent_item_, p.recent_t_, p.purchased_, p.last_seen_, p.events_)
        sc = self.scorer
        pop, cnt = sc.popularity_, sc.counters_
        prm = self._params
        prm[K.P_AFFINITY_W] = sc.spec.affinity_weight
        prm[K.P_PRIOR_W] = sc.spec.popularity_weight
        prm[K.P_POP_INV_MAX] = pop.inv_max()
        prm[K.P_COUNT_SCALE] = cnt.scale(now)
        prm[K.P_RATE_PRIOR] = cnt.prior_rate()
        prm[K.P_RATE_STRENGTH] = RATE_PRIOR_STRENGTH
        prm[K.P_N_FACETS] = self.n_facets
        K.featurize(prof, int(row), int(now), self._cat, (pop.acc_, cnt.counts_, self.half_lives), items, int(m),
                    context, prm, self._work, out)

    def features(self, row: int, now: int, items: np.ndarray, *, channel: str | int = "web",
                 device: str | None = None) -> np.ndarray:
        """:meth:`fill` into a new matrix (float64[len(items), n_features]): for tests and training."""
        idx = np.ascontiguousarray(items, dtype=np.int64)
        out = np.empty((idx.shape[0], K.N_FEATURES), dtype=np.float64)
        self.fill(row, now, idx, idx.shape[0], self.context(channel, device, now), out)
        return out
